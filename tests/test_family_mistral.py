"""Mistral v0.1-style sliding-window attention on EVERY layer (llama family, hearth.models.llama)
against transformers' MistralForCausalLM: a random small checkpoint with a 16-token window,
compiled by `compile_package`. See family_parity.py for what each comparison means.

The cache runs in TVM's whole-model sliding mode (decoder.sequence_window): each sequence keeps the
last window - 1 tokens and frees older pages, RoPE is applied in the attention kernels, and the
prefill kernel masks each row to the window (decoder.window_masked). The 64- and 48-token prompts
are longer than the window, so it slides in prefill (chunks of at most the window) and in every
decode step; head_dim 64 also takes the GPU merge kernel fix (gpu_merge_kernel.py) on WebGPU, and
the WebGPU side is the SDK's PagedKVCache, which enables the window per sequence as the native
driver does.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import tvm

import family_parity as fp
from conftest import REPO

WINDOW = 16
PAGE = 16  # what hearth.native and the SDK create their caches with
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


def test_mid_page_chunks_match_transformers(checkpoint: Path) -> None:
    """Chunks of 5 tokens: the window starts mid-page after every slide and rows of one chunk see
    different numbers of cached tokens."""
    pkg, _ = fp.package(checkpoint, "q0f32", ["llvm", "webgpu"])
    errs = fp.check_against_hf(pkg, fp.hf_model(checkpoint), fp.prompt(9), chunk=5)
    print(f"\nmistral window {WINDOW}, chunks of 5: q0f32 max|dlogit| {errs['max_abs_err']:.3g}")


def test_cache_holds_the_window_only(checkpoint: Path) -> None:
    """A cache created for a 4096-token context gets pages for the window and one prefill chunk
    (TVM gives every layer ceil(context / 16) + 1 = 257 pages without the slide), and a sequence
    12 windows long still uses only the window's pages, which are reused as it slides."""
    pkg, _ = fp.package(checkpoint, "q0f32", ["llvm", "webgpu"])
    dec, config = fp.load_decoder(pkg, target="llvm", max_total_seq_len=4096)
    assert config["sliding_window_size"] == WINDOW - 1 and config["attention_sink_size"] == 0
    available = tvm.get_global_func("vm.builtin.attention_kv_cache_get_num_available_pages")
    total = int(available(dec.kv))
    # decoder.whole_model_window_capacity: window + 2 pages + one chunk of tokens, in pages, + 1,
    # + 2 per sequence (TVM's slack for sliding caches).
    assert total == -(-(WINDOW + 2 * PAGE + config["prefill_chunk_size"]) // PAGE) + 1 + 2 == 7
    ids = fp.prompt(5, 12 * WINDOW)
    logits = dec.prefill(ids)
    for token in (3, 4, 5):
        logits = dec.decode(token)
        ids.append(token)
    used = total - int(available(dec.kv))
    # window - 1 tokens, starting anywhere in the first page.
    assert used <= -(-(WINDOW - 1 + PAGE - 1) // PAGE) == 2, used
    with torch.no_grad():
        ref = fp.hf_model(checkpoint)(torch.tensor([ids])).logits[0, -1].numpy()
    assert np.abs(logits.ravel() - ref).max() <= fp.LOGIT_TOL


def test_webgpu_sdk_slides_and_refuses_prefix_reuse_past_the_window(checkpoint: Path) -> None:
    """The SDK's DecoderModel on WebGPU: greedy past the window equals native; once the window has
    slid, truncate (kv_state_popn) is refused instead of corrupting the cache, and reset starts over
    with the same tokens; before the window slides, truncate still reuses the prefix."""
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: the WebGPU side cannot run (make setup)")
    pkg, _ = fp.package(checkpoint, "q0f32", ["llvm", "webgpu"])
    ids = fp.prompt(21, 40)
    script = REPO / "tests" / "support" / "sliding_window_session.mjs"
    cmd = ["node", "--import", "tsx", str(script), str(pkg), ",".join(map(str, ids)), "12"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO / "sdk")
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {"error": "no output"}
    assert proc.returncode == 0 and "error" not in result, f"{result}\n{proc.stderr[-3000:]}"
    assert result["slidingWindow"] == WINDOW - 1
    native = fp.native_greedy(pkg, ids, 12)
    assert result["tokens"] == native
    assert result["truncateError"] is not None and "slid past" in result["truncateError"], result["truncateError"]
    assert result["tokensAfterReset"] == native
    assert result["shortTokens"] == fp.native_greedy(pkg, ids[:8], 12)


def test_mistral_7b_cache_is_sized_for_its_window() -> None:
    """Mistral-7B-v0.1's real shape (32 layers, 8 kv heads, head_dim 128, window 4096) at its 32768-token
    context, through bench/kv_memory.py (the model's own create_paged_kv_cache, compiled without
    weights): 389 pages per layer instead of the 2049 a full-context cache gets, and an 8000-token
    sequence holds the window's pages only."""
    cmd = [sys.executable, str(REPO / "bench" / "kv_memory.py"), "--shape", "mistral-7b", "--context", "32768"]
    proc = subprocess.run([*cmd, "--prompt", "8000"], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # ceil((4096 + 2 pages + 2048-token chunk) / 16) + 1 + 2 (TVM's slack for a sliding sequence)
    assert result["pages_per_layer"] == [(4096 + 32 + 2048) // 16 + 1 + 2] == [389]
    assert result["sliding_window_size"] == 4095
    assert result["pages_held_by_prompt"][0] <= -(-(4095 + 15) // 16) == 257
    assert result["bytes_per_layer"] == [389 * 2 * 8 * 16 * 128 * 4]
    assert result["bytes_full_context"] == 2049 * 2 * 8 * 16 * 128 * 4 * 32
