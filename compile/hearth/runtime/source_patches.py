"""Fixes applied to the wheel's TVM runtime sources before the wasm runtime is compiled.

Each patch replaces one exact piece of text; a source that does not contain it (a new wheel
that changed or fixed the code) fails the build with the patch's name, so a fix is never
silently lost or applied to code it was not written for. The patch texts are part of
`runtime_key()`, so changing them rebuilds the runtime.

1. per-layer sliding window on WebGPU (apache-tvm 0.27, src/runtime/vm/paged_kv_cache.cc with
   attn_utils.h). A KV cache whose layers mix "mha" and "mha_sliding" (Gemma 3) copies two sets
   of page tables per depth to the device: the full one and the window's. On CUDA and CPU the
   copies go to a merged buffer at increasing offsets; on every other device (WebGPU) the
   "plain" manager writes each copy into ONE array per depth, so the window's tables overwrite
   the full ones and the global layers attend over the window only, once a sequence is a page
   longer than the window. The patch gives the window's copies their own arrays (depth slots
   kPagedKVCacheMaxBlockDepth.. 2 * kPagedKVCacheMaxBlockDepth - 1).

THREAD_PATCHES apply on top of PATCHES in the threaded runtime only (`build_runtime(threads=True)`):
the wheel's serial TVMBackendParallelLaunch / ParallelBarrier go, and the workspace allocator is
renamed so that threads/hearth_threads.cc can wrap it in a lock (its pool is one global in a build
without atomics, and kernel bodies on several threads call it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_KV = "src/runtime/vm/paged_kv_cache.cc"
_AUX = "src/runtime/vm/attn_utils.h"
_SLOT = "d + kPagedKVCacheMaxBlockDepth"


@dataclass(frozen=True)
class SourcePatch:
    name: str
    path: str  # relative to the private TVM_HOME
    old: str
    new: str


PATCHES: tuple[SourcePatch, ...] = (
    SourcePatch(
        "plain aux manager: arrays for the window's page tables",
        _AUX,
        """      : PagedKVCacheAuxDataManager(dtype_aux, device, preferred_host_device, copy_stream) {
    for (int d = 0; d < kPagedKVCacheMaxBlockDepth; ++d) {""",
        """      : PagedKVCacheAuxDataManager(dtype_aux, device, preferred_host_device, copy_stream) {
    // hearth: twice the depths, the upper half for per-layer sliding-window tables.
    for (int d = 0; d < 2 * kPagedKVCacheMaxBlockDepth; ++d) {""",
    ),
    SourcePatch(
        "window page indptr into its own slot",
        _KV,
        "&page_indptr_sliding_window_on_depths_host_[d], d);",
        f"&page_indptr_sliding_window_on_depths_host_[d], {_SLOT});",
    ),
    SourcePatch(
        "window page indices into its own slot",
        _KV,
        "&page_indices_sliding_window_on_depths_host_[d], d);",
        f"&page_indices_sliding_window_on_depths_host_[d], {_SLOT});",
    ),
    SourcePatch(
        "window length info into its own slot",
        _KV,
        """        layer_sliding_window_length_info_on_depths_view_[d] =
            aux_data_manager_->CopyLengthInfoOnDepthAsync(&last_page_len_on_depths_host_[d],
                                                          &sliding_window_offset_on_depths_host_[d],
                                                          &sink_size_on_depths_host_[d], d);""",
        f"""        layer_sliding_window_length_info_on_depths_view_[d] =
            aux_data_manager_->CopyLengthInfoOnDepthAsync(&last_page_len_on_depths_host_[d],
                                                          &sliding_window_offset_on_depths_host_[d],
                                                          &sink_size_on_depths_host_[d], {_SLOT});""",
    ),
    SourcePatch(
        "window k rope offsets into its own slot",
        _KV,
        "&k_rope_pos_offset_sliding_window_on_depths_host_[d], d);",
        f"&k_rope_pos_offset_sliding_window_on_depths_host_[d], {_SLOT});",
    ),
)


_WASM_RT = "web/emcc/wasm_runtime.cc"
_DEVICE_API = "src/runtime/device_api.cc"

THREAD_PATCHES: tuple[SourcePatch, ...] = (
    SourcePatch(
        "serial parallel launch out (threads/hearth_threads.cc defines it)",
        _WASM_RT,
        """int TVMBackendParallelLaunch(FTVMParallelLambda flambda, void* cdata, int num_task) {
  TVMParallelGroupEnv env;
  env.num_task = 1;
  flambda(0, &env, cdata);
  return 0;
}

int TVMBackendParallelBarrier(int task_id, TVMParallelGroupEnv* penv) { return 0; }""",
        "// hearth: TVMBackendParallelLaunch and TVMBackendParallelBarrier are in hearth_threads.cc.",
    ),
    SourcePatch(
        "workspace alloc renamed (hearth_threads.cc locks around it)",
        _DEVICE_API,
        "void* TVMBackendAllocWorkspace(int device_type, int device_id, uint64_t size, int dtype_code_hint,",
        'extern "C" void* HearthUnlockedAllocWorkspace(int device_type, int device_id, uint64_t size, '
        "int dtype_code_hint,",
    ),
    SourcePatch(
        "workspace free renamed (hearth_threads.cc locks around it)",
        _DEVICE_API,
        "int TVMBackendFreeWorkspace(int device_type, int device_id, void* ptr) {",
        'extern "C" int HearthUnlockedFreeWorkspace(int device_type, int device_id, void* ptr) {',
    ),
)


class SourcePatchError(RuntimeError):
    """A runtime source no longer contains the text a patch replaces."""


def patch_key(patches: tuple[SourcePatch, ...] = PATCHES) -> bytes:
    """Everything the patched sources depend on, for the runtime cache key."""
    return "\0".join(f"{p.path}\0{p.old}\0{p.new}" for p in patches).encode()


def apply_patches(tvm_home: Path, *, threads: bool = False) -> None:
    for p in PATCHES + (THREAD_PATCHES if threads else ()):
        path = tvm_home / p.path
        text = path.read_text()
        if text.count(p.old) != 1:
            raise SourcePatchError(
                f"runtime source patch {p.name!r}: {p.path} contains the text to replace "
                f"{text.count(p.old)} times (expected once); the apache-tvm wheel changed. Check "
                "whether it fixes the bug (hearth/runtime/source_patches.py says which) and update the patch."
            )
        path.write_text(text.replace(p.old, p.new))
