"""CPU schedules (native llvm and wasm-cpu builds) for the kernels of encoders and decoders.

TVM's generic CPU pipeline leaves every kernel as the naive loop nest LegalizeOps wrote: one
thread, the reduction innermost over a strided weight row. Encoders run natively for parity
checks and evaluation over thousands of tokens, where that is ~50x too slow. Three dlight-style
rules fix the hot spots; anything they do not recognise keeps TVM's default lowering, so a rule
that cannot apply costs speed, never correctness (summation order inside a dot product may
differ, as in any BLAS):

- WeightMatmul: y[..., n] = sum_k x[..., k] * W[n, k] (nn.Linear after FuseTransposeMatmul, and
  the fused dequantize + matmul of quantized layers). Tiles (rows x 16 outputs); for each tile
  the W rows (dequantized when quantized: once per tile instead of once per row) are copied into
  a [K, 16] buffer, so the inner loop is a 16-wide vector FMA with unit stride. A single row on wasm
  (a decode step) skips the buffer: each weight is used once there; against asymmetric group codes it
  is replaced by hearth.build.wasm_gemv's kernel (scale and minimum once per group).
- BatchedMatmul: out[..., i, j] = sum_k a[..., i, k] * b[..., k, j] with j contiguous (attention
  scores against the transposed keys, probabilities x values): reduction moved outside j.
- Parallel: the outermost spatial loop of every other loop nest runs on the thread pool. dlight's
  CPU Reduction rule is not used: on RMSNorm it moved the whole row reduction inside the loop over
  the row's outputs (576 x 576 work for a 576-wide row; 14 of SmolLM2's ~100 ms per decode step).

CPU targets only (GPU targets use dlight). On wasm-cpu the parallel loops run serially (its wasm
runtime has no thread pool); the tiles and vectors still apply, with SIMD128. On wasm-cpu-mt they run on
the threaded runtime's workers, and the decode GEMVs get a parallel loop too (serial on wasm-cpu).
"""

from __future__ import annotations

import tvm
import tvm_ffi
from tvm import s_tir, tirx
from tvm.s_tir import dlight as dl
from tvm.s_tir.dlight.cpu.base import CPUScheduleRule
from tvm.target import Target

from .wasm_gemv import GROUP, AsymGemv, gemv_stmt, match_asym_dequantize, replace_nest

VECTOR = 16  # output columns per tile: two AVX / four SSE float32 registers
ROW_TILES = (64, 32, 16, 8, 4, 2, 1)  # rows per tile: the largest that divides the row count


def _root_blocks(sch: s_tir.Schedule) -> list:
    return sch.get_child_blocks(sch.get_sblock("root"))


def _iter_kinds(block: tirx.SBlock) -> str:
    kinds = {tirx.IterVar.DataPar: "S", tirx.IterVar.CommReduce: "R"}
    return "".join(kinds.get(int(iv.iter_type), "O") for iv in block.iter_vars)


def _buffer(region) -> tirx.Buffer:
    """The buffer of a block read/write region (TVM 0.27 calls it `source`)."""
    return region.source if hasattr(region, "source") else region.buffer


def _as_vars(indices) -> list:
    return [i if isinstance(i, tirx.Var) else None for i in indices]


def _extent(loop_sref) -> int | None:
    extent = loop_sref.stmt.extent
    return int(extent) if isinstance(extent, tirx.IntImm) else None


class _Rule(CPUScheduleRule):
    """A rule that declines (None) wherever its pattern or a schedule step does not fit."""

    def apply(self, func: tirx.PrimFunc, target: Target, _: bool):
        if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target):
            return None
        try:
            return self._apply(func, target)
        except Exception:  # noqa: BLE001 - any schedule error means "rule does not apply"
            return None

    def _apply(self, func: tirx.PrimFunc, target: Target):
        raise NotImplementedError


