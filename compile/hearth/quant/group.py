"""MLC-LLM group quantization (q4f16_1 / q4f32_1, q8f16_1 / q8f32_1): numpy codec, TE kernels,
nn layers. Which modules get replaced, and the parameter conversion plan: hearth.quant.plan.

Layout (identical to MLC-LLM ``GroupQuantize`` with ``linear_weight_layout="NK"``; see
``mlc_llm/quantization/group_quantization.py`` and ``utils.py``: ``_quantize``, ``pack_weight``,
``convert_uint_to_float``, ``_dequantize``):

* A weight W[..., K] is grouped along its LAST axis: K of a Linear weight [N, K] (the reduction
  axis), hidden of an Embedding table [vocab, hidden]. Group g covers K indices [32g, 32g+32).
* Per group, computed in the model dtype (f16 for q4f16_1, each op rounded to f16 as MLC's f16
  TIR does):  scale = max|w| / 7;  q = clip(round(w / scale + 7), 0, 14)  (round half to even).
  Dequantized value: (q - 7) * scale, again in the model dtype.
* Packing: 8 codes per uint32, code of element k lands in word k // 8 at bits 4 * (k % 8),
  i.e. the first element in the least significant nibble:
      word = q[0] | q[1] << 4 | q[2] << 8 | ... | q[7] << 28
* q_weight: uint32 [..., ceil(K/32) * 4], q_scale: model dtype [..., ceil(K/32)].
* 8-bit schemes (q8f16_1 / q8f32_1) are the same layout with bits=8: max_int = 127, codes
  clip(round(w / scale + 127), 0, 254), 4 codes per uint32 (element k at bits 8 * (k % 4), the
  first element in the least significant byte), q_weight [..., ceil(K/32) * 8]. The TE decode
  kernel is shared (it is written for any bit width); only the numpy packing differs.
* K not a multiple of 32: padded like MLC. The last group's scale uses only the real elements;
  padded slots hold code 0 in the packed words; dequantization produces exactly K columns.
* scale_method="mse" (q4f16_mse / q4f32_mse) keeps all of the above except how the scale is
  chosen: see _mse_codes (clip search per group, then a gain per row).
* An all-zero group has scale 0. MLC divides 0/0 there (its llvm build then writes code 0); we write
  code 7 (= zero). Both dequantize to zeros. Every other group is bit-identical to MLC's kernel
  (tests/test_quant.py compiles a TE transcription of it and compares).

Kernels: each quantized layer call is emitted as ONE TE PrimFunc ("dequantize" block + consumer
block), the form MLC-LLM's pipeline reaches only through its extra Relax passes
(FuseTransposeMatmul, FuseDequantizeMatmulEwise, FuseDequantizeTake); TVM's generic FuseOps alone
would leave the dequantize as its own kernel writing the full float weight. dlight's GEMV
(decode) / Matmul (prefill) rules inline the decode into the reduction; FuseOps still appends
later elementwise ops (activations, residual adds). Matmuls accumulate in float32, bias included,
and round once to the output dtype (also for f16 models).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tvm import te, tirx
from tvm.relax.frontend import nn

from .schemes import QuantScheme, get_scheme

__all__ = [
    "quantize_weight",
    "unpack_codes",
    "te_dequantize",
    "te_dequantize_matmul_nt",
    "te_dequantize_take",
    "te_matmul_nt",
    "dequantize_weight",
    "GroupQuantLinear",
    "GroupQuantEmbedding",
]

# Rows handled per step of the numpy codec: keeps temporaries cache/RAM friendly.
_CHUNK_ELEMS = 1 << 22


# ----------------------------------------------------------------------------------------------
# numpy codec (offline: weights converter, tests)
# ----------------------------------------------------------------------------------------------
def _require_packed_uint32(scheme: QuantScheme) -> None:
    if scheme.kind != "group":
        hint = (
            " (it stores a GGUF's block codes with a minimum per group: hearth.quant.asym, dequantize_asym)"
            if scheme.carries_gguf
            else ""
        )
        raise ValueError(f"{scheme.name} is not a symmetric group-quantization scheme{hint}")
    if scheme.bits not in (4, 8) or scheme.storage_dtype != "uint32":
        # The numpy packing below handles 4-bit (two per byte) and 8-bit (one per byte) codes.
        raise NotImplementedError(f"{scheme.name}: only 4- and 8-bit codes in uint32 are implemented")


def _round_to(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round float32 intermediates to the model dtype and back (no-op for float32).

    An f16 op (+, -, *, /) on f16 inputs equals the f32 op rounded once to f16 (f32 has
    24 >= 2*11 + 2 bits), so this reproduces MLC's f16 TIR arithmetic exactly.
    """
    if dtype == np.float32:
        return x
    return x.astype(dtype).astype(np.float32)


