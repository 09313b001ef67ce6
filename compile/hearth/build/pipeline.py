"""Relax -> executable: the per-target compile step and the pass pipeline Hearth compiles every model with.

`build_target` is the one per-target step (model for the target -> quantize -> the task's export and
`_metadata` -> compile) that `hearth compile`, bench/build.py and bench/gpu/build_cuda.py all run.
The pipeline is TVM's generic one (dispatch, legalize, fuse, dlight schedules, lower), spelled
out here so model-specific passes (e.g. fused dequantize-GEMV) have one place to go.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tvm
from tvm import relax
from tvm.relax.backend.cpu_generic import pipeline as cpu_generic
from tvm.relax.backend.gpu_generic import pipeline as gpu_generic
from tvm.relax.frontend import nn

from ..models import Architecture
from ..quant import QuantScheme, quantize_model
from ..targets import TargetSpec
from ..tasks import NamedParams, get_task
from .cpu_schedule import schedule_cpu
from .fusion import fusion_passes
from .gpu_schedule import DEFAULT_PREFILL_SCHEDULE, check_prefill_schedule, gpu_schedule_pass
from .metadata import attach_metadata
from .subgroups import subgroup_reductions
from .wasm_link import link_wasm


def relax_pipeline(
    spec: TargetSpec,
    target: tvm.target.Target,
    fuse: bool | str = False,
    prefill_schedule: str = DEFAULT_PREFILL_SCHEDULE,
) -> tvm.transform.Pass:
    """`fuse=True` (or "gate") adds build/fusion.py (the SwiGLU gate folded into the down GEMV) on GPU targets.
    Off by default: on an H100 (docs/benchmarks.md, "Decode fusion on the H100") it removed 10 % of the
    launches but made WebGPU decode 15-23 % slower, because the fused GEMV recomputes SiLU for every output
    block. fuse="staged": RMSNorm and the gate folded in with the prologue staged once per workgroup
    (build/staged_gemv.py), also opt-in until the GPU A/B.
    `prefill_schedule` (GPU targets): the dlight Matmul config of the prefill GEMMs (build/gpu_schedule.py;
    "cuda" = dlight's cuda tile config on every GPU target, the default; "dlight" = TVM's per-target choice)."""
    backend = gpu_generic if spec.is_gpu else cpu_generic
    fusion = fusion_passes(target, "gate" if fuse is True else fuse) if spec.is_gpu and fuse else []
    check_prefill_schedule(prefill_schedule)
    legalize = backend.legalize_passes(target)
    if spec.is_gpu and prefill_schedule != "dlight":
        # gpu_generic's legalize list ends with its dlight pass: the same rules, the Matmul one configured.
        if legalize[-1].info.name != "ApplyDefaultSchedule":
            raise RuntimeError(f"TVM's GPU legalize passes no longer end with dlight: {legalize[-1].info.name}")
        legalize = [*legalize[:-1], gpu_schedule_pass(prefill_schedule)]

    @tvm.transform.module_pass(opt_level=0, name="HearthPipeline")
    def _pipeline(mod: tvm.ir.IRModule, _ctx: tvm.transform.PassContext) -> tvm.ir.IRModule:
        with target:
            passes = (
                backend.library_dispatch_passes(target)
                + fusion
                + legalize
                + backend.dataflow_lower_passes(target)
                + backend.finalize_passes(target)
            )
            return tvm.transform.Sequential(passes)(mod)

    return _pipeline


def compile_module(
    mod: tvm.ir.IRModule,
    spec: TargetSpec,
    fuse: bool | str = False,
    prefill_schedule: str = DEFAULT_PREFILL_SCHEDULE,
) -> tvm.runtime.Executable:
    """Compile a Relax IRModule for `spec` (build_target's last step; the smoke cases call it directly).
    wasm targets come out as system-lib modules. CPU builds (llvm and wasm-cpu) also get Hearth's CPU
    schedules: TVM's generic CPU pipeline leaves matmuls as naive strided loops, ~15x slower natively,
    where native packages run parity checks, eval and the QA benchmark, and 5-10x slower prefill in the
    browser's no-WebGPU fallback (docs/benchmarks.md, "No WebGPU"). wasm has no thread pool: the
    schedules' parallel loops run serially there, the tiling and SIMD128 vectors still apply."""
    target = spec.target()
    pipeline = relax_pipeline(spec, target, fuse, prefill_schedule)
    if spec.is_gpu:  # GPUs get dlight inside the pipeline
        # webgpu-fused-sg<N>: reductions as subgroup shuffles where TVM lowers them to valid WGSL (subgroups.py)
        with subgroup_reductions() if spec.subgroup_size else contextlib.nullcontext():
            return relax.build(mod, target=target, relax_pipeline=pipeline, system_lib=spec.is_wasm)
    with target:  # the schedule rules read the current target
        cpu = tvm.transform.Sequential([pipeline, schedule_cpu()])
        return relax.build(mod, target=target, relax_pipeline=cpu, system_lib=spec.is_wasm)


@dataclass
class TargetBuild:
    module: nn.Module  # the quantized model: build_plan reads its parameters for the weights
    named_params: NamedParams  # packed parameter order of the executable
    executable: tvm.runtime.Executable


def build_target(
    arch: Architecture,
    config: Any,
    scheme: QuantScheme,
    spec: TargetSpec,
    fuse: bool | str = False,
    prefill_schedule: str = DEFAULT_PREFILL_SCHEDULE,
) -> TargetBuild:
    """The per-target compile step of every model build (`hearth compile`, bench/build.py,
    bench/gpu/build_cuda.py): the model built for `spec` (its kernels depend on the target),
    quantized, exported with its task's function set and `_metadata`, compiled. `fuse=True` (benchmarks'
    A/B only: packages are built without it, see relax_pipeline) adds build/fusion.py; `prefill_schedule`
    (build/gpu_schedule.py) picks the GPU Matmul config of the prefill GEMMs."""
    task = get_task(arch.task)
    module = quantize_model(arch.model_class(config, dtype=scheme.model_dtype, target=spec.target()), scheme)
    mod, named_params = task.export(module, spec.target())
    mod = attach_metadata(mod, task.metadata(config, scheme.name, named_params))
    return TargetBuild(module, named_params, compile_module(mod, spec, fuse, prefill_schedule))


def write_library(executable: tvm.runtime.Executable, spec: TargetSpec, path: Path) -> None:
    """The executable as the package's library: linked .wasm for wasm targets, a shared object otherwise."""
    if spec.is_wasm:
        link_wasm(executable, path, threads=spec.threads)
    else:
        executable.export_library(str(path))
