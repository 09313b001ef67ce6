"""Relax -> executable: the pass pipeline Hearth compiles every model with.

It is TVM's generic pipeline (dispatch, legalize, fuse, dlight schedules, lower), spelled
out here so model-specific passes (e.g. fused dequantize-GEMV) have one place to go.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.backend.cpu_generic import pipeline as cpu_generic
from tvm.relax.backend.gpu_generic import pipeline as gpu_generic

from .targets import TargetSpec


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
    """Compile a Relax IRModule for `spec`; wasm targets come out as system-lib modules."""
    target = spec.target()
    return relax.build(
        mod,
        target=target,
        relax_pipeline=relax_pipeline(spec, target),
        system_lib=spec.is_wasm,
    )