class WeightMatmul(_Rule):
    def _apply(self, func: tirx.PrimFunc, target: Target):
        sch = s_tir.Schedule(func)
        for block_rv in _root_blocks(sch):
            block = sch.get(block_rv)
            kinds = _iter_kinds(block)
            if not (kinds.endswith("SR") and kinds.count("R") == 1 and len(kinds) >= 3 and set(kinds) <= {"S", "R"}):
                continue
            loops = sch.get_loops(block_rv)
            if len(loops) != len(kinds):
                continue
            store = block.body
            if not isinstance(store, tirx.BufferStore) or not isinstance(store.value, tirx.Add):
                continue
            n_var, k_var = block.iter_vars[-2].var, block.iter_vars[-1].var
            # The weight operand: read as W[n, k] (two plain iterator indices).
            weight = [i for i, r in enumerate(block.reads) if _as_vars([rg.min for rg in r.region]) == [n_var, k_var]]
            if len(weight) != 1 or len(block.reads) != 2:
                continue
            wasm = "wasm32" in str(target.attrs.get("mtriple", ""))
            w_buffer = _buffer(block.reads[weight[0]])
            return self._schedule(sch, block_rv, loops, weight[0], w_buffer, wasm, _wasm_threads(target))
        return None

    def _schedule(self, sch, block_rv, loops, w_index, w_buffer, wasm: bool, threads: bool = False):
        *rows, n, k = loops
        n_extent = _extent(sch.get_sref(n))
        if n_extent is None or n_extent % VECTOR:
            return None
        m = sch.fuse(*rows) if len(rows) > 1 else rows[0]
        m_extent = _extent(sch.get_sref(m))
        if m_extent == 1 and wasm:
            gemv = _asym_gemv(sch.copy(), block_rv, w_buffer, threads) or _wasm_gemv(
                sch.copy(), block_rv, n, k, w_buffer, threads
            )
            if gemv is not None:
                return gemv
        no, ni = sch.split(n, [None, VECTOR])
        if m_extent is None:
            # Rows = tokens of a prefill chunk (dynamic): parallel over output tiles, all rows
            # inside, so each W tile is decoded once per call however many tokens there are.
            sch.reorder(no, m, k, ni)
            outer = no
        elif m_extent == 1 and wasm:
            # One row on wasm that _wasm_gemv's layout does not divide: dequantize straight into the
            # FMA, no W tile (each weight is used once). Natively (AVX) the tile stays faster.
            sch.reorder(m, no, k, ni)
            sch.parallel(no)
            sch.vectorize(ni)
            for p in sch.get_producers(block_rv):
                if _buffer(sch.get(p).writes[0]).same_as(w_buffer):
                    sch.compute_inline(p)
            init = sch.decompose_reduction(block_rv, k)
            sch.vectorize(sch.get_loops(init)[-1])
            _parallel_other_nests(sch, skip=block_rv, min_work=_min_work(threads))
            return sch
        else:
            tile = next(t for t in ROW_TILES if m_extent % t == 0)
            mo, mi = sch.split(m, [None, tile])
            sch.reorder(mo, no, mi, k, ni)
            outer = sch.fuse(mo, no)
        # parallel/vectorize before decompose_reduction: they need a block with its init
        sch.parallel(outer)
        sch.vectorize(ni)
        # W[n-tile, :] into a [K, 16] buffer; a dequantize producer is inlined into that copy,
        # so each tile is decoded once per row tile.
        producers = [p for p in sch.get_producers(block_rv) if _buffer(sch.get(p).writes[0]).same_as(w_buffer)]
        cache = sch.cache_read(block_rv, w_index, "global")
        for p in producers:
            sch.compute_inline(p)
        sch.compute_at(cache, outer)
        # "local": one [K, 16] tile per loop iteration. In "global" scope the buffer kept its full
        # [K, N] shape, so SmolLM2's lm_head allocated and wrote 113 MB per decode step (147 of the
        # step's 192 ms of kernel time, one thread; 22 ms with the local tile).
        sch.set_scope(cache, 0, "local")
        sch.transform_layout(cache, ("write", 0), lambda i, j: (j, i))
        cache_loops = sch.get_loops(cache)[1:]
        sch.reorder(cache_loops[1], cache_loops[0])  # walk it k-major (the new layout)
        init = sch.decompose_reduction(block_rv, k)
        sch.vectorize(sch.get_loops(init)[-1])
        _parallel_other_nests(sch, skip=block_rv, min_work=_min_work(threads))
        return sch


