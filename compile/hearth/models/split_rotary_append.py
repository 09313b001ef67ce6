"""The KV cache's split q/k/v + RoPE kernel with the k/v append into the pages fused in, for
every target linked with Hearth's wasm runtime (webgpu, wasm-cpu, wasm-cpu-mt).

Why: WebGPU decode is launch-bound (docs/benchmarks.md, "On the H100": ~10 us of host and
~10 us of GPU time per launch, whatever its work). Per layer, TVM 0.27's PagedKVCache launched
`tir_split_rotary` (split the fused qkv, rotate q and k) and then `kv_cache_transpose_append`
(copy k and v into the layer's pages), two tiny kernels over the same k/v elements. The runtime
source patch "fused KV append" (hearth/runtime/source_patches.py) calls `tir_split_rotary` with
three more arguments (the layer's pages, the append position map, an `append` flag) and skips the
separate append when the flag is 1: one launch per layer less in every decode step.

The rotation is upstream's `llama_rope_with_position_map` (relax/frontend/nn/llm/
position_embedding.py), expression for expression (`_rope` below is its closure, using its
`switch_rope_freq_func`), so q, k and v are bit-identical to upstream's; the page writes are
`_kv_cache_transpose_append`'s (page size 16, position -1 = not appended: attention sinks). k and
v are still written: prefill's ragged attention reads them. `append` is 0 when the cache appends
after attention (prefill chunks, sliding-window caches), which the runtime then still does with
upstream's separate kernel. GPU targets get dlight's Fallback schedule, spelled out (fuse the
grid, split by the target's max threads per block), the one upstream's kernel gets; CPU ones
are left to the CPU pipeline, like upstream's.

`DecoderForCausalLM.replace_kernels` swaps it in under upstream's symbol (`fused_rope`). Native
targets (llvm, cuda) run the wheel's libtvm, whose runtime passes six arguments: they keep
upstream's kernel. LongRoPE (rotation with extension factors) is not fused: the patched runtime
keeps upstream's call there, so `split_rotary_append` refuses it.
"""

from __future__ import annotations

from typing import Any

import tvm
from tvm import s_tir, tirx
from tvm.relax.frontend.nn.llm.position_embedding import switch_rope_freq_func
from tvm.s_tir.dlight import base as dlight_base
from tvm.script import tirx as T
from tvm.tirx.buffer import is_buffer_var

# TIRPagedKVCache adds upstream's kernel as "tir_split_rotary", but the block builder keeps the PrimFunc's
# own global symbol, `fused_rope` (what launch counts show as fused_rope_kernel).
SPLIT_ROTARY_SYMBOL = "fused_rope"
# TIRPagedKVCache's append kernel is built with `_kv_cache_transpose_append`'s default page size.
PAGE_SIZE = 16


def links_wasm_runtime(target: tvm.target.Target) -> bool:
    """Whether `target`'s library is linked with Hearth's (patched) wasm runtime: WebGPU (always
    a wasm32 host) or a CPU target whose code is wasm32. Native llvm has kind "llvm" too, so the
    triple decides, not the kind."""
    if target.kind.name == "webgpu":
        return True
    return target.kind.name == "llvm" and str(target.attrs.get("mtriple", "")).startswith("wasm32")


def is_upstream_split_rotary(func: tirx.PrimFunc) -> bool:
    """Upstream's 6-argument kernel (qkv, position map, q, k, v, apply_rope), the one the runtime patch
    replaces; its LongRoPE variant takes an ext-factor buffer last instead."""
    return len(func.params) == 6 and not is_buffer_var(func.params[5])


