"""The Llama-style decoder that every supported family is a configuration of.

Llama, Mistral (full attention), SmolLM and Qwen2 share one block:
    x = x + o_proj(attention(rope(qkv_proj(rms_norm(x)))))
    x = x + down_proj(silu(gate) * up),  gate|up = gate_up_proj(rms_norm(x))
and differ only in biases, RoPE settings, head counts and one parameter name, which
`DecoderConfig` captures.

Parameter names are MLC-LLM's for each family (WebLLM fetches weights by them): HF's
`model.*` names, with q|k|v fused as `self_attn.qkv_proj` (Llama, Mistral) or
`self_attn.c_attn` (Qwen2) and gate|up fused as `mlp.gate_up_proj`.

The exported functions and their calling conventions follow MLC-LLM, so WebLLM-style engines
can drive the compiled package (all with param_mode "packed": the weights come as one tuple,
the LAST argument; effect_mode "none"):

    embed(input_ids[seq_len] i32, params)                       -> [seq_len, hidden]
    prefill(input_embed[1, seq_len, hidden], kv, params)        -> (logits[1, 1, vocab] f32, kv)
    decode(input_embed[1, 1, hidden], kv, params)               -> (logits[1, 1, vocab] f32, kv)
    batch_prefill(input_embeds[1, seq_len, hidden], logit_positions[batch] i32, kv, params)
                                                                -> (logits[1, batch, vocab] f32, kv)
    batch_decode(input_embeds[batch, 1, hidden], kv, params)    -> (logits[batch, 1, vocab] f32, kv)
    create_paged_kv_cache(max_batch_size, max_total_seq_len, prefill_chunk_size, page_size,
                          support_sliding_window)               -> kv   (each arg a 1-element shape)
    create_tir_paged_kv_cache(...same...)                       -> kv   (WebLLM's name; added by
                                                                         export_model as an alias)
    softmax_with_temperature(logits[batch, 1, vocab] f32, temperature[batch] f32) -> probs
    apply_*_inplace, argsort_probs, sample_with_top_p              (WebGPU builds only: MLC's
                                                                    sampler set, which WebLLM
                                                                    requires; see engine_funcs)

The KV cache is TVM's TIR paged cache (`TIRPagedKVCache`): its attention kernels are TIR, so
they compile for WebGPU as well as for CPU (FlashInfer is CUDA-only). Which kernel set it
embeds depends on the target, so the target must be known when the model is exported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import tvm
from tvm import relax as rx
from tvm import te, tirx
from tvm.relax.frontend import nn
from tvm.relax.frontend.nn import Tensor, op
from tvm.relax.frontend.nn.llm.kv_cache import PagedKVCache, RopeMode, TIRPagedKVCache

from ..targets import get_target
from .config_checks import UnsupportedConfigError, check_divisible, config_bool, config_float, config_int
from .cpu_prefill_kernel import attention_prefill_cpu
from .decode_attention_kernel import swap_decode_attention
from .engine_funcs import attach_engine_functions
from .gpu_merge_kernel import MERGE_STATE_SYMBOL, merge_state_inplace
from .layers import Embedding
from .param_source import ParamSource, one, rows
from .prefill_attention_tiles import webgpu_prefill_tiles
from .split_rotary_append import (
    SPLIT_ROTARY_SYMBOL,
    is_upstream_split_rotary,
    links_wasm_runtime,
    split_rotary_append,
)

# Why 2048 and not MLC's 8192: prefill activations scale with the chunk, and WebGPU caps a
# single storage buffer (128 MiB on some adapters). A [2048, 2 * 14336] f16 gate|up output of
# an 8B model is 117 MiB; 8192 tokens would not fit in one binding.
DEFAULT_PREFILL_CHUNK = 2048
# The KV cache's sliding-window prefill kernels (replaced, see replace_kernels).
CPU_SLIDING_PREFILL = "batch_prefill_paged_kv_cpu_sliding_window"
GPU_SLIDING_PREFILL = "batch_prefill_paged_kv_sliding_window"


# ----------------------------------------------------------------------------------------------
# Configuration


@dataclass
class DecoderConfig:
    """Hyper-parameters of a Llama-style decoder, normalised from a Hugging Face config.json.

    Families subclass it to say which HF model_types they accept, which biases they carry
    and which config features they must refuse (see `_family_overrides`).
    """

    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    # {} for plain RoPE, else TVM's rope_scaling dict ({"rope_type": "llama3", "factor": ...}).
    rope_scaling: dict[str, Any]
    tie_word_embeddings: bool
    context_window_size: int
    prefill_chunk_size: int
    qkv_bias: bool = False
    o_proj_bias: bool = False
    mlp_bias: bool = False
    # Qwen3: an RMSNorm over head_dim on every q and k head, before RoPE (q_norm / k_norm).
    qk_norm: bool = False
    # > 0: the window of the layers that attend over the last `sliding_window` positions only
    # (gemma3.py's local layers). 0: none.
    sliding_window: int = 0
    # True: EVERY layer attends over the last `sliding_window` positions (Mistral v0.1,
    # Phi-3-mini-4k), so the KV cache need only hold the window: see `sequence_window`.
    all_layers_slide: bool = False
    # Upper bound on sequences decoded together; sizes the statically planned buffers of the
    # batch_* functions (see `variable_bounds`). Single-stream chat in the browser needs 1.
    max_batch_size: int = 1

    # HF model_type values this config class accepts; set by the family subclasses.
    hf_model_types: ClassVar[tuple[str, ...]] = ()
    # MLC-LLM's name for the fused q|k|v projection in this family. WebLLM's prebuilt model
    # libraries look weights up by MLC's names, so a package must use the same ones.
    qkv_proj_name: ClassVar[str] = "qkv_proj"

    @classmethod
    def from_hf(
        cls,
        config_dict: dict[str, Any],
        context_window_size: int | None = None,
        prefill_chunk_size: int | None = None,
        max_batch_size: int = 1,
    ) -> DecoderConfig:
        """Build from a parsed config.json (transformers 4.x or 5.x layout)."""
        cfg = dict(config_dict)
        model_type = cfg.get("model_type", "")
        if cls.hf_model_types and model_type not in cls.hf_model_types:
            raise UnsupportedConfigError(
                f"{cls.__name__} reads model_type {', '.join(cls.hf_model_types)}; got {model_type!r}"
            )
        cls._check_activation(cfg)

        # Every value is checked for type and range here, before any build work (config_checks).
        hidden = config_int(cfg, "hidden_size")
        n_heads = config_int(cfg, "num_attention_heads")
        n_kv = config_int(cfg, "num_key_value_heads", default=n_heads)  # absent/None means plain MHA
        check_divisible("num_attention_heads", n_heads, "num_key_value_heads", n_kv)
        # Mistral-Nemo, Qwen3 and others set head_dim explicitly with hidden != heads * head_dim.
        if cfg.get("head_dim") is None:
            check_divisible("hidden_size", hidden, "num_attention_heads", n_heads)
        head_dim = config_int(cfg, "head_dim", default=hidden // n_heads)
        if head_dim % 2:
            raise UnsupportedConfigError(
                f"config.json: head_dim {head_dim} is odd; rotary embeddings need an even head_dim"
            )

        if context_window_size is None:
            if not (cfg.get("max_position_embeddings") or cfg.get("max_sequence_length")):
                raise UnsupportedConfigError(
                    "cannot tell the context window: config.json has neither max_position_embeddings "
                    "nor max_sequence_length; pass context_window_size explicitly"
                )
            key = "max_position_embeddings" if cfg.get("max_position_embeddings") else "max_sequence_length"
            context_window_size = config_int(cfg, key)
        else:
            context_window_size = config_int({"context_window_size": context_window_size}, "context_window_size")
        if prefill_chunk_size is None:
            prefill_chunk_size = DEFAULT_PREFILL_CHUNK
        prefill_chunk_size = config_int({"prefill_chunk_size": prefill_chunk_size}, "prefill_chunk_size")
        # A chunk longer than the whole context could never be filled.
        prefill_chunk_size = min(prefill_chunk_size, context_window_size)

        rope_theta, rope_scaling = _parse_rope(cfg)
        config = cls(
            model_type=model_type,
            vocab_size=config_int(cfg, "vocab_size"),
            hidden_size=hidden,
            intermediate_size=config_int(cfg, "intermediate_size"),
            num_hidden_layers=config_int(cfg, "num_hidden_layers"),
            num_attention_heads=n_heads,
            num_key_value_heads=n_kv,
            head_dim=head_dim,
            rms_norm_eps=config_float(cfg, "rms_norm_eps", 1e-6),
            rope_theta=rope_theta,
            rope_scaling=rope_scaling,
            # Llama, Mistral and Qwen2 all default to untied heads when the key is absent.
            tie_word_embeddings=config_bool(cfg, "tie_word_embeddings", False),
            context_window_size=context_window_size,
            prefill_chunk_size=prefill_chunk_size,
            max_batch_size=int(max_batch_size),
        )
        config._family_overrides(cfg)
        return config

    def _family_overrides(self, cfg: dict[str, Any]) -> None:
        """Hook for families: set biases, refuse unsupported features. Default: none."""

    def cache_slides(self) -> bool:
        """Whether a KV cache of this model slides, keeping only the window of each sequence:
        every layer's when they all slide; gemma3.py's local layers' cache."""
        return self.all_layers_slide and self.sliding_window > 0

    @classmethod
    def _check_activation(cls, cfg: dict[str, Any]) -> None:
        act = cfg.get("hidden_act", "silu")
        if act != "silu":
            raise UnsupportedConfigError(f"hidden_act {act!r} is not supported (only 'silu', as in Llama/Qwen2)")


