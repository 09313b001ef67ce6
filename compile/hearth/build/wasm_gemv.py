"""The wasm-cpu decode GEMV of asymmetric group codes, written as its own TIR.

y[n] = sum_k x[k] * (c[n, k] * s[n, g] + m[n, g]) for one row of x (a decode step), with c the 4- or 8-bit
codes of the _gguf schemes (hearth.quant.asym: `bits`-wide fields of uint32 words, a float32 scale and
minimum per group of 32 along k). A schedule can only reorder that expression; this kernel rewrites it per
group as

    s[n, g] * sum_{k in g} x[k] * c[n, k]  +  m[n, g] * sum_{k in g} x[k]

so the inner loop is a multiply-add of x against the codes alone, and sum_{k in g} x[k] is computed once per
call for all rows. The shift leaves the inner loop too: code j of a word is masked in place,
`word & (mask << bits * j)`, which is c * 2^(bits j) (at most `bits` significant bits: exact in float32), and x
is pre-scaled by 2^-(bits j) when it is copied (x * 2^-(bits j) * c * 2^(bits j) is x * c: powers of two). The
last code of a word is shifted down instead: masked in place it would set the sign bit, and wasm's unsigned
conversion is not one instruction. Per 4 weights: and, convert, multiply, add (was: shift, and, convert, scale
multiply, minimum add, multiply, add).

Layout as cpu_schedule's scheduled GEMV (whose comments say why): the 4 SIMD lanes are 4 consecutive words
of one weight row (one 128-bit load), x is copied once per call into [chunk, code, lane] order so its lanes
are one load too, 4-lane partial sums per output, GEMV_ROWS outputs per iteration for independent add chains.
Only the summation order differs from the dequantize-then-multiply kernel (float32 throughout).

The output loop is the outermost loop of the kernel; its per-iteration accumulators are small `local`
buffers (stack slots that LLVM keeps in registers).
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm_ffi
from tvm import s_tir, tirx
from tvm.script import tirx as T

LANES = 4  # f32 lanes of a wasm SIMD128 register
GROUP = 32  # k per scale / minimum (the asym layout's group)


@dataclass(frozen=True)
class AsymGemv:
    """A one-row matmul against asymmetric group codes, as matched in a fused PrimFunc."""

    x: tirx.Buffer  # [1, ..., 1, K] float32
    q_weight: tirx.Buffer  # [N, K * bits / 32] uint32
    q_scale: tirx.Buffer  # [N, K / 32] float32
    q_min: tirx.Buffer  # [N, K / 32] float32
    y: tirx.Buffer  # [1, ..., 1, N] float32: the matmul's output (an epilogue may read it)
    bits: int
    n: int
    k: int


def _int(expr) -> int | None:
    return int(expr.value) if isinstance(expr, tirx.IntImm) else None


def match_asym_dequantize(producer: s_tir.SBlock, w_buffer: tirx.Buffer) -> tuple | None:
    """(q_weight, q_scale, q_min, bits) when `producer` writes w_buffer[n, k] as exactly
    float32((q_weight[n, k // w] >> uint32(k % w * bits)) & mask) * q_scale[n, k // 32] + q_min[n, k // 32]
    (hearth.quant.asym.te_dequantize_asym, all float32), else None."""
    store = producer.body
    if not isinstance(store, tirx.BufferStore) or not store.buffer.same_as(w_buffer) or len(producer.iter_vars) != 2:
        return None
    vn, vk = (iv.var for iv in producer.iter_vars)
    kt = str(vk.ty)
    reads = {}
    for region in producer.reads:
        buf = region.source if hasattr(region, "source") else region.buffer
        reads.setdefault(buf.dtype, []).append(buf)
    words = reads.get("uint32", [])
    floats = reads.get("float32", [])
    if len(words) != 1 or len(floats) != 2 or str(store.value.ty) != "float32":
        return None
    qw = words[0]
    for bits in (4, 8):
        per_word = 32 // bits
        for qs, qm in (floats, floats[::-1]):
            code = tirx.BitwiseAnd(
                tirx.RShift(
                    tirx.BufferLoad(qw, [vn, tirx.FloorDiv(vk, tirx.IntImm(kt, per_word))]),
                    tirx.Cast("uint32", tirx.FloorMod(vk, tirx.IntImm(kt, per_word)) * tirx.IntImm(kt, bits)),
                ),
                tirx.IntImm("uint32", (1 << bits) - 1),
            )
            group = [vn, tirx.FloorDiv(vk, tirx.IntImm(kt, GROUP))]
            want = tirx.Cast("float32", code) * tirx.BufferLoad(qs, group) + tirx.BufferLoad(qm, group)
            if _structural_equal(store.value, want):
                return qw, qs, qm, bits
    return None


def _structural_equal(a, b) -> bool:
    return bool(tvm_ffi.structural_equal(a, b))


def gemv_stmt(g: AsymGemv, rows: int, tasks: int = 1) -> tirx.Stmt:
    """The kernel's body (loops over g's buffers, no blocks) writing g.y; see the module docstring.

    The outputs are split into `tasks` contiguous ranges, the outermost loop: parallel when tasks > 1 (each
    task allocates its accumulators once: inside a parallel body they are workspace allocations, not stack
    slots), serial with one task."""
    if (n_out_rows := g.n // rows) % tasks:
        raise ValueError(f"{tasks} tasks do not divide {n_out_rows} output blocks of {rows}")
    per_task = n_out_rows // tasks
    task_loop = T.parallel if tasks > 1 else T.serial
    bits, n_out, k_in = g.bits, g.n, g.k
    per_word = 32 // bits
    chunk = LANES * per_word  # k per 128-bit load of 4 words
    chunks = k_in // chunk
    per_group = GROUP // chunk  # loads per group: 1 (4-bit), 2 (8-bit)
    groups = k_in // GROUP
    top = per_word - 1  # the code that is shifted down, not masked in place
    mask = (1 << bits) - 1
    x, qw, qs, qm, y = g.x, g.q_weight, g.q_scale, g.q_min, g.y

    @T.prim_func(private=True, check_well_formed=False)
    def kernel():
        xf = T.decl_buffer((k_in,), "float32", data=x.data)
        yf = T.decl_buffer((n_out,), "float32", data=y.data)
        # x in [chunk, code, lane] order, code j scaled by 2^-(bits j) (the last one not: it is shifted down)
        xs = T.alloc_buffer((chunks, per_word, LANES), "float32")
        # sum of x over each group, as 4 partial sums (any split of the group will do: only their total is used)
        xsum = T.alloc_buffer((groups, LANES), "float32")
        for c, j, lane in T.grid(chunks, per_word, LANES):
            xs[c, j, lane] = xf[c * chunk + lane * per_word + j] * T.if_then_else(
                j == top, T.float32(1.0), T.float32(1.0) / T.Cast("float32", T.shift_left(1, bits * j))
            )
        for grp in range(groups):
            for lane in T.vectorized(LANES):
                xsum[grp, lane] = T.float32(-0.0)
            for i in range(GROUP // LANES):
                for lane in T.vectorized(LANES):
                    xsum[grp, lane] = xsum[grp, lane] + xf[grp * GROUP + i * LANES + lane]
        for task in task_loop(tasks):
            acc = T.alloc_buffer((rows, LANES), "float32", scope="local")
            dot = T.alloc_buffer((rows, LANES), "float32", scope="local")
            for no_in in range(per_task):
                no = task * per_task + no_in
                for r in T.unroll(rows):
                    for lane in T.vectorized(LANES):
                        acc[r, lane] = T.float32(-0.0)
                for grp in range(groups):
                    for r in T.unroll(rows):
                        for lane in T.vectorized(LANES):
                            dot[r, lane] = T.float32(-0.0)  # -0 + p folds to p (+0 + p does not: -0)
                    for cc in T.unroll(per_group):
                        for j in T.unroll(top):
                            for r in T.unroll(rows):
                                for lane in T.vectorized(LANES):
                                    dot[r, lane] = dot[r, lane] + xs[grp * per_group + cc, j, lane] * T.Cast(
                                        "float32",
                                        T.Cast(
                                            "int32",
                                            qw[no * rows + r, (grp * per_group + cc) * LANES + lane]
                                            & T.shift_left(T.uint32(mask), T.Cast("uint32", bits * j)),
                                        ),
                                    )
                        for r in T.unroll(rows):
                            for lane in T.vectorized(LANES):
                                dot[r, lane] = dot[r, lane] + xs[grp * per_group + cc, top, lane] * T.Cast(
                                    "float32",
                                    T.Cast(
                                        "int32",
                                        T.shift_right(
                                            qw[no * rows + r, (grp * per_group + cc) * LANES + lane],
                                            T.uint32(bits * top),
                                        ),
                                    ),
                                )
                    for r in T.unroll(rows):
                        for lane in T.vectorized(LANES):
                            acc[r, lane] = (
                                acc[r, lane]
                                + qs[no * rows + r, grp] * dot[r, lane]
                                + qm[no * rows + r, grp] * xsum[grp, lane]
                            )
                for r in T.unroll(rows):
                    yf[no * rows + r] = acc[r, 0] + acc[r, 1] + acc[r, 2] + acc[r, 3]

    return kernel.body


def replace_nest(func: tirx.PrimFunc, nest: tirx.Stmt, stmt: tirx.Stmt) -> tirx.PrimFunc:
    """`func` with the root-level loop nest `nest` (e.g. a matmul's outermost loop) replaced by `stmt`."""
    realize = func.body
    block = realize.block
    body = block.body
    seq = list(body.seq) if isinstance(body, tirx.SeqStmt) else [body]
    hits = [i for i, s in enumerate(seq) if s.same_as(nest)]
    if len(hits) != 1:
        raise ValueError("the loop nest to replace is not a root-level statement of the function")
    seq[hits[0]] = stmt
    new_block = s_tir.SBlock(
        block.iter_vars,
        block.reads,
        block.writes,
        block.name_hint,
        tirx.SeqStmt(seq) if len(seq) > 1 else seq[0],
        block.init,
        block.alloc_buffers,
        block.match_buffers,
        block.annotations,
    )
    return func.with_body(s_tir.SBlockRealize(realize.iter_values, realize.predicate, new_block))
