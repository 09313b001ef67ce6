"""The smoke model: the smallest real thing that exercises the whole toolchain.

Linear -> SiLU -> Linear as a Relax `nn.Module`, compiled with dlight schedules, weights
dumped with `dump_tensor_cache`, plus a `case.json` holding inputs and a float64 numpy
reference. The SDK's runners (Node on Dawn, Chromium in a module Worker) execute a case
and report the max abs error against that reference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tvm
from tvm.contrib import tvmjs
from tvm.relax.frontend import nn

from ..cache import atomic_dir, cache_root, content_key, hash_files
from ..runtime.build import runtime_key
from ..targets import TargetSpec, get_target
from .pipeline import compile_module, write_library


class SmokeMLP(nn.Module):
    def __init__(self, d_in: int, d_hidden: int, dtype: str) -> None:
        self.fc1 = nn.Linear(d_in, d_hidden, bias=True, dtype=dtype)
        self.fc2 = nn.Linear(d_hidden, d_in, bias=True, dtype=dtype)

    def forward(self, x: nn.Tensor) -> nn.Tensor:
        return self.fc2(nn.op.silu(self.fc1(x)))


@dataclass(frozen=True)
class SmokeCase:
    name: str
    dtype: str
    batch: int = 4
    d_in: int = 64
    d_hidden: int = 128
    # f32 must match float64 numpy closely. f16 stores inputs/weights/outputs in half
    # precision (~1e-3 relative); the bound covers f16 rounding of the hidden layer and
    # of the outputs (|y| < ~4 here).
    tolerance: float = 1e-4

    @property
    def requires_f16(self) -> bool:
        return self.dtype == "float16"


CASES: dict[str, SmokeCase] = {
    c.name: c
    for c in [
        SmokeCase("mlp-f32", "float32", tolerance=1e-4),
        SmokeCase("mlp-f16", "float16", tolerance=2e-2),
    ]
}


def _silu(v: np.ndarray) -> np.ndarray:
    return v / (1.0 + np.exp(-v))


def make_weights(case: SmokeCase, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.batch, case.d_in)).astype(case.dtype)
    params = {
        "fc1.weight": (rng.standard_normal((case.d_hidden, case.d_in)) / np.sqrt(case.d_in)).astype(case.dtype),
        "fc1.bias": (0.1 * rng.standard_normal(case.d_hidden)).astype(case.dtype),
        "fc2.weight": (rng.standard_normal((case.d_in, case.d_hidden)) / np.sqrt(case.d_hidden)).astype(case.dtype),
        "fc2.bias": (0.1 * rng.standard_normal(case.d_in)).astype(case.dtype),
    }
    return x, params


def reference(x: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    """float64 forward pass over the (already rounded) stored inputs and weights."""
    f = {k: v.astype(np.float64) for k, v in p.items()}
    h = _silu(x.astype(np.float64) @ f["fc1.weight"].T + f["fc1.bias"])
    return h @ f["fc2.weight"].T + f["fc2.bias"]


def export(case: SmokeCase) -> tuple[tvm.ir.IRModule, list[str]]:
    model = SmokeMLP(case.d_in, case.d_hidden, case.dtype)
    spec = {"forward": {"x": nn.spec.Tensor([case.batch, case.d_in], case.dtype)}}
    mod, named_params = model.export_tvm(spec=spec)
    return mod, [name for name, _ in named_params]


def build_case(case: SmokeCase, out_dir: Path, target: str = "webgpu") -> Path:
    """Compile `case` for `target` into out_dir (wasm or .so, tensor cache, case.json)."""
    spec: TargetSpec = get_target(target)
    out_dir.mkdir(parents=True, exist_ok=True)
    mod, param_names = export(case)
    x, params = make_weights(case)
    executable = compile_module(mod, spec)
    lib_name = f"{case.name}-{spec.name}.{'wasm' if spec.is_wasm else 'so'}"
    write_library(executable, spec, out_dir / lib_name)
    tvmjs.dump_tensor_cache(
        {name: tvm.runtime.tensor(params[name]) for name in param_names},
        str(out_dir),
        encode_format="raw",
        show_progress=False,
    )
    doc = {
        "name": case.name,
        "target": spec.name,
        "wasm" if spec.is_wasm else "library": lib_name,
        "function": "forward",
        "requires_f16": case.requires_f16,
        "inputs": [
            {"name": "x", "shape": list(x.shape), "dtype": case.dtype, "data": x.astype(np.float64).ravel().tolist()}
        ],
        "params": param_names,
        "expected": {
            "shape": [case.batch, case.d_in],
            "dtype": case.dtype,
            "data": reference(x, params).ravel().tolist(),
        },
        "tolerance": case.tolerance,
    }
    (out_dir / "case.json").write_text(json.dumps(doc))
    return out_dir


def run_native(case_dir: Path) -> dict[str, float | bool]:
    """Run a case built for a native target (llvm/cuda) through the TVM VM in-process."""
    doc = json.loads((case_dir / "case.json").read_text())
    spec = get_target(doc["target"])
    dev = tvm.device(spec.device, 0)
    vm = tvm.relax.VirtualMachine(tvm.runtime.load_module(str(case_dir / doc["library"])), dev)
    params, _ = tvmjs.load_tensor_cache(str(case_dir), dev)
    inputs = [
        tvm.runtime.tensor(np.asarray(i["data"]).reshape(i["shape"]).astype(i["dtype"]), dev) for i in doc["inputs"]
    ]
    out = vm[doc["function"]](*inputs, *[params[name] for name in doc["params"]]).numpy()
    err = float(np.max(np.abs(out.astype(np.float64).ravel() - np.asarray(doc["expected"]["data"]))))
    return {"maxAbsErr": err, "ok": err <= doc["tolerance"]}


def _source_key(target: str) -> str:
    """What a built case depends on: this package's build code, TVM, and (wasm) the runtime."""
    parts = [tvm.__version__, target, hash_files(Path(__file__).parent.glob("*.py"))]
    if get_target(target).is_wasm:
        parts.append(runtime_key())
    return content_key(parts)


def cached_case(name: str, target: str = "webgpu") -> Path:
    """The case folder for `name`, built once per content key under the Hearth cache."""
    final = cache_root() / "smoke" / _source_key(target) / f"{name}-{target}"
    if not (final / "case.json").exists():
        with atomic_dir(final) as tmp:
            build_case(CASES[name], tmp, target=target)
    return final
