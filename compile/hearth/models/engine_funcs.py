"""The logit-processing and sampling functions MLC-LLM attaches to every model library.

WebLLM's engine looks these up by name when it loads a model and refuses a library without them
("Cannot find required VM function `apply_bitmask_inplace`"), even for greedy decoding:

    apply_logit_bias_inplace(logits[b, v] f32, pos2seq_id[n] i32, token_ids[n] i32, bias[n] f32)
    apply_penalty_inplace(logits[b, v] f32, seq_ids[s] i32, pos2seq_id[n] i32, token_ids[n] i32,
                          token_cnt[n] i32, penalties[s, 3] f32)   (presence, frequency, repetition)
    apply_bitmask_inplace(logits[b, v] f32, seq_ids[s] i32, bitmask[b, ceil(v / 32)] i32)
    argsort_probs(probs[b, v] f32)                      -> (sorted probs, sorted indices i32)
    sample_with_top_p(sorted_probs, sorted_indices, uniform_samples[k] f32, sample_indices[k] i32,
                      top_p[b] f32)                     -> token ids [k] i32

The logit processors are MLC-LLM's (`compiler_pass/attach_logit_processor.py`, Apache-2.0), GPU
variants only: WebLLM runs WebGPU libraries alone. The two sampler functions keep MLC's signatures
and semantics (`attach_sampler.py`) with kernels of their own: MLC's build on TVM's GPU sort and
cumsum, and with TVM 0.27 the sort does not compile for WebGPU (blockIdx.z) and the cumsum gave
wrong prefix sums on Dawn/lavapipe. Hearth's own SDK calls none of them.
"""

from __future__ import annotations

import tvm
from tvm import relax, tirx
from tvm.script import tirx as T

# The bounds MLC gives the sampler's symbolic sizes (static memory planning needs them).
_SAMPLER_BOUNDS_PER_BATCH = {"batch_size": 1, "num_samples": 1, "num_positions": 6}


def attach_engine_functions(mod: tvm.IRModule, target: tvm.target.Target, max_batch_size: int) -> tvm.IRModule:
    """`mod` plus the five functions above, compiled for the GPU `target`."""
    threads = min(1024, int(target.attrs.get("max_num_threads", 256)))
    mod = mod.clone()
    mod["apply_logit_bias_inplace"] = _apply_logit_bias_inplace(threads)
    mod["apply_penalty_inplace"] = _apply_penalty_inplace(threads)
    mod["apply_bitmask_inplace"] = _apply_bitmask_inplace(threads)
    bb = relax.BlockBuilder(mod)
    names = [_attach_argsort_probs(bb).name_hint, _attach_sample_with_top_p(bb).name_hint]
    mod = bb.finalize()
    bounds = {k: v * max_batch_size for k, v in _SAMPLER_BOUNDS_PER_BATCH.items()}
    for name in names:
        mod[name] = mod[name].with_attr("tir_var_upper_bound", bounds).with_attr("tir_non_negative_var", ["vocab_size"])
    return mod


# ----------------------------------------------------------------------------------------------
# Logit processors: one GPU thread per entry, written in place.


