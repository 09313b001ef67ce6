"""Gemma 3 text models (model_type "gemma3_text": Gemma 3 270M and 1B; the text tower of 4B+).

Differences from the Llama decoder, following transformers' modeling_gemma3.py:

- layers are "sliding_attention" (local: a query sees the last `sliding_window` positions, itself
  included) or "full_attention" (global), per `layer_types` (older configs: every
  `sliding_window_pattern`-th layer is global). Local layers go to their own sliding KV cache (see
  the end of this docstring), or, when the window covers the context, to one cache as attn_kind
  "mha_sliding" layers;
- local and global layers rotate with different RoPE bases (rope_parameters per layer type, or
  rope_local_base_freq / rope_theta in older configs), so RoPE is applied here, per layer type,
  and the cache runs with RopeMode.NONE (its one-theta rotation would be wrong for one of them);
- RMSNorm on every q and k head (before RoPE), norms before AND after attention and the MLP,
  Gemma's `x * (1 + w)` norm (the 1 is added to the weights when they are loaded, as MLC does),
  embeddings scaled by sqrt(hidden) in the embedding dtype, GELU-tanh gated MLP, and attention
  scores scaled by query_pre_attn_scalar ** -0.5 instead of head_dim ** -0.5.

Parameter names are MLC-LLM's for gemma3 (q_proj, k_proj, v_proj kept apart; gate|up fused).

Three TVM 0.27 defects on this path are worked around: the CPU sliding-window prefill kernel
(replaced on llvm by cpu_prefill_kernel.py, see DecoderForCausalLM.replace_kernels), the wasm
runtime's page tables for mixed full/sliding layers (patched when the runtime is built:
hearth/runtime/source_patches.py), and the GPU attention-state merge that races from head_dim 64 on
(gpu_merge_kernel.py; every family's GPU builds get it). Gemma's prefill chunks are at most the
window long, so a prompt past the window always takes that merge.
When the window is shorter than the context, the local layers get a KV cache of their own that
keeps the window only (TVM's whole-model sliding mode: decoder.DecoderForCausalLM._windowed_cache),
and the global layers a full one; `create_paged_kv_cache` returns the pair, which the functions take
where other models take their cache (docs/families.md, "Interleaved local/global layers"). One TVM
cache cannot bound its local layers: a page id indexes every layer's pages, and pages are freed
only in the whole-model mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from tvm import relax as rx
from tvm import tirx
from tvm.relax.frontend import nn
from tvm.relax.frontend.nn import Tensor, op
from tvm.relax.frontend.nn.llm.kv_cache import AttnKind, PagedKVCache, RopeMode
from tvm.relax.type import AnyType, ObjectType, TupleType

from .config_checks import config_float, config_int
from .decoder import DecoderConfig, DecoderForCausalLM, UnsupportedConfigError, whole_model_window_capacity
from .layers import Embedding, rotary_embedding
from .param_source import ParamSource, one, rows

SLIDING, FULL = "sliding_attention", "full_attention"

# transformers' Gemma3TextConfig defaults, for keys a config.json leaves out.
HF_DEFAULTS: dict[str, Any] = {
    "vocab_size": 262_208,
    "hidden_size": 2304,
    "intermediate_size": 9216,
    "num_hidden_layers": 26,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "max_position_embeddings": 131_072,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
    "query_pre_attn_scalar": 256,
    "sliding_window": 4096,
}
DEFAULT_THETA = {FULL: 1_000_000.0, SLIDING: 10_000.0}
ACTIVATIONS = ("gelu_pytorch_tanh", "gelu_tanh")


@dataclass(frozen=True)
class Rope:
    """One layer type's rotary embedding: base and the linear position divisor (1 = none)."""

    theta: float
    linear_factor: float = 1.0

    def inv_freq(self, head_dim: int) -> np.ndarray:
        # As transformers computes it (float32), then divided by the linear factor.
        exponent = np.arange(0, head_dim, 2, dtype=np.int64).astype(np.float32) / np.float32(head_dim)
        inv = np.float32(1.0) / (np.float32(self.theta) ** exponent)
        return (inv / np.float32(self.linear_factor)).astype(np.float32)


