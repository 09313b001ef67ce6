"""Compilation targets, by name. One registry instead of if-chains at every call site.

- webgpu:   WGSL kernels + a wasm32 host module (system-lib), linked with the TVM wasm runtime.
- webgpu-fused: webgpu with the staged decode fusion (RMSNorm and the SwiGLU gate folded into the decode
  GEMVs, build/staged_gemv.py): fewer launches, faster on real GPUs, slower on CPU-emulated WebGPU, so a
  package ships it next to webgpu and the SDK picks by adapter (sdk/src/load/device-fit.ts).
- webgpu-fused-sg32 / -sg16 / -sg8: webgpu-fused whose cross-thread reductions are subgroup shuffles
  (WGSL `enable subgroups;`) instead of workgroup memory + a barrier per step. TVM's lowering assumes the
  adapter's subgroup size is exactly the warp size compiled in, so each size is a library of its own: 32 for
  NVIDIA-class adapters, 8 / 16 for fixed-size ones (lavapipe: 8, or 16 with LP_NATIVE_VECTOR_WIDTH=512,
  which is how the tests run them); the SDK loads one only where adapter.info.subgroupMinSize ==
  subgroupMaxSize == N.
- wasm-cpu: everything on the wasm32 host (SIMD128, CPU schedules), for browsers without WebGPU.
- wasm-cpu-mt: wasm-cpu whose parallel loops run on Web Workers over a shared memory (needs a
  cross-origin isolated page; a package built with both keeps wasm-cpu as the fallback elsewhere).
- llvm:     native CPU build of the same model (reference and fallback server).
- cuda:     native NVIDIA build (the ceiling WebGPU is benchmarked against).
"""

from __future__ import annotations

import json
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
    # WebGPU only: the exact adapter subgroup size the kernels' shuffles are compiled for (None: no subgroups).
    subgroup_size: int | None = None

    def target(self) -> tvm.target.Target:
        return self.make()


def _webgpu(subgroup_size: int | None = None) -> Callable[[], tvm.target.Target]:
    if subgroup_size is None:
        return lambda: tvm.target.Target({"kind": "webgpu", "host": WASM32_HOST})
    return lambda: _webgpu_subgroups(subgroup_size)


def _webgpu_subgroups(size: int) -> tvm.target.Target:
    """webgpu with supports_subgroups and thread_warp_size = size: LowerThreadAllreduce then emits
    subgroupShuffleDown trees of that width, correct only where every subgroup has exactly `size` lanes
    (build/subgroups.py picks, per kernel, the reductions it can lower that way)."""
    return webgpu_with(tvm.target.Target({"kind": "webgpu", "supports_subgroups": True, "host": WASM32_HOST}), size)


def webgpu_with(
    target: tvm.target.Target, thread_warp_size: int, max_num_threads: int | None = None
) -> tvm.target.Target:
    """`target` (webgpu, supports_subgroups) with another thread_warp_size / max_num_threads. TVM's webgpu
    canonicalizer pins thread_warp_size to 32 whenever supports_subgroups is on, so the numbers are set on
    the canonical target's serialized form: the same attrs and host, those values changed."""
    doc = json.loads(tvm.ir.save_json(target))
    nodes = doc["nodes"]
    attrs = nodes[nodes[doc["root_index"]]["data"]["attrs"]]["data"]  # a Map: [key, value, key, value, ...]
    values = {"thread_warp_size": thread_warp_size, "max_num_threads": max_num_threads}
    for k, v in zip(attrs[::2], attrs[1::2], strict=True):
        if values.get(nodes[k]["data"]) is not None:
            nodes[v] = {"type": "int", "data": values[nodes[k]["data"]]}
    return tvm.ir.load_json(json.dumps(doc))


def _fused_subgroups(size: int) -> TargetSpec:
    return TargetSpec(
        f"webgpu-fused-sg{size}", _webgpu(size), True, True, "webgpu", decode_fusion="staged", subgroup_size=size
    )


TARGETS: dict[str, TargetSpec] = {
    spec.name: spec
    for spec in [
        TargetSpec("webgpu", _webgpu(), True, True, "webgpu"),
        TargetSpec("webgpu-fused", _webgpu(), True, True, "webgpu", decode_fusion="staged"),
        _fused_subgroups(32),
        _fused_subgroups(16),
        _fused_subgroups(8),
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
