"""Compilation targets, by name. One registry instead of if-chains at every call site.

- webgpu:   WGSL kernels + a wasm32 host module (system-lib), linked with the TVM wasm runtime.
- webgpu-fused: webgpu with the staged decode fusion (RMSNorm and the SwiGLU gate folded into the decode
  GEMVs, build/staged_gemv.py): fewer launches, faster on real GPUs, slower on CPU-emulated WebGPU, so a
  package ships it next to webgpu and the SDK picks by adapter (sdk/src/load/device-fit.ts).
- wasm-cpu: everything on the wasm32 host (SIMD128, CPU schedules), for browsers without WebGPU.
- wasm-cpu-mt: wasm-cpu whose parallel loops run on Web Workers over a shared memory (needs a
  cross-origin isolated page; a package built with both keeps wasm-cpu as the fallback elsewhere).
- llvm:     native CPU build of the same model (reference and fallback server).
- cuda:     native NVIDIA build (the ceiling WebGPU is benchmarked against).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import tvm

WASM32_HOST = {"kind": "llvm", "mtriple": "wasm32-unknown-unknown-wasm"}
# The wasm-cpu build's kernels use 128-bit SIMD, which every current engine has (Chrome 91, Firefox 89,
# Safari 16.4, Node 16). The webgpu build's host code stays scalar: it only launches kernels.
WASM32_SIMD = {**WASM32_HOST, "mattr": ["+simd128"]}
# Threaded wasm-cpu: kernels with atomics + bulk memory, the features of a shared memory; "+atomics"
# also tells the CPU schedules that parallel loops really run in parallel here.
WASM32_SIMD_MT = {**WASM32_HOST, "mattr": ["+simd128", "+atomics", "+bulk-memory"]}


def native_cpu() -> dict:
    """llvm for this host's CPU. Without -mcpu LLVM targets baseline x86-64, where every f16
    conversion is a libcall (q4f16_1 ran ~20x slower); native builds run where they are built."""
    return {"kind": "llvm", "mcpu": tvm.target.codegen.llvm_get_system_cpu()}


@dataclass(frozen=True)
class TargetSpec:
    name: str
    make: Callable[[], tvm.target.Target]
    is_wasm: bool  # output is linked with emcc into a .wasm, else a native shared library
    is_gpu: bool
    device: str  # tvm device name used to run it natively ("cpu", "cuda"); wasm ones run in JS
    threads: bool = False  # wasm linked on a shared memory with the threaded runtime (Web Workers)
    # build/fusion.py mode compiled into this target whatever `hearth compile --decode-fusion` says
    # ("none": the option decides); a target of its own so one package can carry both GPU builds.
    decode_fusion: str = "none"

    def target(self) -> tvm.target.Target:
        return self.make()


TARGETS: dict[str, TargetSpec] = {
    spec.name: spec
    for spec in [
        TargetSpec("webgpu", lambda: tvm.target.Target({"kind": "webgpu", "host": WASM32_HOST}), True, True, "webgpu"),
        TargetSpec(
            "webgpu-fused",
            lambda: tvm.target.Target({"kind": "webgpu", "host": WASM32_HOST}),
            True,
            True,
            "webgpu",
            decode_fusion="staged",
        ),
        TargetSpec("wasm-cpu", lambda: tvm.target.Target(WASM32_SIMD), True, False, "cpu"),
        TargetSpec("wasm-cpu-mt", lambda: tvm.target.Target(WASM32_SIMD_MT), True, False, "cpu", threads=True),
        TargetSpec("llvm", lambda: tvm.target.Target(native_cpu()), False, False, "cpu"),
        TargetSpec("cuda", lambda: tvm.target.Target({"kind": "cuda", "host": {"kind": "llvm"}}), False, True, "cuda"),
    ]
}


def get_target(name: str) -> TargetSpec:
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown target {name!r}; choose one of: {', '.join(TARGETS)}") from None
