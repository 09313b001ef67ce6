"""The SDK's chat engine (createEngine -> EngineCore on Dawn WebGPU, in Node) against the Python side.

For each test package, `node sdk/scripts/engine-chat.mjs` runs one greedy chat completion (the package's
chat template, tokenized by the SDK, ignore_eos so exactly N tokens) and then the same request streamed,
which reuses the KV cache's prefix. Checked here:

- the prompt ids the engine built equal transformers' `apply_chat_template(..., add_generation_prompt=True)`
  with the package's own tokenizer files (template rendering + tokenization parity);
- the generated token ids equal `hearth.native.load_decoder(pkg).greedy(prompt_ids, N)` (the llvm build of
  the same package: same weights, same dtype);
- the text equals transformers' decode of prompt + generated ids past the prompt's text (the streamed
  detokenization is right), and the streamed run (KV reuse) has the same tokens and text.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO
from hearth.native import load_decoder

SCRIPT = REPO / "sdk" / "scripts" / "engine-chat.mjs"
PACKAGES = [("tiny-llama-trained", "q4f32_1"), ("tiny-llama-trained", "q4f16_1"), ("tiny-qwen2-bpe", "q4f16_1")]
IDS = [f"{name}/{quant}" for name, quant in PACKAGES]
MAX_TOKENS = 24
MESSAGES = [
    {"role": "system", "content": "You answer questions about the Python standard library."},
    {"role": "user", "content": "How do I read a file line by line?"},
    {"role": "assistant", "content": "Use a for loop over the open file object."},
    {"role": "user", "content": "And how do I strip the newline?"},
]


def package_dir(name: str, quant: str) -> Path:
    pkg = REPO / "dist" / name / quant
    if not (pkg / "hearth-manifest.json").exists():
        # test_webgpu_decoder.py builds the packages (compile_package, cached by build key).
        from test_webgpu_decoder import package

        pkg = package(name, quant)
    return pkg


def run_engine(pkg: Path, messages: list[dict], max_tokens: int) -> dict:
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH (make setup)")
    cmd = ["node", str(SCRIPT), str(pkg), "--messages", json.dumps(messages), "--max-tokens", str(max_tokens)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO / "sdk")
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {"error": "no output"}
    assert proc.returncode == 0 and "error" not in result, (
        f"engine-chat failed ({proc.returncode}): {result}\n{proc.stderr[-3000:]}"
    )
    return result


@pytest.mark.parametrize(("name", "quant"), PACKAGES, ids=IDS)
def test_engine_chat_matches_python(name: str, quant: str) -> None:
    from transformers import AutoTokenizer

    pkg = package_dir(name, quant)
    result = run_engine(pkg, MESSAGES, MAX_TOKENS)
    prompt, tokens = result["prompt_token_ids"], result["token_ids"]

    tok = AutoTokenizer.from_pretrained(str(pkg))
    expected_prompt = tok.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=True, return_dict=False)
    assert prompt == list(expected_prompt), "chat template / tokenization differs from transformers"

    dec, _ = load_decoder(pkg)
    native = dec.greedy(prompt, MAX_TOKENS)
    assert len(tokens) == MAX_TOKENS and result["finish_reason"] == "length"
    assert tokens == native, f"engine greedy differs from hearth.native\n  engine: {tokens}\n  native: {native}"

    prefix = tok.decode(prompt, skip_special_tokens=True)
    whole = tok.decode(prompt + tokens, skip_special_tokens=True)
    assert whole.startswith(prefix)
    assert result["text"] == whole[len(prefix) :], (result["text"], whole[len(prefix) :])

    # The streamed repeat reused the KV prefix and produced the same thing.
    assert result["stream_token_ids"] == tokens
    assert result["stream_text"] == result["text"]
    assert result["stream_usage"]["prompt_tokens_details"]["cached_tokens"] > 0
    u = result["usage"]
    print(
        f"\n{name}/{quant}: ttft {u['time_to_first_token_ms']:.1f} ms, prefill {u['prefill_tokens_per_s']:.0f} tok/s "
        f"({u['prompt_tokens']} tokens), decode {u['decode_tokens_per_s']:.1f} tok/s"
    )
