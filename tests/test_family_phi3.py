"""Phi-3 (hearth.models.phi3) against transformers' Phi3ForCausalLM: random small checkpoints
(GQA, fused qkv_proj / gate_up_proj, LongRoPE with distinct short and long factors and its attention
factor, partial rotary, tied and untied head; and Phi-3-mini-4k's sliding window shorter than the
context) compiled by `compile_package`. See family_parity.py for what each comparison means."""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
import tvm

import family_parity as fp
from hearth.models import UnsupportedConfigError, config_from_hf
from hearth.models.decoder import metadata


def _longrope(half: int) -> dict:
    # Short factors that differ per frequency (a model ignoring them is off by far more than 1e-3);
    # long factors unlike them, so using the wrong set would show too.
    return {
        "type": "longrope",
        "short_factor": [1.0 + 0.15 * i for i in range(half)],
        "long_factor": [3.0 + 0.5 * i for i in range(half)],
    }


CASES = {
    # Phi-3.5-mini's shape: full rotary, LongRoPE, untied. The compiled context is left to the
    # default, which is original_max_position_embeddings (128) here; attention factor 1.195.
    "phi3-longrope-untied": dict(
        tie_word_embeddings=False,
        max_position_embeddings=1024,
        original_max_position_embeddings=128,
        rope_scaling=_longrope(8),
    ),
    # Phi-4-mini's: partial rotary (12 of 16 features), LongRoPE, tied, and a sliding_window longer
    # than the context (as Phi-3.5's 262144), which never slides. (Not one KV head: TVM 0.27 fails to
    # compile a WebGPU build with head_dim 16, 4 q heads and 1 kv head, llama's included.)
    "phi3-partial-tied": dict(
        tie_word_embeddings=True,
        partial_rotary_factor=0.75,
        max_position_embeddings=512,
        original_max_position_embeddings=128,
        rope_scaling=_longrope(6),
        rope_theta=250000.0,
        sliding_window=4096,
    ),
}
CONTEXT = {"phi3-partial-tied": 128}  # explicit --context-window-size; the other case uses the default
# Prefill in chunks of 24 tokens: the rotation must use each chunk's absolute positions.
CHUNK = {"phi3-partial-tied": 24}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("phi3")
    return {
        name: fp.save_checkpoint(root / name, "Phi3Config", overrides, fp.randomize_norms)
        for name, overrides in CASES.items()
    }


def _package(name: str, folder: Path, quant: str, targets: list[str]) -> tuple[Path, float]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "phi3 LongRoPE checkpoint: compiling a 128-token context")
        return fp.package(folder, quant, targets, context_window_size=CONTEXT.get(name))


@pytest.mark.parametrize("name", list(CASES))
def test_rope_matches_transformers(name: str, checkpoints) -> None:
    """The frequencies and attention factor Hearth compiles are the ones transformers rotates with."""
    folder = checkpoints[name]
    hf = fp.hf_model(folder)
    cfg = hf.config.to_dict()
    _, config = config_from_hf(cfg, context_window_size=128)
    rotary = hf.model.rotary_emb
    np.testing.assert_allclose(config.rope.inv_freq(config.head_dim), rotary.inv_freq.numpy(), rtol=1e-6)
    assert math.isclose(config.rope.attention_factor, rotary.attention_scaling, rel_tol=1e-12)
    assert config.rope.attention_factor > 1.1  # the factor is exercised, not 1


@pytest.mark.parametrize("name", list(CASES))
def test_q0f32_matches_transformers(name: str, checkpoints, record_property) -> None:
    folder = checkpoints[name]
    pkg, seconds = _package(name, folder, "q0f32", ["llvm"])
    errs = fp.check_against_hf(pkg, fp.hf_model(folder), fp.prompt(), chunk=CHUNK.get(name))
    record_property("max_abs_err", errs["max_abs_err"])
    print(f"\n{name}: q0f32 max|dlogit| {errs['max_abs_err']:.3g}, 32 greedy equal, package {seconds:.1f}s")


@pytest.mark.parametrize("name", list(CASES))
def test_q4_matches_dequantized_transformers(name: str, checkpoints) -> None:
    folder = checkpoints[name]
    pkg, seconds = _package(name, folder, "q4f32_1", ["llvm", "webgpu"])
    err = fp.prefill_error(pkg, fp.dequantized(fp.hf_model(folder), "q4f32_1"), fp.prompt())
    print(f"\n{name}: q4f32_1 vs dequantized transformers max|dlogit| {err:.3g}, package {seconds:.1f}s")
    assert err <= fp.LOGIT_TOL


@pytest.mark.parametrize("name", list(CASES))
def test_webgpu_greedy_matches_native(name: str, checkpoints) -> None:
    pkg, _ = _package(name, checkpoints[name], "q4f32_1", ["llvm", "webgpu"])
    ids = fp.prompt(77, 48)
    native = fp.native_greedy(pkg, ids, fp.NEW_TOKENS)
    webgpu = fp.webgpu_greedy(pkg, ids, fp.NEW_TOKENS)["tokens"]
    assert webgpu == native


