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

2. fused KV append (issue 17): on a launch-bound GPU every kernel launch costs ~10 us of host and
   ~10 us of GPU time whatever its work, and AttentionWithFusedQKV launches two per layer before
   attention: split q/k/v + RoPE (`f_split_rotary_`), then the k/v append into the pages
   (`f_transpose_append_mha_`). The patch passes the split kernel the layer's pages, the append
   position map and a flag `append` (1 when the cache appends before attention, i.e. decode
   steps; 0 otherwise, when upstream appends after attention and still does), and launches the
   separate append only when the split kernel did not do it. So every module linked with this
   runtime must carry the 9-argument kernel as its split kernel (symbol `fused_rope`): hearth/models/
   split_rotary_append.py, swapped in by `DecoderForCausalLM.replace_kernels` for wasm-runtime
   targets (a 6-argument kernel fails its argument-count check at the first attention, loudly).
   The LongRoPE branch (rope ext factors) is upstream's, unfused. Native targets use the wheel's
   libtvm, unpatched, with upstream's kernels.

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
    SourcePatch(
        "fused KV append: split + RoPE kernel also appends k/v to the pages",
        _KV,
        """    if (!rope_ext_factors_.has_value()) {
      f_split_rotary_(qkv_data_view, q_rope_position_map_view_, q_data, k_data, v_data,
                      static_cast<int64_t>(rope_mode_ == RoPEMode::kNormal));
    } else {
      f_split_rotary_(qkv_data_view, q_rope_position_map_view_, q_data, k_data, v_data,
                      rope_ext_factors_.value());
    }

    // Part 3. Append k/v data to kv-cache if flag "append_before_attn" is set.
    TVM_FFI_ICHECK(f_transpose_append_mha_.has_value());
    if (append_before_attn_) {""",
        """    // hearth: one launch instead of two; the split kernel (models/split_rotary_append.py)
    // appends k/v to the pages itself when the cache appends before attention.
    bool hearth_appended = false;
    if (!rope_ext_factors_.has_value()) {
      hearth_appended = append_before_attn_;
      f_split_rotary_(qkv_data_view, q_rope_position_map_view_, q_data, k_data, v_data,
                      static_cast<int64_t>(rope_mode_ == RoPEMode::kNormal),
                      pages_[local_layer_id], append_position_map_view_,
                      static_cast<int64_t>(hearth_appended));
    } else {
      f_split_rotary_(qkv_data_view, q_rope_position_map_view_, q_data, k_data, v_data,
                      rope_ext_factors_.value());
    }

    // Part 3. Append k/v data to kv-cache if flag "append_before_attn" is set.
    TVM_FFI_ICHECK(f_transpose_append_mha_.has_value());
    if (append_before_attn_ && !hearth_appended) {""",
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
