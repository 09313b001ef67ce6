"""Mistral v0.1-style sliding-window attention on EVERY layer (llama family, hearth.models.llama)
against transformers' MistralForCausalLM: a random small checkpoint with a 16-token window,
compiled by `compile_package`. See family_parity.py for what each comparison means.

TVM 0.27's KV cache fails at the first forward when every layer is "mha_sliding" (it allocates its
q/k/v work buffers only for "mha" layers); Hearth's cache gets one extra full-attention layer that
no model layer uses. The 64- and 48-token prompts are longer than the window, so it slides in
prefill (chunks of at most the window) and in every decode step; head_dim 64 also takes the GPU
merge kernel fix (gpu_merge_kernel.py) on WebGPU.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

import family_parity as fp

WINDOW = 16
MISTRAL = dict(num_hidden_layers=2, head_dim=64, num_key_value_heads=2, sliding_window=WINDOW)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fp.save_checkpoint(tmp_path_factory.mktemp("mistral") / "mistral-window", "MistralConfig", MISTRAL)


def test_q0f32_matches_transformers(checkpoint: Path) -> None:
    pkg, seconds = fp.package(checkpoint, "q0f32", ["llvm", "webgpu"])
    errs = fp.check_against_hf(pkg, fp.hf_model(checkpoint), fp.prompt())
    print(f"\nmistral window {WINDOW}: q0f32 max|dlogit| {errs['max_abs_err']:.3g}, package {seconds:.1f}s")


def test_window_is_observable(checkpoint: Path) -> None:
    """The same weights without the window give logits far from the windowed model's, which the
    compiled package matches: the window is really applied."""
    hf = fp.hf_model(checkpoint)
    wide = copy.deepcopy(hf)
    wide.config.sliding_window = None
    ids = fp.prompt()
    with torch.no_grad():
        windowed = hf(torch.tensor([ids])).logits[0, -1].numpy()
        full = wide(torch.tensor([ids])).logits[0, -1].numpy()
    pkg, _ = fp.package(checkpoint, "q0f32", ["llvm", "webgpu"])
    ours = fp.load_decoder(pkg, target="llvm")[0].prefill(ids).ravel()
    assert np.abs(ours - windowed).max() <= fp.LOGIT_TOL
    assert np.abs(full - windowed).max() > 100 * fp.LOGIT_TOL, np.abs(full - windowed).max()


def test_webgpu_matches_native(checkpoint: Path) -> None:
    pkg, _ = fp.package(checkpoint, "q0f32", ["llvm", "webgpu"])
    webgpu, native, err = fp.webgpu_logit_error(pkg, fp.prompt(77, 48), 8)
    print(f"\nmistral window {WINDOW}: WebGPU vs native max|dlogit| {err:.3g} over 48 + 8 tokens")
    assert webgpu == native
    assert err <= fp.LOGIT_TOL
