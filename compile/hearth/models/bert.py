"""BERT-family text encoders: BERT, MiniLM, BGE, E5, GTE (model_type "bert"), and RoBERTa /
XLM-RoBERTa (same blocks; positions start after the padding index).

One post-LayerNorm transformer block, applied num_hidden_layers times:

    x = LayerNorm(word[ids] + position[offset + i] + token_type[0])
    x = LayerNorm(x + out(attention(qkv(x), mask)))
    x = LayerNorm(x + down(gelu(up(x))))

then pooling (mean / CLS / max over unmasked tokens) and optional L2 normalisation, as the
checkpoint's sentence-transformers config says (see encoder.py). Exported as one static-shape
function per bucket: embed_b{B}_s{S}(input_ids, attention_mask, params) -> float32[B, hidden].

Numerics: matmuls take model-dtype inputs and sum in float32; attention scores, softmax,
LayerNorm and pooling run in float32 also for float16 models (an f16 softmax/variance over
hundreds of tokens loses ~3 digits); activations between layers are in the model dtype.
Refused (UnsupportedConfigError): relative position embeddings, decoders / cross-attention,
activations other than exact GELU. Other encoder architectures (MPNet,
DistilBERT, NomicBERT, GTE-v1.5 "new", ModernBERT, ...) are not registered: the registry
refuses them by model_type.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from tvm.relax.frontend import nn
from tvm.relax.frontend.nn import Tensor, op

from .config_checks import UnsupportedConfigError, config_float, config_int
from .encoder import (
    Bucket,
    PoolingConfig,
    attention_bias,
    bucket_spec,
    make_buckets,
    pool,
    read_pooling_config,
)
from .layers import Embedding
from .param_source import ParamSource, one, rows

# ----------------------------------------------------------------------------------------------
# Configuration


@dataclass
class BertConfig:
    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    layer_norm_eps: float
    max_position_embeddings: int
    type_vocab_size: int
    # Position ids are offset + 0..S-1: 0 for BERT; pad_token_id + 1 for RoBERTa, whose
    # positions count from after the padding index. HF RoBERTa numbers only tokens != pad id,
    # so the two agree for right-padded rows unless a text holds the literal pad token
    # ("<pad>" in the text), which HF then skips in the numbering and Hearth does not.
    position_offset: int
    max_seq_length: int  # longest input, [CLS] and [SEP] included (the largest bucket)
    pooling: PoolingConfig
    buckets: list[Bucket]
    # Checkpoint tensor names are "<prefix>embeddings.word_embeddings.weight", ...: "" for a saved
    # BertModel, "bert." / "roberta." for the *For{MaskedLM,...} classes.
    weight_prefix: str = ""
    pad_token_id: int = 0

    hf_model_types: ClassVar[tuple[str, ...]] = ("bert", "roberta", "xlm-roberta")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_hf(
        cls,
        config_dict: dict[str, Any],
        source_dir: Path | str | None = None,
        *,
        max_seq_length: int | None = None,
        batch_sizes: list[int] | None = None,
        seq_lens: list[int] | None = None,
        pooling: PoolingConfig | None = None,
        weight_prefix: str | None = None,
    ) -> BertConfig:
        """Parse config.json; `source_dir` (the checkpoint folder) supplies the pooling recipe,
        max_seq_length and the weights' name prefix. Without it: the default pooling (with a
        warning) unless `pooling` is given, and no prefix."""
        cfg = dict(config_dict)
        model_type = cfg.get("model_type", "")
        if model_type not in cls.hf_model_types:
            raise UnsupportedConfigError(
                f"BertConfig reads model_type {', '.join(cls.hf_model_types)}; got {model_type!r}"
            )
        if cfg.get("is_decoder") or cfg.get("add_cross_attention"):
            raise UnsupportedConfigError(
                f"{model_type} checkpoint is configured as a decoder (is_decoder/add_cross_attention); "
                "only encoders are supported"
            )
        pos_type = cfg.get("position_embedding_type", "absolute") or "absolute"
        if pos_type != "absolute":
            raise UnsupportedConfigError(f"position_embedding_type {pos_type!r} is not supported (only 'absolute')")
        act = cfg.get("hidden_act", "gelu")
        if act != "gelu":
            raise UnsupportedConfigError(
                f"hidden_act {act!r} is not supported (only 'gelu', the exact erf GELU of BERT)"
            )
        # Types and ranges are checked before any build work (config_checks).
        hidden, heads = config_int(cfg, "hidden_size"), config_int(cfg, "num_attention_heads")
        if hidden % heads:
            raise UnsupportedConfigError(f"hidden_size {hidden} is not a multiple of num_attention_heads {heads}")
        vocab = config_int(cfg, "vocab_size")
        layers = config_int(cfg, "num_hidden_layers")
        max_positions = config_int(cfg, "max_position_embeddings", minimum=2)
        type_vocab = config_int(cfg, "type_vocab_size", default=2)
        layer_norm_eps = config_float(cfg, "layer_norm_eps", 1e-12)

        pad = config_int(cfg, "pad_token_id", minimum=0, default=0)
        offset = pad + 1 if model_type in ("roberta", "xlm-roberta") else 0
        n_positions = max_positions - offset
        if n_positions < 2:
            raise UnsupportedConfigError(
                f"config.json: max_position_embeddings {max_positions} leaves {n_positions} positions after the "
                f"{model_type} offset (pad_token_id + 1 = {offset}); at least 2 are needed"
            )

        folder = Path(source_dir) if source_dir is not None else None
        if pooling is None:
            if folder is None:
                warnings.warn(
                    "no checkpoint folder given: using the default pooling (mean + L2 normalisation)", stacklevel=2
                )
                pooling = PoolingConfig("mean", True, "default")
            else:
                pooling = read_pooling_config(folder)
        if max_seq_length is None:
            max_seq_length = pooling.max_seq_length or _tokenizer_max_length(folder) or n_positions
            max_seq_length = min(int(max_seq_length), n_positions)
        elif not 2 <= int(max_seq_length) <= n_positions:
            raise UnsupportedConfigError(
                f"max_seq_length {max_seq_length} is outside 2..{n_positions} (the model's position table)"
            )
        max_seq_length = int(max_seq_length)
        if weight_prefix is None:
            weight_prefix = _detect_weight_prefix(folder) if folder is not None else ""

        intermediate = config_int(cfg, "intermediate_size")
        return cls(
            model_type=model_type,
            vocab_size=vocab,
            hidden_size=hidden,
            intermediate_size=intermediate,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            layer_norm_eps=layer_norm_eps,
            max_position_embeddings=max_positions,
            type_vocab_size=type_vocab,
            position_offset=offset,
            max_seq_length=max_seq_length,
            pooling=pooling,
            buckets=make_buckets(
                max_seq_length,
                num_attention_heads=heads,
                intermediate_size=intermediate,
                batch_sizes=batch_sizes,
                seq_lens=seq_lens,
            ),
            weight_prefix=weight_prefix,
            pad_token_id=pad,
        )


def _tokenizer_max_length(folder: Path | None) -> int | None:
    """tokenizer_config.json's model_max_length, when it is a real limit (HF writes 1e30 for 'none')."""
    if folder is None or not (folder / "tokenizer_config.json").is_file():
        return None
    import json

    value = json.loads((folder / "tokenizer_config.json").read_text()).get("model_max_length")
    return int(value) if isinstance(value, (int, float)) and 0 < value < 1_000_000 else None