def _parse_rope(cfg: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """(theta, TVM rope_scaling dict) from either config layout.

    transformers 5 writes `rope_parameters = {"rope_type", "rope_theta", ...}`; 4.x checkpoints
    (most of the Hub) have top-level `rope_theta` and an optional `rope_scaling` whose type key
    is `rope_type` or, in older files, `type`.
    """
    params = cfg.get("rope_parameters")
    if isinstance(params, dict) and "rope_theta" not in params:
        params = None  # a per-layer-type dict (Gemma-style); not used by these families
    if params is None:
        params = dict(cfg.get("rope_scaling") or {})
        params.setdefault("rope_theta", cfg.get("rope_theta", 10000.0))
    params = dict(params)
    theta = config_float(params, "rope_theta", 10000.0)
    params.pop("rope_theta", None)
    rope_type = params.get("rope_type", params.get("type", "default")) or "default"
    if rope_type == "default":
        return theta, {}
    if rope_type == "llama3":
        keys = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
        missing = [k for k in keys if params.get(k) is None]
        if missing:
            raise UnsupportedConfigError(f"llama3 rope scaling is missing {missing}")
        return theta, {"rope_type": "llama3", **{k: config_float(params, k, 0.0) for k in keys}}
    raise UnsupportedConfigError(
        f"RoPE type {rope_type!r} is not supported; supported: default, llama3. "
        "(linear/dynamic/yarn/longrope scaling would need validation against transformers first.)"
    )


# ----------------------------------------------------------------------------------------------
# Layers


class DecoderAttention(nn.Module):
    """GQA self-attention on the paged KV cache; q, k, v come out of one fused projection."""

    def __init__(self, config: DecoderConfig, dtype: str) -> None:
        self.head_dim = config.head_dim
        self.num_q_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        # One GEMM instead of three: decode is weight-bandwidth bound, and one launch reads the
        # activation once. Rows are [q | k | v], the order the KV cache splits them in.
        # Its attribute name is the parameter name, which is MLC's for the family (qkv_proj or c_attn).
        self.qkv_name = config.qkv_proj_name
        qkv_proj = nn.Linear(
            config.hidden_size,
            (self.num_q_heads + 2 * self.num_kv_heads) * self.head_dim,
            bias=config.qkv_bias,
            dtype=dtype,
        )
        setattr(self, self.qkv_name, qkv_proj)
        self.o_proj = nn.Linear(
            self.num_q_heads * self.head_dim, config.hidden_size, bias=config.o_proj_bias, dtype=dtype
        )
        self.qk_norm = config.qk_norm
        if config.qk_norm:
            self.q_norm = nn.RMSNorm(self.head_dim, -1, config.rms_norm_eps, bias=False, dtype=dtype)
            self.k_norm = nn.RMSNorm(self.head_dim, -1, config.rms_norm_eps, bias=False, dtype=dtype)

    def forward(self, x: Tensor, paged_kv_cache: PagedKVCache, layer_id: int) -> Tensor:
        b, s, _ = x.shape
        h_q, h_kv, d = self.num_q_heads, self.num_kv_heads, self.head_dim
        qkv_proj = getattr(self, self.qkv_name)
        qkv = op.reshape(qkv_proj(x), (b, s, h_q + 2 * h_kv, d))
        if self.qk_norm:
            # Per-head norms must see q and k before the cache rotates them (HF: norm, then RoPE).
            q, k, v = op.split(qkv, [h_q, h_q + h_kv], axis=2)
            qkv = op.concat([self.q_norm(q), self.k_norm(k), v], dim=2)
        # The cache applies RoPE to q and k (RopeMode.NORMAL), appends k/v to its pages, then
        # attends over everything the sequence has cached so far (causal within the chunk).
        out = paged_kv_cache.attention_with_fused_qkv(layer_id, qkv, h_q, sm_scale=d**-0.5)
        return self.o_proj(op.reshape(out, (b, s, h_q * d)))


class DecoderMLP(nn.Module):
    """SwiGLU feed-forward with gate and up fused into one projection."""

    def __init__(self, config: DecoderConfig, dtype: str) -> None:
        i = config.intermediate_size
        self.gate_up_proj = nn.Linear(config.hidden_size, 2 * i, bias=config.mlp_bias, dtype=dtype)
        self.down_proj = nn.Linear(i, config.hidden_size, bias=config.mlp_bias, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        gate, up = op.split(self.gate_up_proj(x), 2, axis=-1)
        return self.down_proj(op.silu(gate) * up)


class DecoderLayer(nn.Module):
    def __init__(self, config: DecoderConfig, dtype: str) -> None:
        eps = config.rms_norm_eps
        self.input_layernorm = nn.RMSNorm(config.hidden_size, -1, eps, bias=False, dtype=dtype)
        self.self_attn = DecoderAttention(config, dtype)
        self.post_attention_layernorm = nn.RMSNorm(config.hidden_size, -1, eps, bias=False, dtype=dtype)
        self.mlp = DecoderMLP(config, dtype)

    def forward(self, x: Tensor, paged_kv_cache: PagedKVCache, layer_id: int) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), paged_kv_cache, layer_id)
        return x + self.mlp(self.post_attention_layernorm(x))


