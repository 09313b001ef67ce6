"""A GGUF file's own block codes, by Hugging Face tensor name, for the _gguf carry-over schemes.

`hearth compile file.gguf --quant q4f16_gguf` must not round a weight that the file already
stores quantized: re-quantizing SmolLM2's Q4_1 file with q4f32_1 cost +35.9 % perplexity. This
reader hands the converter each quantized tensor as BlockCodes (codes, scale, minimum per block
of 32; hearth.quant.asym) read from the raw blocks with the `gguf` package, and every float tensor
(norms) as float32, both under the names and in the row order transformers' GGUF loader gives
them, so that the package equals the converted reference folder (weights.gguf_checkpoint) value
for value:

* names: transformers' own map (get_gguf_hf_weights_map over a meta-device model of the config);
* rows: transformers' tensor processor for the architecture (for llama: the reverse of llama.cpp's
  q/k head permutation). It is applied to row indices, so any processor that only reorders rows is
  followed exactly, and one that changes values (it cannot be applied to codes) is refused;
* blocks (gguf-py quants.py layouts, 32 elements along K each):
      Q4_0  d f16, 16 bytes: element j in the low nibble of byte j, j+16 in its high nibble;
            w = d (q - 8)    -> code q, scale d, min -8 d
      Q4_1  d f16, m f16, 16 bytes as Q4_0;  w = d q + m  -> code q, scale d, min m
      Q8_0  d f16, 32 int8 q;  w = d q       -> code q + 128, scale d, min -128 d
      Q5_0  d f16, qh 4 bytes (bit j: element j's 5th bit), qs 16 bytes as Q4_0;
            w = d (q - 16)   -> code q (5 bits: 8-bit layers only), scale d, min -16 d
      Q4_K  super-blocks of 256: d f16, dmin f16, 12 bytes of 6-bit (sc_j, m_j), 128 bytes of q;
            sub-block j of 32: w = (d sc_j) q - dmin m_j -> code q, scale d sc_j, min -(dmin m_j)
  Every value is exact, and code * scale + min in float32 equals gguf.dequantize bit for bit
  (code * scale is exact in float32: at most 11 + 6 + 5 significant bits, so a fused multiply-add
  gives the same sum). The Q5_0 / Q4_K codes are unpacked by gguf's own dequantize_blocks run on
  a copy of the blocks with unit scales (d = 1, sc_j = 1, m_j = 0), so the bit layout is gguf's.
* Q6_K (super-blocks of 256, sub-blocks of 16: w = (d sc_j) (q - 32)) has two scales in each group
  of 32 and no exact form here. Only q8f32_gguf_near takes it (requantize_q6k: each 32-block
  kept exact where its two scales allow an 8-bit code, else re-quantized to 8 bits between its
  min and max); the exact schemes refuse it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import HearthError
from ..quant import BlockCodes, QuantScheme
from .reader import CheckpointError
from .source import ModelSource

# Block types the _gguf schemes carry exactly: name -> (code width, bytes per block, elements per block).
CARRIED_TYPES: dict[str, tuple[int, int, int]] = {
    "Q4_0": (4, 18, 32),
    "Q4_1": (4, 20, 32),
    "Q8_0": (8, 34, 32),
    "Q5_0": (5, 22, 32),
    "Q4_K": (4, 144, 256),
}
# Types a scheme may list in requantized_types (no exact form): name -> (width after, bytes, elements).
REQUANTIZED_TYPES: dict[str, tuple[int, int, int]] = {"Q6_K": (8, 210, 256)}
# Scales / minimums with more significant bits than float16 holds (d * sc_j): float32 schemes only.
F32_ONLY_TYPES = ("Q4_K", "Q6_K")
FLOAT_TYPES = ("F32", "F16", "BF16")
QK = 32
log = logging.getLogger(__name__)


class GGUFCarryError(HearthError, ValueError):
    """The GGUF cannot be carried over by a _gguf scheme; the message names why and what to do."""


def _alternatives(scheme: QuantScheme) -> str:
    f = "f16" if scheme.model_dtype == "float16" else "f32"
    return f"q4{f}_1 or q4{f}_mse (which quantize the dequantized weights again)"


def gguf_path(source: ModelSource) -> Path:
    """The GGUF file a source was converted from (its origin "gguf:<path>")."""
    if not source.origin.startswith("gguf:"):
        raise GGUFCarryError(f"{source.origin} is not a GGUF source")
    return Path(source.origin.removeprefix("gguf:"))


def check_carry_over(scheme: QuantScheme, source: ModelSource) -> None:
    """Fail fast (before any compile work) when `scheme` carries GGUF blocks and `source` cannot
    give them: not a GGUF, or tensors of a type the scheme cannot hold exactly. No-op otherwise."""
    if not scheme.carries_gguf:
        return
    if source.gguf is None or not source.origin.startswith("gguf:"):
        raise GGUFCarryError(
            f"{scheme.name} carries a GGUF file's own block codes over, but {source.origin} is not a GGUF file. "
            f"Pass a .gguf file (or a folder holding one), or use {_alternatives(scheme)} for this checkpoint."
        )
    types = dict(source.gguf.get("tensor_types") or {})
    file = source.gguf.get("file", gguf_path(source).name)
    allowed = (*CARRIED_TYPES, *scheme.requantized_types, *FLOAT_TYPES)
    bad = sorted(t for t in types if t not in allowed)
    if bad:
        near = [t for t in bad if t in REQUANTIZED_TYPES]
        hint = (
            "q8f32_gguf_near (Q6_K's sub-blocks of 16, each with its own scale, have no exact form in the "
            "group-32 layout: it carries everything else exactly and re-quantizes only the Q6_K tensors to 8 bits, "
            "not exact), or "
            if near and len(near) == len(bad)
            else ""
        )
        raise GGUFCarryError(
            f"{file} holds {', '.join(f'{t} ({types[t]} tensors)' for t in bad)}, "
            f"which {scheme.name} cannot carry over exactly. {scheme.name} carries {', '.join(CARRIED_TYPES)} blocks "
            f"(and {', '.join(FLOAT_TYPES)} tensors); use {hint}{_alternatives(scheme)}."
        )
    narrow = sorted(t for t in types if t in F32_ONLY_TYPES)
    if narrow and scheme.model_dtype != "float32":
        f32 = scheme.name.replace("f16", "f32", 1)
        raise GGUFCarryError(
            f"{file} holds {', '.join(f'{t} ({types[t]} tensors)' for t in narrow)}, whose per-sub-block scales "
            f"(d * sc_j) need float32: {scheme.name} stores float16 scales. Use {f32} (or a q8f32 scheme), "
            f"or {_alternatives(scheme)}."
        )
    _check_widths(scheme, gguf_path(source))


def _role(gguf_name: str) -> str:
    """Which of the scheme's layer widths a GGUF tensor lands in (llama.cpp's names)."""
    if gguf_name.startswith("token_embd."):
        return "embedding"
    return "final_fc" if gguf_name.startswith("output.") else "linear"


def _check_widths(scheme: QuantScheme, path: Path) -> None:
    """Every carried block fits the width of the layer it lands in (headers only: cheap)."""
    from gguf import GGUFReader

    try:
        tensors = GGUFReader(str(path)).tensors
    except Exception as e:  # noqa: BLE001 - memmap/struct/ValueError for damaged files
        raise CheckpointError(
            f"{path.name} is not a readable GGUF file ({type(e).__name__}: {e}); it is truncated or corrupt"
        ) from e
    widths = {**CARRIED_TYPES, **{t: REQUANTIZED_TYPES[t] for t in scheme.requantized_types}}
    wide = [
        (t.name, t.tensor_type.name, widths[t.tensor_type.name][0])
        for t in tensors
        if t.tensor_type.name in widths and widths[t.tensor_type.name][0] > scheme.layer_bits(_role(t.name))  # type: ignore[arg-type]
    ]
    if wide:
        wider = scheme.name.replace("q4", "q8", 1)
        bits = "/".join(str(b) for b in sorted({b for *_, b in wide}))
        raise GGUFCarryError(
            f"{path.name}: {len(wide)} tensors hold {bits}-bit blocks where {scheme.name} keeps "
            f"{scheme.bits}-bit codes, e.g. "
            f"{', '.join(f'{n} ({k})' for n, k, _ in wide[:3])}; use {wider} (8-bit Linears, carried exactly) "
            f"or {_alternatives(scheme)}."
        )


def block_codes(raw: np.ndarray, type_name: str) -> BlockCodes:
    """Raw GGUF blocks uint8 [rows, bytes] of a carried type -> BlockCodes [rows, K], exactly.
    (Q6_K, which has no exact form, goes through requantize_q6k instead.)"""
    if type_name not in CARRIED_TYPES:
        raise GGUFCarryError(
            f"{type_name} blocks cannot be carried over; carried types: {', '.join(CARRIED_TYPES)}"
            + (" (Q6_K: q8f32_gguf_near re-quantizes it, requantize_q6k)" if type_name in REQUANTIZED_TYPES else "")
        )
    _, size, _ = CARRIED_TYPES[type_name]
    raw = np.asarray(raw, dtype=np.uint8)
    rows = raw.shape[0] if raw.ndim > 1 else 1
    raw = raw.reshape(rows, -1)
    if raw.shape[1] % size:
        raise GGUFCarryError(f"{type_name} row of {raw.shape[1]} bytes is not whole blocks of {size} bytes")
    nb = raw.shape[1] // size
    b = raw.reshape(rows, nb, size)

    def f16(lo: int) -> np.ndarray:
        return np.ascontiguousarray(b[..., lo : lo + 2]).view(np.float16)[..., 0].astype(np.float32)

    if type_name in ("Q5_0", "Q4_K"):
        return _unit_scale_codes(b, type_name)
    d = f16(0)
    if type_name == "Q8_0":
        codes = b[..., 2:34] ^ np.uint8(0x80)  # int8 q -> q + 128 as uint8
        minimum = np.float32(-128) * d
    else:
        qs = b[..., 4:20] if type_name == "Q4_1" else b[..., 2:18]
        codes = np.concatenate([qs & np.uint8(0x0F), qs >> np.uint8(4)], axis=-1)  # low nibbles = elements 0..15
        minimum = f16(2) if type_name == "Q4_1" else np.float32(-8) * d
    return BlockCodes(np.ascontiguousarray(codes.reshape(rows, nb * QK)), d, minimum, (type_name,))


def _f16(b: np.ndarray, lo: int) -> np.ndarray:
    return np.ascontiguousarray(b[..., lo : lo + 2]).view(np.float16)[..., 0].astype(np.float32)


# Q4_K's 12 scale bytes giving sc_j = 1 and m_j = 0 for all 8 sub-blocks (gguf's Q4_K.get_scale_min layout:
# bytes 0-3 low 6 bits = sc_0..3, bytes 4-7 = m_0..3, bytes 8-11 low nibble = sc_4..7, high nibble = m_4..7).
_Q4K_UNIT_SCALES = np.array([1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1], np.uint8)
_F16_ONE = np.array([1.0], np.float16).view(np.uint8)


def _unit_codes(b: np.ndarray, type_name: str) -> np.ndarray:
    """The integer codes of blocks b [rows, nb, bytes], unpacked by gguf's own dequantize_blocks on
    a copy with unit scales and zero minimums (exact small integers in float32)."""
    from gguf import quants

    unit = b.copy()
    unit[..., 0:2] = _F16_ONE  # d (all three types keep a leading f16 d, except Q6_K: last)
    if type_name == "Q4_K":
        unit[..., 2:4] = 0  # dmin
        unit[..., 4:16] = _Q4K_UNIT_SCALES
        offset = 0
    elif type_name == "Q5_0":
        offset = 16
    else:  # Q6_K: ql 128, qh 64, int8 scales 16, d f16
        unit[..., 0:2] = b[..., 0:2]  # undo: the first bytes are ql there
        unit[..., 192:208] = 1
        unit[..., 208:210] = _F16_ONE
        offset = 32
    per_block = {"Q5_0": 32, "Q4_K": 256, "Q6_K": 256}[type_name]
    cls = getattr(quants, type_name)
    vals = cls.dequantize_blocks(unit.reshape(-1, unit.shape[-1]))
    codes = vals.reshape(b.shape[0], b.shape[1] * per_block) + np.float32(offset)
    return codes.astype(np.uint8)


def _unit_scale_codes(b: np.ndarray, type_name: str) -> BlockCodes:
    rows, nb = b.shape[:2]
    codes = _unit_codes(b, type_name)
    d = _f16(b, 0)
    if type_name == "Q5_0":
        return BlockCodes(codes, d, np.float32(-16) * d, (type_name,))
    from gguf.quants import Q4_K

    sc, m = Q4_K.get_scale_min(np.ascontiguousarray(b[..., 4:16]).reshape(-1, 12))
    # gguf: d = d * sc, dm = dmin * m (float32), w = d * q - dm; code * scale + (-dm) is the same sum.
    scale = (d.reshape(-1, 1) * sc.astype(np.float32)).reshape(rows, nb * 8)
    minimum = -(_f16(b, 2).reshape(-1, 1) * m.astype(np.float32)).reshape(rows, nb * 8)
    return BlockCodes(codes, scale, minimum, (type_name,))


def requantize_q6k(raw: np.ndarray) -> tuple[BlockCodes, dict[str, float]]:
    """Q6_K blocks uint8 [rows, bytes] -> 8-bit BlockCodes [rows, K] in groups of 32, NOT exact in
    general, and stats of the error against gguf.dequantize.

    Each group of 32 holds two Q6_K sub-blocks w = s_a (q - 32), s_b (q - 32) with s = d * sc. With
    g = gcd(|sc_a|, |sc_b|) the values are (d g) n for integers n = (sc / g)(q - 32); when n spans at
    most 255 and code * scale + min reproduces every value in float32 (checked, with the product
    exact so a fused multiply-add agrees) the group is kept exactly: code n - min n, scale d g. Other
    groups are re-quantized: min = the group's minimum (kept exactly), scale = range / 255, code =
    round((w - min) / scale): error <= scale / 2."""
    from gguf.quants import Q6_K

    _, size, _ = REQUANTIZED_TYPES["Q6_K"]
    raw = np.asarray(raw, dtype=np.uint8)
    rows = raw.shape[0] if raw.ndim > 1 else 1
    raw = raw.reshape(rows, -1)
    if raw.shape[1] % size:
        raise GGUFCarryError(f"Q6_K row of {raw.shape[1]} bytes is not whole blocks of {size} bytes")
    nb = raw.shape[1] // size
    b = raw.reshape(rows, nb, size)
    target = Q6_K.dequantize_blocks(raw.reshape(-1, size)).reshape(-1, QK).astype(np.float32)  # [groups, 32]
    q = _unit_codes(b, "Q6_K").reshape(-1, 2, 16).astype(np.int64) - 32  # [groups, 2 sub-blocks, 16]
    sc = np.ascontiguousarray(b[..., 192:208]).view(np.int8).reshape(-1, 2).astype(np.int64)
    d = np.repeat(_f16(b, 208).reshape(-1), 8).astype(np.float64)  # 8 groups per super-block

    g = np.gcd(np.abs(sc[:, 0]), np.abs(sc[:, 1]))
    safe_g = np.where(g == 0, 1, g)
    n = ((sc // safe_g[:, None])[..., None] * q).reshape(-1, QK)  # exact integers
    n_min, n_max = n.min(axis=1), n.max(axis=1)
    e_scale = (d * g).astype(np.float32)  # d: 11 significant bits, g: 7, exact
    e_min = (e_scale.astype(np.float64) * n_min).astype(np.float32)
    e_code = np.clip(n - n_min[:, None], 0, 255)
    prod = e_code * e_scale.astype(np.float64)[:, None]
    exact = (
        (n_max - n_min <= 255)
        & np.all(prod.astype(np.float32).astype(np.float64) == prod, axis=1)
        & np.all(prod + e_min.astype(np.float64)[:, None] == target.astype(np.float64), axis=1)
    )

    lo, hi = target.min(axis=1), target.max(axis=1)
    r_scale = ((hi.astype(np.float64) - lo) / 255).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        r_code = np.where(r_scale[:, None] > 0, np.rint((target - lo[:, None]) / r_scale[:, None]), 0)
    r_code = np.clip(r_code, 0, 255)

    codes = np.where(exact[:, None], e_code, r_code).astype(np.uint8)
    scale = np.where(exact, e_scale, r_scale).astype(np.float32)
    minimum = np.where(exact, e_min, lo).astype(np.float32)
    blocks = BlockCodes(codes.reshape(rows, nb * 256), scale.reshape(rows, -1), minimum.reshape(rows, -1), ("Q6_K",))
    err = blocks.dequantize().reshape(-1, QK) - target
    stats = {
        "groups": int(exact.size),
        "exact_groups": int(exact.sum()),
        "max_abs_error": float(np.abs(err).max(initial=0.0)),
        "rel_rms_error": float(
            np.sqrt(np.mean(err.astype(np.float64) ** 2) / max(np.mean(target.astype(np.float64) ** 2), 1e-300))
        ),
    }
    return blocks, stats


def combine_blocks(parts: list[BlockCodes], combine: Any) -> BlockCodes:
    """Apply a param map's row combine (concatenation, hearth.models.param_source) field by field."""
    return BlockCodes(
        combine([p.codes for p in parts]),
        combine([p.scale for p in parts]),
        combine([p.minimum for p in parts]),
        tuple(dict.fromkeys(t for p in parts for t in p.types)),
    )


