"""TVM 0.27's GPU attention-state merge kernel (relax/frontend/nn/llm/_decode_kernels.py,
`_merge_state_inplace`), copied with one fix, for every GPU build (WebGPU included).

The KV cache calls it once per layer whenever a prefill chunk meets cached tokens (the second
chunk of a long prompt, a chat turn after the first): it merges the chunk's self-attention output
and log-sum-exp `S` with the cross-attention over the cached pages, IN PLACE. Every thread of a
head reads `S[n, h]` and then writes the merged value back to the same element, with no barrier
in between. The `head_dim / 4` threads of one head only all read before any of them writes while
they run in lockstep, i.e. within one subgroup. On lavapipe (256-bit llvmpipe: 8-lane subgroups)
head_dim 16/32 (4/8 threads) were exact and head_dim 64/128/256 wrong after a chunked prefill:
measured, WebGPU logits off by 0.3-4 (random llama and gemma3 configs; SmolLM2-135M: 22.7), exact
for single-chunk prompts and all-decode runs. With 32-wide warps it would stay hidden up to
head_dim 128 and race at 256 (not measured). The fix: all threads read, a workgroup barrier, then
one thread per head writes `S`. Fixed lines are marked "hearth fix"; everything else is upstream's code.

`DecoderForCausalLM.replace_kernels` swaps it in under the kernel's own symbol.
"""

# ruff: noqa
# fmt: off
# (upstream's formatting, so a diff against the wheel's file shows only the fixes)

from tvm.script import tirx as T
from tvm.target import Target

from tvm.relax.frontend.nn.llm._kernel_common import (
    _var,
    check_thread_limits,
    get_max_num_threads_per_block,
)

MERGE_STATE_SYMBOL = "tir_attention_merge_state"


def merge_state_inplace(num_heads, head_dim, v_dtype, target: Target, global_symbol: str | None = None):
    v_dtype_bytes = 2
    VEC_SIZE = min(max(8 // v_dtype_bytes, head_dim // 32), 4)
    bdx = head_dim // VEC_SIZE
    bdy = num_heads
    max_num_threads_per_block = get_max_num_threads_per_block(target)
    while bdx * bdy > max_num_threads_per_block and bdy > 1:
        bdy //= 2
    gdy = num_heads // bdy
    check_thread_limits(target, bdx=bdx, bdy=bdy, bdz=1, gdz=1)

    @T.prim_func(s_tir=True)
    def merge_state_inplace(
        v: T.handle,
        s: T.handle,
        v_other: T.handle,
        s_other: T.handle,
    ):
        T.func_attr({"tirx.is_scheduled": True})
        N = T.int32()
        H = T.int32()
        D = T.int32()

        V = T.match_buffer(v, (N, H, D), v_dtype)
        S = T.match_buffer(s, (N, H), "float32")
        V_other = T.match_buffer(v_other, (N, H, D), v_dtype)
        S_other = T.match_buffer(s_other, (N, H), "float32")

        for bx in T.thread_binding(N, thread="blockIdx.x"):
            for by in T.thread_binding(gdy, thread="blockIdx.y"):
                for ty in T.thread_binding(bdy, thread="threadIdx.y"):
                    for tx in T.thread_binding(bdx, thread="threadIdx.x"):
                        with T.sblock("merge"):
                            s_val = _var("float32")
                            s_other_val = _var("float32")
                            s_max = _var("float32")
                            scale = _var("float32")
                            other_scale = _var("float32")

                            v_vec = T.sblock_alloc_buffer((VEC_SIZE,), v_dtype, scope="local")
                            v_other_vec = T.sblock_alloc_buffer((VEC_SIZE,), v_dtype, scope="local")

                            s_val[0] = S[bx, ty + by * bdy]
                            s_other_val[0] = S_other[bx, ty + by * bdy]
                            s_max[0] = T.max(s_val[0], s_other_val[0])
                            s_val[0] = T.exp2(s_val[0] - s_max[0])
                            s_other_val[0] = T.exp2(s_other_val[0] - s_max[0])
                            scale[0] = s_val[0] / (s_val[0] + s_other_val[0])
                            other_scale[0] = s_other_val[0] / (s_val[0] + s_other_val[0])

                            # load v
                            for vec in T.vectorized(VEC_SIZE):
                                v_vec[vec] = V[bx, ty + by * bdy, tx * VEC_SIZE + vec]
                            # load v_other
                            for vec in T.vectorized(VEC_SIZE):
                                v_other_vec[vec] = V_other[bx, ty + by * bdy, tx * VEC_SIZE + vec]

                            # merge
                            for vec in T.serial(VEC_SIZE):
                                v_vec[vec] = v_vec[vec] * scale[0] + v_other_vec[vec] * other_scale[0]

                            # store v
                            for vec in T.vectorized(VEC_SIZE):
                                V[bx, ty + by * bdy, tx * VEC_SIZE + vec] = v_vec[vec]

                            # hearth fix: every thread of the head has read S before it is overwritten
                            T.tvm_storage_sync("shared")
                            # store s
                            if tx == 0:  # hearth fix: one writer per head
                                S[bx, ty + by * bdy] = T.log2(s_val[0] + s_other_val[0]) + s_max[0]

    func = merge_state_inplace
    if global_symbol:
        func = func.with_attr("global_symbol", global_symbol)
    return func
