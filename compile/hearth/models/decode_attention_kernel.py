"""A WebGPU-shaped decode attention kernel under upstream's `batch_decode_paged_kv` signature (issue 17).

TVM 0.27's GPU decode kernel (relax/frontend/nn/llm/_decode_kernels.py, `_attention_decode`) launches one
workgroup per (sequence, kv head) and spreads each q.k dot product over D/4 lanes, reduced with
`tvm_thread_allreduce` once per KV row. On WebGPU without subgroups every such reduction is a
workgroup-memory tree with a barrier per level, so a Qwen2.5-0.5B decode step (2 kv heads) ran 2
workgroups doing 4 barriers per cached token: 29 us per launch on an H100 (issue 17's kernel table).

This kernel instead:
- runs one workgroup per (sequence, query head): B * H_qo workgroups (14 for Qwen2.5-0.5B at B=1);
- gives each thread whole KV rows: a chunk of 256 rows per iteration, each thread the full
  q.k dot product of its row against q held (pre-scaled, f32) in workgroup memory;
- does ONE workgroup reduction per chunk, of the pair (max, sum of exp2) with the online-softmax
  combiner, then folds the chunk into the running state (online softmax over chunks, so workgroup
  memory stays bounded for any context length);
- accumulates P.V with the threads split by (row group, dim): coalesced V reads, one final
  reduction over row groups through workgroup memory.
The reduction is a `tvm_thread_allreduce`, so a target with `supports_subgroups` lowers it to
subgroup shuffles. Semantics are upstream's: RoPE inline on q and k when rotary_mode == 1 (upstream's
`_rope`), scores in log2 units, `lse = m + log2(d)`, output 0 and lse -5e4 for an empty sequence,
f32 accumulation for f16 q/k/v. Used for WebGPU targets only (`swap_decode_attention`); native builds
keep upstream's.
"""

from __future__ import annotations

import math
from typing import Any

import tvm
from tvm import tirx
from tvm.relax.frontend.nn.llm._kernel_common import (
    _declare_length_info,
    _get_kv_chunk_len,
    _get_seq_offset,
    _rope,
    check_thread_limits,
    get_max_num_threads_per_block,
)
from tvm.script import tirx as T

DECODE_SYMBOL = "batch_decode_paged_kv"
SLIDING_DECODE_SYMBOL = "batch_decode_paged_kv_sliding_window"
#: Threads per workgroup = KV rows per chunk: WebGPU's portable maximum, so the benchmarks' 128-256 token
#: contexts take one chunk (one reduction), and P.V gets 256 / head_dim row groups.
DEFAULT_THREADS = 256
#: Upstream's "minus infinity" for scores (masked rows, empty sequences): finite, so exp2 of
#: differences never meets inf - inf.
NEG = -5e4
_WORKGROUP_STORAGE_LIMIT = 16384  # bytes, WebGPU's portable maxComputeWorkgroupStorageSize