def _refuse(option: str, value: Any, why: str) -> UnsupportedConfigError:
    return UnsupportedConfigError(f"gemma3_text checkpoint sets {option}={value!r}: {why}")


def _rope_of(params: dict[str, Any] | None, layer_type: str, fallback_theta: float) -> Rope:
    params = dict(params or {})
    rope_type = params.get("rope_type", params.get("type", "default")) or "default"
    theta = config_float(params, "rope_theta", fallback_theta)
    if rope_type == "default":
        return Rope(theta)
    if rope_type == "linear":
        return Rope(theta, config_float(params, "factor", 1.0))
    raise _refuse(
        f"rope_parameters[{layer_type!r}].rope_type",
        rope_type,
        "only 'default' and 'linear' RoPE are implemented for gemma3_text",
    )


def _parse_rope(cfg: dict[str, Any]) -> dict[str, Rope]:
    """transformers 5 writes rope_parameters = {"full_attention": {...}, "sliding_attention": {...}};
    4.x configs have rope_theta, rope_local_base_freq and rope_scaling (which applies to global layers)."""
    params = cfg.get("rope_parameters")
    if isinstance(params, dict) and (FULL in params or SLIDING in params):
        return {
            FULL: _rope_of(params.get(FULL), FULL, DEFAULT_THETA[FULL]),
            SLIDING: _rope_of(params.get(SLIDING), SLIDING, DEFAULT_THETA[SLIDING]),
        }
    full = dict(cfg.get("rope_scaling") or {})
    full.setdefault("rope_theta", cfg.get("rope_theta", DEFAULT_THETA[FULL]))
    local = {"rope_theta": cfg.get("rope_local_base_freq", DEFAULT_THETA[SLIDING])}
    return {FULL: _rope_of(full, FULL, DEFAULT_THETA[FULL]), SLIDING: _rope_of(local, SLIDING, DEFAULT_THETA[SLIDING])}


def _layer_types(cfg: dict[str, Any], n_layers: int) -> tuple[str, ...]:
    types = cfg.get("layer_types")
    if types is None:
        pattern = config_int(cfg, "sliding_window_pattern", default=6)
        return tuple(SLIDING if (i + 1) % pattern else FULL for i in range(n_layers))
    if not isinstance(types, list) or len(types) != n_layers or any(t not in (SLIDING, FULL) for t in types):
        raise _refuse("layer_types", types, f"it must list {n_layers} entries, each {SLIDING!r} or {FULL!r}")
    return tuple(types)