GEMV_LANES = 4  # f32 lanes of a wasm SIMD128 register
GEMV_ROWS = 4  # outputs per iteration: independent accumulators (add latency) sharing each x load


def _codes_per_word(sch: s_tir.Schedule, block_rv, w_buffer) -> int:
    """How many consecutive k share one word of the weight's storage: 8 for 4-bit codes in uint32,
    4 for 8-bit, 1 for a plain float weight (no dequantize producer). 0: a layout not recognised."""
    producers = [p for p in sch.get_producers(block_rv) if _buffer(sch.get(p).writes[0]).same_as(w_buffer)]
    if not producers:
        return 1
    if len(producers) != 1:
        return 0
    block = sch.get(producers[0])
    k_var = block.iter_vars[-1].var
    for region in block.reads:
        if _buffer(region).dtype != "uint32":
            continue
        last = region.region[-1].min
        if isinstance(last, tirx.FloorDiv) and last.a.same_as(k_var) and isinstance(last.b, tirx.IntImm):
            return int(last.b.value)
    return 0


def _size(buf: tirx.Buffer) -> int | None:
    size = 1
    for d in buf.shape:
        if not isinstance(d, tirx.IntImm):
            return None
        size *= int(d)
    return size


def _wasm_threads(target: Target) -> bool:
    """A threaded wasm build (hearth.targets' wasm-cpu-mt: atomics, a shared memory, a worker pool), where
    parallel loops really run in parallel; on the single-thread wasm-cpu they run serially."""
    mattr = [str(a) for a in target.attrs.get("mattr", [])]
    return "wasm32" in str(target.attrs.get("mtriple", "")) and "+atomics" in mattr


GEMV_TASKS = (16, 8, 4, 2)  # parallel chunks of a threaded GEMV's outputs: the largest that divides them


def _asym_gemv(sch: s_tir.Schedule, block_rv, w_buffer, threads: bool = False) -> s_tir.Schedule | None:
    """A one-row matmul against asymmetric group codes (the _gguf schemes) on wasm, replaced by the
    hand-written kernel of hearth.build.wasm_gemv (scale and minimum applied per group, not per weight),
    or None. Epilogue blocks (a residual add, a cast) stay as they were, reading the matmul's output."""
    try:
        block = sch.get(block_rv)
        producers = [p for p in sch.get_producers(block_rv) if _buffer(sch.get(p).writes[0]).same_as(w_buffer)]
        if len(producers) != 1 or len(block.reads) != 2 or len(block.writes) != 1:
            return None
        matched = match_asym_dequantize(sch.get(producers[0]), w_buffer)
        x = [_buffer(r) for r in block.reads if not _buffer(r).same_as(w_buffer)][0]
        y = _buffer(block.writes[0])
        n_extent, k_extent = (int(d) for d in w_buffer.shape)
        # the store must be y += x * W exactly: no cast, no bias folded into the reduction
        want = tirx.BufferLoad(y, block.body.indices) + tirx.BufferLoad(
            x, [*block.body.indices[:-1], block.iter_vars[-1].var]
        ) * tirx.BufferLoad(w_buffer, [block.iter_vars[-2].var, block.iter_vars[-1].var])
        if (
            matched is None
            or not tvm_ffi.structural_equal(block.body.value, want)
            or x.dtype != "float32"
            or y.dtype != "float32"
            or k_extent % GROUP
            or n_extent % GEMV_ROWS
            or _size(x) != k_extent  # the kernel reads x and writes y as flat [K] and [N]
            or _size(y) != n_extent
        ):
            return None
        q_weight, q_scale, q_min, bits = matched
        sch.compute_inline(producers[0])
        nest = sch.get(sch.get_loops(block_rv)[0])
        gemv = AsymGemv(x, q_weight, q_scale, q_min, y, bits, n_extent, k_extent)
        # Threaded: the output blocks in a few chunks, each a task with its accumulators allocated once
        # (the runtime splits the chunks over its threads); 16 keeps 2, 4 and 8 threads evenly loaded.
        blocks = n_extent // GEMV_ROWS
        tasks = next((t for t in GEMV_TASKS if blocks % t == 0), 1) if threads else 1
        return s_tir.Schedule(replace_nest(sch.mod["main"], nest, gemv_stmt(gemv, GEMV_ROWS, tasks)))
    except Exception:  # noqa: BLE001 - any mismatch: the scheduled GEMV below applies
        return None


