"""Layers shared by the decoder families that `tvm.relax.frontend.nn` does not provide as-is.

Contract with quantization (`hearth.quant`): every weight-bearing layer here is either an
`nn.Linear` or this `Embedding`, so a quantization `nn.Mutator` can swap them 1:1. A quantized
embedding must implement both `forward` (token lookup) and `lm_head_forward` (tied head).
"""

from __future__ import annotations

from tvm import te, tirx
from tvm.relax.frontend import nn
from tvm.relax.frontend.nn import Tensor, op


class Embedding(nn.Embedding):
    """Token embedding whose table can double as the output projection (tied embeddings)."""

    def lm_head_forward(self, x: Tensor) -> Tensor:
        """logits = x @ weight^T, inputs in the model dtype, accumulated and returned in float32.

        A float16 sum over `hidden_size` products loses ~3 digits, enough to flip greedy
        choices between near-tied tokens; float32 accumulation costs nothing extra in a
        memory-bound GEMV.
        """
        return op.matmul(x, op.permute_dims(self.weight), out_dtype="float32")


def rotary_embedding(
    x: Tensor, positions: Tensor, inv_freq: Tensor, *, heads: int, rotary_dim: int, scale: float = 1.0
) -> Tensor:
    """transformers' rotate_half RoPE, applied in the model (for caches run with RopeMode.NONE).

    x is [b, s, h, d]; heads 0..heads-1 are rotated (q and k heads of a fused q|k|v, v passes
    through), and within a head only the first `rotary_dim` features (partial rotary). `inv_freq`
    has rotary_dim // 2 entries; `scale` multiplies cos and sin (LongRoPE's attention factor).
    Computed in float32 at positions[b * s], as transformers does.
    """
    half = rotary_dim // 2

    def compute(x: te.Tensor, pos: te.Tensor, inv: te.Tensor) -> te.Tensor:
        s = x.shape[1]

        def value(bi, si, hi, di):
            angle = pos[bi * s + si].astype("float32") * inv[tirx.floormod(di, half)]
            partner = tirx.if_then_else(di < half, -x[bi, si, hi, di + half], x[bi, si, hi, di - half])
            rotated = (
                x[bi, si, hi, di].astype("float32") * (tirx.cos(angle) * scale)
                + partner.astype("float32") * (tirx.sin(angle) * scale)
            ).astype(x.dtype)
            return tirx.if_then_else(tirx.all(hi < heads, di < rotary_dim), rotated, x[bi, si, hi, di])

        return te.compute(x.shape, value, name="rotary_embedding")

    return op.tensor_expr_op(compute, "rotary_embedding", [x, positions, inv_freq])
