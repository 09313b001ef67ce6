"""Hearth's WebGPU decode attention kernel (compile/hearth/models/decode_attention_kernel.py; issue 17: upstream's
`batch_decode_paged_kv` ran 2 workgroups with a workgroup-memory reduction per KV row on WebGPU).

On Dawn (lavapipe): the kernel and upstream's, both built for webgpu into one wasm, run on the same paged
inputs; their outputs and lse must match a float64 numpy reference (and so each other) for Qwen2.5-0.5B-like
(14/2 heads, head_dim 64), SmolLM2-like (9/3), MHA, head_dim 128 with a GQA group of 8, head_dim 256, f16,
and the sliding-window variant; B=1 and B=3 (an empty sequence among them), RoPE inline or not, lengths
around the page size and past one chunk. The same kernel built with subgroup reductions (webgpu-fused-sg8,
lavapipe's subgroup size) must give the same values. And the swap: webgpu builds carry Hearth's kernel under
upstream's symbol, llvm/cuda builds keep upstream's.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tvm
from tvm import relax
from tvm.relax.frontend.nn.llm._decode_kernels import _attention_decode

from hearth.build.wasm_link import link_wasm
from hearth.cache import atomic_dir, cache_root, content_key, hash_files
from hearth.models.decode_attention_kernel import (
    DECODE_SYMBOL,
    SLIDING_DECODE_SYMBOL,
    attention_decode,
    swap_decode_attention,
)
from hearth.runtime.build import runtime_key
from hearth.targets import get_target

REPO = Path(__file__).resolve().parents[1]
PAGE = 16
NEG = -5e4
THETA = 10000.0

# name: (H_qo, H_kv, head_dim, dtype, sliding window)
CONFIGS: dict[str, tuple[int, int, int, str, bool]] = {
    "qwen": (14, 2, 64, "float32", False),
    "smol": (9, 3, 64, "float32", False),
    "mha": (4, 4, 64, "float32", False),
    "d128g8": (8, 1, 128, "float32", False),
    "d256": (8, 2, 256, "float32", False),
    "qwen_f16": (14, 2, 64, "float16", False),
    "d256_f16": (4, 1, 256, "float16", False),
    "smol_window": (9, 3, 64, "float32", True),
    "gemma_d16_window": (4, 1, 16, "float32", True),  # the gemma3 family tests' head_dim
}
# (lengths per sequence, rotary_mode); a sliding-window case gives (stored tokens, window offset, sink) per sequence
CASES: list[tuple[tuple[Any, ...], int]] = [
    *[((n,), rm) for n in (1, 15, 16, 17, 300) for rm in (0, 1)],
    *[(lens, rm) for lens in ((17, 0, 300), (1, 16, 15)) for rm in (0, 1)],
]
WINDOW_CASES: list[tuple[tuple[Any, ...], int]] = [
    (((300, 40, 4),), 0),
    (((300, 40, 4), (21, 0, 0), (64, 20, 2)), 1),
    (((5, 0, 0),), 0),
]


def _kernels(target: tvm.target.Target, upstream: bool) -> relax.Executable:
    bb = relax.BlockBuilder()
    for name, (hq, hkv, d, dtype, window) in CONFIGS.items():
        if target.attrs.get("supports_subgroups", False):
            if name != "qwen":
                continue  # the subgroup build checks the reduction's lowering; one shape is enough
            # TVM 0.27 emits shuffles for 8-wide subgroups only within one subgroup (8 threads); the default
            # 128 threads keep workgroup-memory trees there (sg32 builds get shuffles at 128)
            eight = attention_decode(hkv, hq, d, dtype, window, {}, target, threads=8)
            bb.add_func(eight.with_attr("global_symbol", f"ours8_{name}"), f"ours8_{name}")
        bb.add_func(
            attention_decode(hkv, hq, d, dtype, window, {}, target).with_attr("global_symbol", f"ours_{name}"),
            f"ours_{name}",
        )
        if upstream:
            up = _attention_decode(hkv, hq, d, dtype, window, {}, target)
            bb.add_func(up.with_attr("global_symbol", f"up_{name}"), f"up_{name}")
    x = relax.Var("x", relax.TensorType((4,), "float32"))
    with bb.function("main", [x]):  # tvmjs wants a VM; the kernels are called from the system lib
        bb.emit_func_output(x)
    return relax.build(bb.get(), target=target, system_lib=True)


def _wasm(target_name: str) -> Path:
    spec = get_target(target_name)
    code = [
        Path(__file__),
        REPO / "compile/hearth/models/decode_attention_kernel.py",
        REPO / "compile/hearth/targets.py",
    ]
    key = content_key([tvm.__version__, target_name, runtime_key(spec.threads), hash_files(code, root=REPO)])
    out = cache_root() / "test-decode-attention" / key / f"decode-attention-{target_name}.wasm"
    if out.is_file():
        return out
    with atomic_dir(out.parent) as tmp:
        link_wasm(_kernels(spec.target(), upstream=target_name == "webgpu"), tmp / out.name, threads=spec.threads)
    return out


# --- inputs and the float64 reference ---------------------------------------------------------------------------


def _rope(x: np.ndarray, pos: int, d: int) -> np.ndarray:
    """Upstream's `_rope` (default rope_scaling), in float32 as the kernels compute it."""
    i = np.arange(d)
    freq = np.float32(pos) / np.power(np.float32(THETA), ((i % (d // 2)) * 2).astype(np.float32) / np.float32(d))
    rot = np.where(i < d // 2, -np.roll(x, -(d // 2), axis=-1), np.roll(x, d // 2, axis=-1))
    return (np.cos(freq) * x.astype(np.float32) + np.sin(freq) * rot.astype(np.float32)).astype(x.dtype)


def _make_case(cfg: str, seqs: tuple[Any, ...], rotary: int, rng: np.random.Generator) -> dict[str, Any]:
    hq, hkv, d, dtype, window = CONFIGS[cfg]
    b = len(seqs)
    stored = [s[0] if window else s for s in seqs]
    npages = [math.ceil(n / PAGE) for n in stored]
    max_pages = sum(npages) + 3
    values = rng.permutation(max_pages)[: sum(npages)].astype("int32")
    indptr = np.concatenate([[0], np.cumsum(npages)]).astype("int32")
    last = [n - (p - 1) * PAGE if p else 0 for n, p in zip(stored, npages)]
    if window:
        length_info = np.array([last, [s[1] for s in seqs], [s[2] for s in seqs]], "int32")
    else:
        length_info = np.array(last, "int32")
    inputs = {
        "q": rng.standard_normal((b, hq, d)).astype(dtype),
        "pages": rng.standard_normal((max_pages, 2, hkv, PAGE, d)).astype(dtype),
        "indptr": indptr,
        "values": values if values.size else np.zeros(1, "int32"),
        "length_info": length_info,
        "k_rope": rng.integers(0, 50, b).astype("int32"),
        "q_rope": rng.integers(300, 400, b).astype("int32"),
    }
    return {"cfg": cfg, "seqs": seqs, "rotary": rotary, "sm_scale": 1 / math.sqrt(d), "inputs": inputs}


def _reference(case: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    hq, hkv, d, dtype, window = CONFIGS[case["cfg"]]
    x = case["inputs"]
    b_n = x["q"].shape[0]
    out = np.zeros((b_n, hq, d))
    lse = np.full((b_n, hq), NEG)
    for b in range(b_n):
        first, end = x["indptr"][b], x["indptr"][b + 1]
        if first == end:
            continue
        li = x["length_info"]
        if window:
            n = (end - first - 1) * PAGE + li[0, b] - li[1, b] + li[2, b]
            offsets = [p if p < li[2, b] else p - li[2, b] + li[1, b] for p in range(n)]
        else:
            n = (end - first - 1) * PAGE + li[b]
            offsets = list(range(n))
        rows = [(x["values"][first + o // PAGE], o % PAGE) for o in offsets]
        for h in range(hq):
            k = np.stack([x["pages"][pg, 0, h // (hq // hkv), off] for pg, off in rows])
            v = np.stack([x["pages"][pg, 1, h // (hq // hkv), off] for pg, off in rows]).astype(np.float64)
            q = x["q"][b, h]
            if case["rotary"]:
                q = _rope(q, x["q_rope"][b], d)
                k = np.stack([_rope(k[p], x["k_rope"][b] + p, d) for p in range(n)])
            s = k.astype(np.float64) @ q.astype(np.float64) * case["sm_scale"] * math.log2(math.e)
            m = s.max()
            p = np.exp2(s - m)
            out[b, h] = p @ v / p.sum()
            lse[b, h] = m + math.log2(p.sum())
    return out, lse


def _all_cases(configs: list[str]) -> list[dict[str, Any]]:
    rng = np.random.default_rng(17)
    return [
        _make_case(cfg, seqs, rm, rng) for cfg in configs for seqs, rm in (WINDOW_CASES if CONFIGS[cfg][4] else CASES)
    ]


def _run(wasm: Path, cases: list[dict[str, Any]], symbols: list[str], tmp: Path, time_runs: int = 0) -> dict:
    spec = []
    for i, c in enumerate(cases):
        hq, hkv, d, dtype, _ = CONFIGS[c["cfg"]]
        case_dir = tmp / f"case{i}"
        case_dir.mkdir()
        for name, arr in c["inputs"].items():
            (case_dir / name).write_bytes(np.ascontiguousarray(arr).tobytes())
        spec.append(
            {
                "name": f"case{i}",
                "functions": [f"{s}_{c['cfg']}" for s in symbols],
                "dtype": dtype,
                "B": c["inputs"]["q"].shape[0],
                "Hqo": hq,
                "Hkv": hkv,
                "D": d,
                "maxPages": c["inputs"]["pages"].shape[0],
                "nnz": c["inputs"]["values"].shape[0],
                "lengthInfoShape": list(c["inputs"]["length_info"].shape),
                "rotaryMode": c["rotary"],
                "ropeScale": 1.0,
                "ropeTheta": THETA,
                "smScale": c["sm_scale"],
                "dir": str(case_dir),
            }
        )
    (tmp / "cases.json").write_text(json.dumps(spec))
    out_dir = tmp / "out"
    out_dir.mkdir()
    args = [str(wasm), str(tmp / "cases.json"), str(out_dir)] + (["--time", str(time_runs)] if time_runs else [])
    proc = subprocess.run(
        ["node", "--import", "tsx", str(REPO / "tests/support/decode_attention_check.mjs"), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO / "sdk",
    )
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {"error": f"no output (exit {proc.returncode})"}
    assert "error" not in result, f"{result}\n{proc.stderr[-3000:]}"
    result["out"] = out_dir
    return result


def _read(out_dir: Path, i: int, fn: str, case: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    hq, _, d, dtype, _ = CONFIGS[case["cfg"]]
    b = case["inputs"]["q"].shape[0]
    o = np.frombuffer((out_dir / f"case{i}.{fn}.output.bin").read_bytes(), dtype).reshape(b, hq, d)
    lse = np.frombuffer((out_dir / f"case{i}.{fn}.lse.bin").read_bytes(), "float32").reshape(b, hq)
    return o.astype(np.float64), lse.astype(np.float64)


def _tol(dtype: str, rotary: int) -> dict[str, float]:
    """f32: a few ulps over a 300-row softmax; with RoPE inline, f32 sin/cos of angles up to ~400 rad (the angle's
    own rounding is ~2e-5 rad), which the GPU and numpy evaluate differently; f16: the output's rounding (2^-11)."""
    if dtype == "float16":  # the lse too: RoPE'd q and k are rounded to f16, a rounding flip moves a score
        return {"rtol": 2e-3, "atol": 2e-3, "lse_atol": 1e-2}
    return {"rtol": 2e-5, "atol": 1e-4 if rotary else 2e-6, "lse_atol": 1e-4}


@pytest.fixture(scope="module")
def webgpu_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], Path]:
    cases = _all_cases(list(CONFIGS))
    result = _run(_wasm("webgpu"), cases, ["ours", "up"], tmp_path_factory.mktemp("decode-attn"))
    return cases, result["out"]


@pytest.mark.parametrize("cfg", list(CONFIGS))
def test_matches_reference_and_upstream(cfg: str, webgpu_run: tuple[list[dict[str, Any]], Path]) -> None:
    cases, out_dir = webgpu_run
    checked = 0
    for i, case in enumerate(cases):
        if case["cfg"] != cfg:
            continue
        want_o, want_lse = _reference(case)
        tol = _tol(CONFIGS[cfg][3], case["rotary"])
        what = f"{cfg} seqs={case['seqs']} rotary={case['rotary']}"
        ours = _read(out_dir, i, f"ours_{cfg}", case)
        up = _read(out_dir, i, f"up_{cfg}", case)
        # An empty sequence's lse is "minus infinity": exactly -5e4 here; upstream's merges its bdz initial
        # states into -5e4 + log2(bdz). Either weighs nothing in a later merge.
        empty = want_lse == NEG
        assert (up[1][empty] < NEG + 10).all()
        up[1][empty] = NEG
        for fn, (got_o, got_lse) in (("ours", ours), ("upstream", up)):
            np.testing.assert_allclose(
                got_o, want_o, rtol=tol["rtol"], atol=tol["atol"], err_msg=f"{fn} output vs numpy, {what}"
            )
            np.testing.assert_allclose(
                got_lse, want_lse, rtol=tol["rtol"], atol=tol["lse_atol"], err_msg=f"{fn} lse vs numpy, {what}"
            )
        # the same RoPE on the GPU: closer to each other than to numpy
        near = _tol(CONFIGS[cfg][3], 0)
        np.testing.assert_allclose(
            ours[0], up[0], rtol=near["rtol"], atol=near["atol"], err_msg=f"output vs upstream's, {what}"
        )
        np.testing.assert_allclose(
            ours[1], up[1], rtol=near["rtol"], atol=near["lse_atol"] / 10, err_msg=f"lse vs upstream's, {what}"
        )
        checked += 1
    assert checked == len(WINDOW_CASES if CONFIGS[cfg][4] else CASES)


def test_subgroup_build_matches(tmp_path: Path, webgpu_run: tuple[list[dict[str, Any]], Path]) -> None:
    """webgpu-fused-sg8 lowers the chunk reduction to subgroup shuffles (lavapipe's subgroups are 8 wide)."""
    cases, plain_out = webgpu_run
    qwen = [c for c in cases if c["cfg"] == "qwen"]
    out = _run(_wasm("webgpu-fused-sg8"), qwen, ["ours", "ours8"], tmp_path)["out"]
    for i, case in enumerate(qwen):
        want_o, want_lse = _read(plain_out, cases.index(case), "ours_qwen", case)
        for fn in ("ours_qwen", "ours8_qwen"):
            got_o, got_lse = _read(out, i, fn, case)
            what = f"{fn} seqs={case['seqs']} rotary={case['rotary']}"
            np.testing.assert_allclose(got_o, want_o, rtol=2e-5, atol=2e-6, err_msg=what)
            np.testing.assert_allclose(got_lse, want_lse, rtol=2e-5, atol=1e-5, err_msg=what)


@pytest.mark.parametrize(("target_name", "threads"), [("webgpu-fused-sg32", 128), ("webgpu-fused-sg8", 8)])
def test_subgroup_build_uses_shuffles(target_name: str, threads: int) -> None:
    target = get_target(target_name).target()
    func = attention_decode(2, 14, 64, "float32", False, {}, target, threads=threads)
    src = tvm.compile(tvm.IRModule({"f": func}), target=target).mod.imports[0].inspect_source()
    assert "subgroupShuffle" in src


def test_limits_are_checked() -> None:
    target = get_target("webgpu").target()
    with pytest.raises(ValueError, match="not a multiple"):
        attention_decode(3, 7, 64, "float32", False, {}, target)
    with pytest.raises(ValueError, match="powers of two"):
        attention_decode(2, 4, 96, "float32", False, {}, target)


@pytest.mark.parametrize("target_name", ["webgpu", "webgpu-fused-sg32", "llvm", "cuda"])
def test_swap_only_on_webgpu(target_name: str) -> None:
    target = get_target(target_name).target()
    mod = tvm.IRModule()
    gpu_target = target if target.kind.name in ("webgpu", "cuda") else get_target("webgpu").target()
    for window, symbol in ((False, "tir_attention_decode"), (True, "tir_attention_decode_sliding_window")):
        mod[symbol] = _attention_decode(2, 14, 64, "float32", window, {}, gpu_target)
    swapped = swap_decode_attention(mod, target, 2, 14, 64, "float32", {})
    for name, symbol in (
        ("tir_attention_decode", DECODE_SYMBOL),
        ("tir_attention_decode_sliding_window", SLIDING_DECODE_SYMBOL),
    ):
        func = swapped[name]
        assert func.attrs["global_symbol"] == symbol
        assert bool(func.attrs.get("hearth.decode_attention", False)) == (target.kind.name == "webgpu"), name


def test_other_head_dims_keep_upstream() -> None:
    """Phi-3's head_dim 96 does not split over the kernel's power-of-two lanes: upstream's stays."""
    target = get_target("webgpu").target()
    mod = tvm.IRModule({"tir_attention_decode": _attention_decode(4, 8, 96, "float32", False, {}, target)})
    swapped = swap_decode_attention(mod, target, 4, 8, 96, "float32", {})
    assert not swapped["tir_attention_decode"].attrs.get("hearth.decode_attention", False)