class DecoderModel(nn.Module):
    """Embedding, layers and final norm; attribute names mirror HF's `model.*` (as MLC's do) so
    that most parameter names are identical to the checkpoint's."""

    def __init__(self, config: DecoderConfig, dtype: str) -> None:
        self.embed_tokens = Embedding(config.vocab_size, config.hidden_size, dtype=dtype)
        self.layers = nn.ModuleList([DecoderLayer(config, dtype) for _ in range(config.num_hidden_layers)])
        self.norm = nn.RMSNorm(config.hidden_size, -1, config.rms_norm_eps, bias=False, dtype=dtype)

    def forward(self, input_embed: Tensor, paged_kv_cache: PagedKVCache) -> Tensor:
        h = input_embed
        for layer_id, layer in enumerate(self.layers):
            h = layer(h, paged_kv_cache, layer_id)
        return self.norm(h)


# ----------------------------------------------------------------------------------------------
# The causal LM and its exported functions


def _as_target(target: Any) -> tvm.target.Target | None:
    """Accept a tvm Target, a hearth TargetSpec, or a target name such as "webgpu"."""
    if target is None or isinstance(target, tvm.target.Target):
        return target
    if isinstance(target, str):
        return get_target(target).target()
    if hasattr(target, "target"):
        return target.target()
    raise TypeError(f"expected a tvm Target, a TargetSpec or a target name, got {type(target).__name__}")


