"""`hearth compile` on the project's test models (scripts/make_test_models.py), run natively.

- q0f32 for llvm vs transformers fp32: last-token logits on a 64-token prompt within 1e-3,
  and a greedy 32-token continuation identical;
- q4f32_1 vs transformers running the *dequantized* weights (same math, fp32): the only
  difference left is summation order, so logits agree within 1e-3 too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hearth.build.package import compile_package
from hearth.cache import cache_root
from hearth.native import load_decoder
from hearth.quant import dequantize_weight, get_scheme, quantize_weight

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from make_test_models import ensure_test_model  # noqa: E402

MODELS = ["tiny-llama-sp", "tiny-qwen2-bpe", "tiny-llama-trained"]
PACKAGES = cache_root() / "test-packages"


def _prompt(model_dir: Path, n: int = 64) -> list[int]:
    tok = AutoTokenizer.from_pretrained(model_dir)
    text = (model_dir / "heldout.txt").read_text()
    ids = tok(text[:4000], add_special_tokens=False)["input_ids"][:n]
    assert len(ids) == n
    return ids


def _hf_greedy(model: torch.nn.Module, ids: list[int], n: int) -> list[int]:
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)
    return out[0, len(ids) :].tolist()


def _package(name: str, quant: str) -> Path:
    return compile_package(str(ensure_test_model(name)), quant, ["llvm"], PACKAGES, model_id=name).package_dir


@pytest.mark.parametrize("name", MODELS)
def test_q0f32_matches_transformers(name: str) -> None:
    model_dir = ensure_test_model(name)
    hf = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    ids = _prompt(model_dir)
    decoder, _ = load_decoder(_package(name, "q0f32"))
    logits = decoder.prefill(ids).ravel()
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0, -1].numpy()
    assert np.abs(logits - ref).max() <= 1e-3
    decoder.reset()
    assert decoder.greedy(ids, 32) == _hf_greedy(hf, ids, 32)


def _dequantized_copy(hf: torch.nn.Module, quant: str) -> torch.nn.Module:
    """transformers model whose Linear/Embedding weights went through quantize -> dequantize."""
    scheme = get_scheme(quant)
    with torch.no_grad():
        for p in hf.parameters():
            if p.ndim == 2:  # every Linear and the embedding (norms and biases stay exact)
                w = p.detach().numpy()
                deq = dequantize_weight(*quantize_weight(w, scheme), scheme, k=w.shape[1], out_dtype="float32")
                p.copy_(torch.from_numpy(np.asarray(deq, dtype=np.float32)))
    return hf


@pytest.mark.parametrize("name", MODELS)
def test_q4f32_matches_dequantized_reference(name: str) -> None:
    model_dir = ensure_test_model(name)
    hf = _dequantized_copy(AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval(), "q4f32_1")
    ids = _prompt(model_dir)
    decoder, _ = load_decoder(_package(name, "q4f32_1"))
    logits = decoder.prefill(ids).ravel()
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0, -1].numpy()
    assert np.abs(logits - ref).max() <= 1e-3


def test_trained_model_survives_q4(tmp_path: Path) -> None:
    """4-bit weights keep the trained model's next-token choices on held-out text most of the time."""
    name = "tiny-llama-trained"
    ids = _prompt(ensure_test_model(name), 128)
    full, _ = load_decoder(_package(name, "q0f32"))
    q4, _ = load_decoder(_package(name, "q4f32_1"))
    agree = 0
    for i in range(64, 128):
        full.reset()
        q4.reset()
        agree += int(np.argmax(full.prefill(ids[:i])) == np.argmax(q4.prefill(ids[:i])))
    assert agree / 64 >= 0.75