# ----------------------------------------------------------------------------------------------
# Phi-3-mini-4k's attention: plain RoPE over the whole head and a sliding_window (2047 there) shorter
# than the context, so every layer slides and the cache keeps the window only (decoder.sequence_window).

WINDOW = 24
WINDOW_CASE = dict(tie_word_embeddings=False, sliding_window=WINDOW, max_position_embeddings=256)


@pytest.fixture(scope="module")
def window_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("phi3-window") / "phi3-window"
    return fp.save_checkpoint(folder, "Phi3Config", WINDOW_CASE, fp.randomize_norms)


def test_window_matches_transformers_past_the_window(window_checkpoint: Path) -> None:
    """64-token prompt and 32 greedy tokens with a 24-token window (chunks of 24, the clamp): logits
    within 1e-3 of transformers, whose result without the window is far off (the window is
    applied), from a cache that holds the window's pages only."""
    pkg, seconds = fp.package(window_checkpoint, "q0f32", ["llvm"])
    hf = fp.hf_model(window_checkpoint)
    errs = fp.check_against_hf(pkg, hf, fp.prompt())
    wide = copy.deepcopy(hf)
    wide.config.sliding_window = None
    with torch.no_grad():
        ids = torch.tensor([fp.prompt()])
        gap = float((hf(ids).logits[0, -1] - wide(ids).logits[0, -1]).abs().max())
    assert gap > 100 * fp.LOGIT_TOL, gap
    dec, config = fp.load_decoder(pkg, target="llvm", max_total_seq_len=4096)
    assert config["sliding_window_size"] == WINDOW - 1 and config["prefill_chunk_size"] == WINDOW
    available = tvm.get_global_func("vm.builtin.attention_kv_cache_get_num_available_pages")
    total = int(available(dec.kv))
    dec.prefill(fp.prompt(3, 10 * WINDOW))
    used = total - int(available(dec.kv))
    assert total == 8 and used <= 3, (total, used)  # vs 257 pages for 4096 tokens without the slide
    print(
        f"\nphi3 window {WINDOW}: q0f32 max|dlogit| {errs['max_abs_err']:.3g} (no window: {gap:.3g}), "
        f"pages {total} at context 4096, {used} in use after 240 tokens, package {seconds:.1f}s"
    )


def test_phi3_mini_4k_window_slides() -> None:
    """Phi-3-mini-4k-instruct's sliding_window 2047 with its 4096-token context compiles to a cache
    that keeps 2046 tokens per sequence (+ the one decoded), in chunks of at most the window."""
    _, config = config_from_hf(_cfg(sliding_window=2047, rope_theta=10000.0))
    assert config.all_layers_slide and config.sliding_window == 2047 and config.prefill_chunk_size <= 2047
    meta = metadata(config)
    assert meta["sliding_window_size"] == 2046 and meta["attention_sink_size"] == 0


# ----------------------------------------------------------------------------------------------
# Config reading and refusals (no compilation)


def _cfg(**extra) -> dict:
    return {
        "model_type": "phi3",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 256,
        "max_position_embeddings": 4096,
        **extra,
    }


def _phi35_mini(**extra) -> dict:
    """Phi-3.5-mini-instruct's config.json layout (transformers 4.x), factors shortened to placeholders."""
    return {
        "model_type": "phi3",
        "hidden_size": 3072,
        "intermediate_size": 8192,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 32064,
        "hidden_act": "silu",
        "max_position_embeddings": 131072,
        "original_max_position_embeddings": 4096,
        "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0,
        "rope_scaling": {"type": "longrope", "short_factor": [1.05] * 48, "long_factor": [1.0 + i for i in range(48)]},
        "sliding_window": 262144,
        "tie_word_embeddings": False,
        **extra,
    }


def test_config_reading() -> None:
    arch, config = config_from_hf(_cfg())
    assert arch.name == "phi3" and config.qkv_proj_name == "qkv_proj"
    assert config.context_window_size == 4096 and not config.rope.longrope
    assert config.rope.rotary_dim(config.head_dim) == 16 and config.rope.attention_factor == 1.0
    model = arch.model_class(config, dtype="float32", target="llvm")
    names = sorted(n for n, _ in model.named_parameters())
    pmap = arch.param_map(config)
    assert sorted(pmap) == names
    # The fused projections are read as the checkpoint stores them (no q/k/v or gate/up split).
    assert pmap["model.layers.0.self_attn.qkv_proj.weight"].hf_names == ("model.layers.0.self_attn.qkv_proj.weight",)
    assert pmap["model.layers.1.mlp.gate_up_proj.weight"].hf_names == ("model.layers.1.mlp.gate_up_proj.weight",)
    _, partial = config_from_hf(_cfg(rope_parameters={"rope_type": "default", "partial_rotary_factor": 0.5}))
    assert partial.rope.rotary_dim(partial.head_dim) == 8