def attention_decode(
    num_kv_heads: int,
    num_qo_heads: int,
    head_dim: int,
    qkv_dtype: str,
    sliding_window: bool,
    rope_scaling: dict[str, Any],
    target: tvm.target.Target,
    page_size: int = 16,
    threads: int = DEFAULT_THREADS,
) -> tirx.PrimFunc:
    """The kernel for one cache shape; arguments as upstream's `_attention_decode`'s (plus `threads`)."""
    H_qo, H_kv, D = num_qo_heads, num_kv_heads, head_dim
    if H_qo % H_kv:
        raise ValueError(f"attention_decode: {H_qo} query heads are not a multiple of {H_kv} kv heads")
    GROUP = H_qo // H_kv
    threads = min(threads, get_max_num_threads_per_block(target))
    # Subgroup shuffles for the chunk reduction where TVM 0.27 emits them: within one subgroup, or over
    # several when every workgroup fits warp_size subgroups (max threads <= warp^2: 32-wide, not 8-wide).
    WARP = int(target.attrs.get("thread_warp_size", 1)) if target.attrs.get("supports_subgroups", False) else 1
    SHUFFLE = WARP > 1 and (
        threads <= WARP or (threads % WARP == 0 and get_max_num_threads_per_block(target) <= WARP * WARP)
    )
    LEVELS = threads.bit_length() - 1
    if threads & (threads - 1) or D & (D - 1):
        raise ValueError(f"attention_decode: threads ({threads}) and head_dim ({D}) must be powers of two")
    check_thread_limits(target, bdx=threads, bdy=1, bdz=1, gdz=1)
    if D < 16 or threads < 4:
        raise ValueError(f"attention_decode: head_dim {D} must be at least 16, threads ({threads}) at least 4")
    VEC = max(4, D // threads)  # dims per thread in P.V (one contiguous run of V per thread and row)
    DL = D // VEC  # dim lanes of the P.V split
    RG = threads // DL  # row groups of the P.V split: thread (rg, dl) takes rows rg, rg + RG, ...
    UNROLL = 4  # rows per P.V step whose loads are in flight together (DL >= 4 rows per group per chunk)
    QU = min(16, D // 2)  # q.k elements per unrolled step (two steps at least: one trips TVM 0.27's CSE)
    QD = (D + threads - 1) // threads  # q / output elements per thread
    storage = 4 * (D + 3 * threads + RG * D + 2 * threads)  # q, p + page + offset, O partials, reduction
    if storage > _WORKGROUP_STORAGE_LIMIT:
        raise ValueError(
            f"attention_decode: {storage} bytes of workgroup memory for head_dim {D}, over WebGPU's 16 KiB"
        )
    log2e = math.log2(math.exp(1))
    symbol = SLIDING_DECODE_SYMBOL if sliding_window else DECODE_SYMBOL

    @T.prim_func(s_tir=True)
    def batch_decode_paged_kv(
        Q_handle: T.handle,
        pages_handle: T.handle,
        page_table_indptr_handle: T.handle,
        page_table_values_handle: T.handle,
        var_length_info: T.handle,  # [b], or [3, b] with a sliding window
        k_rope_pos_offset_handle: T.handle,
        q_rope_position_handle: T.handle,
        output_handle: T.handle,
        lse_handle: T.handle,
        rotary_mode: T.int32,
        rope_scale: T.float32,
        rope_theta: T.float32,
        sm_scale: T.float32,
    ):
        T.func_attr({"tirx.is_scheduled": True, "global_symbol": symbol})
        B = T.int32()
        nnz_pages = T.int32()
        max_num_pages = T.int32()
        pages_elem_offset = T.int64()
        page_indptr_elem_offset = T.int32()
        page_values_elem_offset = T.int32()
        k_rope_pos_offset_elem_offset = T.int32()
        q_rope_position_elem_offset = T.int32()
        length_info_elem_offset = T.int32()

        Q = T.match_buffer(Q_handle, (B, H_qo, D), qkv_dtype)
        pages = T.match_buffer(
            pages_handle, (max_num_pages, 2, H_kv, page_size, D), qkv_dtype, elem_offset=pages_elem_offset
        )
        page_table_indptr = T.match_buffer(
            page_table_indptr_handle, (B + 1,), "int32", elem_offset=page_indptr_elem_offset
        )
        page_table_values = T.match_buffer(
            page_table_values_handle, (nnz_pages,), "int32", elem_offset=page_values_elem_offset
        )
        k_rope_pos_offset = T.match_buffer(
            k_rope_pos_offset_handle, (B,), "int32", elem_offset=k_rope_pos_offset_elem_offset
        )
        q_rope_position = T.match_buffer(q_rope_position_handle, (B,), "int32", elem_offset=q_rope_position_elem_offset)
        output = T.match_buffer(output_handle, (B, H_qo, D), qkv_dtype)
        lse = T.match_buffer(lse_handle, (B, H_qo), "float32")
        length_info = _declare_length_info(var_length_info, B, sliding_window, length_info_elem_offset)

        for h in T.thread_binding(H_qo, thread="blockIdx.x"):
            for b in T.thread_binding(B, thread="blockIdx.y"):
                for tx in T.thread_binding(threads, thread="threadIdx.x"):
                    with T.sblock("attn"):
                        q_smem = T.sblock_alloc_buffer((D,), "float32", scope="shared")
                        p_smem = T.sblock_alloc_buffer((threads,), "float32", scope="shared")
                        page_smem = T.sblock_alloc_buffer((threads,), "int32", scope="shared")
                        offset_smem = T.sblock_alloc_buffer((threads,), "int32", scope="shared")
                        o_smem = T.sblock_alloc_buffer((RG, D), "float32", scope="shared")
                        kv_len = T.sblock_alloc_buffer((1,), "int32", scope="local")
                        s = T.sblock_alloc_buffer((1,), "float32", scope="local")
                        one = T.sblock_alloc_buffer((1,), "float32", scope="local")
                        chunk_m = T.sblock_alloc_buffer((1,), "float32", scope="local")
                        chunk_d = T.sblock_alloc_buffer((1,), "float32", scope="local")
                        st_m = T.sblock_alloc_buffer((1,), "float32", scope="local")
                        st_d = T.sblock_alloc_buffer((1,), "float32", scope="local")
                        new_m = T.sblock_alloc_buffer((1,), "float32", scope="local")
                        o_scale = T.sblock_alloc_buffer((1,), "float32", scope="local")
                        o_local = T.sblock_alloc_buffer((VEC,), "float32", scope="local")
                        o_sum = T.sblock_alloc_buffer((1,), "float32", scope="local")
                        red_m = T.sblock_alloc_buffer((threads,), "float32", scope="shared")
                        red_d = T.sblock_alloc_buffer((threads,), "float32", scope="shared")

                        h_kv: T.let[T.int32] = h // GROUP
                        rg: T.let[T.int32] = tx // DL
                        dl: T.let[T.int32] = tx % DL
                        page_begin: T.let[T.int32] = page_table_indptr[b]
                        page_end: T.let[T.int32] = page_table_indptr[b + 1]
                        kv_len[0] = T.if_then_else(
                            page_begin != page_end,
                            _get_kv_chunk_len(page_end - page_begin, page_size, b, length_info, sliding_window),
                            0,
                        )
                        # q, RoPE'd as upstream's (rounded to qkv_dtype), in f32 pre-scaled to log2 units
                        for i in T.serial(QD):
                            if i * threads + tx < D:
                                q_smem[i * threads + tx] = (
                                    T.cast(
                                        T.if_then_else(
                                            rotary_mode == 1,
                                            _rope(
                                                Q,
                                                q_rope_position[b],
                                                D,
                                                rope_theta,
                                                rope_scale,
                                                (b, h, i * threads + tx),
                                                qkv_dtype,
                                                rope_scaling,
                                            ),
                                            Q[b, h, i * threads + tx],
                                        ),
                                        "float32",
                                    )
                                    * sm_scale
                                    * log2e
                                )
                        st_m[0] = NEG
                        st_d[0] = 1.0
                        for j in T.unroll(VEC):
                            o_local[j] = 0.0
                        T.tvm_storage_sync("shared")

                        for chunk in T.serial(T.ceildiv(kv_len[0], threads)):
                            # scores: one whole row per thread. A row past the end gets score -5e4, p = 0 and
                            # the sequence's first row as its page slot, so P.V reads it without a branch.
                            s[0] = NEG
                            page_smem[tx] = page_table_values[page_begin]
                            offset_smem[tx] = 0
                            if chunk * threads + tx < kv_len[0]:
                                seq_offset: T.let[T.int32] = _get_seq_offset(
                                    chunk * threads + tx, b, length_info, sliding_window
                                )
                                page_no: T.let[T.int32] = page_table_values[
                                    page_begin + T.floordiv(seq_offset, page_size)
                                ]
                                page_offset: T.let[T.int32] = T.floormod(seq_offset, page_size)
                                page_smem[tx] = page_no
                                offset_smem[tx] = page_offset
                                s[0] = 0.0
                                # the RoPE test outside the loop and the loop unrolled, so the row's loads are
                                # issued together instead of one memory latency each
                                if rotary_mode == 1:
                                    for d_o in T.serial(D // QU):
                                        for d_i in T.unroll(QU):
                                            s[0] += q_smem[d_o * QU + d_i] * T.cast(
                                                _rope(
                                                    pages,
                                                    k_rope_pos_offset[b] + chunk * threads + tx,
                                                    D,
                                                    rope_theta,
                                                    rope_scale,
                                                    (page_no, 0, h_kv, page_offset, d_o * QU + d_i),
                                                    qkv_dtype,
                                                    rope_scaling,
                                                ),
                                                "float32",
                                            )
                                else:
                                    for d_o in T.serial(D // QU):
                                        for d_i in T.unroll(QU):
                                            s[0] += q_smem[d_o * QU + d_i] * T.cast(
                                                pages[page_no, 0, h_kv, page_offset, d_o * QU + d_i], "float32"
                                            )
                            if SHUFFLE:
                                # two single-value allreduces, which TVM lowers to subgroup shuffles
                                with T.sblock("chunk_max"):
                                    T.reads(s[0])
                                    T.writes(chunk_m[0])
                                    T.attr(
                                        T.comm_reducer(lambda x0, y0: T.max(x0, y0), [T.float32(NEG)]),
                                        "reduce_scope",
                                        T.int32(0),
                                    )
                                    T.tvm_thread_allreduce(T.uint32(1), s[0], True, chunk_m[0], tx, dtype="void")
                                one[0] = T.exp2(s[0] - chunk_m[0])
                                with T.sblock("chunk_sum"):
                                    T.reads(one[0])
                                    T.writes(chunk_d[0])
                                    T.attr(
                                        T.comm_reducer(lambda x0, y0: x0 + y0, [T.float32(0)]),
                                        "reduce_scope",
                                        T.int32(0),
                                    )
                                    T.tvm_thread_allreduce(T.uint32(1), one[0], True, chunk_d[0], tx, dtype="void")
                            elif WARP == 1:
                                one[0] = 1.0
                                # (sum exp2, max) of the chunk in ONE workgroup-memory tree, a barrier per level.
                                # The sum comes first: TVM 0.27's lowering updates a multi-value reducer's slots
                                # in place one after the other, so a slot after the max would read the new max.
                                with T.sblock("chunk_softmax"):
                                    T.reads(s[0], one[0])
                                    T.writes(chunk_m[0], chunk_d[0])
                                    T.attr(
                                        T.comm_reducer(
                                            lambda d0, m0, d1, m1: (
                                                d0 * T.exp2(m0 - T.max(m0, m1)) + d1 * T.exp2(m1 - T.max(m0, m1)),
                                                T.max(m0, m1),
                                            ),
                                            [T.float32(0), T.float32(NEG)],
                                        ),
                                        "reduce_scope",
                                        T.int32(0),
                                    )
                                    T.tvm_thread_allreduce(
                                        T.uint32(2), one[0], s[0], True, chunk_d[0], chunk_m[0], tx, dtype="void"
                                    )
                            else:
                                # A subgroup target TVM cannot shuffle this reduction on (8-wide subgroups, more
                                # than 8 threads): its allreduce lowering would put barriers under non-uniform
                                # branches (invalid WGSL), so the tree is written out, staged through registers.
                                red_d[tx] = 1.0
                                red_m[tx] = s[0]
                                T.tvm_storage_sync("shared")
                                for level in T.unroll(LEVELS):
                                    if tx < T.shift_right(threads, level + 1):
                                        new_m[0] = T.max(red_m[tx], red_m[tx + T.shift_right(threads, level + 1)])
                                        one[0] = red_d[tx] * T.exp2(red_m[tx] - new_m[0]) + red_d[
                                            tx + T.shift_right(threads, level + 1)
                                        ] * T.exp2(red_m[tx + T.shift_right(threads, level + 1)] - new_m[0])
                                    T.tvm_storage_sync("shared")
                                    if tx < T.shift_right(threads, level + 1):
                                        red_m[tx] = new_m[0]
                                        red_d[tx] = one[0]
                                    T.tvm_storage_sync("shared")
                                chunk_d[0] = red_d[0]
                                chunk_m[0] = red_m[0]
                            new_m[0] = T.max(st_m[0], chunk_m[0])
                            o_scale[0] = T.exp2(st_m[0] - new_m[0])
                            st_d[0] = st_d[0] * o_scale[0] + chunk_d[0] * T.exp2(chunk_m[0] - new_m[0])
                            st_m[0] = new_m[0]
                            p_smem[tx] = T.if_then_else(
                                chunk * threads + tx < kv_len[0], T.exp2(s[0] - new_m[0]), T.float32(0)
                            )
                            for j in T.unroll(VEC):
                                o_local[j] *= o_scale[0]
                            T.tvm_storage_sync("shared")
                            # P.V: thread (rg, dl) takes rows rg, rg + RG, ... of the chunk (UNROLL at a time; rows
                            # past the end weigh 0) and dims dl * VEC .. dl * VEC + VEC - 1
                            for r_o in T.serial(
                                T.ceildiv(T.ceildiv(T.min(threads, kv_len[0] - chunk * threads), RG), UNROLL)
                            ):
                                for r_i in T.unroll(UNROLL):
                                    for j in T.unroll(VEC):
                                        o_local[j] += p_smem[(r_o * UNROLL + r_i) * RG + rg] * T.cast(
                                            pages[
                                                page_smem[(r_o * UNROLL + r_i) * RG + rg],
                                                1,
                                                h_kv,
                                                offset_smem[(r_o * UNROLL + r_i) * RG + rg],
                                                dl * VEC + j,
                                            ],
                                            "float32",
                                        )
                            # the next chunk rewrites p/page/offset
                            T.tvm_storage_sync("shared")

                        for j in T.unroll(VEC):
                            o_smem[rg, dl * VEC + j] = o_local[j]
                        T.tvm_storage_sync("shared")
                        for i in T.serial(QD):
                            if i * threads + tx < D:
                                o_sum[0] = 0.0
                                for g in T.serial(RG):
                                    o_sum[0] += o_smem[g, i * threads + tx]
                                output[b, h, i * threads + tx] = T.cast(o_sum[0] / st_d[0], qkv_dtype)
                        if tx == 0:
                            lse[b, h] = st_m[0] + T.log2(st_d[0])

    return batch_decode_paged_kv


def is_upstream_decode(func: tirx.PrimFunc) -> bool:
    """Upstream's GPU decode kernel: 13 parameters (9 buffers, rotary_mode, rope scale/theta, sm_scale)
    and not already Hearth's (whose workgroups are bound to the query heads on blockIdx.x)."""
    return len(func.params) == 13 and not func.attrs.get("hearth.decode_attention", False)


def swap_decode_attention(
    mod: tvm.IRModule,
    target: tvm.target.Target,
    num_kv_heads: int,
    num_qo_heads: int,
    head_dim: int,
    qkv_dtype: str,
    rope_scaling: dict[str, Any],
) -> tvm.IRModule:
    """For WebGPU targets, Hearth's kernel in place of upstream's `batch_decode_paged_kv` (the sliding-window
    variant included), under the same global symbol; other targets, head dims that are not a power of two up
    to 256, and modules without it are returned as-is."""
    if target.kind.name != "webgpu" or head_dim & (head_dim - 1) or head_dim > 256:
        return mod  # native targets; head dims the kernel does not split evenly (Phi-3's 96) keep upstream's
    for gv in mod.get_global_vars():
        func = mod[gv]
        if not isinstance(func, tirx.PrimFunc):
            continue
        symbol = func.attrs.get("global_symbol", None) if func.attrs else None
        if symbol not in (DECODE_SYMBOL, SLIDING_DECODE_SYMBOL):
            continue
        if not is_upstream_decode(func):
            raise RuntimeError(
                f"{symbol} in the module is not upstream's 13-parameter decode kernel (TVM's kv_cache.py changed?); "
                "hearth/models/decode_attention_kernel.py replaces that one"
            )
        ours = attention_decode(
            num_kv_heads, num_qo_heads, head_dim, qkv_dtype, symbol == SLIDING_DECODE_SYMBOL, rope_scaling, target
        )
        mod[gv] = ours.with_attr("global_symbol", symbol).with_attr("hearth.decode_attention", True)
    return mod
