"""Phi-3 / Phi-3.5-mini (model_type "phi3"; Phi-4-mini uses it too), after transformers'
modeling_phi3.py.

The block is the Llama one (decoder.py), and the checkpoint already fuses q|k|v (`qkv_proj`) and
gate|up (`gate_up_proj`) under the names MLC uses, so every parameter is a checkpoint tensor as-is.
What differs is the rotary embedding, applied here (the KV cache runs with RopeMode.NONE):

- partial rotary: only the first int(head_dim * partial_rotary_factor) features of q and k rotate;
- LongRoPE (rope type "longrope"; "su" and "yarn" are its old names in Phi3Config): every
  frequency is divided by a per-frequency factor, and cos/sin are multiplied by an attention
  factor (attention_factor, else sqrt(1 + ln(factor) / ln(original_max_position_embeddings)) with
  factor = max_position_embeddings / original_max_position_embeddings).

transformers picks short_factor while the sequence is at most original_max_position_embeddings
tokens long and long_factor past it, and on crossing that length it drops the KV cache and
recomputes the whole sequence with the long factors (Phi3ForCausalLM.prepare_inputs_for_generation).
A compiled cache cannot re-rotate what it holds, so Hearth compiles the short factors and a context
of at most original_max_position_embeddings, where transformers uses them for every position; a
longer context is refused (unless both factor lists are equal, when nothing switches). Without
--context-window-size, a LongRoPE checkpoint gets that length as its context (with a warning).

A `sliding_window` shorter than the context (Phi-3-mini-4k: 2047 of 4096) masks every layer to the
window, as Mistral v0.1's does: the KV cache then keeps the window only and slides (decoder.py,
`sequence_window`). Its tokens are renumbered when it slides, so RoPE must be applied by the cache
(RopeMode.NORMAL, re-rotated in the attention kernels); that is plain RoPE over the whole head only,
and a window is refused with LongRoPE or partial rotary (no released checkpoint combines them).

TVM 0.27's own LongRoPE (the KV cache's fused RoPE with rope_ext_factors) is not used: it picks long
or short factors by the length of the current chunk, not by position, and derives the attention
factor from max_position_embeddings alone, ignoring an explicit `factor` or `attention_factor`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from tvm.relax.frontend import nn
from tvm.relax.frontend.nn import Tensor, op
from tvm.relax.frontend.nn.llm.kv_cache import PagedKVCache, RopeMode

from .config_checks import config_float, config_int
from .decoder import DecoderAttention, DecoderConfig, DecoderForCausalLM, DecoderMLP, UnsupportedConfigError
from .layers import Embedding, rotary_embedding
from .param_source import ParamSource, one

# Phi3Config's default when config.json has no top-level original_max_position_embeddings; transformers
# uses the top-level value (or this default) over one inside rope_scaling / rope_parameters.
DEFAULT_ORIGINAL_MAX_POSITIONS = 4096
LONGROPE_ALIASES = ("longrope", "su", "yarn")  # Phi3Config renames "su" and "yarn" to "longrope"


def _refuse(option: str, value: Any, why: str) -> UnsupportedConfigError:
    return UnsupportedConfigError(f"phi3 checkpoint sets {option}={value!r}: {why}")


@dataclass(frozen=True)
class Phi3Rope:
    """The rotary embedding transformers' Phi3RotaryEmbedding computes, from config.json."""

    theta: float
    partial_rotary_factor: float = 1.0
    # LongRoPE only (empty for plain RoPE).
    short_factor: tuple[float, ...] = ()
    long_factor: tuple[float, ...] = ()
    original_max_positions: int = 0
    attention_factor: float = 1.0

    @property
    def longrope(self) -> bool:
        return bool(self.short_factor)

    def rotary_dim(self, head_dim: int) -> int:
        return int(head_dim * self.partial_rotary_factor)

    def inv_freq(self, head_dim: int) -> np.ndarray:
        """1 / (factor_i * theta ** (2i / dim)) in float32, as _compute_longrope_parameters (short
        factors) or compute_default_rope_parameters computes it."""
        dim = self.rotary_dim(head_dim)
        exponent = np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)
        factors = np.asarray(self.short_factor or [1.0] * (dim // 2), dtype=np.float32)
        return (np.float32(1.0) / (factors * np.float32(self.theta) ** exponent)).astype(np.float32)


def _factor_list(params: dict[str, Any], key: str) -> tuple[float, ...]:
    value = params.get(key)
    if not isinstance(value, list) or not value or any(isinstance(x, bool) for x in value):
        raise _refuse(f"rope_scaling.{key}", value, "LongRoPE needs a non-empty list of positive numbers")
    for x in value:
        if not isinstance(x, (int, float)) or not math.isfinite(x) or x <= 0:
            raise _refuse(f"rope_scaling.{key}", value, "LongRoPE needs a non-empty list of positive numbers")
    return tuple(float(x) for x in value)


def _parse_rope(cfg: dict[str, Any]) -> Phi3Rope:
    """Either layout: transformers 5's rope_parameters, or 4.x's rope_theta / rope_scaling /
    partial_rotary_factor at the top level (the dict's own keys win, as in Phi3Config)."""
    params = cfg.get("rope_parameters")
    if params is None:
        params = cfg.get("rope_scaling")
    if params is not None and not isinstance(params, dict):
        raise _refuse("rope_scaling", params, "it must be an object (or null)")
    params = dict(params or {})
    params.setdefault("rope_theta", cfg.get("rope_theta"))
    params.setdefault("partial_rotary_factor", cfg.get("partial_rotary_factor"))
    theta = config_float(params, "rope_theta", 10000.0)
    partial = config_float(params, "partial_rotary_factor", 1.0)
    if partial > 1.0:
        raise _refuse("partial_rotary_factor", partial, "it must be in (0, 1]")
    rope_type = params.get("rope_type") or params.get("type") or "default"
    if rope_type == "default":
        return Phi3Rope(theta, partial)
    if rope_type not in LONGROPE_ALIASES:
        raise _refuse(
            "rope_scaling.rope_type",
            rope_type,
            "phi3 implements only 'default' and 'longrope' RoPE (the types transformers' Phi3Config accepts)",
        )
    short, long = _factor_list(params, "short_factor"), _factor_list(params, "long_factor")
    original = config_int(cfg, "original_max_position_embeddings", default=DEFAULT_ORIGINAL_MAX_POSITIONS)
    max_positions = config_int(cfg, "max_position_embeddings")
    factor = config_float(params, "factor", max_positions / original)
    default_attention = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(original))
    attention = config_float(params, "attention_factor", default_attention)
    return Phi3Rope(theta, partial, short, long, original, attention)


@dataclass
class Phi3Config(DecoderConfig):
    rope: Phi3Rope = field(default_factory=lambda: Phi3Rope(10000.0))

    hf_model_types: ClassVar[tuple[str, ...]] = ("phi3",)

    @classmethod
    def from_hf(
        cls,
        config_dict: dict[str, Any],
        context_window_size: int | None = None,
        prefill_chunk_size: int | None = None,
        max_batch_size: int = 1,
    ) -> DecoderConfig:
        rope = _parse_rope(config_dict)
        if context_window_size is None and rope.longrope and rope.short_factor != rope.long_factor:
            max_positions = config_int(config_dict, "max_position_embeddings")
            if max_positions > rope.original_max_positions:
                warnings.warn(
                    f"phi3 LongRoPE checkpoint: compiling a {rope.original_max_positions}-token context "
                    f"(original_max_position_embeddings), not max_position_embeddings={max_positions}; "
                    "past that length transformers switches to long_factor and recomputes the cache, "
                    "which a compiled model cannot do",
                    stacklevel=2,
                )
                context_window_size = rope.original_max_positions
        # The base parser knows llama3 RoPE only; Phi-3's is kept in `rope` and applied in the model.
        base = {k: v for k, v in config_dict.items() if k not in ("rope_parameters", "rope_scaling")}
        base["rope_theta"] = rope.theta
        config = super().from_hf(base, context_window_size, prefill_chunk_size, max_batch_size)
        assert isinstance(config, Phi3Config)
        config.rope = rope
        config._check_rope()
        return config

    @classmethod
    def _check_activation(cls, cfg: dict[str, Any]) -> None:
        act = cfg.get("hidden_act", "silu")
        if act != "silu":
            raise _refuse("hidden_act", act, "only 'silu' is implemented (every released Phi-3 uses it)")

    def _family_overrides(self, cfg: dict[str, Any]) -> None:
        # Phi3Attention and Phi3MLP have no biases whatever config.json says.
        window = cfg.get("sliding_window")
        if window is not None and config_int(cfg, "sliding_window") < self.context_window_size:
            # transformers masks every layer to the window (Phi-3-mini-4k: 2047), as for Mistral v0.1
            # (llama.py); _check_rope refuses the RoPE variants the sliding cache cannot apply.
            self.sliding_window = config_int(cfg, "sliding_window")
            self.all_layers_slide = True
            self.prefill_chunk_size = min(self.prefill_chunk_size, self.sliding_window)

    def _check_rope(self) -> None:
        rope, dim = self.rope, self.rope.rotary_dim(self.head_dim)
        if self.all_layers_slide and (rope.longrope or dim != self.head_dim):
            option, value = ("rope_scaling.rope_type", "longrope")
            if not rope.longrope:
                option, value = "partial_rotary_factor", rope.partial_rotary_factor
            raise _refuse(
                option,
                value,
                f"with sliding_window={self.sliding_window} < the {self.context_window_size}-token context, the KV "
                "cache slides and must apply RoPE itself, which it does for plain RoPE over the whole head only. "
                f"Compile with --context-window-size <= {self.sliding_window} (the window then never slides).",
            )
        if dim < 2 or dim % 2:
            raise _refuse(
                "partial_rotary_factor",
                rope.partial_rotary_factor,
                f"it gives {dim} rotary features of head_dim {self.head_dim}; RoPE needs an even number >= 2",
            )
        for key, factors in (("short_factor", rope.short_factor), ("long_factor", rope.long_factor)):
            if factors and len(factors) != dim // 2:
                raise _refuse(
                    f"rope_scaling.{key}", f"<{len(factors)} numbers>", f"LongRoPE needs {dim // 2} (rotary dim / 2)"
                )
        if rope.longrope and rope.short_factor != rope.long_factor:
            if self.context_window_size > rope.original_max_positions:
                raise _refuse(
                    "rope_scaling.rope_type",
                    "longrope",
                    f"the context window is {self.context_window_size} tokens; transformers rotates with short_factor "
                    f"up to original_max_position_embeddings={rope.original_max_positions} tokens and, past "
                    "that, recomputes the whole sequence with long_factor, which a compiled KV cache cannot "
                    f"reproduce. Compile with --context-window-size <= {rope.original_max_positions}.",
                )


# ----------------------------------------------------------------------------------------------
# Layers


class Phi3Attention(DecoderAttention):
    """The decoder's fused-q|k|v attention, with q and k rotated here (partial rotary, LongRoPE)."""

    def __init__(self, config: Phi3Config, dtype: str) -> None:
        super().__init__(config, dtype)
        self.rotary_dim = config.rope.rotary_dim(config.head_dim)
        self.rope_scale = config.rope.attention_factor
        self.rope_in_cache = config.all_layers_slide  # see the module docstring

    def forward(
        self, x: Tensor, positions: Tensor, inv_freq: Tensor, paged_kv_cache: PagedKVCache, layer_id: int
    ) -> Tensor:
        b, s, _ = x.shape
        h_q, h_kv, d = self.num_q_heads, self.num_kv_heads, self.head_dim
        qkv = op.reshape(self.qkv_proj(x), (b, s, h_q + 2 * h_kv, d))
        if not self.rope_in_cache:
            qkv = rotary_embedding(
                qkv, positions, inv_freq, heads=h_q + h_kv, rotary_dim=self.rotary_dim, scale=self.rope_scale
            )
        out = paged_kv_cache.attention_with_fused_qkv(layer_id, qkv, h_q, sm_scale=d**-0.5)
        return self.o_proj(op.reshape(out, (b, s, h_q * d)))


class Phi3Layer(nn.Module):
    def __init__(self, config: Phi3Config, dtype: str) -> None:
        eps = config.rms_norm_eps
        self.input_layernorm = nn.RMSNorm(config.hidden_size, -1, eps, bias=False, dtype=dtype)
        self.self_attn = Phi3Attention(config, dtype)
        self.post_attention_layernorm = nn.RMSNorm(config.hidden_size, -1, eps, bias=False, dtype=dtype)
        self.mlp = DecoderMLP(config, dtype)  # silu(gate) * up, gate first as in Phi3MLP's chunk(2)

    def forward(
        self, x: Tensor, positions: Tensor, inv_freq: Tensor, paged_kv_cache: PagedKVCache, layer_id: int
    ) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), positions, inv_freq, paged_kv_cache, layer_id)
        return x + self.mlp(self.post_attention_layernorm(x))