def _detect_weight_prefix(folder: Path) -> str:
    """The prefix in front of "embeddings.word_embeddings.weight" in the safetensors files
    (reads only their headers). "" when there are no weight files (the loader reports that)."""
    from safetensors import safe_open

    suffix = "embeddings.word_embeddings.weight"
    prefixes = set()
    for f in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(f), framework="np") as handle:
                prefixes |= {k[: -len(suffix)] for k in handle.keys() if k.endswith(suffix)}
        except Exception:  # noqa: BLE001 - a corrupt file is reported by the weights loader
            return ""
    if len(prefixes) > 1:
        raise UnsupportedConfigError(
            f"{folder} holds several encoders ({sorted(prefixes)} + {suffix}); cannot tell which to compile"
        )
    return prefixes.pop() if prefixes else ""


# ----------------------------------------------------------------------------------------------
# Layers


class LayerNorm(nn.Module):
    """LayerNorm with weights in the model dtype, computed in float32."""

    def __init__(self, hidden_size: int, eps: float, dtype: str) -> None:
        self.hidden_size, self.eps = hidden_size, eps
        self.weight = nn.Parameter((hidden_size,), dtype)
        self.bias = nn.Parameter((hidden_size,), dtype)

    def forward(self, x: Tensor) -> Tensor:
        def f32(t: Tensor) -> Tensor:
            return t if t.dtype == "float32" else t.astype("float32")

        y = op.layer_norm(f32(x), self.hidden_size, f32(self.weight), f32(self.bias), eps=self.eps)
        return y if x.dtype == "float32" else y.astype(x.dtype)