def sequence_window(config: DecoderConfig) -> int:
    """What a runtime passes to `attention_kv_cache_enable_sliding_window_for_seq` for each new
    sequence (mlc-chat-config's `sliding_window_size`, WebLLM's meaning), or -1 for none.

    TVM releases a sequence's oldest pages once it is longer than this (SlideWindowForSequence,
    paged_kv_cache.cc), for every layer of that cache at once (`_windowed_cache`). It is
    the window minus one because a decode step attends over the cached tokens plus itself, and
    the decode kernel has no window mask: window - 1 cached + 1 = transformers' `sliding_window`
    keys. Prefill rows are masked to the window by the kernel (see `replace_kernels`)."""
    return config.sliding_window - 1 if config.cache_slides() else -1


def whole_model_window_capacity(
    config: DecoderConfig,
    max_batch_size: tirx.Var,
    max_total_seq_len: tirx.Var,
    prefill_chunk_size: tirx.Var,
    page_size: tirx.Var,
) -> tirx.PrimExpr:
    """Tokens of pages a whole-model-window cache needs, whatever context it is created for: per
    sequence the window (less one, see `sequence_window`), the chunk being appended before the
    slide releases the oldest pages, and up to a page of slack at each end (the window starts
    mid-page); TVM adds two pages per sequence on top for sliding caches."""
    per_sequence = config.sliding_window + 2 * page_size
    return tirx.min(max_total_seq_len, max_batch_size * per_sequence + prefill_chunk_size)


def window_masked(prefill: tirx.PrimFunc) -> tirx.PrimFunc:
    """TVM's sliding-window paged-prefill kernel with its window mask always on.

    The kernel masks a row's cached columns to the window (`_causal_or_sliding_cross_mask`:
    row i of the chunk sees the last window - i - 1 cached tokens) only when called with
    causal = 1, which the cache does for "mha_sliding" layers; in the whole-model mode its
    layers are "mha" and it passes 0 (paged_kv_cache.cc, AttentionInternal), so a chunk
    appended to a full window would attend to up to window - 1 tokens too many. There the
    kernel only ever computes a chunk's attention to the tokens cached before it, so the
    window mask is always right: `causal` is bound to 1 in the body (the parameter stays, the
    runtime still passes it)."""
    causal = [p for p in prefill.params if p.name == "causal"]
    if len(causal) != 1:
        raise RuntimeError(f"expected one 'causal' parameter in {prefill.attrs['global_symbol']}")
    return prefill.with_body(prefill.specialize({causal[0]: tirx.IntImm("int32", 1)}).body)


