"""The GGUF carry-over schemes (q4f16_gguf / q4f32_gguf): a GGUF's own block codes in the package,
never rounded a second time.

- codec: Q4_0 / Q4_1 / Q8_0 blocks made by gguf.quants.quantize -> BlockCodes -> packed layout ->
  decode equals gguf.dequantize bit for bit (f32 and f16 storage);
- package: every weight of the tiny llama GGUF (scripts/make_test_gguf.py) decoded from the
  tensor-cache equals the converted reference folder (transformers' GGUF loader) bit for bit, and the
  q/k rows are in HF order (equal to the un-permuted original quantized alone);
- native llvm logits vs transformers on the GGUF-dequantized weights (<= 1e-3);
- WebGPU (Node + Dawn) and wasm-cpu greedy tokens equal the native build's;
- errors: a non-GGUF source, a GGUF with block types that cannot be carried, an 8-bit block in a
  4-bit layer, a minimum out of f16 range, float weights fed to a carry plan.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from hearth.cache import cache_root
from hearth.quant import (
    AsymCarryError,
    bits_per_param,
    build_plan,
    dequantize_asym,
    get_scheme,
    pack_block_codes,
    quantize_model,
)
from hearth.weights.gguf_blocks import GGUFCarryError, block_codes, check_carry_over
from hearth.weights.reader import CheckpointReader
from hearth.weights.source import resolve_source

sys.path.insert(0, str(REPO / "scripts"))
import make_test_gguf  # noqa: E402

CARRIED = ["Q4_0", "Q4_1", "Q8_0"]
PROMPT = [341, 220, 557, 332, 74, 283, 349, 86, 77, 284, 78, 87, 220, 73, 84, 330]


def _same_bits(got: np.ndarray, want: np.ndarray) -> bool:
    """Bit-identical, except that gguf's Q4_0 / Q8_0 code d * 0 gives -0.0 for a negative d where
    code * d + min gives +0.0 (equal values; no product or sum can tell them apart from 0 here)."""
    return np.array_equal(
        np.where(want == 0, 0, got).view(np.uint32), np.where(want == 0, 0, want).view(np.uint32)
    ) and np.array_equal(got == 0, want == 0)


def _gguf_blocks(w: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(raw blocks, gguf.dequantize of them) for a float32 [rows, K] array."""
    from gguf import GGMLQuantizationType, dequantize
    from gguf.quants import quantize

    t = GGMLQuantizationType[kind]
    raw = quantize(w, t)
    return raw, dequantize(raw, t)