def _round_f16_inplace(x: np.ndarray) -> np.ndarray:
    """Round float32 values to float16 precision in place (round half to even), staying float32.

    Exact for values in f16's normal range; below it (|x| < 2**-14) it keeps 11 significant bits
    instead of f16's fixed 2**-24 grid. Used only for w/scale (|x| <= 7), whose next step, x + 7,
    rounds any such tiny x away identically. About 4x faster than astype(float16) and back.
    """
    u = x.view(np.uint32)
    lsb = (u >> np.uint32(13)) & np.uint32(1)
    u += np.uint32(0xFFF)
    u += lsb
    u &= np.uint32(0xFFFFE000)
    return x


def _quantize_rows(w: np.ndarray, scheme: QuantScheme, k_pad: int) -> tuple[np.ndarray, np.ndarray]:
    """w: [R, K] already in the model dtype. Returns (packed uint32 [R, k_pad/8], scale [R, G])."""
    mdt = np.dtype(scheme.model_dtype)
    rows, k = w.shape
    gs = scheme.group_size
    max_int = np.float32(scheme.max_int)
    w32 = w.astype(np.float32)
    if k_pad != k:
        w32 = np.concatenate([w32, np.zeros((rows, k_pad - k), np.float32)], axis=1)
    g = w32.reshape(rows, k_pad // gs, gs)
    if scheme.scale_method == "mse":
        codes, scale = _mse_codes(g, scheme, mdt)
        return _pack(codes.reshape(rows, k_pad), scheme, k), scale.astype(mdt)
    scale = _round_to(np.abs(g).max(axis=-1) / max_int, mdt)  # [R, G], exact model-dtype values
    div = np.where(scale == 0, np.float32(1), scale)  # all-zero group: codes become max_int
    t = g / div[..., None]
    if mdt == np.float16:
        _round_f16_inplace(t)
        t += max_int
        _round_f16_inplace(t)
    else:
        t += max_int
    np.rint(t, out=t)  # round half to even, like LLVM's nearbyint for tirx.round
    np.clip(t, 0, 2 * max_int, out=t)
    return _pack(t.reshape(rows, k_pad), scheme, k), scale.astype(mdt)


def _pack(t: np.ndarray, scheme: QuantScheme, k: int) -> np.ndarray:
    """Codes [R, k_pad] (float values in 0..2*max_int) -> packed uint32 [R, k_pad*bits/32]."""
    codes = t.astype(np.uint8)
    if codes.shape[1] != k:
        codes[:, k:] = 0  # MLC's pack_weight writes 0 into slots past K
    if scheme.bits == 4:
        # two codes per byte (even index in the low nibble), four bytes per little-endian uint32:
        # element i of each 8-group ends up at bits 4*i of the word.
        packed_bytes = codes[:, 0::2] | (codes[:, 1::2] << 4)
    else:
        # 8-bit: one code per byte; element i of each 4-group ends up at bits 8*i of the word.
        packed_bytes = codes
    return np.ascontiguousarray(packed_bytes).view("<u4").astype(np.uint32, copy=False)


# Clip factors tried per group by scale_method="mse": scale = factor * max|w| / max_int. 1.0 is
# round-to-nearest's own scale, so each group's error is at most RTN's before the row gain.
_CLIP_GRID = np.linspace(1.0, 0.6, 33, dtype=np.float32)
_ROW_GAIN_LIMITS = (0.5, 2.0)  # a sane bound; measured gains are within a few percent of 1


def _mse_codes(g: np.ndarray, scheme: QuantScheme, mdt: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """scale_method="mse": g [R, G, gs] float32 (model-dtype values) -> (codes [R, G, gs] as
    float32 in 0..2*max_int, scale [R, G] float32 holding model-dtype values).

    1. Per group, the clip factor of _CLIP_GRID whose scale (rounded to the model dtype) gives the
       smallest squared error sum((q * s - w)^2), codes q = clip(round(w / s), -max_int, max_int).
    2. Per row (output channel of a Linear, token of an embedding table), one gain c on all its
       scales with <w, c * w_hat> = |w|^2: the least-squares codes shrink a row (clipped outliers),
       which for a tied LM head lowers the logit temperature and costs perplexity although the
       KL to the reference drops. Codes stay as chosen; only the stored scales change.
    Decoding is the unchanged (code - max_int) * scale, so the kernels are q4f16_1's.
    """
    max_int = np.float32(scheme.max_int)
    amax = np.abs(g).max(axis=-1)  # [R, G]
    best_err = np.full(amax.shape, np.inf, np.float32)
    best_scale = np.zeros(amax.shape, np.float32)
    for factor in _CLIP_GRID:
        s = _round_to(amax * (factor / max_int), mdt)
        div = np.where(s == 0, np.float32(1), s)[..., None]
        t = np.rint(g / div)
        np.clip(t, -max_int, max_int, out=t)
        t *= div
        t -= g
        err = np.einsum("rgk,rgk->rg", t, t)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best_scale = np.where(better, s, best_scale)
    div = np.where(best_scale == 0, np.float32(1), best_scale)[..., None]
    q = np.clip(np.rint(g / div), -max_int, max_int)  # all-zero group: s = 0, q = 0 (code max_int)
    w_hat = q * best_scale[..., None]
    num = np.einsum("rgk,rgk->r", g, g, dtype=np.float64)
    den = np.einsum("rgk,rgk->r", g, w_hat, dtype=np.float64)
    gain = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    gain = np.clip(gain, *_ROW_GAIN_LIMITS).astype(np.float32)
    scale = _round_to(best_scale * gain[:, None], mdt)
    with np.errstate(over="ignore"):
        if not np.all(np.isfinite(scale)):
            raise ValueError(f"{scheme.name}: a scale overflows {mdt} (weights near the dtype's limit)")
    return q + max_int, scale


def quantize_weight(w: np.ndarray, scheme: QuantScheme | str) -> tuple[np.ndarray, np.ndarray]:
    """Group-quantize `w` along its last axis.

    Returns (q_weight uint32 [..., ceil(K/32)*4], q_scale model-dtype [..., ceil(K/32)]).
    `w` is first cast to the scheme's model dtype (MLC quantizes the model-dtype weight).
    """
    scheme = get_scheme(scheme)
    _require_packed_uint32(scheme)
    w = np.asarray(w)
    if w.ndim < 1 or w.shape[-1] == 0:
        raise ValueError(f"cannot group-quantize an array of shape {w.shape}")
    if not np.issubdtype(w.dtype, np.floating):
        raise TypeError(f"expected a floating-point weight, got {w.dtype}")
    mdt = np.dtype(scheme.model_dtype)
    k = w.shape[-1]
    k_pad = scheme.num_groups(k) * scheme.group_size
    w2 = w.reshape(-1, k)
    rows = w2.shape[0]
    qw_shape, qs_shape = scheme.quantized_shapes(w.shape)
    q_weight = np.empty((rows, qw_shape[-1]), np.uint32)
    q_scale = np.empty((rows, qs_shape[-1]), mdt)
    step = max(1, _CHUNK_ELEMS // k_pad)
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        with np.errstate(over="ignore"):  # overflow to inf is reported just below
            chunk = w2[r0:r1].astype(mdt, copy=False)
        if not np.all(np.isfinite(chunk)):
            raise ValueError("weight has non-finite values (after the cast to the model dtype)")
        q_weight[r0:r1], q_scale[r0:r1] = _quantize_rows(chunk, scheme, k_pad)
    return q_weight.reshape(qw_shape), q_scale.reshape(qs_shape)


def unpack_codes(q_weight: np.ndarray, k: int | None = None, bits: int = 4) -> np.ndarray:
    """uint32 [..., W] -> uint8 codes [..., k] (default k = 32*W/bits; bits is 4 or 8)."""
    qw = np.ascontiguousarray(q_weight, dtype=np.uint32)
    b = qw.astype("<u4", copy=False).view(np.uint8)  # [..., 4W] little-endian bytes
    if bits == 8:
        return b.copy() if k is None else b[..., :k].copy()
    if bits != 4:
        raise ValueError(f"unpack_codes: bits must be 4 or 8, got {bits}")
    codes = np.empty((*b.shape[:-1], b.shape[-1] * 2), np.uint8)
    codes[..., 0::2] = b & 0xF
    codes[..., 1::2] = b >> 4
    return codes if k is None else codes[..., :k]


def dequantize_weight(
    q_weight: np.ndarray,
    q_scale: np.ndarray,
    scheme: QuantScheme | str,
    k: int | None = None,
    out_dtype: str | None = None,
) -> np.ndarray:
    """Inverse of quantize_weight: (q - max_int) * scale in the model dtype, [..., k] (k defaults
    to the padded width ceil(K/32)*32; pass the original K to drop the padding)."""
    scheme = get_scheme(scheme)
    _require_packed_uint32(scheme)
    mdt = np.dtype(scheme.model_dtype)
    q_scale = np.asarray(q_scale)
    k_pad = q_scale.shape[-1] * scheme.group_size
    if q_weight.shape[-1] * scheme.elems_per_storage != k_pad or q_weight.shape[:-1] != q_scale.shape[:-1]:
        raise ValueError(f"q_weight {q_weight.shape} and q_scale {q_scale.shape} do not match")
    k = k_pad if k is None else int(k)
    if not (k_pad - scheme.group_size < k <= k_pad):
        raise ValueError(f"k={k} does not fit {q_scale.shape[-1]} groups of {scheme.group_size}")
    lead = q_scale.shape[:-1]
    n_groups = q_scale.shape[-1]
    qw2 = q_weight.reshape(-1, q_weight.shape[-1])
    qs2 = q_scale.reshape(-1, n_groups).astype(np.float32)
    rows = qw2.shape[0]
    out = np.empty((rows, k), mdt)
    # (q - max_int) is exact and (q - max_int) * scale in f32 is exact (<= 8 + 11 significant
    # bits), so one rounding = the f16 product.
    lut = np.arange(1 << scheme.bits, dtype=np.float32) - np.float32(scheme.max_int)
    step = max(1, _CHUNK_ELEMS // k_pad)
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        vals = lut[unpack_codes(qw2[r0:r1], bits=scheme.bits)].reshape(r1 - r0, n_groups, scheme.group_size)
        vals *= qs2[r0:r1, :, None]
        out[r0:r1] = vals.reshape(r1 - r0, k_pad)[:, :k]
    out = out.reshape(*lead, k)
    return out if out_dtype is None else out.astype(out_dtype)


# ----------------------------------------------------------------------------------------------
# TE kernels. Each layer call is ONE PrimFunc whose first block decodes the packed weights and whose
# second block consumes them (NT matmul, or row gather). This is the shape MLC-LLM's pipeline
# reaches only after its own FuseTransposeMatmul / FuseDequantizeMatmulEwise / FuseDequantizeTake
# passes (TVM's FuseOps does not fuse an injective producer into a matmul's input). Emitting it
# directly means the generic pipeline (hearth.build.pipeline) already gives one kernel per layer:
# dlight's GEMV / Matmul rules inline the "dequantize" block into the reduction; FuseOps still fuses
# elementwise epilogues (bias add, activations) behind it.
# ----------------------------------------------------------------------------------------------
_ACC_DTYPE = "float32"  # matmul accumulator (also for f16 models; output cast back to f16)


def _decode(scheme: QuantScheme, q_weight, q_scale, row, j):
    """Model-dtype value of element (row..., j) of a packed weight (MLC's _dequantize)."""
    sdt = scheme.storage_dtype
    mdt = scheme.model_dtype
    word = q_weight(*row, j // scheme.elems_per_storage)
    shift = ((j % scheme.elems_per_storage) * scheme.bits).astype(sdt)
    code = tirx.bitwise_and(tirx.shift_right(word, shift), tirx.const((1 << scheme.bits) - 1, sdt))
    return (code.astype(mdt) - tirx.const(scheme.max_int, mdt)) * q_scale(*row, j // scheme.group_size)


def te_dequantize(scheme: QuantScheme, q_weight: te.Tensor, q_scale: te.Tensor, k: int) -> te.Tensor:
    """[..., K] model-dtype weight from q_weight [..., W] and q_scale [..., G]."""
    out_shape = [*q_weight.shape[:-1], tirx.IntImm("int64", k)]
    return te.compute(
        out_shape,
        lambda *idx: _decode(scheme, q_weight, q_scale, idx[:-1], idx[-1]),
        name="dequantize",
    )


def te_dequantize_matmul_nt(
    scheme: QuantScheme,
    x: te.Tensor,
    q_weight: te.Tensor,
    q_scale: te.Tensor,
    k: int,
    out_dtype: str,
    bias: te.Tensor | None = None,
) -> te.Tensor:
    """y[..., n] = sum_k x[..., k] * dequant(W)[n, k] (+ bias[n]), in float32, then cast once."""
    return te_matmul_nt(x, te_dequantize(scheme, q_weight, q_scale, k), k, out_dtype, bias)


def te_matmul_nt(x: te.Tensor, w: te.Tensor, k: int, out_dtype: str, bias: te.Tensor | None = None) -> te.Tensor:
    """The consumer block of every fused dequantize-matmul: x [..., K] times w [N, K] (a
    "dequantize" compute that dlight inlines), float32 accumulation, bias, one cast."""
    r = te.reduce_axis((0, tirx.IntImm("int64", k)), name="k")
    out_shape = [*x.shape[:-1], w.shape[0]]
    y = te.compute(
        out_shape,
        lambda *idx: te.sum(x(*idx[:-1], r).astype(_ACC_DTYPE) * w(idx[-1], r).astype(_ACC_DTYPE), axis=r),
        name="NT_matmul",
    )
    if bias is None and out_dtype == _ACC_DTYPE:
        return y

    def epilogue(*idx):
        v = y(*idx)
        if bias is not None:
            v = v + bias(idx[-1]).astype(_ACC_DTYPE)
        return v.astype(out_dtype)

    return te.compute(out_shape, epilogue, name="T_add" if bias is not None else "cast")


def te_dequantize_take(
    scheme: QuantScheme, q_weight: te.Tensor, q_scale: te.Tensor, ids: te.Tensor, k: int
) -> te.Tensor:
    """Rows ids[...] of the dequantized table: [*ids.shape, K]. Only the gathered rows are decoded.
    Like relax take in its default mode, out-of-range ids are not checked."""
    out_shape = [*ids.shape, tirx.IntImm("int64", k)]

    def fcompute(*idx):
        row = ids(*idx[:-1]).astype("int64")
        return _decode(scheme, q_weight, q_scale, (row,), idx[-1])

    return te.compute(out_shape, fcompute, name="dequantize_take")


def _check_k(k: Any, what: str) -> int:
    if not isinstance(k, int):
        raise ValueError(f"{what}: the grouped dimension must be a static int, got {k!r}")
    return k


class GroupQuantLinear(nn.Module):
    """nn.Linear with group-quantized weight (params: q_weight, q_scale, optional bias)."""

    def __init__(
        self,
        in_features: int,
        out_features: int | str | tirx.Var,
        scheme: QuantScheme | str,
        bias: bool = True,
        out_dtype: str | None = None,
        bias_dtype: str | None = None,
    ) -> None:
        super().__init__()
        self.scheme = get_scheme(scheme)
        _require_packed_uint32(self.scheme)
        self.in_features = _check_k(in_features, "GroupQuantLinear")
        self.out_features = out_features
        self.out_dtype = out_dtype
        g = self.scheme.num_groups(in_features)
        self.q_weight = nn.Parameter((out_features, g * self.scheme.storage_per_group), self.scheme.storage_dtype)
        self.q_scale = nn.Parameter((out_features, g), self.scheme.scale_dtype)
        if bias:
            self.bias = nn.Parameter((out_features,), bias_dtype or out_dtype or self.scheme.model_dtype)
        else:
            self.bias = None

    @staticmethod
    def from_linear(src: nn.Linear, scheme: QuantScheme | str) -> GroupQuantLinear:
        out_features, in_features = src.weight.shape  # symbolic out_features stays a tirx.Var
        src_bias = getattr(src, "bias", None)
        layer = GroupQuantLinear(
            in_features=in_features,
            out_features=out_features,
            scheme=scheme,
            bias=src_bias is not None,
            out_dtype=src.out_dtype,
            bias_dtype=src_bias.dtype if src_bias is not None else None,
        )
        if layer.bias is not None:
            layer.bias.attrs = dict(src_bias.attrs)
        return layer

    def dequantized_weight(self) -> nn.Tensor:
        """[N, K] model-dtype weight as its own op (for debugging / non-matmul uses)."""
        return nn.op.tensor_expr_op(
            lambda w, s: te_dequantize(self.scheme, w, s, self.in_features),
            name_hint="dequantize",
            args=[self.q_weight, self.q_scale],
        )

    def forward(self, x: nn.Tensor) -> nn.Tensor:
        if x.dtype != self.scheme.model_dtype:
            raise TypeError(f"GroupQuantLinear({self.scheme.name}) got {x.dtype} input")
        out_dtype = self.out_dtype or self.scheme.model_dtype
        if self.bias is None:
            return nn.op.tensor_expr_op(
                lambda xx, w, s: te_dequantize_matmul_nt(self.scheme, xx, w, s, self.in_features, out_dtype),
                name_hint="dequantize_NT_matmul",
                args=[x, self.q_weight, self.q_scale],
            )
        # bias is added to the float32 accumulator, before the single cast to out_dtype
        return nn.op.tensor_expr_op(
            lambda xx, w, s, b: te_dequantize_matmul_nt(self.scheme, xx, w, s, self.in_features, out_dtype, b),
            name_hint="dequantize_NT_matmul_add",
            args=[x, self.q_weight, self.q_scale, self.bias],
        )

    def to(self, dtype: str | None = None) -> None:
        """Packed weights and scales keep their dtypes; only the bias follows (as in MLC)."""
        if self.bias is not None and self.out_dtype is None:
            self.bias.to(dtype=dtype)


class GroupQuantEmbedding(nn.Module):
    """nn.Embedding with a group-quantized table (params: q_weight, q_scale).

    forward(ids) gathers the packed rows and decodes only those (one kernel); lm_head_forward(x)
    computes x @ dequant(table)^T (tied LM head) with float32 logits, like MLC's models.
    """

    def __init__(self, num: int | str | tirx.Var, dim: int, scheme: QuantScheme | str) -> None:
        super().__init__()
        self.scheme = get_scheme(scheme)
        _require_packed_uint32(self.scheme)
        self.num = num
        self.dim = _check_k(dim, "GroupQuantEmbedding")
        g = self.scheme.num_groups(dim)
        self.q_weight = nn.Parameter((num, g * self.scheme.storage_per_group), self.scheme.storage_dtype)
        self.q_scale = nn.Parameter((num, g), self.scheme.scale_dtype)

    @staticmethod
    def from_embedding(src: nn.Embedding, scheme: QuantScheme | str) -> GroupQuantEmbedding:
        num, dim = src.weight.shape
        return GroupQuantEmbedding(num, dim, scheme)

    def forward(self, x: nn.Tensor) -> nn.Tensor:
        if not x.dtype.startswith("int"):
            raise TypeError(f"GroupQuantEmbedding expects integer ids, got {x.dtype}")
        return nn.op.tensor_expr_op(
            lambda w, s, ids: te_dequantize_take(self.scheme, w, s, ids, self.dim),
            name_hint="dequantize_take",
            args=[self.q_weight, self.q_scale, x],
        )

    def lm_head_forward(self, x: nn.Tensor, out_dtype: str = "float32") -> nn.Tensor:
        if x.dtype != self.scheme.model_dtype:
            raise TypeError(f"GroupQuantEmbedding({self.scheme.name}).lm_head_forward got {x.dtype} input")
        return nn.op.tensor_expr_op(
            lambda xx, w, s: te_dequantize_matmul_nt(self.scheme, xx, w, s, self.dim, out_dtype),
            name_hint="dequantize_NT_matmul",
            args=[x, self.q_weight, self.q_scale],
        )

    def to(self, dtype: str | None = None) -> None:
        """Packed tables keep their dtypes."""
