"""Shared steps of the per-family parity tests (test_family_*.py); not a test module itself.

A family case is a random small checkpoint made with transformers' own config class, saved with
save_pretrained (deterministic: seeded), compiled through `compile_package` like a user's
checkpoint (cached in the package store by build key, so reruns only load), and compared with
transformers:

- q0f32 (llvm): last-token logits after a 64-token prefill within 1e-3, and 32 greedy tokens equal;
- q4f32_1 (llvm) vs transformers running the quantize->dequantize weights (same math in fp32);
- the same q4f32_1 package's WebGPU build (Node + Dawn, lavapipe here) gives the native greedy tokens.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers

from conftest import REPO
from hearth.build.package import compile_package
from hearth.cache import cache_root
from hearth.native import load_decoder  # noqa: F401 - re-exported for the family tests
from hearth.quant import dequantize_weight, get_scheme, quantize_weight

LOGIT_TOL = 1e-3
PROMPT_LEN = 64
NEW_TOKENS = 32
VOCAB = 256
GENERATE = REPO / "sdk" / "scripts" / "generate.mjs"
PACKAGES = cache_root() / "test-packages" / "families"

COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,  # GQA
    max_position_embeddings=256,
    rms_norm_eps=1e-5,
    # Wider than HF's 0.02: logits spread out, so greedy choices are decided by margins far above
    # float32 noise and a real bug cannot hide behind near-ties.
    initializer_range=0.1,
    bos_token_id=None,
    eos_token_id=None,  # never stop early
    pad_token_id=0,
)


def save_checkpoint(
    folder: Path, config_class: str, overrides: dict, perturb: Callable[[torch.nn.Module], None] | None = None
) -> Path:
    """A seeded random checkpoint with a byte-level BPE tokenizer (ids are given directly)."""
    if (folder / "model.safetensors").is_file():
        return folder
    cfg = getattr(transformers, config_class)(**{**COMMON, **overrides})
    torch.manual_seed(0)
    hf = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", dtype=torch.float32)
    if perturb is not None:
        with torch.no_grad():
            perturb(hf)
    hf.save_pretrained(folder)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"})
    )
    return folder


def randomize_norms(hf: torch.nn.Module, std: float = 0.3) -> None:
    """Norm weights start at ones (or zeros for Gemma's 1 + w): make them matter."""
    for name, p in hf.named_parameters():
        if p.ndim == 1 and "norm" in name:
            p.add_(torch.randn_like(p) * std)


def hf_model(folder: Path) -> torch.nn.Module:
    return transformers.AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch.float32, attn_implementation="eager"
    ).eval()


def package(folder: Path, quant: str, targets: list[str], **kwargs) -> tuple[Path, float]:
    """(package dir, seconds): a cached build takes well under a second."""
    t0 = time.perf_counter()
    pkg = compile_package(str(folder), quant, targets, PACKAGES, model_id=folder.name, **kwargs).package_dir
    return pkg, time.perf_counter() - t0


def prompt(seed: int = 1234, n: int = PROMPT_LEN) -> list[int]:
    return np.random.default_rng(seed).integers(1, VOCAB, n).tolist()


def hf_reference(
    hf: torch.nn.Module, ids: list[int], new_tokens: int = NEW_TOKENS
) -> tuple[list[int], list[np.ndarray]]:
    """transformers' greedy tokens and the logits that chose each of them."""
    with torch.no_grad():
        gen = hf.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            do_sample=False,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            output_logits=True,
            return_dict_in_generate=True,
            pad_token_id=0,
        )
    return gen.sequences[0, len(ids) :].tolist(), [step[0].numpy() for step in gen.logits]