@dataclass
class Gemma3Config(DecoderConfig):
    layer_types: tuple[str, ...] = ()
    query_pre_attn_scalar: float = 256.0
    rope_local: Rope = Rope(DEFAULT_THETA[SLIDING])
    rope_global: Rope = Rope(DEFAULT_THETA[FULL])

    hf_model_types: ClassVar[tuple[str, ...]] = ("gemma3_text",)

    @classmethod
    def from_hf(cls, config_dict: dict[str, Any], *args: Any, **kwargs: Any) -> DecoderConfig:
        cfg = {**HF_DEFAULTS, **{k: v for k, v in config_dict.items() if v is not None or k not in HF_DEFAULTS}}
        for option in ("attn_logit_softcapping", "final_logit_softcapping"):
            if cfg.get(option) is not None:
                raise _refuse(option, cfg[option], "logit soft-capping is not implemented (Gemma 3 sets it to null)")
        if cfg.get("use_bidirectional_attention"):
            raise _refuse(
                "use_bidirectional_attention", True, "bidirectional (encoder-style) attention is not implemented"
            )
        ropes = _parse_rope(cfg)
        # The base parser reads one RoPE; Gemma's two are kept here.
        base = {k: v for k, v in cfg.items() if k not in ("rope_parameters", "rope_scaling", "rope_theta")}
        config = super().from_hf(base, *args, **kwargs)
        assert isinstance(config, Gemma3Config)
        config.rope_local, config.rope_global = ropes[SLIDING], ropes[FULL]
        config.rope_theta = config.rope_global.theta
        return config

    @classmethod
    def _check_activation(cls, cfg: dict[str, Any]) -> None:
        act = cfg.get("hidden_activation") or cfg.get("hidden_act") or "gelu_pytorch_tanh"
        if act not in ACTIVATIONS:
            raise _refuse("hidden_activation", act, "only gelu_pytorch_tanh (GELU, tanh approximation) is implemented")

    def _family_overrides(self, cfg: dict[str, Any]) -> None:
        self.qkv_bias = self.o_proj_bias = bool(cfg.get("attention_bias", False))
        self.layer_types = _layer_types(cfg, self.num_hidden_layers)
        self.query_pre_attn_scalar = config_float(cfg, "query_pre_attn_scalar", 256.0)
        if FULL not in self.layer_types:
            # TVM 0.27's KV cache allocates its work buffers only when some layer is full attention.
            raise _refuse(
                "layer_types",
                list(self.layer_types),
                "every layer is sliding_attention; TVM 0.27's KV cache needs at least one full_attention layer",
            )
        if SLIDING in self.layer_types:
            self.sliding_window = config_int(cfg, "sliding_window")
            # TVM's cache attends a prefill chunk to itself with a window-less kernel (only the
            # pages before the chunk go through the sliding one), so a chunk may not be longer
            # than the window.
            self.prefill_chunk_size = min(self.prefill_chunk_size, self.sliding_window)

    def cache_slides(self) -> bool:
        """The local layers get a KV cache of their own that keeps the window only, when they have a
        window shorter than the context (Gemma3ForCausalLM.create_paged_kv_cache)."""
        return SLIDING in self.layer_types and self.sliding_window < self.context_window_size

    def rope(self, layer_type: str) -> Rope:
        return self.rope_local if layer_type == SLIDING else self.rope_global


# ----------------------------------------------------------------------------------------------
# Layers


class Gemma3Attention(nn.Module):
    def __init__(self, config: Gemma3Config, dtype: str) -> None:
        self.num_q_heads, self.num_kv_heads, self.head_dim = (
            config.num_attention_heads,
            config.num_key_value_heads,
            config.head_dim,
        )
        h, d, bias = config.hidden_size, config.head_dim, config.qkv_bias
        self.q_proj = nn.Linear(h, self.num_q_heads * d, bias=bias, dtype=dtype)
        self.k_proj = nn.Linear(h, self.num_kv_heads * d, bias=bias, dtype=dtype)
        self.v_proj = nn.Linear(h, self.num_kv_heads * d, bias=bias, dtype=dtype)
        self.o_proj = nn.Linear(self.num_q_heads * d, h, bias=config.o_proj_bias, dtype=dtype)
        self.q_norm = nn.RMSNorm(d, -1, config.rms_norm_eps, bias=False, dtype=dtype)
        self.k_norm = nn.RMSNorm(d, -1, config.rms_norm_eps, bias=False, dtype=dtype)
        self.sm_scale = config.query_pre_attn_scalar**-0.5

    def forward(
        self, x: Tensor, positions: Tensor, inv_freq: Tensor, paged_kv_cache: PagedKVCache, layer_id: int
    ) -> Tensor:
        b, s, _ = x.shape
        d = self.head_dim
        q = self.q_norm(op.reshape(self.q_proj(x), (b, s, self.num_q_heads, d)))
        k = self.k_norm(op.reshape(self.k_proj(x), (b, s, self.num_kv_heads, d)))
        v = op.reshape(self.v_proj(x), (b, s, self.num_kv_heads, d))
        q = rotary_embedding(q, positions, inv_freq, heads=self.num_q_heads, rotary_dim=d)
        k = rotary_embedding(k, positions, inv_freq, heads=self.num_kv_heads, rotary_dim=d)
        qkv = op.concat([q, k, v], dim=2)
        out = paged_kv_cache.attention_with_fused_qkv(layer_id, qkv, self.num_q_heads, sm_scale=self.sm_scale)
        return self.o_proj(op.reshape(out, (b, s, self.num_q_heads * d)))