class Phi3Model(nn.Module):
    def __init__(self, config: Phi3Config, dtype: str) -> None:
        self.config = config
        self.embed_tokens = Embedding(config.vocab_size, config.hidden_size, dtype=dtype)
        self.layers = nn.ModuleList([Phi3Layer(config, dtype) for _ in range(config.num_hidden_layers)])
        self.norm = nn.RMSNorm(config.hidden_size, -1, config.rms_norm_eps, bias=False, dtype=dtype)

    def forward(self, input_embed: Tensor, paged_kv_cache: PagedKVCache) -> Tensor:
        b, s, _ = input_embed.shape
        positions = paged_kv_cache.get_query_positions(b * s)
        inv_freq = Tensor.from_const(self.config.rope.inv_freq(self.config.head_dim))
        h = input_embed
        for layer_id, layer in enumerate(self.layers):
            h = layer(h, positions, inv_freq, paged_kv_cache, layer_id)
        return self.norm(h)


class Phi3ForCausalLM(DecoderForCausalLM):
    """DecoderForCausalLM's exported functions around the Phi-3 blocks."""

    def _build_model(self, config: DecoderConfig, dtype: str) -> nn.Module:
        assert isinstance(config, Phi3Config)
        return Phi3Model(config, dtype)

    def _kv_cache_layout(self) -> dict[str, Any]:
        # Rotated in Phi3Attention, unless the window slides (then by the cache: module docstring).
        rope_mode = RopeMode.NORMAL if self.config.all_layers_slide else RopeMode.NONE
        return {"attn_kind": "mha", "rope_mode": rope_mode}


def param_map(config: Phi3Config) -> dict[str, ParamSource]:
    """Checkpoint names are the model's: Phi-3 checkpoints ship q|k|v and gate|up fused, in the
    row order Phi3Attention and Phi3MLP split them (q, k, v; gate, up)."""
    m: dict[str, ParamSource] = {"model.embed_tokens.weight": one("model.embed_tokens.weight")}
    for i in range(config.num_hidden_layers):
        layer = f"model.layers.{i}"
        for name in (
            "self_attn.qkv_proj",
            "self_attn.o_proj",
            "mlp.gate_up_proj",
            "mlp.down_proj",
            "input_layernorm",
            "post_attention_layernorm",
        ):
            m[f"{layer}.{name}.weight"] = one(f"{layer}.{name}.weight")
    m["model.norm.weight"] = one("model.norm.weight")
    if not config.tie_word_embeddings:
        m["lm_head.weight"] = one("lm_head.weight")
    return m
