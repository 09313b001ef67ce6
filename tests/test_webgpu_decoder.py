"""The SDK's DecoderModel on WebGPU (Node + Dawn) against the native llvm build of the same package.

For each package, a 48-token prompt cut from the model's held-out text (tokenized with the package's
own tokenizer.json) is continued greedily for 32 tokens by

- `node sdk/scripts/generate.mjs` (the wasm on Dawn: lavapipe here, any Vulkan GPU elsewhere), and
- `hearth.native.load_decoder(pkg, target="llvm").greedy` (the .so of the same package, same dtype),

and the token lists must be IDENTICAL. The f16 packages are compared f16 against f16. On a mismatch the
failure names the first divergent position with both sides' top logits and margins, so an f16 near-tie
can be told from a real bug.

Packages are (re)built by `compile_package` into dist/ when missing or stale (cached by build key).
Timings (prefill/decode tok/s on this adapter) are printed; run with `-s` to see them.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from conftest import REPO
from hearth.native import load_decoder

sys.path.insert(0, str(REPO / "scripts"))
import build_packages  # noqa: E402
import make_test_models as mtm  # noqa: E402

GENERATE = REPO / "sdk" / "scripts" / "generate.mjs"
PACKAGES = [("tiny-llama-trained", "q4f32_1"), ("tiny-llama-trained", "q4f16_1"), ("tiny-qwen2-bpe", "q4f16_1")]
IDS = [f"{name}/{quant}" for name, quant in PACKAGES]
PROMPT_TOKENS = 48
NEW_TOKENS = 32
PROMPT_OFFSET = 64  # tokens skipped at the start of the held-out text (past the first topic's heading)


@functools.cache
def package(name: str, quant: str) -> Path:
    return build_packages.ensure_package(name, quant)


@functools.cache
def heldout_ids(name: str, quant: str, n: int, offset: int = PROMPT_OFFSET) -> list[int]:
    """n token ids of the model's held-out text, tokenized with the package's tokenizer.json."""
    pkg = package(name, quant)
    text = (mtm.ensure_test_model(name) / "heldout.txt").read_text(encoding="utf-8")
    ids = Tokenizer.from_file(str(pkg / "tokenizer.json")).encode(text, add_special_tokens=False).ids
    vocab = json.loads((pkg / "mlc-chat-config.json").read_text())["vocab_size"]
    window = ids[offset : offset + n]
    assert len(window) == n and all(0 <= t < vocab for t in window), (len(window), vocab)
    return window


def run_webgpu(pkg: Path, prompt: list[int], new_tokens: int, *extra: str) -> dict:
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: the WebGPU side cannot run (make setup)")
    cmd = ["node", str(GENERATE), str(pkg), "--ids", ",".join(map(str, prompt)), "--max-new", str(new_tokens), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {"error": "no output"}
    assert proc.returncode == 0 and "error" not in result, (
        f"{' '.join(cmd[:3])} failed ({proc.returncode}): {result}\n{proc.stderr[-3000:]}"
    )
    return result


def native_trace(pkg: Path, prompt: list[int], new_tokens: int, chunk: int | None = None, k: int = 3) -> list[dict]:
    """NativeDecoder.greedy spelled out, keeping each step's top-k logits (for divergence reports)."""
    dec, _ = load_decoder(pkg, target="llvm")
    if chunk is not None:
        dec.prefill_chunk_size = chunk
    steps, logits = [], dec.prefill(prompt)
    while True:
        top = np.argsort(-logits, kind="stable")[:k]
        steps.append({"token": int(np.argmax(logits)), "top": [[int(t), float(logits[t])] for t in top]})
        if len(steps) == new_tokens:
            return steps
        logits = dec.decode(steps[-1]["token"])


