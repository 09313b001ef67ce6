"""What every text encoder (sentence-embedding model) shares: the pooling recipe read from the
sentence-transformers files, static shape buckets, pooling in Relax, export and metadata.

An encoder package exports one function per static shape bucket, all with packed params:

    embed_b{B}_s{S}(input_ids int32[B, S], attention_mask int32[B, S], params) -> float32[B, hidden]

Rows are right-padded (attention_mask 1 = token, 0 = padding); token_type_ids are all zero
(single-segment input). The output is the pooled sentence embedding, L2-normalised when the
checkpoint says so. Callers pick the smallest bucket that fits and split bigger batches (see
`hearth.native.encoder`). Unused batch rows may be all-padding: they produce finite
garbage (zeros for mean pooling) that the caller drops.

Pooling recipe (`read_pooling_config`): sentence-transformers' modules.json lists the pipeline,
Transformer -> Pooling (1_Pooling/config.json) -> optional Normalize; sentence_bert_config.json
gives max_seq_length. A checkpoint without modules.json gets the DEFAULT: mean pooling + L2
normalisation, with a warning. (sentence-transformers' own fallback is mean pooling without
normalisation; cosine similarity is the same either way, dot products are not.)

Why static buckets and not one dynamic-shape function: WebGPU kernels specialised for a fixed
shape need no shape arithmetic and let TVM plan every buffer at build time; the cost is one
kernel set per bucket (compile time and wasm size grow linearly with the bucket count).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tvm import relax as rx
from tvm.relax.frontend import nn
from tvm.relax.frontend.nn import Tensor, op

from .decoder import UnsupportedConfigError

DEFAULT_BATCH_SIZES = (1, 8, 32)
DEFAULT_SEQ_LENS = (32, 64, 128, 256, 512)
# WebGPU guarantees only 128 MiB per storage buffer binding (maxStorageBufferBindingSize's
# default limit). A bucket whose largest intermediate (the float32 attention scores
# [B, heads, S, S], or the MLP activation [B, S, intermediate]) exceeds it is not compiled.
MAX_BUFFER_BYTES = 128 << 20

POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len_tokens")
DEFAULT_POOLING = "mean"
DEFAULT_NORMALIZE = True

# sentence-transformers modules (last component of modules.json "type") Hearth can reproduce.
# Dropout is the identity at inference.
_ST_SUPPORTED_MODULES = ("Transformer", "Pooling", "Normalize", "Dropout")


class NoPoolingConfigWarning(UserWarning):
    """The checkpoint has no sentence-transformers config; the default pooling is used."""


# ----------------------------------------------------------------------------------------------
# Pooling recipe


@dataclass(frozen=True)
class PoolingConfig:
    mode: str  # one of POOLING_MODES
    normalize: bool  # L2-normalise the pooled vector
    source: str  # "sentence-transformers" (read from the checkpoint) or "default"
    max_seq_length: int | None = None  # sentence_bert_config.json, if present
    include_prompt: bool = True  # Pooling's include_prompt (False: prompt tokens are not pooled)
    prompts: dict[str, str] = field(default_factory=dict)  # config_sentence_transformers.json


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UnsupportedConfigError(f"{path} is not valid JSON ({e})") from e


def _pooling_mode(cfg: dict[str, Any], where: Path) -> str:
    """The single pooling mode of a 1_Pooling/config.json (new "pooling_mode" key or the legacy
    pooling_mode_*_tokens booleans)."""
    if "pooling_mode" in cfg:
        modes = cfg["pooling_mode"]
        modes = [modes] if isinstance(modes, str) else list(modes)
    else:
        legacy = {
            "pooling_mode_cls_token": "cls",
            "pooling_mode_mean_tokens": "mean",
            "pooling_mode_max_tokens": "max",
            "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
            "pooling_mode_weightedmean_tokens": "weightedmean",
            "pooling_mode_lasttoken": "lasttoken",
        }
        modes = [mode for key, mode in legacy.items() if cfg.get(key)]
    if len(modes) != 1:
        raise UnsupportedConfigError(
            f"{where} selects pooling modes {modes or 'none'}; Hearth supports exactly one of "
            f"{', '.join(POOLING_MODES)} (sentence-transformers would concatenate several)"
        )
    if modes[0] not in POOLING_MODES:
        raise UnsupportedConfigError(
            f"{where}: pooling mode {modes[0]!r} is not supported; supported: {', '.join(POOLING_MODES)}"
        )
    return modes[0]


def read_pooling_config(folder: Path) -> PoolingConfig:
    """The pooling recipe of a checkpoint folder (see the module docstring); warns when it falls
    back to the default."""
    folder = Path(folder)
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        warnings.warn(
            f"{folder} has no sentence-transformers modules.json: using the default pooling "
            f"({DEFAULT_POOLING} pooling + L2 normalisation). If the model was trained for CLS pooling "
            "or without normalisation, add its modules.json and 1_Pooling/config.json.",
            NoPoolingConfigWarning,
            stacklevel=2,
        )
        bert_cfg = folder / "sentence_bert_config.json"
        max_len = _read_json(bert_cfg).get("max_seq_length") if bert_cfg.is_file() else None
        return PoolingConfig(DEFAULT_POOLING, DEFAULT_NORMALIZE, "default", int(max_len) if max_len else None)

    modules = _read_json(modules_file)
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    unsupported = [m.get("type") for m, kind in zip(modules, kinds) if kind not in _ST_SUPPORTED_MODULES]
    if unsupported:
        raise UnsupportedConfigError(
            f"{modules_file} uses sentence-transformers modules {unsupported} that Hearth does not implement; "
            "supported pipelines are Transformer -> Pooling -> (Normalize)"
        )
    if "Transformer" not in kinds or "Pooling" not in kinds:
        raise UnsupportedConfigError(f"{modules_file} must list a Transformer and a Pooling module, got {kinds}")
    if kinds.index("Pooling") < kinds.index("Transformer") or (
        "Normalize" in kinds and kinds.index("Normalize") < kinds.index("Pooling")
    ):
        raise UnsupportedConfigError(f"{modules_file}: expected Transformer -> Pooling -> Normalize order, got {kinds}")

    def module_dir(kind: str) -> Path:
        return folder / modules[kinds.index(kind)].get("path", "")

    pooling_file = module_dir("Pooling") / "config.json"
    if not pooling_file.is_file():
        raise UnsupportedConfigError(f"{modules_file} lists a Pooling module but {pooling_file} is missing")
    pooling_cfg = _read_json(pooling_file)
    mode = _pooling_mode(pooling_cfg, pooling_file)

    bert_cfg = module_dir("Transformer") / "sentence_bert_config.json"
    max_len = _read_json(bert_cfg).get("max_seq_length") if bert_cfg.is_file() else None
    st_cfg = folder / "config_sentence_transformers.json"
    prompts = (_read_json(st_cfg).get("prompts") or {}) if st_cfg.is_file() else {}
    return PoolingConfig(
        mode=mode,
        normalize="Normalize" in kinds,
        source="sentence-transformers",
        max_seq_length=int(max_len) if max_len else None,
        include_prompt=bool(pooling_cfg.get("include_prompt", True)),
        prompts={str(k): str(v) for k, v in prompts.items()},
    )


# ----------------------------------------------------------------------------------------------
# Shape buckets


@dataclass(frozen=True, order=True)
class Bucket:
    batch: int
    seq: int

    @property
    def name(self) -> str:
        return f"embed_b{self.batch}_s{self.seq}"


def make_buckets(
    max_seq_length: int,
    *,
    num_attention_heads: int,
    intermediate_size: int,
    batch_sizes: Sequence[int] | None = None,
    seq_lens: Sequence[int] | None = None,
    max_buffer_bytes: int = MAX_BUFFER_BYTES,
) -> list[Bucket]:
    """batch_sizes x seq_lens, sequence lengths capped at max_seq_length (which is always one of
    them, so every text that fits the model fits a bucket), minus buckets whose largest buffer
    exceeds max_buffer_bytes. Batch 1 at max_seq_length is always kept."""
    batch_sizes = sorted(set(int(b) for b in (batch_sizes or DEFAULT_BATCH_SIZES)))
    seq_lens = sorted(set(int(s) for s in (seq_lens or DEFAULT_SEQ_LENS)))
    if not batch_sizes or batch_sizes[0] < 1 or not seq_lens or seq_lens[0] < 2:
        raise ValueError(f"bucket batch sizes must be >= 1 and sequence lengths >= 2, got {batch_sizes} x {seq_lens}")
    seqs = sorted({s for s in seq_lens if s <= max_seq_length} | {max_seq_length})
    if 1 not in batch_sizes:
        batch_sizes = [1, *batch_sizes]  # any single text must be embeddable

    def largest_buffer(b: int, s: int) -> int:
        return max(b * num_attention_heads * s * s * 4, b * s * intermediate_size * 4)

    buckets = [Bucket(b, s) for s in seqs for b in batch_sizes if b == 1 or largest_buffer(b, s) <= max_buffer_bytes]
    return sorted(buckets, key=lambda k: (k.seq, k.batch))


# ----------------------------------------------------------------------------------------------
# Pooling in Relax


def pool(hidden: Tensor, attention_mask: Tensor, mode: str, normalize: bool) -> Tensor:
    """[B, S, H] token states + [B, S] int mask -> [B, H] float32, as sentence-transformers'
    Pooling (+ Normalize) computes it; always in float32."""
    h = hidden.astype("float32") if hidden.dtype != "float32" else hidden
    b, s, d = h.shape
    m = op.reshape(attention_mask.astype("float32"), (b, s, 1))
    if mode == "cls":
        # First token ([CLS]); rows are right-padded, so it is the first unmasked one.
        pooled = op.reshape(op.take(h, Tensor.from_const(np.array([0], "int32")), axis=1), (b, d))
    elif mode == "max":
        lowest = Tensor.from_scalar(-3.4028234663852886e38, "float32")
        pooled = op.max(op.where(op.greater(m, Tensor.from_scalar(0.0, "float32")), h, lowest), axis=1)
    elif mode in ("mean", "mean_sqrt_len_tokens"):
        total = op.sum(h * m, axis=1)  # [B, H]
        count = op.maximum(op.sum(m, axis=1), Tensor.from_scalar(1e-9, "float32"))  # [B, 1]
        pooled = total / (count if mode == "mean" else op.sqrt(count))
    else:
        raise UnsupportedConfigError(f"pooling mode {mode!r} is not supported")
    if normalize:
        # torch.nn.functional.normalize: x / max(||x||, 1e-12)
        norm = op.sqrt(op.sum(op.square(pooled), axis=-1, keepdims=True))
        pooled = pooled / op.maximum(norm, Tensor.from_scalar(1e-12, "float32"))
    return pooled


def attention_bias(attention_mask: Tensor) -> Tensor:
    """[B, S] int mask -> [B, 1, 1, S] float32 additive bias: 0 for tokens, -1e9 for padding
    (exp underflows to exactly 0; unlike -inf, an all-padding row stays finite)."""
    b, s = attention_mask.shape
    m = attention_mask.astype("float32")
    bias = (m - Tensor.from_scalar(1.0, "float32")) * Tensor.from_scalar(1e9, "float32")
    return op.reshape(bias, (b, 1, 1, s))


# ----------------------------------------------------------------------------------------------
# Export and metadata


def bucket_spec(model: nn.Module, buckets: Sequence[Bucket]) -> nn.spec.ModuleSpec:
    """One `embed_b{B}_s{S}` function per bucket, each `model.embed` at static shapes."""
    names, specs = [], []
    for k in buckets:
        raw = {
            "input_ids": nn.spec.Tensor([k.batch, k.seq], "int32"),
            "attention_mask": nn.spec.Tensor([k.batch, k.seq], "int32"),
            "$": {"param_mode": "packed", "effect_mode": "none"},
        }
        names.append(k.name)
        specs.append(nn.spec.MethodSpec.from_raw(raw, model.embed))
    return nn.spec.ModuleSpec(model, names, specs)


def export_encoder(model: nn.Module, target: Any = None):
    """(IRModule, named_params) of an encoder; named_params is the packed-params order.

    `target` is accepted for symmetry with `export_model`: encoders embed no target-specific
    kernels at export time.
    """
    mod, named_params = model.export_tvm(spec=model.get_default_spec())
    # x @ W^T without materialising W^T per call (see export_model).
    mod = rx.transform.FuseTransposeMatmul()(mod)
    return mod, named_params


def encoder_metadata(config: Any, quantization: str = "q0f32", named_params=None) -> dict[str, Any]:
    """The `_metadata`-like description of an encoder package (goes into mlc-chat-config.json
    as "embedding_metadata"; "params" goes to the top level like for decoders)."""
    params = []
    for name, param in named_params or []:
        shape = [int(s) if isinstance(s, int) else str(s) for s in param.shape]
        params.append({"name": name, "shape": shape, "dtype": param.dtype, "preprocs": []})
    p = config.pooling
    return {
        "model_type": config.model_type,
        "model_task": "embedding",
        "quantization": quantization,
        "hidden_size": config.hidden_size,
        "max_seq_length": config.max_seq_length,
        "pooling": p.mode,
        "normalize": p.normalize,
        "pooling_source": p.source,
        "include_prompt": p.include_prompt,
        "prompts": dict(p.prompts),
        "output_dtype": "float32",
        "padding_side": "right",
        "token_type_ids": "zeros",
        "buckets": [{"function": k.name, "batch_size": k.batch, "seq_len": k.seq} for k in config.buckets],
        "inputs": {
            "input_ids": "int32[batch_size, seq_len]",
            "attention_mask": "int32[batch_size, seq_len], 1 = token, 0 = padding (right-padded)",
        },
        "truncation": (
            f"callers truncate to max_seq_length ({config.max_seq_length}) tokens including [CLS]/[SEP]; "
            "tokenizer.json's own truncation/padding settings are not used"
        ),
        "params": params,
    }


__all__ = [
    "Bucket",
    "DEFAULT_BATCH_SIZES",
    "DEFAULT_SEQ_LENS",
    "MAX_BUFFER_BYTES",
    "NoPoolingConfigWarning",
    "PoolingConfig",
    "attention_bias",
    "bucket_spec",
    "encoder_metadata",
    "export_encoder",
    "make_buckets",
    "pool",
    "read_pooling_config",
]