class DecoderForCausalLM(nn.Module):
    """A Llama-style causal LM exporting MLC's function set (see the module docstring).

    `target` picks the KV-cache kernels (CPU loops for llvm, GPU kernels for webgpu/cuda). It
    may instead come from an enclosing `with target:` when the model is exported.
    """

    def __init__(self, config: DecoderConfig, dtype: str = "float32", target: Any = None) -> None:
        if dtype not in ("float32", "float16"):
            raise ValueError(f"dtype must be 'float32' or 'float16', got {dtype!r}")
        self.config = config
        self.dtype = dtype
        self.target = _as_target(target)
        self.model = self._build_model(config, dtype)
        if not config.tie_word_embeddings:
            # float32 out: see Embedding.lm_head_forward. A quantized replacement that ignores
            # out_dtype is still fine: get_logits casts.
            self.lm_head = nn.Linear(
                config.hidden_size, config.vocab_size, bias=False, dtype=dtype, out_dtype="float32"
            )

    def to(self, dtype: str | None = None) -> None:
        # The spec's activation dtype and the KV cache dtype follow self.dtype, so keep it in
        # step when someone converts the weights after construction.
        super().to(dtype=dtype)
        if dtype is not None:
            self.dtype = dtype

    # -- building blocks ---------------------------------------------------------------------

    def _build_model(self, config: DecoderConfig, dtype: str) -> nn.Module:
        """Embedding, layers, final norm (attribute `model`); families with other blocks override it."""
        return DecoderModel(config, dtype)

    def get_logits(self, hidden_states: Tensor) -> Tensor:
        if self.config.tie_word_embeddings:
            logits = self.model.embed_tokens.lm_head_forward(hidden_states)
        else:
            logits = self.lm_head(hidden_states)
        # Samplers (softmax, top-p, penalties) run on float32 logits everywhere in MLC/WebLLM.
        if logits.dtype != "float32":
            logits = logits.astype("float32")
        return logits

    # -- exported functions ------------------------------------------------------------------

    def embed(self, input_ids: Tensor) -> Tensor:
        return self.model.embed_tokens(input_ids)

    def prefill(self, input_embed: Tensor, paged_kv_cache: PagedKVCache):
        def last_token(x: te.Tensor) -> te.Tensor:
            b, s, d = x.shape
            return te.compute((b, 1, d), lambda i, _, k: x[i, s - 1, k], name="index")

        hidden = self.model(input_embed, paged_kv_cache)
        # Only the next token is sampled after a prefill: project just the last position to
        # the vocabulary instead of all seq_len of them.
        hidden = op.tensor_expr_op(last_token, name_hint="index", args=[hidden])
        return self.get_logits(hidden), paged_kv_cache

    def decode(self, input_embed: Tensor, paged_kv_cache: PagedKVCache):
        return self.get_logits(self.model(input_embed, paged_kv_cache)), paged_kv_cache

    def batch_prefill(self, input_embeds: Tensor, logit_positions: Tensor, paged_kv_cache: PagedKVCache):
        # Several sequences' chunks are concatenated along seq_len (the lengths were given to
        # kv_state_begin_forward); logit_positions picks each sequence's last token.
        hidden = self.model(input_embeds, paged_kv_cache)
        hidden = op.take(hidden, logit_positions, axis=1)
        return self.get_logits(hidden), paged_kv_cache

    def batch_decode(self, input_embeds: Tensor, paged_kv_cache: PagedKVCache):
        return self.get_logits(self.model(input_embeds, paged_kv_cache)), paged_kv_cache

    def create_paged_kv_cache(
        self,
        max_batch_size: tirx.Var,
        max_total_seq_len: tirx.Var,
        prefill_chunk_size: tirx.Var,
        page_size: tirx.Var,
        support_sliding_window: tirx.Var,
    ) -> PagedKVCache:
        c = self.config
        layout = self._kv_cache_layout()
        kinds = layout["attn_kind"]
        layers = len(kinds) if isinstance(kinds, list) else c.num_hidden_layers
        if c.all_layers_slide:
            if layout["rope_mode"] == RopeMode.NONE:
                # Positions restart inside the window once it slides (TVM renumbers the cached
                # tokens), so keys rotated by the model at append time would be off.
                raise UnsupportedConfigError("a whole-model sliding window needs the KV cache to apply RoPE")
            return self._windowed_cache(
                layout, layers, max_batch_size, max_total_seq_len, prefill_chunk_size, page_size
            )
        sizes = (max_batch_size, max_total_seq_len, prefill_chunk_size, page_size)
        return self._tir_cache(layout, layers, *sizes, support_sliding_window)

    def _windowed_cache(
        self,
        layout: dict[str, Any],
        layers: int,
        max_batch_size: tirx.Var,
        max_total_seq_len: tirx.Var,
        prefill_chunk_size: tirx.Var,
        page_size: tirx.Var,
    ) -> PagedKVCache:
        """A cache whose layers all attend over the last `sliding_window` positions: "mha" layers in
        TVM's sliding-window mode (support_sliding_window 1 whatever the caller passes: the kernels
        then get each sequence's window offsets, and RoPE, if the cache applies it, moves into the
        attention kernels, so keys keep their distances when the window slides). The runtime
        enables the slide per sequence (`sequence_window`); pages for the window are all the cache
        ever needs."""
        c = self.config
        layout = {**layout, "attn_kind": "mha", "layer_sliding_window_size": c.sliding_window}
        capacity = whole_model_window_capacity(c, max_batch_size, max_total_seq_len, prefill_chunk_size, page_size)
        return self._tir_cache(layout, layers, max_batch_size, capacity, prefill_chunk_size, page_size, 1)

    def _tir_cache(
        self,
        layout: dict[str, Any],
        layers: int,
        max_batch_size: tirx.Var,
        max_total_seq_len: tirx.PrimExpr,
        prefill_chunk_size: tirx.Var,
        page_size: tirx.Var,
        support_sliding_window: tirx.Var | int,
    ) -> PagedKVCache:
        c = self.config
        return TIRPagedKVCache(
            **layout,
            max_batch_size=max_batch_size,
            max_total_seq_len=max_total_seq_len,
            prefill_chunk_size=prefill_chunk_size,
            page_size=page_size,
            support_sliding_window=support_sliding_window,
            layer_partition=rx.ShapeExpr([0, layers]),
            num_hidden_layers=layers,
            num_attention_heads=c.num_attention_heads,
            num_key_value_heads=c.num_key_value_heads,
            qk_head_dim=c.head_dim,
            v_head_dim=c.head_dim,
            mla_original_qk_head_dim=0,
            mla_original_v_head_dim=0,
            rope_scale=1,
            rope_theta=c.rope_theta,
            rope_scaling=dict(c.rope_scaling),
            rope_ext_factors=rx.prim_value(0),  # "none": only longrope uses extension factors
            rotary_dim=c.head_dim,
            enable_disaggregation=False,
            dtype=self.dtype,
            target=self._kv_cache_target(),
        )

    def replace_kernels(self, mod: tvm.IRModule, target: tvm.target.Target) -> tvm.IRModule:
        """Fixed copies of TVM 0.27 KV-cache kernels, under the upstream symbols:
        - GPU builds: the attention-state merge raced on the log-sum-exp it updates in place
          (wrong logits after a chunked prefill from head_dim 64 on; gpu_merge_kernel.py);
        - llvm builds with sliding layers: the CPU sliding-window prefill kernel read an
          uninitialised value (NaN logits after the second prefill chunk; cpu_prefill_kernel.py);
        - whole-model windows: the sliding-window prefill kernel with its window mask always on
          (`window_masked`).
        And for targets linked with Hearth's wasm runtime, whose patched KV cache appends k/v inside
        the split + RoPE kernel (one launch per layer less; split_rotary_append.py), that kernel.
        And for WebGPU the decode attention kernels (decode_attention_kernel.py: upstream's ran 2
        workgroups with a reduction per KV row for Qwen2.5-0.5B)."""
        c = self.config
        if links_wasm_runtime(target):
            gvs = [gv for gv in mod.get_global_vars() if gv.name_hint == SPLIT_ROTARY_SYMBOL]
            if len(gvs) != 1 or not is_upstream_split_rotary(mod[gvs[0]]):
                raise RuntimeError(
                    f"expected upstream's split + RoPE kernel once as {SPLIT_ROTARY_SYMBOL} in the module, found "
                    f"{len(gvs)} (TVM's kv_cache.py changed?); the patched wasm runtime calls it with 9 arguments"
                )
            # the arguments _tir_cache gives TIRPagedKVCache (every family's caches come from there)
            fused = split_rotary_append(
                c.rope_theta,
                1,
                c.head_dim,
                c.num_attention_heads,
                c.num_key_value_heads,
                self.dtype,
                dict(c.rope_scaling),
                c.head_dim,
                target,
            )
            mod[gvs[0]] = fused.with_attr("global_symbol", mod[gvs[0]].attrs["global_symbol"])
        merge = [gv for gv in mod.get_global_vars() if gv.name_hint == MERGE_STATE_SYMBOL]
        if merge:  # only GPU caches have it (the CPU cache merges with a serial kernel)
            fixed_merge = merge_state_inplace(c.num_attention_heads, c.head_dim, self.dtype, target)
            mod[merge[0]] = fixed_merge.with_attr("global_symbol", MERGE_STATE_SYMBOL)
        layout = self._kv_cache_layout()
        windowed = c.cache_slides()  # some cache is a `_windowed_cache`
        if target.kind.name == "llvm" and (windowed or "mha_sliding" in layout["attn_kind"]):
            gvs = [gv for gv in mod.get_global_vars() if gv.name_hint == CPU_SLIDING_PREFILL]
            if len(gvs) != 1:
                raise RuntimeError(f"expected one {CPU_SLIDING_PREFILL} in the module, found {len(gvs)}")
            fixed = attention_prefill_cpu(
                c.num_key_value_heads,
                c.num_attention_heads,
                c.head_dim,
                self.dtype,
                True,
                dict(c.rope_scaling),
                sliding_window_size=c.sliding_window if windowed else layout["layer_sliding_window_size"],
            )
            mod[gvs[0]] = fixed.with_attr("global_symbol", mod[gvs[0]].attrs["global_symbol"])
        if windowed:
            symbol = CPU_SLIDING_PREFILL if target.kind.name == "llvm" else GPU_SLIDING_PREFILL
            gvs = [gv for gv in mod.get_global_vars() if gv.name_hint == symbol]
            if len(gvs) != 1:
                raise RuntimeError(f"expected one {symbol} in the module, found {len(gvs)}")
            mod[gvs[0]] = window_masked(mod[gvs[0]])
        # WebGPU: a decode attention kernel shaped for it (more workgroups, one reduction per chunk of rows)
        return swap_decode_attention(
            mod, target, c.num_key_value_heads, c.num_attention_heads, c.head_dim, self.dtype, dict(c.rope_scaling)
        )

    def _kv_cache_layout(self) -> dict[str, Any]:
        """Attention kind per layer and where RoPE happens. Here: full attention everywhere, and
        the cache rotates q and k itself (one theta for every layer). Gemma 3 overrides it
        (per-layer windows and RoPE bases)."""
        return {"attn_kind": "mha", "rope_mode": RopeMode.NORMAL}

    def softmax_with_temperature(self, logits: Tensor, temperature: Tensor) -> Tensor:
        """probs = softmax(logits / T) per row; T <= 1e-5 means greedy, as in MLC: a one-hot
        on the argmax (split evenly between exact ties) instead of dividing by ~0."""
        b, _, _ = logits.shape
        t = op.reshape(temperature, (b, 1, 1))
        eps = Tensor.from_scalar(1e-5, "float32")
        greedy = op.less_equal(t, eps)
        probs = op.softmax(logits / op.maximum(t, eps), axis=-1)
        is_max = op.equal(logits, op.max(logits, axis=-1, keepdims=True)).astype("float32")
        one_hot = is_max / op.sum(is_max, axis=-1, keepdims=True)
        return op.where(greedy, one_hot, probs)

    def _kv_cache_target(self) -> tvm.target.Target:
        # An enclosing `with target:` (what export_model(model, target) sets up) wins over the
        # constructor's, so one model object can be exported for several targets.
        target = tvm.target.Target.current(allow_none=True) or self.target
        if target is None:
            raise ValueError(
                "the paged KV cache embeds target-specific attention kernels, so the target must "
                "be known at export: construct the model with target=... (e.g. 'webgpu', 'llvm') "
                "or call export_tvm inside `with tvm.target.Target(...):`"
            )
        return target

    # -- export ------------------------------------------------------------------------------

    def get_default_spec(self) -> nn.spec.ModuleSpec:
        hidden, dtype = self.config.hidden_size, self.dtype
        packed = {"param_mode": "packed", "effect_mode": "none"}
        no_params = {"param_mode": "none", "effect_mode": "none"}
        kv = nn.spec.Object(object_type=PagedKVCache)
        create_kv = {
            "max_batch_size": int,
            "max_total_seq_len": int,
            "prefill_chunk_size": int,
            "page_size": int,
            "support_sliding_window": int,
            "$": no_params,
        }
        spec = {
            "embed": {"input_ids": nn.spec.Tensor(["seq_len"], "int32"), "$": packed},
            "prefill": {
                "input_embed": nn.spec.Tensor([1, "seq_len", hidden], dtype),
                "paged_kv_cache": kv,
                "$": packed,
            },
            "decode": {"input_embed": nn.spec.Tensor([1, 1, hidden], dtype), "paged_kv_cache": kv, "$": packed},
            "batch_prefill": {
                "input_embeds": nn.spec.Tensor([1, "seq_len", hidden], dtype),
                "logit_positions": nn.spec.Tensor(["batch_size"], "int32"),
                "paged_kv_cache": kv,
                "$": packed,
            },
            "batch_decode": {
                "input_embeds": nn.spec.Tensor(["batch_size", 1, hidden], dtype),
                "paged_kv_cache": kv,
                "$": packed,
            },
            "create_paged_kv_cache": create_kv,
            "softmax_with_temperature": {
                "logits": nn.spec.Tensor(["batch_size", 1, "vocab_size"], "float32"),
                "temperature": nn.spec.Tensor(["batch_size"], "float32"),
                "$": no_params,
            },
        }
        return nn.spec.ModuleSpec.from_raw(spec, self)


