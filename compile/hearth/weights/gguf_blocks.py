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
  Every value is exact, and code * scale + min in float32 equals gguf.dequantize bit for bit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import HearthError
from ..quant import BlockCodes, QuantScheme
from .reader import CheckpointError
from .source import ModelSource

# Block types the _gguf schemes carry: name -> (code width, bytes per block of 32).
CARRIED_TYPES: dict[str, tuple[int, int]] = {"Q4_0": (4, 18), "Q4_1": (4, 20), "Q8_0": (8, 34)}
FLOAT_TYPES = ("F32", "F16", "BF16")
QK = 32


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
    bad = sorted(t for t in types if t not in CARRIED_TYPES and t not in FLOAT_TYPES)
    if bad:
        raise GGUFCarryError(
            f"{source.gguf.get('file', gguf_path(source).name)} holds "
            f"{', '.join(f'{t} ({types[t]} tensors)' for t in bad)}, "
            f"which {scheme.name} cannot carry over exactly. {scheme.name} carries {', '.join(CARRIED_TYPES)} blocks "
            f"(and {', '.join(FLOAT_TYPES)} tensors); use {_alternatives(scheme)}."
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
    wide = [
        f"{t.name} ({t.tensor_type.name})"
        for t in tensors
        if t.tensor_type.name in CARRIED_TYPES
        and CARRIED_TYPES[t.tensor_type.name][0] > scheme.layer_bits(_role(t.name))  # type: ignore[arg-type]
    ]
    if wide:
        wider = scheme.name.replace("q4", "q8", 1)
        raise GGUFCarryError(
            f"{path.name}: {len(wide)} tensors hold 8-bit blocks where {scheme.name} keeps "
            f"{scheme.bits}-bit codes, e.g. "
            f"{', '.join(wide[:3])}; use {wider} (8-bit Linears, carried exactly) or {_alternatives(scheme)}."
        )


def block_codes(raw: np.ndarray, type_name: str) -> BlockCodes:
    """Raw GGUF blocks uint8 [rows, bytes] of a carried type -> BlockCodes [rows, K]."""
    if type_name not in CARRIED_TYPES:
        raise GGUFCarryError(f"{type_name} blocks cannot be carried over; carried types: {', '.join(CARRIED_TYPES)}")
    _, size = CARRIED_TYPES[type_name]
    raw = np.asarray(raw, dtype=np.uint8)
    rows = raw.shape[0] if raw.ndim > 1 else 1
    raw = raw.reshape(rows, -1)
    if raw.shape[1] % size:
        raise GGUFCarryError(f"{type_name} row of {raw.shape[1]} bytes is not whole blocks of {size} bytes")
    nb = raw.shape[1] // size
    b = raw.reshape(rows, nb, size)

    def f16(lo: int) -> np.ndarray:
        return np.ascontiguousarray(b[..., lo : lo + 2]).view(np.float16)[..., 0].astype(np.float32)

    d = f16(0)
    if type_name == "Q8_0":
        codes = b[..., 2:34] ^ np.uint8(0x80)  # int8 q -> q + 128 as uint8
        minimum = np.float32(-128) * d
    else:
        qs = b[..., 4:20] if type_name == "Q4_1" else b[..., 2:18]
        codes = np.concatenate([qs & np.uint8(0x0F), qs >> np.uint8(4)], axis=-1)  # low nibbles = elements 0..15
        minimum = f16(2) if type_name == "Q4_1" else np.float32(-8) * d
    return BlockCodes(np.ascontiguousarray(codes.reshape(rows, nb * QK)), d, minimum, (type_name,))


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
        if kind not in CARRIED_TYPES:
            raise GGUFCarryError(
                f"{name} ({t.name}) is {kind}; the _gguf schemes carry {', '.join(CARRIED_TYPES)} blocks only"
            )
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
