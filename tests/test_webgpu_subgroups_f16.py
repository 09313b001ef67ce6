"""webgpu-fused-sg8 for float16 activations (issue 17; the f32 side and the kernel-level checks:
tests/test_webgpu_subgroups.py). On Dawn (lavapipe: shader-f16, subgroups of 8 lanes): tiny-llama-trained
q4f16_1 compiled with --target webgpu-fused --target webgpu-fused-sg8 (cached by build key); the sg8 library
shuffles the f16 model's reductions and gives the fused library's greedy tokens over 24 positions, top-5
logits within tests/test_fusion_f16.py's bound.
"""

from __future__ import annotations

from test_webgpu_subgroups import check_sg_library_against_fused


def test_sg8_f16_library_same_greedy_tokens_and_close_logits_as_fused() -> None:
    check_sg_library_against_fused("q4f16_1", ("webgpu-fused", "webgpu-fused-sg8"), 8)