# ----------------------------------------------------------------------------------------------
# Export helpers used by the package builder and the tests


def variable_bounds(config: DecoderConfig) -> dict[str, int]:
    """Upper bounds of the symbolic dims, as MLC attaches them (`tir_var_upper_bound`).

    With them, TVM plans every intermediate buffer once at its largest size instead of
    allocating per call; callers must then keep within them (prefill in chunks of at most
    prefill_chunk_size tokens, at most max_batch_size sequences per batch_* call).
    """
    return {
        "seq_len": config.prefill_chunk_size,
        "total_seq_len": config.context_window_size,
        "batch_size": config.max_batch_size,
    }


def export_model(model: DecoderForCausalLM, target: Any = None):
    """`model.export_tvm` with MLC's function attributes attached.

    Returns (IRModule, named_params); named_params is the packed-params order, i.e. the
    order of the weight tuple every packed function takes as its last argument.
    """
    tgt = _as_target(target) if target is not None else model.target
    chunk = model.config.prefill_chunk_size
    if tgt is not None:
        # WebGPU's prefill attention kernels get Hearth's tile config and a grid as wide as a chunk's query
        # tiles (prefill_attention_tiles.py).
        with tgt, webgpu_prefill_tiles(tgt, grid_rows=chunk):
            mod, named_params = model.export_tvm(spec=model.get_default_spec())
    else:
        with webgpu_prefill_tiles(tvm.target.Target.current(allow_none=True), grid_rows=chunk):
            mod, named_params = model.export_tvm(spec=model.get_default_spec())
    # WebLLM and MLC's engine look the creation function up as `create_tir_paged_kv_cache`
    # (MLC's dispatch pass renames it so). Exporting the method twice would add every cache
    # kernel twice under one symbol, so alias the Relax function instead; kernels are shared.
    target = tgt or tvm.target.Target.current(allow_none=True)
    if target is not None:
        mod = model.replace_kernels(mod, target)
    create = mod["create_paged_kv_cache"]
    alias = rx.utils.copy_with_new_vars(create)  # a Relax var may only be defined once per module
    mod["create_tir_paged_kv_cache"] = alias.with_attr("global_symbol", "create_tir_paged_kv_cache")
    # nn.Linear (and lm_head_forward) compute x @ permute_dims(W). Left alone, TVM's generic
    # pipelines materialise W^T in a temp buffer on EVERY call (a vocab x hidden copy for the
    # head: hundreds of MB, beyond WebGPU's binding limit). Fusing the pair into one
    # "NT_matmul" kernel reads W in place. MLC runs the same pass; a second run is a no-op.
    mod = rx.transform.FuseTransposeMatmul()(mod)
    bounds = variable_bounds(model.config)
    for gv, func in list(mod.functions_items()):
        if isinstance(func, rx.Function):
            func = func.with_attr("tir_var_upper_bound", bounds)
            # vocab_size only appears in softmax_with_temperature; telling TVM it is >= 0 lets
            # it simplify the shape arithmetic there.
            func = func.with_attr("tir_non_negative_var", ["vocab_size"])
            mod[gv] = func
    if target is not None and target.kind.name == "webgpu":
        # WebLLM's engine requires MLC's logit-processor and sampler functions (see engine_funcs).
        mod = attach_engine_functions(mod, target, model.config.max_batch_size)
    return mod, named_params