def _apply_logit_bias_inplace(tx: int) -> tirx.PrimFunc:
    @T.prim_func(s_tir=True)
    def apply_logit_bias_inplace(
        var_logits: T.handle, var_pos2seq_id: T.handle, var_token_ids: T.handle, var_logit_bias: T.handle
    ) -> None:
        T.func_attr({"global_symbol": "apply_logit_bias_inplace", "tirx.noalias": True, "tirx.is_scheduled": True})
        batch_size = T.int32()
        vocab_size = T.int32()
        num_token = T.int32()
        logits = T.match_buffer(var_logits, (batch_size, vocab_size), "float32")
        pos2seq_id = T.match_buffer(var_pos2seq_id, (num_token,), "int32")
        token_ids = T.match_buffer(var_token_ids, (num_token,), "int32")
        logit_bias = T.match_buffer(var_logit_bias, (num_token,), "float32")
        for p0 in T.thread_binding(0, (num_token + tx - 1) // tx, "blockIdx.x"):
            for p1 in T.thread_binding(0, tx, "threadIdx.x"):
                with T.sblock("block"):
                    vp = T.axis.spatial(num_token, p0 * tx + p1)
                    T.where(p0 * tx + p1 < num_token)
                    logits[pos2seq_id[vp], token_ids[vp]] += logit_bias[vp]

    return apply_logit_bias_inplace


def _apply_penalty_inplace(tx: int) -> tirx.PrimFunc:
    @T.prim_func(s_tir=True)
    def apply_penalty_inplace(
        var_logits: T.handle,
        var_seq_ids: T.handle,
        var_pos2seq_id: T.handle,
        var_token_ids: T.handle,
        var_token_cnt: T.handle,
        var_penalties: T.handle,
    ) -> None:
        T.func_attr({"global_symbol": "apply_penalty_inplace", "tirx.noalias": True, "tirx.is_scheduled": True})
        batch_size = T.int32()
        vocab_size = T.int32()
        num_token = T.int32()
        num_seq = T.int32()
        logits = T.match_buffer(var_logits, (batch_size, vocab_size), "float32")
        seq_ids = T.match_buffer(var_seq_ids, (num_seq,), "int32")
        pos2seq_id = T.match_buffer(var_pos2seq_id, (num_token,), "int32")
        token_ids = T.match_buffer(var_token_ids, (num_token,), "int32")
        token_cnt = T.match_buffer(var_token_cnt, (num_token,), "int32")
        penalties = T.match_buffer(var_penalties, (num_seq, 3), "float32")
        for p0 in T.thread_binding(0, (num_token + tx - 1) // tx, "blockIdx.x"):
            for p1 in T.thread_binding(0, tx, "threadIdx.x"):
                with T.sblock("block"):
                    vp = T.axis.spatial(num_token, p0 * tx + p1)
                    T.where(p0 * tx + p1 < num_token)
                    # presence + count * frequency, then repetition scales away from zero
                    logits[seq_ids[pos2seq_id[vp]], token_ids[vp]] -= (
                        penalties[pos2seq_id[vp], 0] + token_cnt[vp] * penalties[pos2seq_id[vp], 1]
                    )
                    logits[seq_ids[pos2seq_id[vp]], token_ids[vp]] = T.if_then_else(
                        logits[seq_ids[pos2seq_id[vp]], token_ids[vp]] < T.float32(0),
                        logits[seq_ids[pos2seq_id[vp]], token_ids[vp]] * penalties[pos2seq_id[vp], 2],
                        logits[seq_ids[pos2seq_id[vp]], token_ids[vp]] / penalties[pos2seq_id[vp], 2],
                    )

    return apply_penalty_inplace


def _apply_bitmask_inplace(tx: int) -> tirx.PrimFunc:
    @T.prim_func(s_tir=True)
    def apply_bitmask_inplace(var_logits: T.handle, var_seq_ids: T.handle, var_bitmask: T.handle) -> None:
        T.func_attr({"global_symbol": "apply_bitmask_inplace", "tirx.noalias": True, "tirx.is_scheduled": True})
        batch_size = T.int32()
        vocab_size = T.int32()
        num_seq = T.int32()
        logits = T.match_buffer(var_logits, (batch_size, vocab_size), "float32")
        seq_ids = T.match_buffer(var_seq_ids, (num_seq,), "int32")
        bitmask = T.match_buffer(var_bitmask, (batch_size, (vocab_size + 31) // 32), "int32")
        for f0 in T.thread_binding(0, (num_seq * vocab_size + tx - 1) // tx, "blockIdx.x"):
            for f1 in T.thread_binding(0, tx, "threadIdx.x"):
                with T.sblock("block"):
                    vs = T.axis.spatial(num_seq, (f0 * tx + f1) // vocab_size)
                    vv = T.axis.spatial(vocab_size, (f0 * tx + f1) % vocab_size)
                    T.where(f0 * tx + f1 < num_seq * vocab_size)
                    logits[seq_ids[vs], vv] = T.if_then_else(
                        (bitmask[seq_ids[vs], vv // 32] >> (vv % 32)) & 1 == 1,
                        logits[seq_ids[vs], vv],
                        T.min_value("float32"),
                    )

    return apply_bitmask_inplace


# ----------------------------------------------------------------------------------------------
# Sampler (Relax functions)


@T.prim_func
def _argsort_desc(var_probs: T.handle, var_sorted: T.handle, var_indices: T.handle):
    """Each row sorted by probability, descending (ties: lower token id first), with its ids.

    A bitonic sort in global memory, one kernel launch per compare-exchange step (~log2(v)^2 / 2
    launches, 171 for v = 151936). The variant whose first step of each merge compares mirror
    images always moves the larger key to the lower index, so a row whose length is not a power
    of two sorts as if padded with -inf: a pair whose upper element is past the end is left alone.
    (MLC sorts with TVM's GPU merge sort, which launches on blockIdx.z; TVM 0.27's WebGPU codegen
    rejects that: "blockIdx.z is not supported in WebGPU".)
    """
    T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
    batch_size = T.int32()
    vocab_size = T.int32()
    probs = T.match_buffer(var_probs, (batch_size, vocab_size), "float32")
    sp = T.match_buffer(var_sorted, (batch_size, vocab_size), "float32")
    si = T.match_buffer(var_indices, (batch_size, vocab_size), "int32")
    for b in T.thread_binding((vocab_size + 255) // 256, thread="blockIdx.x"):
        for row in T.thread_binding(batch_size, thread="blockIdx.y"):
            for t in T.thread_binding(256, thread="threadIdx.x"):
                if b * 256 + t < vocab_size:
                    sp[row, b * 256 + t] = probs[row, b * 256 + t]
                    si[row, b * 256 + t] = b * 256 + t
    for stage in range(31):  # merges of blocks of 2^(stage+1), while 2^stage < vocab_size
        if (1 << stage) < vocab_size:
            for step in range(stage + 1):
                for b in T.thread_binding((vocab_size + 255) // 256, thread="blockIdx.x"):
                    for row in T.thread_binding(batch_size, thread="blockIdx.y"):
                        for t in T.thread_binding(256, thread="threadIdx.x"):
                            pair = b * 256 + t
                            half = 1 << (stage - step)
                            lo = (pair // half) * 2 * half + pair % half
                            hi = T.if_then_else(
                                step == 0, (pair // half) * 2 * half + 2 * half - 1 - pair % half, lo + half
                            )
                            if hi < vocab_size:
                                if sp[row, hi] > sp[row, lo] or (
                                    sp[row, hi] == sp[row, lo] and si[row, hi] < si[row, lo]
                                ):
                                    p = sp[row, lo]
                                    i = si[row, lo]
                                    sp[row, lo] = sp[row, hi]
                                    si[row, lo] = si[row, hi]
                                    sp[row, hi] = p
                                    si[row, hi] = i


def _attach_argsort_probs(bb: relax.BlockBuilder) -> relax.GlobalVar:
    batch_size = tirx.Var("batch_size", "int64")
    vocab_size = tirx.Var("vocab_size", "int64")
    probs = relax.Var("probs", relax.TensorType((batch_size, vocab_size), "float32"))
    with bb.function("argsort_probs", [probs]):
        with bb.dataflow():
            kernel = bb.add_func(_argsort_desc, "argsort_desc")
            out = bb.emit(
                relax.call_tir(
                    kernel,
                    [probs],
                    out_ty=[
                        relax.TensorType((batch_size, vocab_size), "float32"),
                        relax.TensorType((batch_size, vocab_size), "int32"),
                    ],
                )
            )
            output = bb.emit_output(out)
        return bb.emit_func_output(output)


@T.prim_func
def _sample_top_p(
    var_sorted: T.handle,
    var_indices: T.handle,
    var_uniform: T.handle,
    var_rows: T.handle,
    var_top_p: T.handle,
    var_out: T.handle,
):
    """MLC's top-p sampling from a sorted row (tvm.relax.frontend.nn.sample_top_p_top_k_from_sorted_prob
    without top-k): keep the shortest prefix whose mass reaches top_p, renormalise it, and pick the
    first entry whose cumulative mass, divided by the prefix's, exceeds the uniform sample.

    One workgroup of 256 threads per sample: each thread sums a contiguous chunk of the row, thread 0
    turns the 256 sums into chunk offsets, and the one chunk that crosses the threshold finds the
    entry. (MLC's version builds on TVM 0.27's WebGPU cumsum, which gave wrong prefix sums on
    Dawn/lavapipe: sampled ranks snapped to multiples of 32.)
    """
    T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
    batch_size = T.int32()
    vocab_size = T.int32()
    num_samples = T.int32()
    sorted_probs = T.match_buffer(var_sorted, (batch_size, vocab_size), "float32")
    sorted_indices = T.match_buffer(var_indices, (batch_size, vocab_size), "int32")
    uniform = T.match_buffer(var_uniform, (num_samples,), "float32")
    rows = T.match_buffer(var_rows, (num_samples,), "int32")
    top_p = T.match_buffer(var_top_p, (batch_size,), "float32")
    out = T.match_buffer(var_out, (num_samples,), "int32")
    for sample in T.thread_binding(num_samples, thread="blockIdx.x"):
        for t in T.thread_binding(256, thread="threadIdx.x"):
            # Shared arrays are written only at a thread's own slot, each followed by a barrier: TVM
            # cannot place barriers inside conditionals.
            sums = T.alloc_buffer((256,), "float32", scope="shared")  # each chunk's mass
            cuts = T.alloc_buffer((256,), "float32", scope="shared")  # prefix mass where a chunk reaches top_p, else -1
            picks = T.alloc_buffer((256,), "int32", scope="shared")  # the token a chunk picks, else -1
            acc = T.alloc_buffer(
                (4,), "float32", scope="local"
            )  # running sum, mass before the chunk, row total, kept mass
            found = T.alloc_buffer((2,), "int32", scope="local")  # done flag, result
            row = rows[sample]
            chunk = (vocab_size + 255) // 256
            acc[0] = T.float32(0)
            for k in range(chunk):
                if t * chunk + k < vocab_size:
                    acc[0] = acc[0] + sorted_probs[row, t * chunk + k]
            sums[t] = acc[0]
            T.tvm_storage_sync("shared")
            acc[1] = T.float32(0)
            acc[2] = T.float32(0)
            for c in range(256):
                if c < t:
                    acc[1] = acc[1] + sums[c]
                acc[2] = acc[2] + sums[c]
            # The kept prefix ends at the first entry whose cumulative mass reaches top_p; only one
            # chunk starts below top_p and reaches it.
            acc[3] = T.float32(-1)
            if acc[1] < top_p[row]:
                acc[0] = acc[1]
                found[0] = 0
                for k in range(chunk):
                    if found[0] == 0 and t * chunk + k < vocab_size:
                        acc[0] = acc[0] + sorted_probs[row, t * chunk + k]
                        if acc[0] >= top_p[row]:
                            acc[3] = acc[0]
                            found[0] = 1
            cuts[t] = acc[3]
            T.tvm_storage_sync("shared")
            acc[3] = acc[2]  # top_p beyond the whole row's mass keeps everything
            found[0] = 0
            for c in range(256):
                acc[0] = cuts[c]  # (shared reads may not sit in a condition)
                if found[0] == 0 and acc[0] >= T.float32(0):
                    acc[3] = acc[0]
                    found[0] = 1
            found[1] = -1
            if not (uniform[sample] < acc[1] / acc[3]):
                acc[0] = acc[1]
                found[0] = 0
                for k in range(chunk):
                    if found[0] == 0 and t * chunk + k < vocab_size:
                        acc[0] = acc[0] + sorted_probs[row, t * chunk + k]
                        if uniform[sample] < acc[0] / acc[3]:
                            found[1] = sorted_indices[row, t * chunk + k]
                            found[0] = 1
            picks[t] = found[1]
            T.tvm_storage_sync("shared")
            if t == 0:
                found[1] = sorted_indices[row, vocab_size - 1]
                found[0] = 0
                for c in range(256):
                    pick = picks[c]
                    if found[0] == 0 and pick >= 0:
                        found[1] = pick
                        found[0] = 1
                out[sample] = found[1]


def _attach_sample_with_top_p(bb: relax.BlockBuilder) -> relax.GlobalVar:
    batch_size = tirx.Var("batch_size", "int64")
    num_samples = tirx.Var("num_samples", "int64")
    vocab_size = tirx.Var("vocab_size", "int64")
    sorted_probs = relax.Var("sorted_probs", relax.TensorType((batch_size, vocab_size), "float32"))
    sorted_indices = relax.Var("sorted_indices", relax.TensorType((batch_size, vocab_size), "int32"))
    uniform_samples = relax.Var("uniform_samples", relax.TensorType((num_samples,), "float32"))
    sample_indices = relax.Var("sample_indices", relax.TensorType((num_samples,), "int32"))
    top_p = relax.Var("top_p", relax.TensorType((batch_size,), "float32"))
    args = [sorted_probs, sorted_indices, uniform_samples, sample_indices, top_p]
    with bb.function("sample_with_top_p", args):
        with bb.dataflow():
            kernel = bb.add_func(_sample_top_p, "sample_top_p")
            out = bb.emit_output(relax.call_tir(kernel, args, out_ty=relax.TensorType((num_samples,), "int32")))
        return bb.emit_func_output(out)


__all__ = ["attach_engine_functions"]