def test_phi35_mini_defaults_to_its_original_context() -> None:
    with pytest.warns(UserWarning, match="4096-token context"):
        _, config = config_from_hf(_phi35_mini())
    assert config.context_window_size == 4096 and config.rope.longrope
    assert math.isclose(config.rope.attention_factor, math.sqrt(1 + math.log(32) / math.log(4096)))
    np.testing.assert_allclose(config.rope.inv_freq(96)[:2], [1 / 1.05, 1 / (1.05 * 10000 ** (2 / 96))], rtol=1e-6)
    # Old names of the same scaling ("su", "yarn") read as longrope, as in Phi3Config.
    _, su = config_from_hf(
        _phi35_mini(rope_scaling={**_phi35_mini()["rope_scaling"], "type": "su"}), context_window_size=2048
    )
    assert su.rope.short_factor == config.rope.short_factor


def test_equal_factors_allow_a_longer_context() -> None:
    rope = {"type": "longrope", "short_factor": [2.0] * 8, "long_factor": [2.0] * 8}
    _, config = config_from_hf(_cfg(original_max_position_embeddings=1024, rope_scaling=rope))
    assert config.context_window_size == 4096  # nothing switches, so the checkpoint's full length


@pytest.mark.parametrize(
    ("cfg", "kwargs", "named"),
    [
        # transformers switches to long_factor and recomputes the cache past 4096 tokens.
        (
            _phi35_mini(),
            {"context_window_size": 8192},
            "rope_scaling.rope_type='longrope'.*context-window-size <= 4096",
        ),
        (_cfg(rope_scaling={"rope_type": "linear", "factor": 2.0}), {}, "rope_type='linear'"),
        (_cfg(rope_scaling={"rope_type": "dynamic", "factor": 2.0}), {}, "rope_type='dynamic'"),
        (_cfg(rope_scaling={"type": "longrope", "short_factor": [1.0] * 8}), {}, "long_factor=None"),
        (
            _cfg(rope_scaling={"type": "longrope", "short_factor": [1.0] * 7, "long_factor": [1.0] * 7}),
            {"context_window_size": 2048},
            "short_factor='<7 numbers>'.*needs 8",
        ),
        # A window that slides needs the cache's RoPE: plain, over the whole head.
        (
            _cfg(sliding_window=2047, rope_scaling=_longrope(8)),
            {"context_window_size": 4096},
            "rope_type='longrope'.*sliding_window=2047.*context-window-size <= 2047",
        ),
        (
            _cfg(sliding_window=2047, partial_rotary_factor=0.75),
            {},
            "partial_rotary_factor=0.75.*sliding_window=2047.*context-window-size <= 2047",
        ),
        (_cfg(hidden_act="gelu_new"), {}, "hidden_act='gelu_new'"),
        (_cfg(partial_rotary_factor=0.5625), {}, "partial_rotary_factor=0.5625.*9 rotary features"),
        (_cfg(partial_rotary_factor=1.5), {}, "partial_rotary_factor=1.5"),
        # Malformed values: named, never a bare TypeError.
        (_cfg(rope_scaling=["longrope"]), {}, r"rope_scaling=\['longrope'\]: it must be an object"),
        (
            _cfg(rope_scaling={"type": "longrope", "short_factor": [1.0] * 7 + ["x"], "long_factor": [1.0] * 8}),
            {},
            "short_factor=.*positive numbers",
        ),
        (
            _cfg(original_max_position_embeddings=2.5, rope_scaling=_longrope(8)),
            {},
            "original_max_position_embeddings is 2.5",
        ),
    ],
)
def test_unimplemented_options_are_refused(cfg: dict, kwargs: dict, named: str) -> None:
    with pytest.raises(UnsupportedConfigError, match=named):
        config_from_hf(cfg, **kwargs)


def test_window_at_least_the_context_is_accepted() -> None:
    _, config = config_from_hf(_cfg(sliding_window=2047), context_window_size=2047)
    assert config.context_window_size == 2047


def test_transformers_switches_factors_past_the_original_length() -> None:
    """Why a longer context is refused: transformers' rotation depends on the sequence length."""
    cfg = transformers.Phi3Config(**{**fp.COMMON, **CASES["phi3-longrope-untied"]})
    rotary = transformers.models.phi3.modeling_phi3.Phi3RotaryEmbedding(cfg)
    x = torch.zeros(1)
    short = rotary(x, torch.arange(128)[None])[0][0, 5].clone()
    long = rotary(x, torch.arange(129)[None])[0][0, 5]
    assert not torch.allclose(short, long)  # position 5 rotates differently once the sequence passes 128