class Gemma3MLP(nn.Module):
    def __init__(self, config: Gemma3Config, dtype: str) -> None:
        i = config.intermediate_size
        self.gate_up_proj = nn.Linear(config.hidden_size, 2 * i, bias=False, dtype=dtype)
        self.down_proj = nn.Linear(i, config.hidden_size, bias=False, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        gate, up = op.split(self.gate_up_proj(x), 2, axis=-1)
        return self.down_proj(op.gelu(gate, approximate="tanh") * up)


class Gemma3Layer(nn.Module):
    def __init__(self, config: Gemma3Config, dtype: str) -> None:
        def norm() -> nn.RMSNorm:
            return nn.RMSNorm(config.hidden_size, -1, config.rms_norm_eps, bias=False, dtype=dtype)

        self.input_layernorm = norm()
        self.self_attn = Gemma3Attention(config, dtype)
        self.post_attention_layernorm = norm()
        self.pre_feedforward_layernorm = norm()
        self.mlp = Gemma3MLP(config, dtype)
        self.post_feedforward_layernorm = norm()

    def forward(
        self, x: Tensor, positions: Tensor, inv_freq: Tensor, paged_kv_cache: PagedKVCache, layer_id: int
    ) -> Tensor:
        attn = self.self_attn(self.input_layernorm(x), positions, inv_freq, paged_kv_cache, layer_id)
        x = x + self.post_attention_layernorm(attn)
        return x + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x)))


def split_caches(paged_kv_cache: PagedKVCache) -> tuple[PagedKVCache, PagedKVCache]:
    """(global, local) from the pair `create_paged_kv_cache` makes. The runtimes pass the pair
    where other models take their one cache, so the functions keep MLC's signatures; TVM's nn
    exporter types it as a plain object, which is cast to a 2-tuple here."""
    bb = rx.BlockBuilder.current()
    pair = bb.match_cast(paged_kv_cache._expr, TupleType([ObjectType(), ObjectType()]), "kv_pair")
    # nn.Object wants an untyped var: each part is cast back to one.
    global_kv, local_kv = (
        bb.match_cast(bb.emit(rx.TupleGetItem(pair, i)), AnyType(), name)
        for i, name in enumerate(("global_kv", "local_kv"))
    )
    return PagedKVCache(_expr=global_kv, _name="global_kv"), PagedKVCache(_expr=local_kv, _name="local_kv")


def _cache_like(cache: PagedKVCache, layers: int, sizes: list[Any]) -> PagedKVCache:
    """A second cache from the same `vm.builtin.paged_attention_kv_cache_create` call as `cache`
    (TIRPagedKVCache's), with its own sizes, flags and layer count, sharing its kernels: a second
    TIRPagedKVCache would add every kernel again under the same global symbol (TVM does not merge
    the copies: "duplicate global symbol"). The kernels depend on heads, head_dim, dtype, RoPE and
    the window, which both caches share; only `kv_cache_debug_get_kv`, a debugging aid, assumes
    the first cache's layer count."""
    bb = rx.BlockBuilder.current()
    call = bb.lookup_binding(cache._expr)
    args = list(call.args)
    # args: the extern function, then [batch, tokens, chunk, page, support_sliding_window,
    # layer window], layer_partition, four head sizes, one attn kind per layer, ... (kv_cache.py).
    if (
        getattr(args[0], "global_symbol", None) != "vm.builtin.paged_attention_kv_cache_create"
        or len(args[1].values) != 6
    ):
        raise RuntimeError(f"unexpected KV cache creation call (TVM's TIRPagedKVCache changed?): {args[0]}")
    args[1] = rx.ShapeExpr(sizes)
    args[2] = rx.ShapeExpr([0, layers])
    args[7] = rx.ShapeExpr([int(AttnKind.MHA)] * layers)
    return PagedKVCache(_expr=bb.emit(rx.Call(call.op, args, call.attrs, call.ty_args), "local_kv"), _name="local_kv")


