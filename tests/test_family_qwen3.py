"""Qwen3 (hearth.models.qwen3) against transformers' Qwen3ForCausalLM: random small checkpoints
(GQA, explicit head_dim, tied and untied head, random q/k norm weights) compiled by `compile_package`.
See family_parity.py for what each comparison means."""

from __future__ import annotations

from pathlib import Path

import pytest

import family_parity as fp
from hearth.models import UnsupportedConfigError, config_from_hf

CASES = {
    # head_dim 32 with hidden 64 and 4 heads: q is 128 wide, wider than hidden (as in Qwen3-0.6B).
    "qwen3-untied": dict(head_dim=32, tie_word_embeddings=False, rope_theta=1000000.0),
    "qwen3-tied": dict(head_dim=16, tie_word_embeddings=True),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("qwen3")
    return {
        name: fp.save_checkpoint(root / name, "Qwen3Config", overrides, fp.randomize_norms)
        for name, overrides in CASES.items()
    }


@pytest.mark.parametrize("name", list(CASES))
def test_q0f32_matches_transformers(name: str, checkpoints, record_property) -> None:
    folder = checkpoints[name]
    pkg, seconds = fp.package(folder, "q0f32", ["llvm"])
    errs = fp.check_against_hf(pkg, fp.hf_model(folder), fp.prompt())
    record_property("max_abs_err", errs["max_abs_err"])
    print(f"\n{name}: q0f32 max|dlogit| {errs['max_abs_err']:.3g}, 32 greedy equal, package {seconds:.1f}s")


@pytest.mark.parametrize("name", list(CASES))
def test_q4_matches_dequantized_transformers(name: str, checkpoints) -> None:
    folder = checkpoints[name]
    pkg, seconds = fp.package(folder, "q4f32_1", ["llvm", "webgpu"])
    err = fp.prefill_error(pkg, fp.dequantized(fp.hf_model(folder), "q4f32_1"), fp.prompt())
    print(f"\n{name}: q4f32_1 vs dequantized transformers max|dlogit| {err:.3g}, package {seconds:.1f}s")
    assert err <= fp.LOGIT_TOL


@pytest.mark.parametrize("name", list(CASES))
def test_webgpu_greedy_matches_native(name: str, checkpoints) -> None:
    pkg, _ = fp.package(checkpoints[name], "q4f32_1", ["llvm", "webgpu"])
    ids = fp.prompt(77, 48)
    native = fp.native_greedy(pkg, ids, fp.NEW_TOKENS)
    webgpu = fp.webgpu_greedy(pkg, ids, fp.NEW_TOKENS)["tokens"]
    assert webgpu == native


def _cfg(**extra) -> dict:
    return dict(
        model_type="qwen3",
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=256,
        max_position_embeddings=4096,
        **extra,
    )


def test_config_reading() -> None:
    arch, config = config_from_hf(_cfg())
    assert arch.name == "qwen3" and config.qk_norm and not config.qkv_bias
    assert config.head_dim == 128  # transformers' Qwen3Config default when config.json has none
    assert config.qkv_proj_name == "c_attn"  # MLC's name, so WebLLM finds the weights
    _, config = config_from_hf(_cfg(head_dim=32, attention_bias=True))
    assert config.head_dim == 32 and config.qkv_bias and config.o_proj_bias
    model = arch.model_class(config, dtype="float32", target="llvm")
    names = sorted(n for n, _ in model.named_parameters())
    assert sorted(arch.param_map(config)) == names
    assert "model.layers.1.self_attn.q_norm.weight" in names


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (dict(use_sliding_window=True, sliding_window=1024), "sliding_window=1024"),
        (dict(rope_scaling={"rope_type": "yarn", "factor": 4.0}), "'yarn'"),
        (dict(hidden_act="gelu"), "'gelu'"),
    ],
)
def test_unimplemented_options_are_refused(extra: dict, named: str) -> None:
    with pytest.raises(UnsupportedConfigError, match=named):
        config_from_hf(_cfg(**extra))
