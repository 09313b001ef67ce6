"""Decode-step kernel fusion for GPU targets (issue 17: fewer kernel launches per token).

Two modes (`fusion_passes(target, mode)`): "staged" (below, `_staged_pass`) folds RMSNorm into the GEMV
after it and the SwiGLU gate (+ the residual add) into the down projection, with hand-scheduled
kernels (build/staged_gemv.py) that compute the prologue once per workgroup into shared memory.
"gate" is the earlier attempt this docstring describes, kept for the A/B:

A decode step on WebGPU is bound by per-launch cost (host encoding + the submit), not by the GPU work
(docs/benchmarks.md), so every kernel that can be folded into a neighbour is worth removing. TVM's
FuseOps already folds the residual add into the GEMV that produces it (an elementwise consumer of a
reduction), and the quantized GEMVs carry their dequantize inside (hearth.quant emits one PrimFunc).
What FuseOps will not do is fold an injective *producer* into a reduction: the SwiGLU gate
`silu(gate) * up`, with gate|up split out of the fused gate_up projection, stays its own kernel
between the two MLP GEMVs. Here it becomes the down projection's prologue: the GEMV reads gate|up
and applies split, SiLU and the product while loading its input vector (dlight's GEMV rule inlines
spatial producers). Same operations on the same values, so results are unchanged up to the GPU's
exp/division rounding being applied in a different kernel.

Only single-token shapes are fused (every dim but the last a literal 1: `decode`): prefill's GEMMs
would recompute the SiLU once per output tile, and dlight's Matmul rule is not the one tested with a
prologue.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.dpl import DFPattern, is_op, is_tuple, is_tuple_get_item, rewrite_call, wildcard
from tvm.relax.transform import FusionPattern, PatternCheckContext

from . import staged_gemv

# staged-r<N>: N output rows per workgroup (1..8); staged[-r<N>]-b<BYTES>: stage at most BYTES of the
# input vector at once (default staged_gemv.MAX_STAGED_BYTES; a smaller one makes tests chunk small models);
# a trailing -p: each thread prefetches its weights into registers before the prologue (staged_gemv's prefetch);
# -p-m<R> (R = 1, 2, 4 or 8): each thread computes up to R output rows (staged_gemv's multirow)
FUSION_MODES = (
    "gate",
    "staged",
    "staged-r<N>",
    "staged[-r<N>]-b<BYTES>",
    "staged[-r<N>][-b<BYTES>]-p",
    "staged[-r<N>][-b<BYTES>]-p-m<R>",
)

# call_tir kernels that compute x @ W^T (hearth.quant's fused dequantize + GEMV, or the f32 NT_matmul
# FuseTransposeMatmul makes); their first argument is the activation vector.
_GEMV_PREFIXES = ("dequantize_NT_matmul", "NT_matmul", "fused_NT_matmul")


def _single_token_shape(ty: object) -> tuple[int, int] | None:
    """(rank, last dim) of a static [1, ..., 1, n] tensor type, else None."""
    shape = getattr(ty, "shape", None)
    if not isinstance(shape, relax.ShapeExpr):
        return None
    dims = list(shape.values)
    if not all(isinstance(d, tvm.tirx.IntImm) for d in dims) or any(int(d) != 1 for d in dims[:-1]):
        return None
    return len(dims), int(dims[-1])


def _gate_from_two_buffers(func: relax.Function) -> relax.Function:
    """silu(split(gu)[0]) * split(gu)[1] -> silu(gu[..., :i]) * reshape(gu, [..., 2, i])[..., 1, :].

    Same values; what changes is that the up half is read through a second tensor (a reshape, which
    the VM turns into a view, no kernel). dlight's GEMV analysis needs every buffer read in the
    reduction at one position per iteration; gate and up read from one buffer at k and k + i would
    give it a region of extent i + 1 (an assertion in dlight), two buffers give two unit regions.
    """
    gu = wildcard()
    parts = is_op("relax.split")(gu)
    pattern = is_op("relax.multiply")(is_op("relax.nn.silu")(is_tuple_get_item(parts, 0)), is_tuple_get_item(parts, 1))

    def rewrite(expr: relax.Expr, matches: dict[DFPattern, relax.Expr]) -> relax.Expr:
        src = matches[gu]
        split = matches[parts]
        static = _single_token_shape(src.ty)
        sections = split.attrs.indices_or_sections
        halves = isinstance(sections, tvm.tirx.IntImm) and int(sections) == 2  # not split(x, 3) or at indices
        if static is None or static[1] % 2 or not halves or int(split.attrs.axis) not in (-1, static[0] - 1):
            return expr
        rank, n = static
        half = n // 2
        lead = [1] * (rank - 1)
        gate = relax.op.strided_slice(src, axes=[rank - 1], begin=[0], end=[half])
        pair = relax.op.reshape(src, [*lead, 2, half])
        up = relax.op.reshape(relax.op.strided_slice(pair, axes=[rank - 1], begin=[1], end=[2]), [*lead, half])
        return relax.op.multiply(relax.op.nn.silu(gate), up)

    return rewrite_call(pattern, rewrite, func)


def _swiglu_down(n_weights: int, residual: bool) -> DFPattern:
    """silu(gate) * up (as _gate_from_two_buffers leaves it) -> GEMV with n_weights more arguments (+ residual)."""
    # strided_slice carries axes/begin/end as arguments: any, after the sliced tensor.
    gate = is_op("relax.strided_slice")(wildcard(), varg_default_wildcard=True)
    up = is_op("relax.reshape")(is_op("relax.strided_slice")(wildcard(), varg_default_wildcard=True), wildcard())
    gated = is_op("relax.multiply")(is_op("relax.nn.silu")(gate), up)
    gemv = is_op("relax.call_tir")(wildcard(), is_tuple([gated] + [wildcard() for _ in range(n_weights)]))
    return is_op("relax.add")(wildcard(), gemv) if residual else gemv


def _single_token(ctx: PatternCheckContext) -> bool:
    call = ctx.annotated_expr["gemv"]
    if not isinstance(call, relax.Call) or not isinstance(call.args[0], relax.GlobalVar):
        return False
    if not call.args[0].name_hint.startswith(_GEMV_PREFIXES):
        return False
    # call_tir states its output's struct info; its leading dims say whether this is a single token.
    sinfo = call.ty_args[0] if len(call.ty_args) == 1 else None
    shape = sinfo.shape if isinstance(sinfo, relax.TensorType) else None
    if not isinstance(shape, relax.ShapeExpr):
        return False
    leading = list(shape.values)[:-1]
    return all(isinstance(d, tvm.tirx.IntImm) and int(d) == 1 for d in leading)


def _patterns() -> list[FusionPattern]:
    out = []
    for residual in (True, False):  # the larger match first: it keeps the residual add in the kernel
        for n in (4, 3, 2, 1):  # weight, scale[, min][, bias]: depends on the quantization scheme
            pat = _swiglu_down(n, residual)
            gemv = pat.args[1] if residual else pat
            out.append(
                FusionPattern(
                    f"hearth.swiglu_down{'_add' if residual else ''}{n}",
                    pat,
                    {"root": pat, "gemv": gemv},
                    _single_token,
                )
            )
    return out


def fusion_passes(target: tvm.target.Target, mode: str = "gate") -> list[tvm.transform.Pass]:
    """Passes to run on the Relax module before legalization (GPU targets); mode: FUSION_MODES."""
    del target  # the same fusions suit every GPU target; kept for the pipeline's signature
    staged = _staged_mode(mode)
    if staged is not None:
        return [_staged_pass(*staged)]
    if mode != "gate":
        raise ValueError(f"unknown fusion mode {mode!r}: use one of {', '.join(FUSION_MODES)}")
    return [
        _split_gate_pass,
        relax.transform.FuseOpsByPattern(_patterns(), bind_constants=False, annotate_codegen=False),
    ]


@tvm.transform.module_pass(opt_level=0, name="HearthGateFromTwoBuffers")
def _split_gate_pass(mod: tvm.ir.IRModule, _ctx: tvm.transform.PassContext) -> tvm.ir.IRModule:
    for gv, func in list(mod.functions_items()):
        if isinstance(func, relax.Function):
            mod[gv] = _gate_from_two_buffers(func)
    return mod


# --- "staged": RMSNorm -> GEMV and SwiGLU -> down GEMV (+ residual) as one kernel each -----------------


def _static_act(ty: object, rank: int = 3) -> tuple[str, list[int]] | None:
    """(dtype, dims) of a static [1, 1, n] activation tensor type (a dtype the staged kernels take), else None."""
    dtype = str(getattr(ty, "dtype", None))  # a DataType: its hash is not its name's
    if dtype not in staged_gemv.ACT_BYTES or _single_token_shape(ty) is None:
        return None
    dims = [int(d) for d in ty.shape.values]
    return (dtype, dims) if len(dims) == rank else None


class _Staged:
    """Rewrites one module's decode functions; the new kernels are added to the module afterwards."""

    def __init__(self, mod: tvm.ir.IRModule, rows: int, max_staged_bytes: int, prefetch: bool, multirow: int) -> None:
        self.mod = mod
        self.rows = rows
        self.max_staged_bytes = max_staged_bytes
        self.prefetch = prefetch
        self.multirow = multirow
        self.builder = relax.BlockBuilder(mod)  # its add_func gives the GlobalVar the type call_tir checks
        self.kernels: dict[str, tvm.ir.GlobalVar] = {}

    def kernel(self, gemv: relax.GlobalVar, prologue: staged_gemv.Prologue, residual: bool, eps: float):
        name = f"hearth_{prologue}{'_add' if residual else ''}_{gemv.name_hint}"
        if prologue == "rms_norm":
            name += f"_eps{eps:.3g}".replace(".", "p").replace("-", "m")
        if name not in self.kernels:
            prim = self.mod[gemv]
            built = staged_gemv.rebuild_or_none(
                prim, prologue, residual, eps, self.rows, self.max_staged_bytes, self.prefetch, self.multirow
            )
            if built is None:
                return None
            # opaque: FuseOps must not merge a neighbour into this scheduled kernel
            self.kernels[name] = self.builder.add_func(built.with_attr("op_pattern", 8), name)
        return self.kernels[name]

    def gemv_call(self, call: relax.Expr) -> tuple[relax.GlobalVar, list[relax.Expr], object] | None:
        """(callee, weights, output type) of a single-token hearth.quant GEMV call, else None."""
        if not isinstance(call, relax.Call) or not isinstance(call.args[0], relax.GlobalVar):
            return None
        gv = call.args[0]
        if not gv.name_hint.startswith("dequantize_NT_matmul") or len(call.ty_args) != 1:
            return None
        if _static_act(call.ty_args[0]) is None:
            return None
        return gv, list(call.args[1].fields[1:]), call.ty_args[0]

    def rms(self, n_weights: int) -> tuple[DFPattern, object]:
        x, g = wildcard(), wildcard()
        norm = is_op("relax.nn.rms_norm")(x, g)
        pat = is_op("relax.call_tir")(wildcard(), is_tuple([norm] + [wildcard() for _ in range(n_weights)]))

        def rewrite(expr: relax.Expr, m: dict[DFPattern, relax.Expr]) -> relax.Expr:
            found = self.gemv_call(expr)
            nrm = m[norm]
            act = _static_act(m[x].ty)
            if found is None or act is None or [int(a) for a in nrm.attrs.axes] not in ([-1], [2]):
                return expr
            if str(getattr(m[g].ty, "dtype", None)) != act[0]:  # the kernel reads the norm weight in x's dtype
                return expr
            gv, weights, out_ty = found
            kernel = self.kernel(gv, "rms_norm", False, float(nrm.attrs.epsilon))
            if kernel is None:
                return expr
            return relax.call_tir(kernel, relax.Tuple([m[x], m[g], *weights]), out_ty)

        return pat, rewrite

    def swiglu(self, n_weights: int, residual: str) -> tuple[DFPattern, object]:
        gu = wildcard()
        parts = is_op("relax.split")(gu)
        gated = is_op("relax.multiply")(
            is_op("relax.nn.silu")(is_tuple_get_item(parts, 0)), is_tuple_get_item(parts, 1)
        )
        gemv = is_op("relax.call_tir")(wildcard(), is_tuple([gated] + [wildcard() for _ in range(n_weights)]))
        res = wildcard()
        pat = {"": gemv, "left": is_op("relax.add")(res, gemv), "right": is_op("relax.add")(gemv, res)}[residual]

        def rewrite(expr: relax.Expr, m: dict[DFPattern, relax.Expr]) -> relax.Expr:
            found = self.gemv_call(m[gemv])
            split = m[parts]
            act = _static_act(m[gu].ty)
            sections = split.attrs.indices_or_sections
            halves = isinstance(sections, tvm.tirx.IntImm) and int(sections) == 2
            if found is None or act is None or not halves or int(split.attrs.axis) not in (-1, 2) or act[1][2] % 2:
                return expr
            gv, weights, out_ty = found
            extra = []
            if residual:
                if _static_act(m[res].ty) != _static_act(out_ty):
                    return expr
                extra = [m[res]]
            kernel = self.kernel(gv, "swiglu", bool(residual), 0.0)
            if kernel is None:
                return expr
            return relax.call_tir(kernel, relax.Tuple([m[gu], *weights, *extra]), out_ty)

        return pat, rewrite

    def rewrite(self, func: relax.Function) -> relax.Function:
        for n in (4, 3, 2, 1):  # weight, scale[, min][, bias]: depends on the quantization scheme
            for residual in ("left", "right", ""):  # the larger match first: the residual add goes in too
                func = rewrite_call(*self.swiglu(n, residual), func)
            func = rewrite_call(*self.rms(n), func)
        return relax.analysis.remove_all_unused(func)