def split_rotary_append(
    theta: float,
    scale: float,
    head_dim: int,
    num_q_heads: int,
    num_kv_heads: int,
    dtype: str,
    rope_scaling: dict[str, Any],
    rotary_dim: int | None,
    target: tvm.target.Target,
) -> tirx.PrimFunc:
    """The fused kernel for one cache shape; arguments as `llama_rope_with_position_map`'s, plus
    the target (GPU targets get the thread binding)."""
    if rope_scaling.get("rope_type") == "longrope":
        raise ValueError(
            "split_rotary_append: LongRoPE rotates with extension factors, which the fused KV append "
            "does not handle; the wasm runtime calls upstream's kernel for it. Build without swapping it in."
        )
    fused_heads = num_q_heads + num_kv_heads * 2
    if rotary_dim is None:
        rotary_dim = head_dim
    scale_c = tirx.const(scale, "float32")
    page_size = PAGE_SIZE

    def _rope(x: T.Buffer, s: tirx.Var, h: tirx.Var, d: tirx.Var, pos: tirx.Var) -> tirx.PrimExpr:
        # upstream's closure (without ext factors), so the rotated values are bit-identical
        cos_freq, sin_freq, var_map = switch_rope_freq_func(rope_scaling)(
            pos * scale_c, d, rotary_dim, theta, "float32"
        )
        cos = cos_freq * x[s, h, d].astype("float32")
        if "rope_type" in rope_scaling and rope_scaling["rope_type"] == "gptj":
            sin = sin_freq * tirx.if_then_else(d % 2 == 0, -x[s, h, d + 1], x[s, h, d - 1]).astype("float32")
        else:
            sin = sin_freq * tirx.if_then_else(
                d < rotary_dim // 2, -x[s, h, d + rotary_dim // 2], x[s, h, d - rotary_dim // 2]
            ).astype("float32")
        expr = (cos + sin).astype(dtype)
        for var, value in var_map.items():
            expr = tirx.Let(var, value, expr)
        return expr

    @T.prim_func(s_tir=True)
    def fused_rope_append(  # noqa: PLR0913 - the runtime's calling convention
        var_qkv: T.handle,
        var_position_map: T.handle,
        var_q: T.handle,
        var_k: T.handle,
        var_v: T.handle,
        apply_rope: T.int64,
        var_pages: T.handle,
        var_append_position_map: T.handle,
        append: T.int64,
    ):
        T.func_attr({"op_pattern": 8, "tirx.noalias": True})
        seq_len = T.int32()
        position_map_elem_offset = T.int32()
        append_map_elem_offset = T.int32()
        num_pages = T.int64()
        pages_elem_offset = T.int64()
        qkv = T.match_buffer(var_qkv, (seq_len, fused_heads, head_dim), dtype)
        q = T.match_buffer(var_q, (seq_len, num_q_heads, head_dim), dtype)
        k = T.match_buffer(var_k, (seq_len, num_kv_heads, head_dim), dtype)
        v = T.match_buffer(var_v, (seq_len, num_kv_heads, head_dim), dtype)
        position_map = T.match_buffer(var_position_map, (seq_len,), "int32", elem_offset=position_map_elem_offset)
        pages = T.match_buffer(
            var_pages, (num_pages, 2, num_kv_heads, page_size, head_dim), dtype, elem_offset=pages_elem_offset
        )
        append_map = T.match_buffer(var_append_position_map, (seq_len,), "int32", elem_offset=append_map_elem_offset)
        for iters in T.grid(seq_len, fused_heads, head_dim):
            with T.sblock("llama_fused_rope"):
                s, h, d = T.axis.remap("SSS", iters)
                # declared: the inferred regions would name k_val, and the page index is data-dependent
                T.reads(position_map[s], append_map[s], qkv[s, 0:fused_heads, 0:head_dim])
                T.writes(
                    q[s, 0:num_q_heads, 0:head_dim],
                    k[s, 0:num_kv_heads, 0:head_dim],
                    v[s, 0:num_kv_heads, 0:head_dim],
                    pages[0:num_pages, 0:2, 0:num_kv_heads, 0:page_size, 0:head_dim],
                )
                if h < num_q_heads:
                    q[s, h, d] = T.if_then_else(
                        apply_rope > 0 and d < rotary_dim,
                        _rope(qkv, s, h, d, position_map[s]),
                        qkv[s, h, d],
                    )
                elif h < num_q_heads + num_kv_heads:
                    # bound once: the page gets the very value k gets (reading k back would make
                    # the block read what it writes, which the GPU schedule refuses)
                    k_val = T.if_then_else(
                        apply_rope > 0 and d < rotary_dim,
                        _rope(qkv, s, h, d, position_map[s]),
                        qkv[s, h, d],
                    )
                    k[s, h - num_q_heads, d] = k_val
                    if append > 0 and append_map[s] != -1:
                        pages[
                            T.floordiv(append_map[s], page_size),
                            0,
                            h - num_q_heads,
                            T.floormod(append_map[s], page_size),
                            d,
                        ] = k_val
                else:
                    v[s, h - (num_q_heads + num_kv_heads), d] = qkv[s, h, d]
                    if append > 0 and append_map[s] != -1:
                        pages[
                            T.floordiv(append_map[s], page_size),
                            1,
                            h - (num_q_heads + num_kv_heads),
                            T.floormod(append_map[s], page_size),
                            d,
                        ] = qkv[s, h, d]

    if target.kind.name == "llvm":
        return fused_rope_append
    return _gpu_schedule(fused_rope_append, target)


def _gpu_schedule(func: tirx.PrimFunc, target: tvm.target.Target) -> tirx.PrimFunc:
    """dlight's Fallback rule on the one spatial block (what upstream's kernel gets)."""
    sch = s_tir.Schedule(func)
    block = sch.get_sblock("llama_fused_rope")
    bx, tx = sch.split(sch.fuse(*sch.get_loops(block)), factors=[None, dlight_base.max_threads_per_block(target)])
    sch.bind(bx, "blockIdx.x")
    sch.bind(tx, "threadIdx.x")
    return sch.mod["main"].with_attr("tirx.is_scheduled", True)