def divergence_report(
    pkg: Path, prompt: list[int], native: list[int], webgpu: list[int], chunk: int | None = None
) -> str:
    i = next((j for j, (a, b) in enumerate(zip(native, webgpu)) if a != b), min(len(native), len(webgpu)))
    extra = ["--trace", "3"] + (["--prefill-chunk", str(chunk)] if chunk else [])
    wg = run_webgpu(pkg, prompt, len(native), *extra)["steps"]
    nt = native_trace(pkg, prompt, len(native), chunk)
    lines = [f"first divergence at generated position {i}: native {native[i : i + 1]} vs webgpu {webgpu[i : i + 1]}"]
    if i < len(nt) and i < len(wg):
        n_top, w_top = nt[i]["top"], wg[i]["top"]
        lines.append(f"  native top-3 {n_top} (margin {n_top[0][1] - n_top[1][1]:.6g})")
        lines.append(f"  webgpu top-3 {w_top} (margin {wg[i]['margin']:.6g})")
    lines.append(f"  native: {native}\n  webgpu: {webgpu}")
    return "\n".join(lines)


def rates(stats: dict) -> str:
    p, d = stats["prefill"], stats["decode"]
    return (
        f"prefill {p['tokensPerSec']:.1f} tok/s ({p['tokens']} tok, {p['ms']:.0f} ms), "
        f"decode {d['tokensPerSec']:.1f} tok/s ({d['tokens']} tok, {d['ms']:.0f} ms), "
        f"load {stats['load']['totalMs']:.0f} ms (pipelines {stats['load']['pipelinesMs']:.0f} ms)"
    )


@pytest.mark.parametrize(("name", "quant"), PACKAGES, ids=IDS)
def test_webgpu_greedy_matches_native(name: str, quant: str, record_property) -> None:
    pkg = package(name, quant)
    prompt = heldout_ids(name, quant, PROMPT_TOKENS)
    dec, _ = load_decoder(pkg, target="llvm")
    native = dec.greedy(prompt, NEW_TOKENS)

    # Two runs in one process (reset between): the second is warm; both must agree.
    result = run_webgpu(pkg, prompt, NEW_TOKENS, "--repeat", "2")
    assert result["deterministic"], f"WebGPU runs disagree: {result['runs']}"
    webgpu = result["tokens"]
    record_property("webgpu_stats", json.dumps(result["stats"]))
    record_property("webgpu_run_stats", json.dumps(result["runStats"]))
    print(f"\n{name}/{quant} on {result['adapter']['description']}: {rates(result['stats'])} (warm run)")
    print(f"  first run: {result['runStats'][0]}")
    assert result["usesF16"] == quant.endswith(("f16_1", "f16"))
    assert len(webgpu) == NEW_TOKENS
    assert webgpu == native, divergence_report(pkg, prompt, native, webgpu)


@pytest.mark.parametrize(("name", "quant"), PACKAGES, ids=IDS)
def test_webgpu_chunked_prefill_matches_native(name: str, quant: str) -> None:
    """A 100-token prompt fed 32 tokens per prefill call (32+32+32+4) on both sides."""
    pkg = package(name, quant)
    prompt = heldout_ids(name, quant, 100)
    dec, _ = load_decoder(pkg, target="llvm")
    dec.prefill_chunk_size = 32
    native = dec.greedy(prompt, 16)
    result = run_webgpu(pkg, prompt, 16, "--prefill-chunk", "32")
    assert result["stats"]["prefill"]["calls"] == 4, result["stats"]["prefill"]
    assert result["tokens"] == native, divergence_report(pkg, prompt, native, result["tokens"], chunk=32)


def test_generate_cli_reports_integrity_errors(tmp_path: Path) -> None:
    """A flipped byte in the weights: generate.mjs exits 2 with an IntegrityError naming the shard."""
    src = package(*PACKAGES[0])
    bad = tmp_path / "pkg"
    shutil.copytree(src, bad)
    shard = bad / "params_shard_0.bin"
    data = bytearray(shard.read_bytes())
    data[len(data) // 3] ^= 0x80
    shard.write_bytes(bytes(data))
    proc = subprocess.run(
        ["node", str(GENERATE), str(bad), "--ids", "1,2,3", "--max-new", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["errorName"] == "IntegrityError" and result["file"] == "params_shard_0.bin", result