class Gemma3Model(nn.Module):
    def __init__(self, config: Gemma3Config, dtype: str) -> None:
        self.config = config
        self.embed_tokens = Embedding(config.vocab_size, config.hidden_size, dtype=dtype)
        self.layers = nn.ModuleList([Gemma3Layer(config, dtype) for _ in range(config.num_hidden_layers)])
        self.norm = nn.RMSNorm(config.hidden_size, -1, config.rms_norm_eps, bias=False, dtype=dtype)

    def forward(self, input_embed: Tensor, paged_kv_cache: PagedKVCache) -> Tensor:
        b, s, _ = input_embed.shape
        c = self.config
        # Each layer's cache and its index there: one cache for all, or global layers in the
        # first of the pair and local ones in the second, in model order.
        if c.cache_slides():
            global_kv, local_kv = split_caches(paged_kv_cache)
            caches = {FULL: global_kv, SLIDING: local_kv}
        else:
            caches = {FULL: paged_kv_cache, SLIDING: paged_kv_cache}
        seen = {FULL: 0, SLIDING: 0}
        # Positions from the global cache: its tokens are never renumbered (the local one's are,
        # once the window slides), and RoPE is applied here, to absolute positions.
        positions = caches[FULL].get_query_positions(b * s)
        inv_freq = {kind: Tensor.from_const(c.rope(kind).inv_freq(c.head_dim)) for kind in sorted(set(c.layer_types))}
        h = input_embed
        for layer_id, layer in enumerate(self.layers):
            kind = c.layer_types[layer_id]
            cache_layer = seen[kind] if c.cache_slides() else layer_id
            seen[kind] += 1
            h = layer(h, positions, inv_freq[kind], caches[kind], cache_layer)
        return self.norm(h)


class Gemma3ForCausalLM(DecoderForCausalLM):
    """DecoderForCausalLM's exported functions around the Gemma 3 blocks."""

    def __init__(self, config: Gemma3Config, dtype: str = "float32", target: Any = None) -> None:
        if dtype == "float16":
            # Measured: Gemma 3 270M as q4f16_1 gave NaN logits at every position (its activations
            # leave float16's range; transformers runs Gemma 3 in bfloat16 or float32).
            raise UnsupportedConfigError(
                "gemma3_text with float16 activations (a *f16* quantization) gives NaN logits: Gemma 3's "
                "activations exceed float16's range. Compile with q4f32_1 or q0f32 instead."
            )
        super().__init__(config, dtype, target)

    def _build_model(self, config: DecoderConfig, dtype: str) -> nn.Module:
        assert isinstance(config, Gemma3Config)
        return Gemma3Model(config, dtype)

    def embed(self, input_ids: Tensor) -> Tensor:
        # transformers multiplies by sqrt(hidden) cast to the embedding dtype (55.5, not 55.43,
        # for bf16 hidden 3072): the constant below is made in that dtype too.
        scale = Tensor.from_scalar(math.sqrt(self.config.hidden_size), self.dtype)
        return self.model.embed_tokens(input_ids) * scale

    def create_paged_kv_cache(
        self,
        max_batch_size: tirx.Var,
        max_total_seq_len: tirx.Var,
        prefill_chunk_size: tirx.Var,
        page_size: tirx.Var,
        support_sliding_window: tirx.Var,
    ) -> PagedKVCache:
        """With a window shorter than the context, TWO caches, returned as one pair: the global
        layers' (full attention, pages for the context) and the local layers' (TVM's whole-model
        sliding mode, pages for the window and one chunk: DecoderForCausalLM._windowed_cache). TVM's
        one cache cannot do it: a page id indexes every layer's pages, and it frees pages only in
        the whole-model mode (docs/families.md). The runtimes enable the slide on the LAST cache
        of a pair (mlc-chat-config `sliding_window_size`, hearth.models.decoder.sequence_window)."""
        c = self.config
        assert isinstance(c, Gemma3Config)
        sizes = (max_batch_size, max_total_seq_len, prefill_chunk_size, page_size)
        if not c.cache_slides():
            return super().create_paged_kv_cache(*sizes, support_sliding_window)
        layout = {"attn_kind": "mha", "layer_sliding_window_size": c.sliding_window, "rope_mode": RopeMode.NONE}
        local_layers = c.layer_types.count(SLIDING)
        global_kv = self._tir_cache(layout, len(c.layer_types) - local_layers, *sizes, 0)
        capacity = whole_model_window_capacity(c, max_batch_size, max_total_seq_len, prefill_chunk_size, page_size)
        window_sizes = [max_batch_size, capacity, prefill_chunk_size, page_size, 1, c.sliding_window]
        local_kv = _cache_like(global_kv, local_layers, window_sizes)
        bb = rx.BlockBuilder.current()
        pair = bb.emit(rx.Tuple([global_kv._expr, local_kv._expr]), name_hint="kv_pair")
        return PagedKVCache(_expr=bb.match_cast(pair, AnyType(), "paged_kv_cache"), _name="paged_kv_cache")

    def _kv_cache_layout(self) -> dict[str, Any]:
        c = self.config
        assert isinstance(c, Gemma3Config)
        return {
            "attn_kind": ["mha_sliding" if t == SLIDING else "mha" for t in c.layer_types],
            # Without local layers the size is unused (TVM still wants it > 0).
            "layer_sliding_window_size": c.sliding_window or c.context_window_size,
            "rope_mode": RopeMode.NONE,  # rotated in Gemma3Attention, with each layer type's base
        }


