"""A prefill over a non-empty KV cache on WebGPU (Node + Dawn): the second chunk of a long prompt,
or any chat turn after the first. The cache then attends the chunk to itself and to the cached
pages and merges the two attention states. TVM 0.27's GPU merge kernel raced on the log-sum-exp it
updates in place once a head spans more than one subgroup (head_dim >= 64 on lavapipe), so these
prefills came out wrong for every family with such heads (SmolLM2's head_dim is 64); Hearth swaps
in a fixed copy (hearth/models/gpu_merge_kernel.py). Before it, this llama config's logits were
off by 0.6 with a different greedy token. Gemma 3's case: test_family_gemma3.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import family_parity as fp

LLAMA_HD64 = dict(num_hidden_layers=2, head_dim=64, num_key_value_heads=1)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = fp.save_checkpoint(tmp_path_factory.mktemp("chunked") / "llama-hd64", "LlamaConfig", LLAMA_HD64)
    return fp.package(folder, "q0f32", ["llvm", "webgpu"])[0]


@pytest.mark.parametrize("chunk", [16, 40])
def test_chunked_prefill_matches_native(package: Path, chunk: int) -> None:
    """A 40-token prompt in chunks of 16 (16 + 16 + 8: two merges per layer) and in one chunk."""
    webgpu, native, err = fp.webgpu_logit_error(package, fp.prompt(77, 40), 4, prefill_chunk=chunk)
    print(f"\nllama head_dim 64, prefill chunk {chunk}: WebGPU vs native max|dlogit| {err:.3g}")
    assert webgpu == native
    assert err <= fp.LOGIT_TOL