class Linear(nn.Linear):
    """nn.Linear that sums in float32 (bias included) and rounds once to the model dtype, like
    the quantized layers (hearth.quant.group); an f16 running sum over 1536 products loses
    digits. The same as nn.Linear for float32 models. Quantization replaces it like nn.Linear."""

    def forward(self, x: Tensor) -> Tensor:
        y = op.matmul(x, op.permute_dims(self.weight), out_dtype="float32")
        if self.bias is not None:
            y = y + (self.bias if self.bias.dtype == "float32" else self.bias.astype("float32"))
        return y if x.dtype == "float32" else y.astype(x.dtype)


class BertEmbeddings(nn.Module):
    def __init__(self, config: BertConfig, dtype: str) -> None:
        h = config.hidden_size
        self.word = Embedding(config.vocab_size, h, dtype=dtype)
        self.position = nn.Embedding(config.max_position_embeddings, h, dtype=dtype)
        self.token_type = nn.Embedding(config.type_vocab_size, h, dtype=dtype)
        # Quantization touches only the word table: the position and segment tables are small
        # and every token reads them, so they stay exact.
        self.position.no_quantization = True
        self.token_type.no_quantization = True
        self.norm = LayerNorm(h, config.layer_norm_eps, dtype)
        self.position_offset = config.position_offset

    def forward(self, input_ids: Tensor) -> Tensor:
        _, s = input_ids.shape
        positions = op.arange(self.position_offset, self.position_offset + s, dtype="int32")
        segment = Tensor.from_const(np.zeros((1,), "int32"))  # token_type_ids are all 0
        x = self.word(input_ids) + self.position(positions) + self.token_type(segment)
        return self.norm(x)


class BertAttention(nn.Module):
    """Bidirectional multi-head attention; q, k, v come out of one fused projection."""

    def __init__(self, config: BertConfig, dtype: str) -> None:
        self.num_heads, self.head_dim = config.num_attention_heads, config.head_dim
        h = config.hidden_size
        self.qkv = Linear(h, 3 * h, bias=True, dtype=dtype)  # rows: [query | key | value]
        self.out = Linear(h, h, bias=True, dtype=dtype)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        b, s, h = x.shape
        n, d = self.num_heads, self.head_dim
        q, k, v = op.split(op.reshape(self.qkv(x), (b, s, 3 * n, d)), 3, axis=2)  # [b, s, n, d] each
        q = op.permute_dims(q, [0, 2, 1, 3])  # [b, n, s, d]
        k = op.permute_dims(k, [0, 2, 3, 1])  # [b, n, d, s]
        v = op.permute_dims(v, [0, 2, 1, 3])  # [b, n, s, d]
        scores = op.matmul(q, k, out_dtype="float32") * Tensor.from_scalar(d**-0.5, "float32") + bias
        probs = op.softmax(scores, axis=-1)
        if x.dtype != "float32":
            probs = probs.astype(x.dtype)
        ctx = op.permute_dims(op.matmul(probs, v), [0, 2, 1, 3])  # [b, s, n, d]
        return self.out(op.reshape(ctx, (b, s, h)))


