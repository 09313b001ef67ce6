"""Layers shared by the decoder families that `tvm.relax.frontend.nn` does not provide as-is.

Contract with quantization (`hearth.quant`): every weight-bearing layer here is either an
`nn.Linear` or this `Embedding`, so a quantization `nn.Mutator` can swap them 1:1. A quantized
embedding must implement both `forward` (token lookup) and `lm_head_forward` (tied head).
"""

from __future__ import annotations

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