class GGUFBlockReader:
    """HF tensor name -> BlockCodes (carried types) or float32 array (F32/F16/BF16), from a GGUF."""

    def __init__(self, path: Path, hf_folder: Path) -> None:
        from gguf import GGUFReader
        from transformers.modeling_gguf_pytorch_utils import TENSOR_PROCESSORS, TensorProcessor

        self.path = Path(path)
        if not self.path.is_file():
            raise GGUFCarryError(
                f"the GGUF file {self.path} is gone; the _gguf schemes read its blocks: "
                "restore it or compile it again from its new place"
            )
        try:
            self._reader = GGUFReader(str(self.path))
        except Exception as e:  # noqa: BLE001 - memmap/struct/ValueError for damaged files
            raise CheckpointError(
                f"{self.path.name} is not a readable GGUF file ({type(e).__name__}: {e}); it is truncated or corrupt"
            ) from e
        config = json.loads((hf_folder / "config.json").read_text())
        arch = self._field("general.architecture")
        self._processor = TENSOR_PROCESSORS.get(arch, TensorProcessor)(config=config)
        names = _hf_names(hf_folder, self._processor)
        self._tensors: dict[str, Any] = {}
        self.requantized: dict[str, dict[str, float]] = {}  # HF name -> requantize_q6k stats
        for t in self._reader.tensors:
            if t.name in names:
                self._tensors[names[t.name]] = t

    def _field(self, key: str) -> Any:
        f = self._reader.fields.get(key)
        return None if f is None else f.contents()

    def names(self) -> list[str]:
        return list(self._tensors)

    def __contains__(self, name: str) -> bool:
        return name in self._tensors

    def tensor_type(self, name: str) -> str:
        return self._tensors[name].tensor_type.name

    def get(self, name: str) -> np.ndarray | BlockCodes:
        from gguf import dequantize

        if name not in self._tensors:
            raise CheckpointError(f"tensor {name!r} is not in {self.path.name}; is this the right architecture?")
        t = self._tensors[name]
        kind = t.tensor_type.name
        if kind in FLOAT_TYPES:
            w = self._processor.process(weights=dequantize(t.data, t.tensor_type), name=t.name).weights
            return np.asarray(w, dtype=np.float32)
        if kind in REQUANTIZED_TYPES:
            # Only reachable for schemes listing it in requantized_types (check_carry_over refuses it otherwise).
            blocks, stats = requantize_q6k(np.asarray(t.data))
            self.requantized[name] = stats
            log.info("%s (%s): re-quantized to 8 bits, %s", name, kind, stats)
        elif kind not in CARRIED_TYPES:
            raise GGUFCarryError(
                f"{name} ({t.name}) is {kind}; the _gguf schemes carry {', '.join(CARRIED_TYPES)} blocks only"
            )
        else:
            blocks = block_codes(np.asarray(t.data), kind)
        order = self._row_order(t.name, blocks.codes.shape[0])
        if order is None:
            return blocks
        return BlockCodes(blocks.codes[order], blocks.scale[order], blocks.minimum[order], blocks.types)

    def _row_order(self, gguf_name: str, rows: int) -> np.ndarray | None:
        """The row permutation transformers' processor applies to this tensor (None: identity)."""
        index = np.arange(rows, dtype=np.float64).reshape(rows, 1)
        out = np.asarray(self._processor.process(weights=index.copy(), name=gguf_name).weights)
        if out.shape != index.shape or not np.array_equal(np.sort(out[:, 0]), index[:, 0]):
            raise GGUFCarryError(
                f"transformers' {type(self._processor).__name__} changes {gguf_name} beyond reordering its rows; "
                "its blocks cannot be carried over: use q4f16_1 or q4f16_mse"
            )
        order = out[:, 0].astype(np.int64)
        return None if np.array_equal(order, index[:, 0].astype(np.int64)) else order


def _hf_names(hf_folder: Path, processor: Any) -> dict[str, str]:
    """GGUF tensor name -> HF parameter name, by transformers' own map over a meta-device model."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.modeling_gguf_pytorch_utils import get_gguf_hf_weights_map

    cfg = AutoConfig.from_pretrained(hf_folder)
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(cfg)
    return get_gguf_hf_weights_map(skeleton, processor)
