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
and semantics (`attach_sampler.py`) but are serial kernels, one GPU thread per row: MLC's build on
TVM's GPU sort and cumsum, and with TVM 0.27 the sort does not compile for WebGPU (blockIdx.z) and
the cumsum gave wrong prefix sums on Dawn/lavapipe. WebLLM samples one sequence at a time, so a
serial pass over the vocabulary per token is affordable. Hearth's own SDK calls none of them.
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
    def apply_logit_bias_inplace(var_logits: T.handle, var_pos2seq_id: T.handle, var_token_ids: T.handle, var_logit_bias: T.handle) -> None:
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

    A heap sort, one GPU thread per row. MLC sorts with TVM's GPU merge sort, which in TVM 0.27
    launches on blockIdx.z, and WebGPU has no z grid ("blockIdx.z is not supported in WebGPU").
    O(vocab log vocab) serial steps per row is fine for WebLLM's single sequence.
    """
    T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
    batch_size = T.int32()
    vocab_size = T.int32()
    probs = T.match_buffer(var_probs, (batch_size, vocab_size), "float32")
    sp = T.match_buffer(var_sorted, (batch_size, vocab_size), "float32")
    si = T.match_buffer(var_indices, (batch_size, vocab_size), "int32")
    row = T.launch_thread("blockIdx.x", batch_size)
    _ = T.launch_thread("threadIdx.x", 1)
    st = T.alloc_buffer((4,), "int32", scope="local")  # sift-down node, its child, heap end, keep going
    tmp_p = T.alloc_buffer((1,), "float32", scope="local")
    tmp_i = T.alloc_buffer((1,), "int32", scope="local")
    for j in range(vocab_size):
        sp[row, j] = probs[row, j]
        si[row, j] = j
    # A min-heap on (prob, -id): steps < vocab/2 build it bottom-up; each later step swaps the
    # minimum to the end of the shrinking heap, which leaves the row in descending order.
    for step in range(vocab_size // 2 + vocab_size - 1):
        if step >= vocab_size // 2:
            st[2] = vocab_size - 1 - (step - vocab_size // 2)
            tmp_p[0] = sp[row, 0]
            tmp_i[0] = si[row, 0]
            sp[row, 0] = sp[row, st[2]]
            si[row, 0] = si[row, st[2]]
            sp[row, st[2]] = tmp_p[0]
            si[row, st[2]] = tmp_i[0]
            st[0] = 0
        else:
            st[2] = vocab_size
            st[0] = vocab_size // 2 - 1 - step
        st[3] = 1
        while st[3] == 1 and st[0] * 2 + 1 < st[2]:
            st[1] = st[0] * 2 + 1
            if st[1] + 1 < st[2]:
                if sp[row, st[1] + 1] < sp[row, st[1]] or (sp[row, st[1] + 1] == sp[row, st[1]] and si[row, st[1] + 1] > si[row, st[1]]):
                    st[1] = st[1] + 1
            if sp[row, st[1]] < sp[row, st[0]] or (sp[row, st[1]] == sp[row, st[0]] and si[row, st[1]] > si[row, st[0]]):
                tmp_p[0] = sp[row, st[0]]
                tmp_i[0] = si[row, st[0]]
                sp[row, st[0]] = sp[row, st[1]]
                si[row, st[0]] = si[row, st[1]]
                sp[row, st[1]] = tmp_p[0]
                si[row, st[1]] = tmp_i[0]
                st[0] = st[1]
            else:
                st[3] = 0


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
                    out_ty=[relax.TensorType((batch_size, vocab_size), "float32"), relax.TensorType((batch_size, vocab_size), "int32")],
                )
            )
            output = bb.emit_output(out)
        return bb.emit_func_output(output)


@T.prim_func
def _sample_top_p(
    var_sorted: T.handle, var_indices: T.handle, var_uniform: T.handle, var_rows: T.handle, var_top_p: T.handle, var_out: T.handle
):
    """MLC's top-p sampling from a sorted row (tvm.relax.frontend.nn.sample_top_p_top_k_from_sorted_prob
    without top-k): keep the shortest prefix whose mass reaches top_p, renormalise it, and pick the
    first entry whose cumulative mass exceeds the uniform sample.

    Serial, one GPU thread per sample: TVM 0.27's WebGPU cumsum, which MLC's version builds on,
    gave wrong prefix sums on Dawn/lavapipe (sampled ranks snapped to multiples of 32).
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
    sample = T.launch_thread("blockIdx.x", num_samples)
    _ = T.launch_thread("threadIdx.x", 1)
    mass = T.alloc_buffer((2,), "float32", scope="local")  # running sum, the kept prefix's mass
    found = T.alloc_buffer((2,), "int32", scope="local")  # done flag, chosen token
    found[0] = 0
    mass[0] = T.float32(0)
    for j in range(vocab_size):
        if found[0] == 0:
            mass[0] = mass[0] + sorted_probs[rows[sample], j]
            if mass[0] >= top_p[rows[sample]] or j == vocab_size - 1:
                mass[1] = mass[0]
                found[0] = 1
    found[0] = 0
    found[1] = sorted_indices[rows[sample], vocab_size - 1]
    mass[0] = T.float32(0)
    for j in range(vocab_size):
        if found[0] == 0:
            mass[0] = mass[0] + sorted_probs[rows[sample], j]
            if uniform[sample] < mass[0] / mass[1]:
                found[1] = sorted_indices[rows[sample], j]
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