# ----------------------------------------------------------------------------------------------
# Checkpoint names


def _plus_one(arrays: list[np.ndarray]) -> np.ndarray:
    # Gemma's norm is x * (1 + w). Adding the 1 in float32 (not in a bf16 checkpoint's dtype, which
    # would round 1 + w to 8 bits) and storing it lets the model use a plain RMSNorm.
    return arrays[0].astype(np.float32) + np.float32(1.0)


def _norm(name: str) -> ParamSource:
    return ParamSource((name,), _plus_one)


def param_map(config: Gemma3Config) -> dict[str, ParamSource]:
    m: dict[str, ParamSource] = {"model.embed_tokens.weight": one("model.embed_tokens.weight")}
    for i in range(config.num_hidden_layers):
        layer = f"model.layers.{i}"
        attn, mlp = f"{layer}.self_attn", f"{layer}.mlp"
        for p in ("q", "k", "v"):
            m[f"{attn}.{p}_proj.weight"] = one(f"{attn}.{p}_proj.weight")
            if config.qkv_bias:
                m[f"{attn}.{p}_proj.bias"] = one(f"{attn}.{p}_proj.bias")
        m[f"{attn}.o_proj.weight"] = one(f"{attn}.o_proj.weight")
        if config.o_proj_bias:
            m[f"{attn}.o_proj.bias"] = one(f"{attn}.o_proj.bias")
        for n in ("q_norm", "k_norm"):
            m[f"{attn}.{n}.weight"] = _norm(f"{attn}.{n}.weight")
        m[f"{mlp}.gate_up_proj.weight"] = rows(f"{mlp}.gate_proj.weight", f"{mlp}.up_proj.weight")
        m[f"{mlp}.down_proj.weight"] = one(f"{mlp}.down_proj.weight")
        for n in (
            "input_layernorm",
            "post_attention_layernorm",
            "pre_feedforward_layernorm",
            "post_feedforward_layernorm",
        ):
            m[f"{layer}.{n}.weight"] = _norm(f"{layer}.{n}.weight")
    m["model.norm.weight"] = _norm("model.norm.weight")
    if not config.tie_word_embeddings:
        m["lm_head.weight"] = one("lm_head.weight")
    return m