class BertMLP(nn.Module):
    def __init__(self, config: BertConfig, dtype: str) -> None:
        self.up = Linear(config.hidden_size, config.intermediate_size, bias=True, dtype=dtype)
        self.down = Linear(config.intermediate_size, config.hidden_size, bias=True, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(op.gelu(self.up(x)))


class BertLayer(nn.Module):
    def __init__(self, config: BertConfig, dtype: str) -> None:
        eps = config.layer_norm_eps
        self.attn = BertAttention(config, dtype)
        self.attn_norm = LayerNorm(config.hidden_size, eps, dtype)
        self.mlp = BertMLP(config, dtype)
        self.mlp_norm = LayerNorm(config.hidden_size, eps, dtype)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        x = self.attn_norm(x + self.attn(x, bias))  # post-LN, as in BERT
        return self.mlp_norm(x + self.mlp(x))


class BertModel(nn.Module):
    """The encoder plus pooling; `embed` is what every bucket function runs.

    `target` is unused (no target-specific kernels at export); it keeps the constructor the
    same as the decoders' for the package builder.
    """

    def __init__(self, config: BertConfig, dtype: str = "float32", target: Any = None) -> None:
        if dtype not in ("float32", "float16"):
            raise ValueError(f"dtype must be 'float32' or 'float16', got {dtype!r}")
        self.config, self.dtype = config, dtype
        self.embeddings = BertEmbeddings(config, dtype)
        self.layers = nn.ModuleList([BertLayer(config, dtype) for _ in range(config.num_hidden_layers)])

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Token states [B, S, hidden] (the model dtype)."""
        bias = attention_bias(attention_mask)
        x = self.embeddings(input_ids)
        for layer in self.layers:
            x = layer(x, bias)
        return x

    def embed(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Sentence embeddings [B, hidden] float32."""
        p = self.config.pooling
        return pool(self.forward(input_ids, attention_mask), attention_mask, p.mode, p.normalize)

    def get_default_spec(self) -> nn.spec.ModuleSpec:
        return bucket_spec(self, self.config.buckets)


# ----------------------------------------------------------------------------------------------
# Checkpoint names


def param_map(config: BertConfig) -> dict[str, ParamSource]:
    """Model parameter -> Hugging Face tensor(s) (BertModel / RobertaModel names)."""
    p = config.weight_prefix
    m: dict[str, ParamSource] = {
        "embeddings.word.weight": one(f"{p}embeddings.word_embeddings.weight"),
        "embeddings.position.weight": one(f"{p}embeddings.position_embeddings.weight"),
        "embeddings.token_type.weight": one(f"{p}embeddings.token_type_embeddings.weight"),
        "embeddings.norm.weight": one(f"{p}embeddings.LayerNorm.weight"),
        "embeddings.norm.bias": one(f"{p}embeddings.LayerNorm.bias"),
    }
    for i in range(config.num_hidden_layers):
        hf, ours = f"{p}encoder.layer.{i}", f"layers.{i}"
        for kind in ("weight", "bias"):
            m[f"{ours}.attn.qkv.{kind}"] = rows(*(f"{hf}.attention.self.{x}.{kind}" for x in ("query", "key", "value")))
            m[f"{ours}.attn.out.{kind}"] = one(f"{hf}.attention.output.dense.{kind}")
            m[f"{ours}.attn_norm.{kind}"] = one(f"{hf}.attention.output.LayerNorm.{kind}")
            m[f"{ours}.mlp.up.{kind}"] = one(f"{hf}.intermediate.dense.{kind}")
            m[f"{ours}.mlp.down.{kind}"] = one(f"{hf}.output.dense.{kind}")
            m[f"{ours}.mlp_norm.{kind}"] = one(f"{hf}.output.LayerNorm.{kind}")
    return m


__all__ = ["BertConfig", "BertModel", "param_map"]
