"""Where a CPU decode step's time goes: every kernel the `decode` function calls, timed alone natively.

Builds the decoder's Relax module for llvm the way `hearth compile` does (quantization scheme, Hearth's
pipeline and CPU schedules), lists the PrimFuncs `decode` calls and how often, and times each one with
random inputs of its shapes (`time_evaluator`, min of repeats, so other load on the machine matters
less). The KV cache's own kernels (RoPE, append, attention) are launched by TVM's runtime and are not
in the list. The wasm-cpu build runs the same schedules, so the ranking carries over.

Usage: TVM_NUM_THREADS=1 .venv/bin/python bench/cpu_kernels.py <checkpoint folder> [--quant q4f32_gguf]
       [--show KERNEL,...]   (prints those kernels' scheduled TIR)
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import tvm
from tvm import relax, tirx

from hearth.build.cpu_schedule import schedule_cpu
from hearth.build.pipeline import relax_pipeline
from hearth.models import get_architecture
from hearth.quant import get_scheme, quantize_model
from hearth.targets import get_target
from hearth.tasks import get_task


def decode_kernels(mod: tvm.IRModule) -> dict[str, int]:
    """PrimFunc name -> calls per decode step (after the pipeline, calls are direct GlobalVar calls)."""
    counts: dict[str, int] = {}

    def visit(e: relax.Expr) -> None:
        if not isinstance(e, relax.Call):
            return
        name = None
        if isinstance(e.op, tvm.ir.Op) and e.op.name in ("relax.call_tir", "relax.call_tir_inplace"):
            name = e.args[0].name_hint
        elif isinstance(e.op, tvm.ir.GlobalVar) and isinstance(mod[e.op], tirx.PrimFunc):
            name = e.op.name_hint
        if name:
            counts[name] = counts.get(name, 0) + 1

    relax.analysis.post_order_visit(mod["decode"], visit)
    return counts


def buffer_shapes(func: tirx.PrimFunc) -> list[tuple[list[int], str]]:
    """(shape, dtype) of each buffer parameter, symbolic dims as 1 (decode: one token)."""
    script = func.script()
    start = re.search(r"def \w+\(", script)
    end = script.find("):", start.end()) if start else -1
    if end < 0:
        return []  # no buffer parameters (shape arithmetic)
    head = script[start.start() : end]
    shapes = []
    for m in re.finditer(r'T\.Buffer\(\((.*?)\),\s*"(\w+)"\)', head):
        dims = []
        for d in (x.strip() for x in m.group(1).split(",")):
            if d:
                static = re.fullmatch(r"T\.int64\((\d+)\)|(\d+)", d)
                dims.append(int(static.group(1) or static.group(2)) if static else 1)
        shapes.append((dims, m.group(2)))
    return shapes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path, help="an HF folder (a GGUF's converted folder works)")
    ap.add_argument("--quant", default="q4f32_gguf")
    ap.add_argument("--show", default="", help="comma-separated kernels whose scheduled TIR to print")
    args = ap.parse_args()
    cfg = json.loads((args.checkpoint / "config.json").read_text())
    arch = get_architecture(cfg["model_type"])
    config = arch.config_class.from_hf(cfg, context_window_size=4096)
    scheme = get_scheme(args.quant)
    spec = get_target("llvm")
    target = spec.target()
    module = quantize_model(arch.model_class(config, dtype=scheme.model_dtype, target=target), scheme)
    mod, _ = get_task(arch.task).export(module, target)
    with target:
        mod = tvm.transform.Sequential([relax_pipeline(spec, target), schedule_cpu()])(mod)
    dev = tvm.cpu()
    rows = []
    for name, calls in decode_kernels(mod).items():
        shapes = buffer_shapes(mod[name])
        if not shapes:
            continue  # shape arithmetic, no buffers
        lib = tvm.compile(tvm.IRModule({name: mod[name].with_attr("global_symbol", name)}), target=target).jit()
        rng = np.random.default_rng(0)
        tensors = [
            tvm.runtime.tensor(
                rng.random(s).astype(dt) if "float" in dt else rng.integers(0, 8, s).astype(dt),
                dev,
            )
            for s, dt in shapes
        ]
        ms = min(lib.time_evaluator(name, dev, number=5, repeat=3)(*tensors).results) * 1e3
        rows.append((ms * calls, ms, calls, name, [s for s, _ in shapes]))
    rows.sort(reverse=True)
    print(f"{args.quant}: kernels of one decode step, {sum(r[0] for r in rows):.2f} ms in all")
    print(f"{'ms/step':>9} {'ms/call':>8} {'calls':>5}  kernel  shapes")
    for total, ms, calls, name, shp in rows:
        print(f"{total:9.2f} {ms:8.3f} {calls:5d}  {name}  {shp}")
    for name in filter(None, args.show.split(",")):
        print(mod[name].script())


if __name__ == "__main__":
    main()
