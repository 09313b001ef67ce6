"""Gemma 3 text (hearth.models.gemma3) against transformers' Gemma3ForCausalLM: random small
checkpoints with interleaved sliding-window and global layers, separate RoPE bases (and linear
scaling on the global ones), q/k norms, pre+post norms, tied and untied heads, compiled by
`compile_package`. See family_parity.py for what each comparison means.

The 64-token prompts are longer than the windows (16 and 24 tokens), so the local layers' window
is exercised in prefill (chunks of at most the window) and in every decode step;
test_window_is_observable shows that full attention would give different logits. The WebGPU runs
(48 + 32 tokens) go past window + page size, where the wasm runtime without its source patch
(hearth/runtime/source_patches.py) gave the global layers the window's page tables.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import tvm

import family_parity as fp
from conftest import REPO
from hearth.models import UnsupportedConfigError, config_from_hf, export_model
from hearth.models.gpu_merge_kernel import MERGE_STATE_SYMBOL

S, F = "sliding_attention", "full_attention"
GEMMA = dict(num_hidden_layers=3, head_dim=16, query_pre_attn_scalar=24, hidden_activation="gelu_pytorch_tanh")
CASES = {
    "gemma3-tied": dict(GEMMA, sliding_window=16, layer_types=[S, F, S], tie_word_embeddings=True),
    "gemma3-untied-linear": dict(
        GEMMA,
        sliding_window=24,
        layer_types=[S, S, F],
        tie_word_embeddings=False,
        rope_parameters={
            F: {"rope_type": "linear", "factor": 4.0, "rope_theta": 1000000.0},
            S: {"rope_type": "default", "rope_theta": 10000.0},
        },
    ),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gemma3")
    return {
        name: fp.save_checkpoint(root / name, "Gemma3TextConfig", overrides, fp.randomize_norms)
        for name, overrides in CASES.items()
    }


@pytest.mark.parametrize("name", list(CASES))
def test_q0f32_matches_transformers(name: str, checkpoints, record_property) -> None:
    folder = checkpoints[name]
    pkg, seconds = fp.package(folder, "q0f32", ["llvm"])
    errs = fp.check_against_hf(pkg, fp.hf_model(folder), fp.prompt())
    record_property("max_abs_err", errs["max_abs_err"])
    print(f"\n{name}: q0f32 max|dlogit| {errs['max_abs_err']:.3g}, 32 greedy equal, package {seconds:.1f}s")


def test_window_is_observable(checkpoints) -> None:
    """The same weights with the window opened up (every layer global in effect) give logits far
    from the windowed model's, which the compiled package matches: the window is really applied."""
    folder = checkpoints["gemma3-tied"]
    hf = fp.hf_model(folder)
    wide = copy.deepcopy(hf)
    wide.config.sliding_window = 4096
    for layer in wide.model.layers:
        layer.self_attn.sliding_window = 4096 if layer.self_attn.is_sliding else None
    ids = fp.prompt()
    with torch.no_grad():
        windowed = hf(torch.tensor([ids])).logits[0, -1].numpy()
        full = wide(torch.tensor([ids])).logits[0, -1].numpy()
    pkg, _ = fp.package(folder, "q0f32", ["llvm"])
    ours = fp.load_decoder(pkg, target="llvm")[0].prefill(ids).ravel()
    assert np.abs(ours - windowed).max() <= fp.LOGIT_TOL
    assert np.abs(full - windowed).max() > 100 * fp.LOGIT_TOL, np.abs(full - windowed).max()