def _staged_mode(mode: str) -> tuple[int, int, bool, int] | None:
    """(rows per workgroup, staged bytes, prefetch, rows per thread) of a "staged[-r<N>][-b<BYTES>][-p[-m<R>]]"
    mode, None for other modes."""
    parts = mode.split("-")
    if parts[0] != "staged":
        return None
    rows, max_bytes = staged_gemv.TS_MAX, staged_gemv.MAX_STAGED_BYTES
    rest = parts[1:]
    if rest and rest[0][:1] == "r":
        if not (rest[0][1:].isdigit() and 1 <= int(rest[0][1:]) <= staged_gemv.TS_MAX):
            return None
        rows, rest = int(rest[0][1:]), rest[1:]
    if rest and rest[0][:1] == "b":
        if not (rest[0][1:].isdigit() and 0 < int(rest[0][1:]) <= staged_gemv.MAX_STAGED_BYTES):
            return None
        max_bytes, rest = int(rest[0][1:]), rest[1:]
    prefetch = rest[:1] == ["p"]
    multirow = 1
    if prefetch:
        rest = rest[1:]
        if rest and rest[0][:1] == "m":
            if rest[0][1:] not in ("1", "2", "4", "8"):
                return None
            multirow, rest = int(rest[0][1:]), rest[1:]
    return None if rest else (rows, max_bytes, prefetch, multirow)


def _staged_pass(rows: int, max_staged_bytes: int, prefetch: bool, multirow: int) -> tvm.transform.Pass:
    @tvm.transform.module_pass(opt_level=0, name="HearthStagedDecodeFusion")
    def run(mod: tvm.ir.IRModule, _ctx: tvm.transform.PassContext) -> tvm.ir.IRModule:
        staged = _Staged(mod, rows, max_staged_bytes, prefetch, multirow)
        for gv, func in list(mod.functions_items()):
            if isinstance(func, relax.Function):
                staged.builder.update_func(gv, staged.rewrite(func))
        return staged.builder.get()

    return run
