"""Relax -> executable: the pass pipeline Hearth compiles every model with.

It is TVM's generic pipeline (dispatch, legalize, fuse, dlight schedules, lower), spelled
out here so model-specific passes (e.g. fused dequantize-GEMV) have one place to go.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.backend.cpu_generic import pipeline as cpu_generic
from tvm.relax.backend.gpu_generic import pipeline as gpu_generic

from ..targets import TargetSpec
from .cpu_schedule import schedule_cpu


def relax_pipeline(spec: TargetSpec, target: tvm.target.Target) -> tvm.transform.Pass:
    backend = gpu_generic if spec.is_gpu else cpu_generic

    @tvm.transform.module_pass(opt_level=0, name="HearthPipeline")
    def _pipeline(mod: tvm.ir.IRModule, _ctx: tvm.transform.PassContext) -> tvm.ir.IRModule:
        with target:
            passes = (
                backend.library_dispatch_passes(target)
                + backend.legalize_passes(target)
                + backend.dataflow_lower_passes(target)
                + backend.finalize_passes(target)
            )
            return tvm.transform.Sequential(passes)(mod)

    return _pipeline


def compile_module(mod: tvm.ir.IRModule, spec: TargetSpec) -> tvm.runtime.Executable:
    """Compile a Relax IRModule for `spec`: the one per-target step every build uses (`hearth compile`,
    bench/build.py, bench/gpu/build_cuda.py). wasm targets come out as system-lib modules; native llvm
    builds also get Hearth's CPU schedules, since TVM's generic CPU pipeline leaves matmuls as naive
    single-threaded loops (~15x slower) and native packages run parity checks, eval and the QA benchmark."""
    target = spec.target()
    pipeline = relax_pipeline(spec, target)
    if spec.is_gpu or spec.is_wasm:  # GPUs get dlight inside the pipeline; wasm-cpu has no thread pool
        return relax.build(mod, target=target, relax_pipeline=pipeline, system_lib=spec.is_wasm)
    with target:  # the schedule rules read the current target
        return relax.build(mod, target=target, relax_pipeline=tvm.transform.Sequential([pipeline, schedule_cpu()]))