def _wasm_gemv(sch: s_tir.Schedule, block_rv, n, k, w_buffer, threads: bool = False):
    """y[n] = sum_k x[k] * W[n, k] for one row on wasm SIMD128 (a decode step's matmuls), or None.

    The vector runs along k inside the weight's storage, not across outputs: k = g * 4w + l * w + j
    with w codes per 32-bit word, so lane l reads word (g * 4 + l) of row n (one contiguous 128-bit
    load of 4 words) and code j of every lane sits at the same shift (one i32x4.shr_u for all lanes;
    wasm has no per-lane shift). x is copied once per call into [g, j, l] order so that its 4 lanes
    are one load too. Each output keeps a 4-lane partial sum (rfactor over l), GEMV_ROWS outputs at
    a time for independent add chains. Across outputs (the layout before) every lane loaded its own
    word, scale and minimum from a different row: 16 scalar loads and lane inserts per k. Loops stay
    serial: the wasm runtime has no thread pool, and inside a parallel loop the partial sums were
    allocated (TVMBackendAllocWorkspace) once per iteration. `sch` is a copy: None leaves the
    caller's schedule as it was.
    """
    try:
        per_word = _codes_per_word(sch, block_rv, w_buffer)
        k_extent, n_extent = _extent(sch.get_sref(k)), _extent(sch.get_sref(n))
        chunk = per_word * GEMV_LANES
        if not per_word or k_extent is None or n_extent is None or k_extent % chunk or n_extent % GEMV_ROWS:
            return None
        x_index = [i for i, r in enumerate(sch.get(block_rv).reads) if not _buffer(r).same_as(w_buffer)]
        if len(x_index) != 1:
            return None
        for p in sch.get_producers(block_rv):
            if _buffer(sch.get(p).writes[0]).same_as(w_buffer):
                sch.compute_inline(p)
        _, lane, _ = sch.split(k, [None, GEMV_LANES, per_word])
        rf = sch.rfactor(lane, 0)
        *_, rn, rg, rl, rj = sch.get_loops(rf)
        no, ni = sch.split(rn, [None, GEMV_ROWS])
        sch.reorder(no, rg, rj, ni, rl)
        if threads:  # the output blocks in GEMV_TASKS chunks, one parallel task each
            blocks = n_extent // GEMV_ROWS
            tasks = next((t for t in GEMV_TASKS if blocks % t == 0), 1)
            if tasks > 1:
                task, no = sch.split(no, [tasks, None])
                sch.parallel(task)
        sch.vectorize(rl)
        sch.unroll(ni)
        sch.unroll(rj)
        x_copy = sch.cache_read(rf, x_index[0], "global")
        rank = len(sch.get(x_copy).iter_vars)

        def permute(*idx):
            kk = idx[-1]
            return (*idx[:-1], kk // chunk, kk % per_word, kk // per_word % GEMV_LANES)

        sch.transform_layout(x_copy, ("write", 0), tirx.IndexMap.from_func(permute, ndim=rank))
        sch.reverse_compute_at(block_rv, no)
        sch.set_scope(rf, 0, "local")
        init = sch.decompose_reduction(rf, rg)
        sch.vectorize(sch.get_loops(init)[-1])
        return sch
    except Exception:  # noqa: BLE001 - any schedule error: the caller's fallback applies
        return None


class BatchedMatmul(_Rule):
    def _apply(self, func: tirx.PrimFunc, target: Target):
        sch = s_tir.Schedule(func)
        for block_rv in _root_blocks(sch):
            block = sch.get(block_rv)
            kinds = _iter_kinds(block)
            if not (kinds.endswith("SSR") and kinds.count("R") == 1 and set(kinds) <= {"S", "R"}):
                continue
            loops = sch.get_loops(block_rv)
            if len(loops) != len(kinds) or len(block.reads) != 2:
                continue
            j_var, k_var = block.iter_vars[-2].var, block.iter_vars[-1].var
            # b[..., k, j]: the second operand's last two indices are (k, j).
            if not any(_as_vars([rg.min for rg in r.region])[-2:] == [k_var, j_var] for r in block.reads):
                continue
            *outer, j, k = loops
            sch.reorder(k, j)
            sch.parallel(sch.fuse(*outer) if len(outer) > 1 else outer[0])
            sch.vectorize(j)
            init = sch.decompose_reduction(block_rv, k)
            sch.vectorize(sch.get_loops(init)[-1])
            _parallel_other_nests(sch, skip=block_rv, min_work=_min_work(_wasm_threads(target)))
            return sch
        return None


#: Threaded wasm: a nest with fewer iterations (all extents static) stays serial. Handing a loop to the
#: workers costs microseconds (tens when one has to wake up), more than a decode step's norms, adds and
#: activations take (576-3072 elements); natively TVM's pool is cheap enough and the rule stays as it was.
SMALL_NEST = 1 << 15


def _min_work(threads: bool) -> int:
    return SMALL_NEST if threads else 0


def _static_work(sch: s_tir.Schedule, loops) -> int | None:
    """Iterations of a loop nest, or None when an extent is dynamic (e.g. a prefill's sequence length)."""
    work = 1
    for loop in loops:
        extent = _extent(sch.get_sref(loop))
        if extent is None:
            return None
        work *= extent
    return work


def _parallel_other_nests(sch: s_tir.Schedule, skip=None, min_work: int = 0) -> bool:
    """Parallelise the outermost loop of each root-level nest whose block is data-parallel there (and,
    with `min_work`, that has at least that many iterations or a dynamic extent)."""
    changed = False
    for block_rv in _root_blocks(sch):
        if skip is not None and sch.get(block_rv).same_as(sch.get(skip)):
            continue
        loops = sch.get_loops(block_rv)
        if not loops:
            continue
        work = _static_work(sch, loops) if min_work else None
        if work is not None and work < min_work:
            continue
        loop = sch.get(loops[0])
        if loop.kind != tirx.ForKind.SERIAL:
            continue
        try:
            sch.parallel(loops[0])
            changed = True
        except Exception:  # noqa: BLE001 - e.g. a reduction loop outermost
            continue
    return changed


class Parallel(_Rule):
    def _apply(self, func: tirx.PrimFunc, target: Target):
        sch = s_tir.Schedule(func)
        return sch if _parallel_other_nests(sch, min_work=_min_work(_wasm_threads(target))) else None


def schedule_cpu() -> tvm.transform.Pass:
    """The module pass: apply after the Relax pipeline (PrimFuncs fused, not yet lowered)."""
    return dl.ApplyDefaultSchedule(WeightMatmul(), BatchedMatmul(), Parallel())