def decoder_param_map(config: DecoderConfig) -> dict[str, ParamSource]:
    """The map for `DecoderForCausalLM` (Llama, Mistral, Qwen2; Qwen3 adds its q/k norms): HF names
    except for the fused q|k|v (named `config.qkv_proj_name`, MLC's name: qkv_proj, or c_attn for Qwen2) and
    gate_up_proj, and no lm_head when the embeddings are tied."""
    m: dict[str, ParamSource] = {"model.embed_tokens.weight": one("model.embed_tokens.weight")}
    for i in range(config.num_hidden_layers):
        layer = f"model.layers.{i}"
        attn, mlp = f"{layer}.self_attn", f"{layer}.mlp"
        kinds = ["weight"] + (["bias"] if config.qkv_bias else [])
        for kind in kinds:
            m[f"{attn}.{config.qkv_proj_name}.{kind}"] = rows(*(f"{attn}.{p}_proj.{kind}" for p in ("q", "k", "v")))
        m[f"{attn}.o_proj.weight"] = one(f"{attn}.o_proj.weight")
        if config.o_proj_bias:
            m[f"{attn}.o_proj.bias"] = one(f"{attn}.o_proj.bias")
        for kind in ["weight"] + (["bias"] if config.mlp_bias else []):
            m[f"{mlp}.gate_up_proj.{kind}"] = rows(f"{mlp}.gate_proj.{kind}", f"{mlp}.up_proj.{kind}")
            m[f"{mlp}.down_proj.{kind}"] = one(f"{mlp}.down_proj.{kind}")
        m[f"{layer}.input_layernorm.weight"] = one(f"{layer}.input_layernorm.weight")
        m[f"{layer}.post_attention_layernorm.weight"] = one(f"{layer}.post_attention_layernorm.weight")
    m["model.norm.weight"] = one("model.norm.weight")
    if not config.tie_word_embeddings:
        m["lm_head.weight"] = one("lm_head.weight")
    return m


