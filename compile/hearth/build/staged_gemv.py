"""Decode GEMV kernels with their prologue staged once per workgroup in shared memory (issue 17, item 1).

The first fusion attempt (fusion.py's `gate` mode) let dlight's GEMV rule inline the SwiGLU gate into the
down projection; dlight gives WebGPU one output row per workgroup, so every workgroup recomputed SiLU over
the whole input vector (N x K evaluations instead of K) and decode got 15-23 % slower on an H100. The
kernels here keep the prologue out of the reduction: each workgroup computes `TS` output rows with
TS x TR threads, first writing the prologue's result for the whole K-vector into shared memory
(cooperatively, each element once), then running the GEMV from shared memory, one row per threadIdx.y,
a cross-thread reduction over threadIdx.x. So the prologue costs K per workgroup, 1/TS of the GEMV's MACs.

Prologues:
- `rms_norm`: y = W (rsqrt(mean(x^2) + eps) * x * g); each workgroup reduces x^2 itself (K = 576..2048
  floats, a block-wide reduction), the same formula and rounding order as TOPI's rms_norm.
- `swiglu`: y = W (silu(gu[:I]) * gu[I:]) (+ residual), SiLU as TOPI writes it (x * sigmoid(x)).

Activations are float32 or float16 (q4f16_* packages). In float16 every step rounds where the unfused
kernels round, so the fused kernel computes the same values up to reduction order: TOPI's rms_norm squares
and sums in float32 and rounds only its result (x, g cast up, the product cast down to f16: the staged
vector is f16, as the unfused norm's output buffer was); the SwiGLU gate is computed in f16 as the unfused
elementwise kernel does; the GEMV casts the staged f16 values and the f16 dequantized weights to float32
and accumulates in float32 (hearth.quant's NT_matmul block, translated as it is), its cast to f16 and
the residual add (in f16) are epilogues, as in the unfused fused_..._add kernel.

The GEMV itself (the packed dequantize, the reduction, a bias epilogue) is taken from the kernel
hearth.quant emitted for the layer: its blocks are translated into TE, so any weight format that kernel
handles is handled here. A K whose staged vector exceeds MAX_STAGED_BYTES is staged in chunks inside the
reduction loop (stage a chunk, barrier, every row adds its partial sums, barrier before the next chunk; the
cross-thread reduction once at the end): the same values and roundings, only the barriers added.
Only float32/float16 activations and the [dequantize, NT_matmul, elementwise...]
block shape are accepted; anything else returns None and the caller keeps the unfused kernels.

Prefetch (`prefetch=True`, fusion mode `staged-p`): the kernel above is latency-bound on an H100: the whole
prologue (the x^2 reduction and its barriers, or the staging) runs before the first weight is fetched, and
the GEMV loop then has one packed word in flight per thread. With prefetch every thread first loads all its
packed words and scales (its slice of each weight buffer the GEMV reads along K) into registers in an
unrolled loop, so their latency overlaps the prologue, and the GEMV reads the registers. The reduction is
written over three axes (step, thread, element: the split the plain schedule makes of K) so that a thread's
registers are indexed by its step and thread directly (through K's single index, the region analysis
relaxes the thread's slice to the whole row). The multiply-adds, their order and the reductions are the
plain kernel's, so the results are bit-identical. A thread holds at most PREFETCH_MAX_WORDS words: a
chunked K beyond that is prefetched per chunk (before that chunk's staging), anything else is not
prefetched. Packages build with it (build/package.py's DECODE_FUSION) since the H100 A/B: the Qwen2.5-0.5B
shape's decode GPU time per token 2.50 -> 2.04 ms (gate_up 23.9 -> 16.5 us, down 23.7 -> 17.3 per launch).

Multi-row (`multirow=R` with prefetch, fusion mode `staged-p-m<R>`; opt-in until the GPU A/B): each thread
computes R output rows instead of one, so a workgroup covers ts x R rows, its prologue (the x^2 reduction,
the staging, their barriers) is paid once per ts x R rows (lm_head: 151936 / 8 -> / 32 workgroups at R = 4),
and each thread has R rows' words in flight. A thread's rows are contiguous (bx * ts * R + ty * R + r): each
row's TR threads still read one 128-byte line per step. The reduction is factored over the thread axis
(rfactor): each thread first sums its share of each of its rows into a register per row (the one-row
kernel's per-thread partial: the same multiply-adds in the same order), then one cross-thread reduction per
row (TVM's allreduce, the one-row kernel's tree) adds the TR partials, so the results are bit-identical to
`staged-p`. Each row's reduction is its own block (TVM's allreduce lowering rejects one unrolled loop of
them: they would share one result buffer), so each has its own ts x TR float buffer in workgroup storage
and its own barriers. R and the steps are unrolled so every register index is a constant. R is halved per
kernel until ts x R divides N, the R rows' words fit PREFETCH_MAX_WORDS_MULTI and the R reduction buffers
fit WORKGROUP_BYTES beside the staged vector; a kernel that is not prefetched keeps one row per thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import tvm
from tvm import s_tir, te, tirx
from tvm.sym.analyzer import Analyzer
from tvm_ffi import structural_equal

Prologue = Literal["rms_norm", "swiglu"]

# Threads per workgroup: TR along K (the cross-thread reduction), up to `rows` (default TS_MAX) output rows
# (threadIdx.y). 8 x 32 = 256, WebGPU's default maxComputeInvocationsPerWorkgroup. More rows share one
# staged prologue (it costs 1/rows of the GEMV's multiply-adds); fewer make smaller workgroups with fewer
# levels in the reductions (on lavapipe, 2 rows ran these kernels ~2x faster than 8; the H100 decides).
TR = 32
TS_MAX = 8
VEC = 8
# The staged vector lives in workgroup storage, next to the reductions' 2 x 256 floats. WebGPU guarantees
# 16 KiB of it (the SDK asks for the adapter's maximum, but a browser may grant no more than that), so a
# longer K is staged in chunks (chunk_elems): Qwen2.5-0.5B's down projection (K = 4864) in float32 (19 KiB)
# as 2560 + 2304 elements; in float16 it fits whole (9.5 KiB).
MAX_STAGED_BYTES = 12 << 10
# Workgroup storage WebGPU guarantees (maxComputeWorkgroupStorageSize), and the bytes of one cross-thread
# reduction's buffer per thread (float32 sums, also in f16 kernels).
WORKGROUP_BYTES = 16 << 10
REDUCTION_BYTES = 4
# Registers (32-bit words, summed over the weight buffers) a thread prefetches at most: 38 (Qwen2.5-0.5B's
# down projection, 19 steps x word + scale) would spill on some GPUs; per chunk it is 20.
PREFETCH_MAX_WORDS = 32
# The same for a multi-row kernel (build's `multirow`), over all its rows: twice the one-row cap. An H100
# thread has up to 255 registers; 64 words leave it ~190 for the rest, and a multi-row kernel is an opt-in
# experiment the GPU A/B decides on. With it the Qwen2.5-0.5B shape's 896-K GEMVs (8 words a row) take 8
# rows, its down projection's chunk (20 words a row) 2.
PREFETCH_MAX_WORDS_MULTI = 64
# Output rows a thread may compute (build's `multirow`).
MULTIROW_MAX = 8
# Activation dtypes the staged kernels handle, with their size in bytes.
ACT_BYTES = {"float32": 4, "float16": 2}

Loader = Callable[[list[tirx.Expr]], tirx.Expr]


class Unsupported(Exception):
    """The kernel is not of a form this module rebuilds (the caller keeps the unfused kernels)."""


def _translate(expr: tirx.Expr, vars_: dict[str, tirx.Expr], loads: dict[str, Loader]) -> tirx.Expr:
    """expr with block iter vars and buffer loads replaced, both looked up by name (TIR -> TE: loads
    become tensor reads)."""

    def tr(e: tirx.Expr) -> tirx.Expr:
        if isinstance(e, (tirx.IntImm, tirx.FloatImm)):
            return e
        if hasattr(e, "source") and hasattr(e, "indices"):  # a buffer load
            name = e.source.name
            if name not in loads:
                raise Unsupported(f"reads {name}")
            return loads[name]([tr(i) for i in e.indices])
        if isinstance(e, tvm.ir.expr.Var):
            if e.name in vars_:
                return vars_[e.name]
            raise Unsupported(f"free variable {e}")
        if isinstance(e, tirx.Cast):
            return tirx.Cast(str(e.ty), tr(e.value))
        if isinstance(e, tirx.Select):
            return tirx.Select(tr(e.condition), tr(e.true_value), tr(e.false_value))
        if isinstance(e, tvm.ir.expr.Call) or type(e).__name__ == "Call":
            return tirx.Call(str(e.ty), e.op, [tr(a) for a in e.args])
        if hasattr(e, "a") and hasattr(e, "b"):  # the binary arithmetic/compare/logic nodes
            return type(e)(tr(e.a), tr(e.b))
        raise Unsupported(f"expression node {type(e).__name__}")

    return tr(expr)


def _blocks(func: tirx.PrimFunc) -> list[object]:
    sch = s_tir.Schedule(func)
    return [sch.get(b) for b in sch.get_child_blocks(sch.get_sblock("root"))]


def _spatial_tensor(block, loads: dict[str, Loader], name: str) -> te.Tensor:
    store = block.body
    ivs = list(block.iter_vars)
    if not isinstance(store, tirx.BufferStore) or block.init is not None:
        raise Unsupported(f"block {block.name_hint} is not a plain store")
    if any(iv.iter_type != tirx.IterVar.DataPar for iv in ivs) or [str(i) for i in store.indices] != [
        str(iv.var) for iv in ivs
    ]:
        raise Unsupported(f"block {block.name_hint} is not an elementwise map")
    shape = [iv.dom.extent for iv in ivs]
    return te.compute(
        shape,
        lambda *idx: _translate(store.value, {iv.var.name: i for iv, i in zip(ivs, idx, strict=True)}, loads),
        name=name,
    )


def chunk_elems(k: int, dtype: str, max_staged_bytes: int = MAX_STAGED_BYTES) -> int:
    """Elements of the staged vector held at once: K where it fits `max_staged_bytes`, else the fewest
    equal chunks that fit, each rounded up to whole steps of the reduction (TR x VEC elements, so that a
    thread's elements of one step never straddle two chunks); the last chunk may be shorter."""
    step = TR * VEC
    if ACT_BYTES[dtype] * k <= max_staged_bytes:
        return k
    most = max_staged_bytes // ACT_BYTES[dtype] // step * step
    if most == 0:
        raise Unsupported(f"{max_staged_bytes} bytes of workgroup storage hold no chunk of {step} elements")
    chunks = -(-k // most)
    return -(-k // chunks // step) * step


def build(
    gemv: tirx.PrimFunc,
    prologue: Prologue,
    residual: bool,
    eps: float = 0.0,
    rows: int = TS_MAX,
    max_staged_bytes: int = MAX_STAGED_BYTES,
    prefetch: bool = False,
    multirow: int = 1,
) -> tirx.PrimFunc:
    """The staged kernel for `gemv` (a decode-shape [1, 1, K] x W^T PrimFunc from hearth.quant).

    Parameters, in order: rms_norm: (x[1,1,K], g[K], *gemv's weights, out); swiglu: (gu[1,1,2K],
    *gemv's weights, [residual[1,1,N]], out). A staged vector over `max_staged_bytes` is staged in chunks
    (chunk_elems). `prefetch`: the weights loaded into registers first (module docstring), where a thread's
    slice fits PREFETCH_MAX_WORDS. `multirow` (with `prefetch`; 1, 2, 4 or 8): each thread computes up to that
    many output rows (module docstring), fewer where N or PREFETCH_MAX_WORDS_MULTI asks for it. Raises
    Unsupported when `gemv` has another form."""
    if multirow not in (1, 2, 4, 8) or (multirow > 1 and not prefetch):
        raise ValueError(f"multirow={multirow}: use 1, 2, 4 or 8 rows per thread, more than 1 only with prefetch")
    params = list(gemv.params)  # buffers
    x_buf, out_buf, weight_bufs = params[0], params[-1], params[1:-1]
    # The output's dtype may differ from the input's: an f16 model's lm_head writes float32 logits.
    dtype, out_dtype = str(x_buf.dtype), str(out_buf.dtype)
    if len(x_buf.shape) != 3 or len(out_buf.shape) != 3 or dtype not in ACT_BYTES or out_dtype not in ACT_BYTES:
        raise Unsupported("not a float32 or float16 [1, 1, K] GEMV")
    if not all(isinstance(d, tirx.IntImm) for d in [*x_buf.shape, *out_buf.shape]):
        raise Unsupported("symbolic shape")
    k, n = int(x_buf.shape[2]), int(out_buf.shape[2])
    blocks = _blocks(gemv)
    names = [b.name_hint for b in blocks]
    if len(blocks) < 2 or names[0] != "dequantize" or not names[1].startswith("NT_matmul"):
        raise Unsupported(f"blocks {names}")

    weights = [te.placeholder(b.shape, b.dtype, name=b.name) for b in weight_bufs]
    loads: dict[str, Loader] = {b.name: (lambda idx, t=t: t(*idx)) for b, t in zip(weight_bufs, weights, strict=True)}
    inputs: list[te.Tensor]
    if prologue == "rms_norm":
        x = te.placeholder((1, 1, k), dtype, name="x")
        g = te.placeholder((k,), dtype, name="norm_weight")
        r = te.reduce_axis((0, k), name="r")
        # TOPI computes in float32 whatever the activations (f16 values cast up, the result cast down).
        up = (lambda e: e) if dtype == "float32" else (lambda e: tirx.Cast("float32", e))
        sumsq = te.compute((1,), lambda _: te.sum(up(x[0, 0, r]) * up(x[0, 0, r]), axis=r), name="hearth_sumsq")
        eps_c = tirx.const(eps, "float32")

        # TOPI's order: rsqrt(sum / K + eps) * x * g (a division, not a multiply by 1/K). The rsqrt stays
        # in the element's expression: hoisted into a per-thread block, TVM's lowering stored it in place
        # in the reduction's shared buffer, which every thread then read and overwrote (a race).
        def normed(i: tirx.Expr) -> tirx.Expr:
            y = tirx.rsqrt(sumsq[0] / tirx.const(float(k), "float32") + eps_c) * up(x[0, 0, i]) * up(g[i])
            return y if dtype == "float32" else tirx.Cast(dtype, y)

        staged = te.compute((k,), normed, name="hearth_staged")
        inputs = [x, g]
    else:
        gu = te.placeholder((1, 1, 2 * k), dtype, name="gate_up")
        staged = te.compute(
            (k,), lambda i: gu[0, 0, i] * tirx.sigmoid(gu[0, 0, i]) * gu[0, 0, k + i], name="hearth_staged"
        )
        inputs = [gu]
    loads[x_buf.name] = lambda idx: staged[idx[2]]

    deq = _spatial_tensor(blocks[0], loads, "hearth_dequantize")
    loads[blocks[0].body.buffer.name] = lambda idx: deq(*idx)
    mm_block = blocks[1]
    store = mm_block.body
    ivs = list(mm_block.iter_vars)
    if (
        len(ivs) != 4
        or [iv.iter_type for iv in ivs] != [tirx.IterVar.DataPar] * 3 + [tirx.IterVar.CommReduce]
        or not isinstance(store, tirx.BufferStore)
        or not isinstance(store.value, tirx.Add)
        or getattr(getattr(store.value.a, "source", None), "name", None) != store.buffer.name
        or not isinstance(mm_block.init, tirx.BufferStore)
        or not (isinstance(mm_block.init.value, tirx.FloatImm) and mm_block.init.value.value == 0.0)
    ):
        raise Unsupported(f"{mm_block.name_hint} is not a sum of products")
    names_ = [iv.var.name for iv in ivs]
    chunk = chunk_elems(k, dtype, max_staged_bytes)
    held = _prefetch_steps(k, chunk, len(weights)) if prefetch else None
    ts = _rows_per_group(n, rows)
    per_thread = 1
    if held is not None:
        # workgroup storage left beside the staged vector and rms_norm's reduction, for the per-row sums
        free = WORKGROUP_BYTES - ACT_BYTES[dtype] * chunk - REDUCTION_BYTES * ts * TR
        per_thread = _rows_per_thread(n, ts, held * len(weights), multirow, free)
    if held is None:
        rk = te.reduce_axis((0, k), name="k")
        mm = te.compute(
            (1, 1, n),
            lambda a, b, j: te.sum(
                _translate(store.value.b, dict(zip(names_, [a, b, j, rk], strict=True)), loads),
                axis=rk,
            ),
            name="hearth_gemv",
        )
    else:
        pf_loads = loads | {x_buf.name: _padded(staged, k)}
        mm = _prefetched_gemv(store.value.b, names_, blocks[0], weight_bufs, weights, pf_loads, k, n, held)
    loads[store.buffer.name] = lambda idx: mm(*idx)
    last = mm
    for i, blk in enumerate(blocks[2:]):  # bias add, cast: elementwise on the GEMV's output
        last = _spatial_tensor(blk, loads, f"hearth_epilogue{i}")
        loads[blk.body.buffer.name] = lambda idx, t=last: t(*idx)
    if tuple(int(d) for d in last.shape) != (1, 1, n):
        raise Unsupported("epilogue changes the shape")
    extra: list[te.Tensor] = []
    if residual:
        res = te.placeholder((1, 1, n), out_dtype, name="residual")
        gemv_out = last
        last = te.compute((1, 1, n), lambda a, b, j: res[a, b, j] + gemv_out[a, b, j], name="hearth_residual")
        extra = [res]
    func = te.create_prim_func([*inputs, *weights, *extra, last])
    if held is None:
        return _schedule(func, k, n, prologue, rows, chunk).with_attr("tirx.is_scheduled", True)
    if per_thread > 1:
        scheduled = _schedule_multirow(func, k, prologue, ts, per_thread, chunk, held)
        return scheduled.with_attr("tirx.is_scheduled", True)
    return _schedule_prefetch(func, k, n, prologue, rows, chunk, held).with_attr("tirx.is_scheduled", True)


def _rows_per_thread(n: int, ts: int, words: int, multirow: int, free_bytes: int) -> int:
    """multirow, halved until a workgroup's ts x rows divide N, a thread's words (`words` a row) fit
    PREFETCH_MAX_WORDS_MULTI and the rows' cross-thread sums (each its own ts x TR buffer) `free_bytes`."""
    r = multirow
    while r > 1 and (
        n % (ts * r) or r * words > PREFETCH_MAX_WORDS_MULTI or r * REDUCTION_BYTES * ts * TR > free_bytes
    ):
        r //= 2
    return r


STEP = TR * VEC


def _prefetch_steps(k: int, chunk: int, buffers: int) -> int | None:
    """Steps (STEP elements of K) whose weights a thread prefetches at once: all of K's, else one chunk's
    (chunk < K); None where prefetch does not apply (K not whole VEC words, or over PREFETCH_MAX_WORDS)."""
    if k % VEC or buffers == 0:
        return None
    steps = -(-k // STEP)
    if steps * buffers <= PREFETCH_MAX_WORDS:
        return steps
    if chunk < k and chunk // STEP * buffers <= PREFETCH_MAX_WORDS:
        return chunk // STEP
    return None


def _fetcher(
    indices: Callable[[tirx.Expr, tirx.Expr], dict[str, list[tirx.Expr]]],
    name: str,
    t: te.Tensor,
    k: int,
    kdtype: str,
    ndtype: str,
) -> Callable[[tirx.Expr, tirx.Expr, tirx.Expr], tirx.Expr]:
    """The register tensor's element [j, thread, step]: the weight value at K's first element of it."""

    def fetch(j: tirx.Expr, th: tirx.Expr, s: tirx.Expr) -> tirx.Expr:
        # clamped: the steps past K (the last one's tail, a padded group) load a valid, unused word
        first = tirx.Cast(kdtype, tirx.min(s * STEP + th * VEC, k - VEC))
        return t(*indices(tirx.Cast(ndtype, j), first)[name])

    return fetch


def _prefetched_gemv(
    product: tirx.Expr,
    mm_vars: list[str],
    deq_block: object,
    weight_bufs: list[object],
    weights: list[te.Tensor],
    loads: dict[str, Loader],
    k: int,
    n: int,
    held: int,
) -> te.Tensor:
    """The GEMV with its weights read from per-thread register tensors hearth_prefetch<i>[N, TR, steps]:
    element [j, t, s] is the value thread t uses for the VEC elements of K at s * STEP + t * VEC."""
    store, ivs = deq_block.body, list(deq_block.iter_vars)
    if not isinstance(store, tirx.BufferStore) or len(ivs) != 2 or int(ivs[1].dom.extent) != k:
        raise Unsupported("dequantize is not a [N, K] map")
    n_name, k_name = (iv.var.name for iv in ivs)
    ndtype, kdtype = (str(iv.var.ty) for iv in ivs)

    def indices(j: tirx.Expr, kk: tirx.Expr) -> dict[str, list[tirx.Expr]]:
        """The index of each weight buffer the dequantize reads for element [j, kk] (each read at one index)."""
        seen: dict[str, list[tirx.Expr]] = {}

        def recorder(buf: object, t: te.Tensor) -> Loader:
            def load(idx: list[tirx.Expr]) -> tirx.Expr:
                if buf.name in seen and not structural_equal(seen[buf.name], idx):
                    raise Unsupported(f"{buf.name} is read at two places")
                seen[buf.name] = idx
                return t(*idx)

            return load

        probe = dict(loads) | {b.name: recorder(b, t) for b, t in zip(weight_bufs, weights, strict=True)}
        _translate(store.value, {n_name: j, k_name: kk}, probe)
        return seen

    analyzer = Analyzer()
    # one value per VEC elements of K (a packed word, a group's scale): checked on the first and last steps
    j0 = tirx.const(0, ndtype)
    for kk in [*range(0, min(k, 2 * STEP)), *range(max(0, k - STEP), k)]:
        at = indices(j0, tirx.const(kk, kdtype))
        base = indices(j0, tirx.const(kk - kk % VEC, kdtype))
        for name, idx in at.items():
            if not all(
                structural_equal(analyzer.simplify(x), analyzer.simplify(y))
                for x, y in zip(idx, base[name], strict=True)
            ):
                raise Unsupported(f"{name} changes within a thread's {VEC} elements")
    read = indices(j0, tirx.const(0, kdtype))
    steps = -(-k // STEP)
    steps = -(-steps // held) * held  # whole prefetch groups: a per-chunk group may run past K (clamped)
    caches: dict[str, te.Tensor] = {}
    for i, (buf, t) in enumerate((b, t) for b, t in zip(weight_bufs, weights, strict=True) if b.name in read):
        fetch = _fetcher(indices, buf.name, t, k, kdtype, ndtype)
        caches[buf.name] = te.compute((n, TR, steps), fetch, name=f"hearth_prefetch{i}")

    # K as the plain schedule splits it (step, thread, element), as three axes so that a thread's registers
    # are indexed by its own loop variables (through one axis, TVM compacts each thread's registers to the
    # whole row: a scratch array, not registers)
    rs = te.reduce_axis((0, -(-k // STEP)), name="ks")
    rt = te.reduce_axis((0, TR), name="kt")
    rv = te.reduce_axis((0, VEC), name="kv")
    kexpr = rs * STEP + rt * VEC + rv

    def element(a: tirx.Expr, b: tirx.Expr, j: tirx.Expr) -> tirx.Expr:
        regs: dict[str, Loader] = {name: (lambda _idx, c=c: c(j, rt, rs)) for name, c in caches.items()}
        inner = dict(loads) | regs
        deq = deq_block.body.buffer.name

        def dequantized(idx: list[tirx.Expr]) -> tirx.Expr:
            at = {n_name: tirx.Cast(ndtype, idx[0]), k_name: tirx.Cast(kdtype, idx[1])}
            return _translate(store.value, at, inner)

        return _translate(product, dict(zip(mm_vars, [a, b, j, kexpr], strict=True)), loads | {deq: dequantized})

    return te.compute((1, 1, n), lambda a, b, j: te.sum(element(a, b, j), axis=[rs, rt, rv]), name="hearth_gemv")


def _padded(staged: te.Tensor, k: int) -> Loader:
    """The staged vector read past K as 0 (the steps of the three-axis reduction cover whole TR x VEC
    blocks; TE drops a reduction's `where`). 0 times the (finite, clamped) weight leaves the sum as it was,
    and the elements inside K are multiplied and added as in the plain kernel."""
    if k % STEP == 0:
        return lambda idx: staged[idx[2]]
    zero = tirx.const(0, str(staged.dtype))
    return lambda idx: tirx.Select(idx[2] < k, staged[tirx.min(idx[2], k - 1)], zero)


def _schedule_prefetch(
    func: tirx.PrimFunc, k: int, n: int, prologue: Prologue, rows: int, chunk: int, held: int
) -> tirx.PrimFunc:
    """_schedule's kernel with the weights prefetched (build's `prefetch`): the same loops, the reduction
    already split (step, thread, element); the register tensors computed at the block (all of K's steps)
    or at the chunk (`held` steps of it), before the prologue."""
    ts = _rows_per_group(n, rows)
    sch = s_tir.Schedule(func)
    mm = sch.get_sblock("hearth_gemv")
    a, b, j, rs, rt, rv = sch.get_loops(mm)
    bx, ty = sch.split(sch.fuse(a, b, j), [None, ts])
    chunked = chunk < k
    if chunked:
        ch, rs = sch.split(rs, [None, chunk // STEP])
    sch.reorder(bx, ty, rt, *([ch] if chunked else []), rs, rv)
    # unrolled: the registers are indexed by constants (a loop index would make them a scratch array)
    sch.unroll(rs)
    sch.unroll(rv)
    sch.bind(bx, "blockIdx.x")
    sch.bind(ty, "threadIdx.y")
    sch.bind(rt, "threadIdx.x")
    # first, so that the prologue's blocks, computed at the same loop after them, go between them and the GEMV
    per_chunk = chunked and held * STEP < k
    for cy, cx, cs in _place_prefetch(sch, ch if per_chunk else bx):
        if not per_chunk:
            sch.bind(cy, "threadIdx.y")
            sch.bind(cx, "threadIdx.x")
        sch.unroll(cs)
    return _schedule_epilogue_and_prologue(sch, mm, bx, ty, ch if chunked else None, ts, prologue)


def _schedule_multirow(
    func: tirx.PrimFunc, k: int, prologue: Prologue, ts: int, per_thread: int, chunk: int, held: int
) -> tirx.PrimFunc:
    """_schedule_prefetch's kernel with `per_thread` output rows per thread (build's `multirow`): row
    bx * ts * per_thread + ty * per_thread + r for r < per_thread, the rows of one thread contiguous (each
    row's TR threads still read one line per step). The reduction is factored (rfactor) over the thread
    axis: each thread first sums its share of every one of its rows (the per-thread partial of the one-row
    kernel, the same multiply-adds in the same order, into a register per row), then one cross-thread
    reduction per row adds the TR partials as the one-row kernel's does."""
    sch = s_tir.Schedule(func)
    mm = sch.get_sblock("hearth_gemv")
    a, b, j, rs, rt, rv = sch.get_loops(mm)
    bx, ty, r = sch.split(sch.fuse(a, b, j), [None, ts, per_thread])
    chunked = chunk < k
    if chunked:
        ch, rs = sch.split(rs, [None, chunk // STEP])
    sch.reorder(bx, ty, rt, *([ch] if chunked else []), r, rs, rv)
    # the per-thread partials: thread (ty, rt) sums its rows' products over (chunk,) step, element
    rf = sch.rfactor(rt, 0)
    sch.set_scope(rf, 0, "local")
    bx, ty, rt, *rest = sch.get_loops(rf)
    ch = rest[0] if chunked else None
    r, rs, rv = rest[-3:]
    sch.unroll(r)
    sch.unroll(rs)
    sch.unroll(rv)
    sch.bind(bx, "blockIdx.x")
    sch.bind(ty, "threadIdx.y")
    sch.bind(rt, "threadIdx.x")
    # the cross-thread sums, one per row after the last chunk: one block per row (each lowers to an
    # allreduce of its own; one unrolled loop of them would share one result buffer, which TVM's
    # allreduce lowering rejects)
    sch.reverse_compute_at(mm, ty)
    wt, wr = sch.get_loops(mm)[-2:]
    sch.reorder(wr, wt)
    # the epilogue after the last sum (LoopPartition takes one block per loop), over the thread's rows
    # unrolled: each reads its row's sum from a register
    epilogue = _schedule_epilogue(sch, mm, ty)
    if epilogue is not None:
        for loop in sch.get_loops(epilogue)[2:]:  # those below bx, ty
            sch.unroll(loop)
    for part in sch.loop_partition(wr, [*[1] * (per_thread - 1), None]):
        sch.bind(sch.get_loops(sch.get_child_blocks(part)[0])[-1], "threadIdx.x")
    per_chunk = chunked and held * STEP < k
    for cj, cx, cs in _place_prefetch(sch, ch if per_chunk else bx):
        if not per_chunk:
            cy, cr = sch.split(cj, [ts, per_thread])
            sch.reorder(cy, cx, cr, cs)
            sch.bind(cy, "threadIdx.y")
            sch.bind(cx, "threadIdx.x")
            sch.unroll(cr)
        else:
            sch.unroll(cj)
        sch.unroll(cs)
    return _schedule_prologue(sch, bx, ch if chunked else None, ts, prologue)


def _place_prefetch(
    sch: s_tir.Schedule, at: s_tir.schedule.LoopRV
) -> list[tuple[s_tir.schedule.LoopRV, s_tir.schedule.LoopRV, s_tir.schedule.LoopRV]]:
    """Put each register tensor (hearth_prefetch<i>) in registers, computed at loop `at` (the block, or the
    chunk loop); its (row, thread, step) loops, for the caller to bind and unroll."""
    names = [sch.get(blk).name_hint for blk in sch.get_child_blocks(sch.get_sblock("root"))]
    loops = []
    for name in (x for x in names if x.startswith("hearth_prefetch")):
        cache = sch.get_sblock(name)
        sch.set_scope(cache, 0, "local")
        sch.compute_at(cache, at, preserve_unit_loops=True)
        cy, cx, cs = sch.get_loops(cache)[-3:]
        loops.append((cy, cx, cs))
    return loops


def _rows_per_group(n: int, rows: int) -> int:
    ts = rows
    while n % ts:
        ts //= 2
    return ts


def _schedule(func: tirx.PrimFunc, k: int, n: int, prologue: Prologue, rows: int, chunk: int) -> tirx.PrimFunc:
    ts = _rows_per_group(n, rows)
    sch = s_tir.Schedule(func)
    sch.compute_inline(sch.get_sblock("hearth_dequantize"))
    mm = sch.get_sblock("hearth_gemv")
    a, b, j, r = sch.get_loops(mm)
    bx, ty = sch.split(sch.fuse(a, b, j), [None, ts])
    # Each thread takes VEC consecutive elements of K per step: one packed 4-bit word, so a row's 32
    # threads read 32 consecutive words (one 128-byte line) of the weights.
    vec = VEC if k % VEC == 0 else 1
    chunked = chunk < k
    if chunked:
        # chunk_elems made the chunk whole steps; K need not be whole chunks (the last one is predicated)
        ch, r = sch.split(r, [None, chunk])
    ro, tx, ri = sch.split(r, [None, TR, vec])
    sch.reorder(bx, ty, tx, *([ch] if chunked else []), ro, ri)
    sch.unroll(ri)
    packed = [i for i, reg in enumerate(sch.get(mm).reads) if reg.source.dtype == "uint32"]
    if packed and vec > 1:  # the word a thread decodes VEC elements from: loaded once per step
        word = sch.cache_read(mm, packed[0], "local")
        sch.compute_at(word, ro)
    sch.bind(bx, "blockIdx.x")
    sch.bind(ty, "threadIdx.y")
    sch.bind(tx, "threadIdx.x")
    return _schedule_epilogue_and_prologue(sch, mm, bx, ty, ch if chunked else None, ts, prologue)


def _schedule_epilogue_and_prologue(
    sch: s_tir.Schedule,
    mm: s_tir.schedule.SBlockRV,
    bx: s_tir.schedule.LoopRV,
    ty: s_tir.schedule.LoopRV,
    ch: s_tir.schedule.LoopRV | None,
    ts: int,
    prologue: Prologue,
) -> tirx.PrimFunc:
    """What _schedule and _schedule_prefetch share once the GEMV's loops are bound: the epilogue written by
    the row's threads, the prologue staged in shared memory at the block (or at the chunk loop `ch`), and
    rms_norm's sum of squares at the block."""
    _schedule_epilogue(sch, mm, ty)
    return _schedule_prologue(sch, bx, ch, ts, prologue)


def _epilogues(sch: s_tir.Schedule) -> list[s_tir.schedule.SBlockRV]:
    return [
        sch.get_sblock(name)
        for name in [sch.get(blk).name_hint for blk in sch.get_child_blocks(sch.get_sblock("root"))]
        if name.startswith(("hearth_epilogue", "hearth_residual"))
    ]


def _schedule_epilogue(
    sch: s_tir.Schedule, mm: s_tir.schedule.SBlockRV | None, loop: s_tir.schedule.LoopRV
) -> s_tir.schedule.SBlockRV | None:
    """The epilogue blocks (if any) as one, computed at `loop` from the GEMV's sum, which then stays in a
    register (`mm`'s output made local here unless the caller did: None). Returns the epilogue block."""
    epilogues = _epilogues(sch)
    if not epilogues:
        return None
    if mm is not None:
        sch.set_scope(mm, 0, "local")
    # Chained epilogues (an f16 GEMV's cast, then the residual add) become one: an intermediate left
    # between two reverse_compute_at blocks would be a global allocation, which WebGPU has not.
    for epi in epilogues[:-1]:
        sch.compute_inline(epi)
    # each thread of the row writes the same value: no predicate needed
    sch.reverse_compute_at(epilogues[-1], loop)
    return epilogues[-1]


def _schedule_prologue(
    sch: s_tir.Schedule, bx: s_tir.schedule.LoopRV, ch: s_tir.schedule.LoopRV | None, ts: int, prologue: Prologue
) -> tirx.PrimFunc:
    """The prologue staged in shared memory at the block (or at the chunk loop `ch`), and rms_norm's sum of
    squares at the block."""
    staged = sch.get_sblock("hearth_staged")
    # Chunked: each chunk is staged inside the loop over chunks (all threads write it, a barrier, every row
    # accumulates its partial sums from it, a barrier before the next chunk overwrites it); the cross-thread
    # reduction runs once, after the last chunk.
    # (shared before compute_at: the region it computes is then relaxed over the thread loops around it,
    # the whole chunk, not one thread's part of it)
    sch.set_scope(staged, 0, "shared")
    sch.compute_at(staged, bx if ch is None else ch)
    loop = sch.get_loops(staged)[-1]
    _, sy, sx = sch.split(loop, [None, ts, TR])
    sch.bind(sy, "threadIdx.y")
    sch.bind(sx, "threadIdx.x")
    if prologue == "rms_norm":
        sumsq = sch.get_sblock("hearth_sumsq")
        sch.compute_at(sumsq, bx)
        rl = sch.get_loops(sumsq)[-1]
        rl_o, rl_y, rl_x = sch.split(rl, [None, ts, TR])
        sch.reorder(rl_y, rl_x, rl_o)
        sch.bind(rl_y, "threadIdx.y")
        sch.bind(rl_x, "threadIdx.x")
        sch.set_scope(sumsq, 0, "local")
    return sch.mod["main"]


def rebuild_or_none(
    gemv: tvm.tirx.PrimFunc,
    prologue: Prologue,
    residual: bool,
    eps: float = 0.0,
    rows: int = TS_MAX,
    max_staged_bytes: int = MAX_STAGED_BYTES,
    prefetch: bool = False,
    multirow: int = 1,
) -> tvm.tirx.PrimFunc | None:
    """build(), or None where the kernel is of a form it does not handle."""
    try:
        return build(gemv, prologue, residual, eps, rows, max_staged_bytes, prefetch, multirow)
    except Unsupported:
        return None