# ----------------------------------------------------------------------------------------------
# codec
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", CARRIED)
@pytest.mark.parametrize("model_dtype", ["float32", "float16"])
def test_carried_blocks_decode_bit_exact(kind: str, model_dtype: str) -> None:
    rng = np.random.default_rng(7)
    w = (rng.standard_normal((48, 256)) * rng.uniform(0.01, 3, (48, 1))).astype(np.float32)
    w[3, 32:64] = 0.0  # an all-zero block (d = 0)
    w[5, :32] = 1.5  # a constant block (Q4_1: d = 0, m = 1.5)
    raw, ref = _gguf_blocks(w, kind)
    blocks = block_codes(raw, kind)
    assert blocks.codes.shape == w.shape and blocks.types == (kind,)
    assert _same_bits(blocks.dequantize(), ref)
    bits = 8 if kind == "Q8_0" else 4
    for layout_bits in {bits, 8}:  # a 4-bit block also fits the 8-bit layout exactly
        qw, qs, qm = pack_block_codes(blocks, layout_bits, model_dtype)
        assert qw.dtype == np.uint32 and qw.shape == (48, 256 * layout_bits // 32)
        assert qs.dtype == np.dtype(model_dtype) and qm.shape == qs.shape == (48, 8)
        got = dequantize_asym(qw, qs, qm)
        assert _same_bits(got, ref), f"{kind} in {layout_bits}-bit {model_dtype}"


def test_nibble_order_and_packing() -> None:
    """GGUF: element j in byte j's low nibble, j+16 in its high nibble; Hearth: element i of a word at bits 4i."""
    raw = np.zeros((1, 20), np.uint8)
    raw[0, 0:2] = np.array([1.0], np.float16).view(np.uint8)  # d = 1
    raw[0, 4:20] = np.arange(16, dtype=np.uint8) | (np.uint8(15) - np.arange(16, dtype=np.uint8)) << 4
    blocks = block_codes(raw, "Q4_1")
    assert blocks.codes[0].tolist() == list(range(16)) + list(range(15, -1, -1))
    qw, _, _ = pack_block_codes(blocks, 4, "float32")
    assert qw[0, 0] == 0x76543210 and qw[0, 2] == 0x89ABCDEF


def test_uncarriable_blocks_are_refused() -> None:
    rng = np.random.default_rng(1)
    raw, _ = _gguf_blocks(rng.standard_normal((4, 64)).astype(np.float32), "Q8_0")
    with pytest.raises(AsymCarryError, match=r"Q8_0.*do not fit this layer's 4-bit layout"):
        pack_block_codes(block_codes(raw, "Q8_0"), 4, "float32", name="mlp.down_proj.weight")
    big = np.full((1, 32), 120000.0, np.float32)  # Q8_0: d = 945 is an f16, min = -128 d is not
    raw, _ = _gguf_blocks(big, "Q8_0")
    with pytest.raises(AsymCarryError, match="not exactly representable in float16"):
        pack_block_codes(block_codes(raw, "Q8_0"), 8, "float16")
    raw, _ = _gguf_blocks(rng.standard_normal((2, 32)).astype(np.float32), "Q5_0")
    with pytest.raises(GGUFCarryError, match="Q5_0 blocks cannot be carried over; carried types: Q4_0, Q4_1, Q8_0"):
        block_codes(raw, "Q5_0")


def test_schemes_and_bits() -> None:
    for name, dt, bits in [
        ("q4f16_gguf", "float16", 4),
        ("q4f32_gguf", "float32", 4),
        ("q8f16_gguf", "float16", 8),
        ("q8f32_gguf", "float32", 8),
    ]:
        s = get_scheme(name)
        assert s.carries_gguf and s.is_quantized and s.model_dtype == dt and s.group_size == 32
        assert (s.layer_bits("linear"), s.layer_bits("embedding"), s.layer_bits("final_fc")) == (bits, 8, 8)
    # Q4_1's own cost: 4 bits + f16 d and m per 32 = 5.0; with f32 scales 6.0
    assert bits_per_param("q4f16_gguf", [(576, 576)]) == 5.0
    assert bits_per_param("q4f32_gguf", [(576, 576)]) == 6.0


def test_carry_plan_takes_block_codes_only() -> None:
    from hearth.models import config_from_hf, get_architecture  # noqa: F401 - the model registry

    path = make_test_gguf.ensure_test_gguf()
    source = resolve_source(str(path))
    arch, config = config_from_hf(source.config)
    model = quantize_model(arch.model_class(config, dtype="float32"), "q4f32_gguf")
    plan = build_plan(model, "q4f32_gguf")
    kinds = {n: p.kind for n, p in plan.params.items()}
    assert kinds["model.embed_tokens.weight"] == "carry" and plan.params["model.embed_tokens.weight"].bits == 8
    assert plan.params["model.layers.0.mlp.down_proj.weight"].bits == 4
    assert kinds["model.norm.weight"] == "cast"
    assert set(plan.params["model.layers.0.mlp.down_proj.weight"].outputs) == {
        f"model.layers.0.mlp.down_proj.{p}" for p in ("q_weight", "q_scale", "q_min")
    }
    with pytest.raises(TypeError, match="cannot quantize a float array.*q4f16_1 / q4f16_mse"):
        plan.quantize_param("model.layers.0.mlp.down_proj.weight", np.zeros((64, 128), np.float32))


# ----------------------------------------------------------------------------------------------
# source errors
# ----------------------------------------------------------------------------------------------
def test_non_gguf_source_is_refused() -> None:
    import make_test_models as mtm

    source = resolve_source(str(mtm.ensure_test_model("tiny-qwen2-bpe")))
    with pytest.raises(
        GGUFCarryError, match=r"q4f16_gguf carries a GGUF file's own block codes.*not a GGUF file.*q4f16_1 or q4f16_mse"
    ):
        check_carry_over(get_scheme("q4f16_gguf"), source)
    check_carry_over(get_scheme("q4f16_1"), source)  # other schemes: no-op


def test_gguf_with_uncarriable_types_is_refused() -> None:
    source = resolve_source(str(make_test_gguf.ensure_test_gguf(linear_type="Q5_1")))
    with pytest.raises(
        GGUFCarryError, match=r"Q5_1 \(14 tensors\).*q4f32_gguf carries Q4_0, Q4_1, Q8_0 blocks.*q4f32_1 or q4f32_mse"
    ):
        check_carry_over(get_scheme("q4f32_gguf"), source)


def test_gguf_with_8bit_linears_needs_the_q8_scheme() -> None:
    source = resolve_source(str(make_test_gguf.ensure_test_gguf(linear_type="Q8_0")))
    with pytest.raises(
        GGUFCarryError, match=r"14 tensors hold 8-bit blocks where q4f16_gguf keeps 4-bit codes.*use q8f16_gguf"
    ):
        check_carry_over(get_scheme("q4f16_gguf"), source)
    check_carry_over(get_scheme("q8f16_gguf"), source)


def test_compile_refuses_non_gguf_source_before_building(tmp_path: Path) -> None:
    import make_test_models as mtm
    from hearth.build.package import compile_package

    with pytest.raises(GGUFCarryError, match="not a GGUF file"):
        compile_package(str(mtm.ensure_test_model("tiny-qwen2-bpe")), "q4f32_gguf", ["llvm"], tmp_path)
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------------
# compiled packages
# ----------------------------------------------------------------------------------------------
# Four packages in all (cached by build key): the Q4_1 file in q4f32_gguf for every target and in
# q4f16_gguf for WebGPU; the Q4_0 and Q8_0 files natively.
TARGETS = {("q4f32_gguf", "Q4_1"): ("llvm", "webgpu", "wasm-cpu"), ("q4f16_gguf", "Q4_1"): ("llvm", "webgpu")}


@functools.cache
def _package(quant: str, linear_type: str = "Q4_1") -> Path:
    from hearth.build.package import compile_package

    gguf = make_test_gguf.ensure_test_gguf(linear_type=linear_type)
    out = cache_root() / "test-packages" / "gguf-carry"
    targets = TARGETS.get((quant, linear_type), ("llvm",))
    return compile_package(str(gguf), quant, list(targets), out, model_id=f"tiny-llama-gguf-{linear_type}").package_dir


@pytest.mark.parametrize(
    ("quant", "linear_type"),
    [("q4f32_gguf", "Q4_1"), ("q4f16_gguf", "Q4_1"), ("q4f32_gguf", "Q4_0"), ("q8f32_gguf", "Q8_0")],
)
def test_package_holds_the_gguf_values(quant: str, linear_type: str) -> None:
    from tvm.contrib import tvmjs

    pkg = _package(quant, linear_type)
    manifest = json.loads((pkg / "hearth-manifest.json").read_text())
    assert manifest["quantization"] == quant and manifest["source_file"]["tensor_types"][linear_type] >= 14
    params, _ = tvmjs.load_tensor_cache(str(pkg), None)
    ref = CheckpointReader(resolve_source(str(make_test_gguf.ensure_test_gguf(linear_type=linear_type))).path)
    split = {"qkv_proj": ("q_proj", "k_proj", "v_proj"), "gate_up_proj": ("gate_proj", "up_proj")}
    checked = 0
    for name in params:
        if not name.endswith(".q_weight"):
            continue
        base = name.removesuffix(".q_weight")
        got = dequantize_asym(*(params[f"{base}.{p}"].numpy() for p in ("q_weight", "q_scale", "q_min")))
        stem, last = base.rsplit(".", 1)
        want = np.concatenate([ref.get(f"{stem}.{p}.weight") for p in split.get(last, (last,))])
        assert _same_bits(got, want), base
        checked += 1
    assert checked == 1 + 2 * 4  # the embedding table; per layer qkv_proj, o_proj, gate_up_proj, down_proj
    assert params["model.embed_tokens.q_weight"].numpy().shape == (1024, 64 * 8 // 32)  # Q8_0: 8-bit layout


def test_q_rows_are_in_hf_order() -> None:
    """The package's q_proj rows are the ORIGINAL model's rows (llama.cpp permuted them in the file)."""
    from tvm.contrib import tvmjs

    pkg = _package("q4f32_gguf")
    params, _ = tvmjs.load_tensor_cache(str(pkg), None)
    qkv = dequantize_asym(
        *(params[f"model.layers.1.self_attn.qkv_proj.{p}"].numpy() for p in ("q_weight", "q_scale", "q_min"))
    )
    tokens, *_ = make_test_gguf._tokenizer()
    original = make_test_gguf._random_weights(len(tokens), seed=0)["model.layers.1.self_attn.q_proj.weight"]
    _, want = _gguf_blocks(original, "Q4_1")  # quantized alone, rows never permuted
    assert _same_bits(qkv[: original.shape[0]], want)


def test_llvm_logits_match_transformers_on_dequantized_weights() -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from hearth.native import load_decoder

    pkg = _package("q4f32_gguf")
    folder = resolve_source(str(make_test_gguf.ensure_test_gguf())).path
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    with torch.no_grad():
        ref = model(torch.tensor([PROMPT])).logits[0].numpy()
    dec, _ = load_decoder(pkg, target="llvm")
    got = [dec.prefill(PROMPT[:8])] + [dec.decode(t) for t in PROMPT[8:]]
    err = max(float(np.abs(g - r).max()) for g, r in zip(got, ref[7:]))
    assert err <= 1e-3, err


@pytest.mark.parametrize("quant", ["q4f32_gguf", "q4f16_gguf"])
def test_webgpu_greedy_matches_native(quant: str) -> None:
    """WebGPU (Node + Dawn on lavapipe) gives the native build's greedy tokens."""
    from hearth.native import load_decoder
    from test_webgpu_decoder import divergence_report, run_webgpu

    pkg = _package(quant)
    dec, _ = load_decoder(pkg, target="llvm")
    native = dec.greedy(PROMPT, 12)
    result = run_webgpu(pkg, PROMPT, 12)
    assert result["quantization"] == quant and result["usesF16"] == ("f16" in quant)
    assert result["tokens"] == native, divergence_report(pkg, PROMPT, native, result["tokens"])


def test_wasm_cpu_greedy_matches_native() -> None:
    """The wasm-cpu build (the SDK on tvm.cpu(), asked for by target) gives the native tokens."""
    from hearth.native import load_decoder

    pkg = _package("q4f32_gguf")
    dec, _ = load_decoder(pkg, target="llvm")
    native = dec.greedy(PROMPT, 12)
    script = REPO / "tests" / "support" / "wasm_cpu_greedy.mjs"
    proc = subprocess.run(
        ["node", "--import", "tsx", str(script), str(pkg), ",".join(map(str, PROMPT)), "12"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO / "sdk",
    )
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {"error": "no output"}
    assert proc.returncode == 0 and "error" not in result, f"{result}\n{proc.stderr[-3000:]}"
    assert result["quantization"] == "q4f32_gguf"
    assert result["tokens"] == native