def metadata(config: DecoderConfig, quantization: str = "q0f32", named_params=None) -> dict[str, Any]:
    """MLC's `_metadata` fields for this model; WebLLM reads them at load time.

    `params` lists the weights in packed order, with name/shape/dtype (WebLLM fetches them
    from the tensor cache by these names). The package builder fills it from the exported
    (possibly quantized) named_params.
    """
    params = []
    for name, param in named_params or []:
        shape = [int(s) if isinstance(s, int) else str(s) for s in param.shape]
        params.append({"name": name, "shape": shape, "dtype": param.dtype, "preprocs": []})
    return {
        "model_type": config.model_type,
        "quantization": quantization,
        "context_window_size": config.context_window_size,
        "sliding_window_size": sequence_window(config),
        "attention_sink_size": 0 if config.cache_slides() else -1,
        "prefill_chunk_size": config.prefill_chunk_size,
        "tensor_parallel_shards": 1,
        "pipeline_parallel_stages": 1,
        "disaggregation": False,
        "kv_state_kind": "kv_cache",
        "max_batch_size": config.max_batch_size,
        "kv_cache": {
            "num_hidden_layers": config.num_hidden_layers,
            "num_attention_heads": config.num_attention_heads,
            "num_key_value_heads": config.num_key_value_heads,
            "head_dim": config.head_dim,
        },
        "params": params,
    }


def kv_cache_bytes_per_token(config: DecoderConfig, dtype: str) -> int:
    """K and V for every layer, one token; handy for sizing max_total_seq_len."""
    itemsize = 2 if dtype == "float16" else 4
    return 2 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim * itemsize


__all__ = [
    "DecoderConfig",
    "DecoderForCausalLM",
    "UnsupportedConfigError",
    "decoder_param_map",
    "export_model",
    "metadata",
    "sequence_window",
    "variable_bounds",
    "kv_cache_bytes_per_token",
]
