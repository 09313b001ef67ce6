"""Quantization schemes, as data.

The names and parameters are MLC-LLM's (``mlc_llm/quantization/quantization.py``), limited to
the ones Hearth ships:

    q0f32    no quantization, float32 model
    q0f16    no quantization, float16 model
    q4f32_1  group quantization: int4 in uint32 words, 32 weights per group, float32 scales/compute
    q4f16_1  group quantization: int4 in uint32 words, 32 weights per group, float16 scales/compute
    q8f32_1  group quantization: int8 in uint32 words (4 per word), 32 weights per group, f32 scales
    q8f16_1  group quantization: int8 in uint32 words (4 per word), 32 weights per group, f16 scales
    q4f16_mse  q4f16_1's layout and kernels; scales chosen by MSE search + per-row gain correction
    q4f32_mse  the same for q4f32_1
    q4f16_gguf  a GGUF's own block codes carried over (Q4_0, Q4_1, Q8_0), asymmetric group-32, f16
    q4f32_gguf  the same with float32 scales/minimums/compute
    q8f16_gguf / q8f32_gguf  the same with 8-bit Linears, for files with Q5_0 / Q8_0 Linears
    q8f32_gguf_near  q8f32_gguf, but Q6_K tensors re-quantized to 8-bit blocks of 32 (NOT exact)

The q8 schemes are Hearth's (MLC ships no int8 group scheme under these names): the q4 layout
with bits=8, so they reuse the same fused dequantize kernels. Symmetric, grouped rather than per
output channel: 32-element groups along K bound the error by each group's own max|w| (robust to
the outlier input features BERT-style encoders have) for 0.5 (f16) / 1 (f32) extra bits per
weight. Meant for encoders, where q4 costs noticeable embedding accuracy.

The "_mse" schemes are Hearth's (not MLC's): the SAME stored layout, codes and decode as q4f16_1 /
q4f32_1 ((code - 7) * scale, 32-element groups, f16/f32 scales), so the packages cost the same bits
per parameter and run on the same fused dequantize-matmul kernels (WebGPU included); only the
offline choice of each group's scale differs (``scale_method="mse"``, see
``hearth.quant.group._mse_scales``): clip factor per group minimising the group's squared error,
then one gain per output row that restores <w, w_hat> = |w|^2 (clipping alone shrinks rows and
shifts the logit temperature of a tied LM head). No calibration data is needed.

The "_gguf" schemes are Hearth's: they never round a weight. They take the block codes of a GGUF
file (llama.cpp's Q4_0 / Q4_1 / Q8_0: blocks of 32 along K with an f16 scale d, Q4_1 also with an
f16 minimum m) and store them in an asymmetric group-32 layout with the same packing as q4f16_1:
q_weight uint32 (element i of a word at bits bits*i), q_scale and q_min in the model dtype, and
decode w = code * scale + min, computed in float32 for both model dtypes (so an f16 model sees
exactly the f32 values the GGUF dequantizes to; only its activations are f16). Block mapping:
    Q4_1: scale = d, min = m,      4-bit code q
    Q4_0: scale = d, min = -8 d,   4-bit code q
    Q8_0: scale = d, min = -128 d, 8-bit code q + 128
    Q5_0: scale = d, min = -16 d,  5-bit code q (an 8-bit layer)
    Q4_K: per sub-block j of 32: scale = d * sc_j, min = -(dmin * m_j), 4-bit code q (float32 only)
d, m and these minimums are exact in f16 and f32, so the package holds the GGUF's values bit for bit.
Q4_K's d * sc_j (up to 17 significant bits) and dmin * m_j are exact in float32 only, so the f16
schemes refuse K-quants. Q6_K (sub-blocks of 16, w = d * sc_j * (q - 32)) has two scales per group
of 32 and no exact form in this layout: the exact schemes refuse it, and q8f32_gguf_near (named for
what it is) re-quantizes only those tensors' 32-blocks to 8-bit codes between the block's min and
max (error <= 1/510 of the block's range, about 1/8 of Q6_K's own step; blocks whose two scales
admit an exact 8-bit form keep it), everything else carried exactly.
Bits per layer are scheme fields, not read from the file: Linears use `bits` (4); the embedding
table (and tied LM head) and an untied LM head use `embedding_bits` (8), where llama.cpp keeps
more precision (SmolLM2's Q4_1 file: Q8_0 token_embd). A 4-bit block fits the 8-bit layout
exactly, so a file with Q4 embeddings still carries over. An 8-bit block where the scheme has 4
bits (a Q8_0 Linear) needs q8f16_gguf / q8f32_gguf (8-bit Linears); any other block type
(other K-quants, IQ, Q5_1) cannot be carried and is refused with an error pointing at q4f16_1 /
q4f16_mse, which quantize the dequantized weights.
Sizes: Q4_1 linears cost 4 + 2*16/32 = 5.0 bits/param with f16 scales (the GGUF's own), 6.0 with
f32; the Q8_0 table 9.0 / 10.0 (the GGUF: 8.5; q_min is redundant there but keeps one layout).

"_1" is MLC's "NK" weight layout: a Linear weight keeps PyTorch's [out_features=N, in_features=K]
shape and groups run along K (the reduction axis); packed q_weight is [N, K/8], q_scale [N, K/32].
As in MLC, the scale dtype is the model dtype.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import HearthError

__all__ = [
    "QuantScheme",
    "SCHEMES",
    "UnknownQuantizationError",
    "get_scheme",
    "bits_per_param",
]


class UnknownQuantizationError(HearthError, ValueError):
    """Raised for a quantization name that is not in SCHEMES."""

    def __init__(self, name: str, known: Iterable[str]):
        self.name = name
        self.known = tuple(known)
        super().__init__(f"unknown quantization scheme {name!r}; known schemes: {', '.join(self.known)}")


@dataclass(frozen=True)
class QuantScheme:
    """One quantization scheme. Fields not meaningful for kind="none" keep their defaults."""

    name: str
    kind: Literal["none", "group", "gguf"]
    model_dtype: Literal["float16", "float32"]
    bits: int = 0  # bits per quantized element (4 for q4*); 0 for kind="none"; Linears for "gguf"
    group_size: int = 0  # elements sharing one scale, along the grouped axis
    storage_dtype: str = "uint32"  # word the quantized elements are packed into
    linear_weight_layout: Literal["NK"] = "NK"
    quantize_embedding: bool = True  # MLC quantizes the embedding table (and tied lm_head)
    quantize_final_fc: bool = True  # ... and an untied lm_head Linear
    # How q_scale is chosen offline (decode is the same either way): "absmax" = max|w| / max_int
    # (MLC, round-to-nearest); "mse" = clip search + row gain correction (the _mse schemes).
    scale_method: Literal["absmax", "mse"] = "absmax"
    # kind="gguf" only: code width of the embedding table and of an untied LM head (0: `bits`).
    embedding_bits: int = 0
    # kind="gguf" only: GGUF block types with no exact form in the layout that this scheme
    # re-quantizes to its layer width (the scheme's name must say it is not exact: "_near").
    requantized_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("none", "group", "gguf"):
            raise ValueError(f"{self.name}: kind must be 'none', 'group' or 'gguf', got {self.kind!r}")
        if self.is_quantized:
            for b in {self.bits, self.embedding_bits or self.bits}:
                if b <= 0 or self.storage_bits % b or self.group_size % (self.storage_bits // b):
                    raise ValueError(
                        f"{self.name}: {b}-bit elements do not tile {self.storage_dtype} groups of {self.group_size}"
                    )
            if self.scale_method not in ("absmax", "mse"):
                raise ValueError(f"{self.name}: scale_method must be 'absmax' or 'mse', got {self.scale_method!r}")
            if self.linear_weight_layout != "NK":
                raise ValueError(f"{self.name}: only the NK layout is implemented")

    # -- derived quantities (MLC's GroupQuantize.__post_init__) ---------------------------------
    @property
    def is_quantized(self) -> bool:
        return self.kind != "none"

    @property
    def carries_gguf(self) -> bool:
        """True for the schemes that store a GGUF's block codes instead of quantizing floats."""
        return self.kind == "gguf"

    def layer_bits(self, layer: Literal["linear", "embedding", "final_fc"]) -> int:
        """Code width of one kind of layer (see the module docstring for the _gguf schemes)."""
        if layer == "linear" or not self.embedding_bits:
            return self.bits
        return self.embedding_bits

    @property
    def scale_dtype(self) -> str:
        """MLC stores q_scale in the model dtype."""
        return self.model_dtype

    @property
    def storage_bits(self) -> int:
        return np.dtype(self.storage_dtype).itemsize * 8

    @property
    def elems_per_storage(self) -> int:
        """Quantized elements per storage word: 8 for int4 in uint32."""
        return self.storage_bits // self.bits

    @property
    def storage_per_group(self) -> int:
        """Storage words per group: 4 for 32 int4 values in uint32."""
        return self.group_size // self.elems_per_storage

    @property
    def max_int(self) -> int:
        """Largest magnitude of the symmetric signed code: 2**(bits-1) - 1 = 7 for int4."""
        return (1 << (self.bits - 1)) - 1

    @property
    def model_bits(self) -> int:
        return np.dtype(self.model_dtype).itemsize * 8

    def num_groups(self, k: int) -> int:
        """Groups covering k elements (the last one zero-padded when k % group_size != 0)."""
        return math.ceil(k / self.group_size)

    def quantized_shapes(self, shape: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(q_weight shape, q_scale shape) for a weight of `shape`, grouped along its last axis."""
        *lead, k = (int(s) for s in shape)
        g = self.num_groups(k)
        return (*lead, g * self.storage_per_group), (*lead, g)


SCHEMES: dict[str, QuantScheme] = {
    s.name: s
    for s in [
        QuantScheme(name="q0f32", kind="none", model_dtype="float32"),
        QuantScheme(name="q0f16", kind="none", model_dtype="float16"),
        QuantScheme(name="q4f16_1", kind="group", model_dtype="float16", bits=4, group_size=32),
        QuantScheme(name="q4f32_1", kind="group", model_dtype="float32", bits=4, group_size=32),
        QuantScheme(name="q8f16_1", kind="group", model_dtype="float16", bits=8, group_size=32),
        QuantScheme(name="q8f32_1", kind="group", model_dtype="float32", bits=8, group_size=32),
        QuantScheme(name="q4f16_mse", kind="group", model_dtype="float16", bits=4, group_size=32, scale_method="mse"),
        QuantScheme(name="q4f32_mse", kind="group", model_dtype="float32", bits=4, group_size=32, scale_method="mse"),
        QuantScheme(name="q4f16_gguf", kind="gguf", model_dtype="float16", bits=4, group_size=32, embedding_bits=8),
        QuantScheme(name="q4f32_gguf", kind="gguf", model_dtype="float32", bits=4, group_size=32, embedding_bits=8),
        QuantScheme(name="q8f16_gguf", kind="gguf", model_dtype="float16", bits=8, group_size=32, embedding_bits=8),
        QuantScheme(name="q8f32_gguf", kind="gguf", model_dtype="float32", bits=8, group_size=32, embedding_bits=8),
        QuantScheme(
            name="q8f32_gguf_near",
            kind="gguf",
            model_dtype="float32",
            bits=8,
            group_size=32,
            embedding_bits=8,
            requantized_types=("Q6_K",),
        ),
    ]
}


def get_scheme(name: str | QuantScheme) -> QuantScheme:
    """Look a scheme up by name (a QuantScheme passes through)."""
    if isinstance(name, QuantScheme):
        return name
    try:
        return SCHEMES[name]
    except KeyError:
        raise UnknownQuantizationError(name, SCHEMES) from None


def bits_per_param(scheme: QuantScheme | str, shapes: Iterable[Sequence[int]]) -> float:
    """Effective stored bits per original parameter over weights of `shapes`, scales included.

    Every shape is taken as a weight the scheme quantizes (grouped along its last axis, padding
    included, `bits` wide: the _gguf schemes' Linears, with their q_min); for kind="none" it is
    just the model dtype's width. E.g. q4f16_1 on [4096, 4096]:
    (4096*512*32 + 4096*128*16) / 4096**2 = 4 + 16/32 = 4.5.
    """
    scheme = get_scheme(scheme)
    n_params = 0
    n_bits = 0
    for shape in shapes:
        shape = tuple(int(s) for s in shape)
        n_params += math.prod(shape)
        if scheme.is_quantized:
            qw, qs = scheme.quantized_shapes(shape)
            per_group = 2 if scheme.carries_gguf else 1  # q_scale, and q_min for the asymmetric layout
            n_bits += math.prod(qw) * scheme.storage_bits + per_group * math.prod(qs) * scheme.model_bits
        else:
            n_bits += math.prod(shape) * scheme.model_bits
    if n_params == 0:
        raise ValueError("bits_per_param: no parameters")
    return n_bits / n_params
