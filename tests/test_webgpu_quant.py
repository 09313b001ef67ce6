"""q4f16_mse / q4f32_mse on WebGPU (Node + Dawn) against the native llvm build of the same package.

The _mse schemes store q4's layout and decode with q4's fused dequantize-matmul kernels; only the
offline scale choice differs (hearth.quant.group._mse_codes). This checks that the shipped package
runs on WebGPU: a short held-out prompt of tiny-llama-trained is continued greedily and the WebGPU
tokens must equal the native ones (same package, same dtype). Quality: docs/eval.md (hearth eval).
Helpers and the divergence report come from test_webgpu_decoder.
"""

from __future__ import annotations

import pytest

from hearth.native import load_decoder
from test_webgpu_decoder import divergence_report, heldout_ids, package, run_webgpu

PROMPT_TOKENS = 16
NEW_TOKENS = 16


@pytest.mark.parametrize("quant", ["q4f16_mse", "q4f32_mse"])
def test_mse_scheme_webgpu_greedy_matches_native(quant: str) -> None:
    pkg = package("tiny-llama-trained", quant)
    prompt = heldout_ids("tiny-llama-trained", quant, PROMPT_TOKENS)
    dec, _ = load_decoder(pkg, target="llvm")
    native = dec.greedy(prompt, NEW_TOKENS)
    result = run_webgpu(pkg, prompt, NEW_TOKENS)
    assert result["usesF16"] == ("f16" in quant)
    assert len(result["tokens"]) == NEW_TOKENS
    assert result["tokens"] == native, divergence_report(pkg, prompt, native, result["tokens"])