def test_local_layers_hold_the_window_only(checkpoints) -> None:
    """The local layers have a cache of their own that slides: created for a 4096-token context it
    gets pages for the window and one chunk (7; the global layers' cache 257, as every layer had
    before), and after 12 windows of prompt it holds 2 pages while the global one holds them all;
    the logits after that prompt still match transformers."""
    folder = checkpoints["gemma3-tied"]
    pkg, _ = fp.package(folder, "q0f32", ["llvm"])
    dec, config = fp.load_decoder(pkg, target="llvm", max_total_seq_len=4096)
    assert len(dec.caches) == 2 and config["sliding_window_size"] == 15
    available = tvm.get_global_func("vm.builtin.attention_kv_cache_get_num_available_pages")
    fresh = [int(available(kv)) for kv in dec.caches]
    assert fresh == [257, -(-(16 + 32 + 16) // 16) + 1 + 2] == [257, 7]
    ids = fp.prompt(5, 192)
    logits = dec.prefill(ids)
    used = [f - int(available(kv)) for f, kv in zip(fresh, dec.caches)]
    assert used[0] == 12 and used[1] <= 2, used
    with torch.no_grad():
        ref = fp.hf_model(folder)(torch.tensor([ids])).logits[0, -1].numpy()
    assert np.abs(logits.ravel() - ref).max() <= fp.LOGIT_TOL


def test_gemma3_270m_local_layers_are_sized_for_the_window() -> None:
    """Gemma 3 270M's real shape (18 layers, 15 local with a 512-token window, head_dim 256) at
    context 4096 through bench/kv_memory.py: the 15 local layers get 69 pages each instead of 257."""
    cmd = [sys.executable, str(REPO / "bench" / "kv_memory.py"), "--shape", "gemma3-270m", "--context", "4096"]
    proc = subprocess.run([*cmd, "--prompt", "3000"], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["cache_layers"] == [3, 15] and result["sliding_window_size"] == 511
    assert result["pages_per_layer"] == [257, (512 + 32 + 512) // 16 + 1 + 2] == [257, 69]
    assert result["pages_held_by_prompt"][1] <= -(-(511 + 15) // 16)
    assert result["bytes_all_layers"] == (3 * 257 + 15 * 69) * 2 * 16 * 256 * 4 < result["bytes_full_context"] / 2.5


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
        model_type="gemma3_text",
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=6,
        num_attention_heads=4,
        num_key_value_heads=1,
        vocab_size=256,
        max_position_embeddings=4096,
        sliding_window=512,
        **extra,
    )


def test_config_reading() -> None:
    # transformers 4.x layout: one global theta, rope_local_base_freq, sliding_window_pattern.
    arch, c = config_from_hf(_cfg(rope_theta=1e6, rope_local_base_freq=1e4, sliding_window_pattern=3))
    assert arch.name == "gemma3" and c.head_dim == 256 and c.query_pre_attn_scalar == 256  # HF defaults
    assert c.layer_types == (S, S, F, S, S, F) and c.tie_word_embeddings
    assert (c.rope_local.theta, c.rope_global.theta) == (1e4, 1e6)
    assert c.prefill_chunk_size == 512  # a chunk never exceeds the window (see Gemma3Config)
    # transformers 5 layout: rope_parameters per layer type, linear scaling on the global layers.
    _, c = config_from_hf(
        _cfg(rope_parameters={F: {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6}, S: {"rope_theta": 1e4}})
    )
    assert c.rope_global.linear_factor == 8.0 and c.rope_local.linear_factor == 1.0
    model = arch.model_class(c, dtype="float32", target="llvm")
    assert sorted(arch.param_map(c)) == sorted(n for n, _ in model.named_parameters())


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (dict(attn_logit_softcapping=50.0), "attn_logit_softcapping=50.0"),
        (dict(final_logit_softcapping=30.0), "final_logit_softcapping=30.0"),
        (dict(rope_parameters={F: {"rope_type": "yarn", "factor": 4.0}, S: {}}), "'yarn'"),
        (dict(rope_scaling={"rope_type": "dynamic", "factor": 2.0}), "'dynamic'"),
        (dict(use_bidirectional_attention=True), "use_bidirectional_attention=True"),
        (dict(hidden_activation="silu"), "hidden_activation='silu'"),
        (dict(layer_types=[S, F]), "layer_types="),
        (dict(layer_types=[S] * 6), "every layer is sliding_attention"),
    ],
)
def test_unimplemented_options_are_refused(extra: dict, named: str) -> None:
    with pytest.raises(UnsupportedConfigError, match=named.replace("[", r"\[")):
        config_from_hf(_cfg(**extra))


def test_float16_activations_are_refused() -> None:
    arch, c = config_from_hf(_cfg(layer_types=[S, S, S, S, S, F]))
    with pytest.raises(UnsupportedConfigError, match="q4f32_1 or q0f32"):
        arch.model_class(c, dtype="float16", target="webgpu")


def test_webgpu_build_gets_the_fixed_merge_kernel() -> None:
    """The 270M's shape (head_dim 256, window 512) builds for webgpu at a context past the window,
    and its KV cache merges attention states with Hearth's barrier version (gpu_merge_kernel.py)."""
    arch, c = config_from_hf(_cfg(layer_types=[S, S, S, S, S, F]), context_window_size=4096)
    mod, _ = export_model(arch.model_class(c, dtype="float32", target="webgpu"))
    merge = [f for gv, f in mod.functions_items() if gv.name_hint == MERGE_STATE_SYMBOL]
    assert len(merge) == 1 and "tvm_storage_sync" in merge[0].script()


# Gemma 3's real head_dim is 256 (270M and up). Window 16, so a 48-token prompt is three prefill
# chunks (the chunk is clamped to the window) and the local layers slide in every decode step.
WIDE = {
    f"gemma3-hd{d}": dict(GEMMA, head_dim=d, num_key_value_heads=1, sliding_window=16, layer_types=[S, F, S])
    for d in (64, 256)
}


@pytest.mark.parametrize("name", list(WIDE))
def test_webgpu_wide_heads_past_the_window(name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """WebGPU == native past the window for head_dim 64 and 256. Before gpu_merge_kernel.py, TVM's
    GPU attention-state merge raced on its in-place log-sum-exp from head_dim 64 on, and every
    prefill chunk after the first (so every prompt past Gemma's window) came out wrong on WebGPU
    (logits off by 0.3-1.1 on these configs); webgpu builds with head_dim > 32 were refused then."""
    folder = fp.save_checkpoint(
        tmp_path_factory.mktemp("gemma3-wide") / name, "Gemma3TextConfig", WIDE[name], fp.randomize_norms
    )
    pkg, _ = fp.package(folder, "q0f32", ["llvm", "webgpu"])
    webgpu, native, err = fp.webgpu_logit_error(pkg, fp.prompt(77, 48), 8)
    print(f"\n{name}: WebGPU vs native max|dlogit| {err:.3g} over 48 + 8 tokens")
    assert webgpu == native
    assert err <= fp.LOGIT_TOL