def check_against_hf(pkg: Path, hf: torch.nn.Module, ids: list[int], chunk: int | None = None) -> dict[str, float]:
    """Prefill logits and every decode step's logits within LOGIT_TOL; greedy tokens equal."""
    ref_tokens, ref_logits = hf_reference(hf, ids)
    dec, _ = load_decoder(pkg, target="llvm")
    if chunk is not None:
        dec.prefill_chunk_size = chunk
    logits = dec.prefill(ids)
    errs = [float(np.abs(logits - ref_logits[0]).max())]
    tokens = [int(np.argmax(logits))]
    while len(tokens) < len(ref_tokens):
        logits = dec.decode(tokens[-1])
        errs.append(float(np.abs(logits - ref_logits[len(tokens)]).max()))
        tokens.append(int(np.argmax(logits)))
    for i, (ours, ref) in enumerate(zip(tokens, ref_tokens)):
        if ours != ref:
            top2 = np.sort(ref_logits[i])[-2:]
            pytest.fail(f"greedy token {i}: ours {ours}, transformers {ref} (HF top-2 margin {top2[1] - top2[0]:.3g})")
    assert errs[0] <= LOGIT_TOL, f"last-token logits after prefill differ by {errs[0]}"
    assert max(errs) <= LOGIT_TOL, f"decode-step logits differ by up to {max(errs)}"
    return {"prefill_max_abs_err": errs[0], "max_abs_err": max(errs)}


def dequantized(hf: torch.nn.Module, quant: str) -> torch.nn.Module:
    """The model with every 2-D weight (Linears, embedding) through quantize -> dequantize."""
    scheme = get_scheme(quant)
    with torch.no_grad():
        for p in hf.parameters():
            if p.ndim == 2:
                w = p.detach().numpy()
                deq = dequantize_weight(*quantize_weight(w, scheme), scheme, k=w.shape[1], out_dtype="float32")
                p.copy_(torch.from_numpy(np.asarray(deq, dtype=np.float32)))
    return hf


def prefill_error(pkg: Path, hf: torch.nn.Module, ids: list[int]) -> float:
    dec, _ = load_decoder(pkg, target="llvm")
    logits = dec.prefill(ids).ravel()
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0, -1].numpy()
    return float(np.abs(logits - ref).max())


def webgpu_greedy(pkg: Path, ids: list[int], new_tokens: int) -> dict:
    """`node sdk/scripts/generate.mjs` on the package's WebGPU build (Dawn)."""
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: the WebGPU side cannot run (make setup)")
    cmd = ["node", str(GENERATE), str(pkg), "--ids", ",".join(map(str, ids)), "--max-new", str(new_tokens)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {"error": "no output"}
    assert proc.returncode == 0 and "error" not in result, (
        f"generate.mjs failed ({proc.returncode}): {result}\n{proc.stderr[-3000:]}"
    )
    return result


def native_greedy(pkg: Path, ids: list[int], new_tokens: int) -> list[int]:
    dec, _ = load_decoder(pkg, target="llvm")
    return dec.greedy(ids, new_tokens)


def webgpu_logit_error(
    pkg: Path, ids: list[int], new_tokens: int, prefill_chunk: int | None = None, top: int = 8
) -> tuple[list[int], list[int], float]:
    """(WebGPU greedy tokens, native greedy tokens, largest |logit difference|): at every step
    (prefill, then each decode) the WebGPU build's top-`top` logits against the native build's
    logits of the same ids. `prefill_chunk` splits the WebGPU prefill (default: the package's)."""
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: the WebGPU side cannot run (make setup)")
    cmd = ["node", str(GENERATE), str(pkg), "--ids", ",".join(map(str, ids))]
    cmd += ["--max-new", str(new_tokens), "--trace", str(top)]
    if prefill_chunk is not None:
        cmd += ["--prefill-chunk", str(prefill_chunk)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {"error": "no output"}
    assert proc.returncode == 0 and "error" not in result, (
        f"generate.mjs failed ({proc.returncode}): {result}\n{proc.stderr[-3000:]}"
    )
    dec, _ = load_decoder(pkg, target="llvm")
    logits = [dec.prefill(ids).ravel()]
    native = [int(np.argmax(logits[0]))]
    while len(native) < new_tokens:
        logits.append(dec.decode(native[-1]).ravel())
        native.append(int(np.argmax(logits[-1])))
    err = max(
        abs(value - float(logits[step][token])) for step, s in enumerate(result["steps"]) for token, value in s["top"]
    )
    return result["tokens"], native, err
