"""The GGUF carry-over schemes (q4f16_gguf / q4f32_gguf): a GGUF's own block codes in the package,
never rounded a second time.

- codec: Q4_0 / Q4_1 / Q8_0 / Q5_0 blocks made by gguf.quants.quantize, and raw random Q5_0 / Q4_K
  blocks -> BlockCodes -> packed layout -> decode equals gguf.dequantize bit for bit (f32 and f16
  storage); Q6_K: refused by the exact schemes, re-quantized by q8f32_gguf_near (exact where a
  block's two scales allow, else within half an 8-bit step);
- package: every weight of the tiny llama GGUF (scripts/make_test_gguf.py) decoded from the
  tensor-cache equals the converted reference folder (transformers' GGUF loader) bit for bit, and the
  q/k rows are in HF order (equal to the un-permuted original quantized alone);
- native llvm logits vs transformers on the GGUF-dequantized weights (<= 1e-3; Q4_1 and Q5_0 files);
- WebGPU (Node + Dawn) and wasm-cpu greedy tokens equal the native build's;
- errors: a non-GGUF source, a GGUF with block types that cannot be carried, an 8-bit or 5-bit block
  in a 4-bit layer, K-quants in an f16 scheme, a minimum out of f16 range, float weights fed to a
  carry plan.
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
from hearth.weights.gguf_blocks import GGUFCarryError, block_codes, check_carry_over, requantize_q6k
from hearth.weights.reader import CheckpointReader
from hearth.weights.source import ModelSource, resolve_source

sys.path.insert(0, str(REPO / "scripts"))
import make_test_gguf  # noqa: E402

CARRIED = ["Q4_0", "Q4_1", "Q8_0", "Q5_0"]
WIDTH = {"Q4_0": 4, "Q4_1": 4, "Q8_0": 8, "Q5_0": 5, "Q4_K": 4}
# Block layouts (gguf-py quants.py): bytes per block, elements per block, offsets of f16 fields.
RAW_LAYOUT = {"Q5_0": (22, 32, (0,)), "Q4_K": (144, 256, (0, 2)), "Q6_K": (210, 256, (208,))}
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
    bits = WIDTH[kind]
    for layout_bits in {bits, 8} - {5}:  # a 4-bit block also fits the 8-bit layout exactly; 5-bit needs 8
        qw, qs, qm = pack_block_codes(blocks, layout_bits, model_dtype)
        assert qw.dtype == np.uint32 and qw.shape == (48, 256 * layout_bits // 32)
        assert qs.dtype == np.dtype(model_dtype) and qm.shape == qs.shape == (48, 8)
        got = dequantize_asym(qw, qs, qm)
        assert _same_bits(got, ref), f"{kind} in {layout_bits}-bit {model_dtype}"


def _raw_blocks(kind: str, rows: int, blocks_per_row: int, seed: int) -> np.ndarray:
    """Random bytes in every field of `kind`'s blocks, with finite f16 scales (d, dmin) of varied sign
    and magnitude; a few blocks get d = 0 or subnormal scales."""
    size, _, f16_at = RAW_LAYOUT[kind]
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, (rows, blocks_per_row, size), dtype=np.uint8)
    for lo in f16_at:
        d = rng.standard_normal((rows, blocks_per_row)) * 10.0 ** rng.integers(-5, 1, (rows, blocks_per_row))
        d[0, 0] = 0.0
        d[1, 0] = 3e-7  # subnormal in f16
        raw[..., lo : lo + 2] = d.astype(np.float16)[..., None].view(np.uint8)
    return raw.reshape(rows, blocks_per_row * size)


@pytest.mark.parametrize("kind", ["Q5_0", "Q4_K"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_raw_blocks_decode_bit_exact(kind: str, seed: int) -> None:
    """Any bytes a file may hold (not just what a quantizer writes): code * scale + min == gguf.dequantize."""
    from gguf import GGMLQuantizationType, dequantize

    raw = _raw_blocks(kind, 24, 3, seed)
    ref = dequantize(raw, GGMLQuantizationType[kind])
    blocks = block_codes(raw, kind)
    per_block = RAW_LAYOUT[kind][1]
    assert blocks.codes.shape == ref.shape == (24, 3 * per_block) and blocks.scale.shape == (24, 3 * per_block // 32)
    assert int(blocks.codes.max()) < 1 << WIDTH[kind]
    assert _same_bits(blocks.dequantize(), ref)
    for layout_bits in {WIDTH[kind], 8} - {5}:
        got = dequantize_asym(*pack_block_codes(blocks, layout_bits, "float32"))
        assert _same_bits(got, ref), f"{kind} in {layout_bits}-bit"


def test_q5_0_and_q4_k_code_layout() -> None:
    """Known codes: Q5_0's fifth bit from qh (bit j for element j); Q4_K's sub-block j scale/min from
    gguf's packed 6-bit fields, its codes in 32-byte chunks (low nibbles: sub-block 2c, high: 2c + 1)."""
    raw = np.zeros((1, 22), np.uint8)
    raw[0, 0:2] = np.array([0.5], np.float16).view(np.uint8)
    raw[0, 2:6] = np.array([0x80000001], "<u4").view(np.uint8)  # elements 0 and 31 have the high bit
    raw[0, 6:22] = np.arange(16, dtype=np.uint8) | np.uint8(0x30)  # low nibble j, high nibble 3
    b = block_codes(raw, "Q5_0")
    assert b.codes[0].tolist() == [16] + list(range(1, 16)) + [3] * 15 + [19]
    assert b.scale.tolist() == [[0.5]] and b.minimum.tolist() == [[-8.0]]
    raw = np.zeros((1, 144), np.uint8)
    raw[0, 0:2] = np.array([0.25], np.float16).view(np.uint8)  # d
    raw[0, 2:4] = np.array([2.0], np.float16).view(np.uint8)  # dmin
    raw[0, 4:8] = [1, 2, 3, 0x40 | 4]  # sc_0..3; byte 3's top bits 01 are sc_7's bits 4..5 (+16)
    raw[0, 8:12] = [5, 6, 7, 8]  # m_0..3
    raw[0, 12:16] = [0x91, 0xA2, 0xB3, 0xC4]  # low nibble sc_4..7 low bits, high nibble m_4..7 low bits
    raw[0, 16:48] = 0x21  # chunk 0: sub-block 0 codes 1, sub-block 1 codes 2
    b = block_codes(raw, "Q4_K")
    sc = [1, 2, 3, 4, 1, 2, 3, 4 | 16]
    m = [5, 6, 7, 8, 9, 10, 11, 12]
    assert b.scale[0].tolist() == [0.25 * s for s in sc] and b.minimum[0].tolist() == [-2.0 * x for x in m]
    assert b.codes[0, :32].tolist() == [1] * 32 and b.codes[0, 32:64].tolist() == [2] * 32
    assert not b.codes[0, 64:].any()


def test_q6_k_is_exact_nowhere_but_near_in_q8f32_gguf_near() -> None:
    """Q6_K has a scale per 16: block_codes refuses it; requantize_q6k keeps groups whose two scales
    allow an exact 8-bit code (equal scales) and re-quantizes the rest within half an 8-bit step."""
    from gguf import GGMLQuantizationType, dequantize

    raw = _raw_blocks("Q6_K", 16, 2, 3)
    with pytest.raises(GGUFCarryError, match=r"Q6_K blocks cannot be carried over.*q8f32_gguf_near"):
        block_codes(raw, "Q6_K")
    b = raw.reshape(16, 2, 210)
    b[:8, :, 192:208] = np.int8(-7).view(np.uint8)  # rows 0..7: one scale for every sub-block -> exact
    ref = dequantize(raw, GGMLQuantizationType.Q6_K)
    blocks, stats = requantize_q6k(raw)
    assert blocks.codes.shape == ref.shape == (16, 512) and blocks.scale.shape == (16, 16)
    got = blocks.dequantize()
    assert _same_bits(got[:8], ref[:8])
    assert stats["groups"] == 256 and 128 <= stats["exact_groups"] < 256 and 0 < stats["rel_rms_error"] < 0.01
    step = blocks.scale.repeat(32, axis=1)
    assert np.all(np.abs(got - ref) <= np.abs(step) * 0.5 + 1e-6 * np.abs(ref))
    assert stats["max_abs_error"] == pytest.approx(float(np.abs(got - ref).max()))
    assert _same_bits(dequantize_asym(*pack_block_codes(blocks, 8, "float32")), got)


def _source_with_types(types: dict[str, int]) -> ModelSource:
    """A GGUF source as resolve_source describes it (only the header's tensor type counts are read)."""
    info = {"file": "model.Q4_K_M.gguf", "tensor_types": types}
    return ModelSource("m", Path("/nonexistent"), "gguf:/nonexistent/model.Q4_K_M.gguf", {}, gguf=info)


def test_k_quant_refusals_name_the_way_out() -> None:
    q4k_m = _source_with_types({"F32": 109, "Q5_0": 81, "Q4_K": 27, "Q8_0": 10, "Q6_K": 9})
    for scheme in ("q4f32_gguf", "q8f32_gguf", "q8f16_gguf"):
        with pytest.raises(GGUFCarryError, match=r"Q6_K \(9 tensors\).*cannot carry over exactly.*use q8f32_gguf_near"):
            check_carry_over(get_scheme(scheme), q4k_m)
    with pytest.raises(GGUFCarryError, match=r"Q4_K \(27 tensors\).*need float32.*Use q4f32_gguf"):
        check_carry_over(get_scheme("q4f16_gguf"), _source_with_types({"F32": 3, "Q4_K": 27}))
    with pytest.raises(GGUFCarryError, match=r"Q5_1 \(2 tensors\).*use q4f32_1 or q4f32_mse"):  # no near hint
        check_carry_over(get_scheme("q4f32_gguf"), _source_with_types({"Q5_1": 2, "Q6_K": 1}))


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
    raw, _ = _gguf_blocks(rng.standard_normal((2, 32)).astype(np.float32), "Q5_1")
    with pytest.raises(GGUFCarryError, match="Q5_1 blocks cannot be carried over; carried types: Q4_0, Q4_1, Q8_0"):
        block_codes(raw, "Q5_1")
    raw, _ = _gguf_blocks(rng.standard_normal((4, 64)).astype(np.float32), "Q5_0")
    with pytest.raises(
        AsymCarryError, match=r"Q5_0.*up to \d+.*4-bit layout; wider blocks \(Q5_0, Q8_0\) need an 8-bit"
    ):
        pack_block_codes(block_codes(raw, "Q5_0"), 4, "float32", name="mlp.down_proj.weight")


def test_schemes_and_bits() -> None:
    for name, dt, bits in [
        ("q4f16_gguf", "float16", 4),
        ("q4f32_gguf", "float32", 4),
        ("q8f16_gguf", "float16", 8),
        ("q8f32_gguf", "float32", 8),
        ("q8f32_gguf_near", "float32", 8),
    ]:
        s = get_scheme(name)
        assert s.carries_gguf and s.is_quantized and s.model_dtype == dt and s.group_size == 32
        assert (s.layer_bits("linear"), s.layer_bits("embedding"), s.layer_bits("final_fc")) == (bits, 8, 8)
        assert s.requantized_types == (("Q6_K",) if name.endswith("_near") else ())
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
        GGUFCarryError,
        match=r"Q5_1 \(14 tensors\).*q4f32_gguf carries Q4_0, Q4_1, Q8_0, Q5_0, Q4_K blocks.*use q4f32_1 or q4f32_mse",
    ):
        check_carry_over(get_scheme("q4f32_gguf"), source)


@pytest.mark.parametrize(("linear_type", "bits"), [("Q8_0", 8), ("Q5_0", 5)])
def test_gguf_with_wide_linears_needs_the_q8_scheme(linear_type: str, bits: int) -> None:
    source = resolve_source(str(make_test_gguf.ensure_test_gguf(linear_type=linear_type)))
    with pytest.raises(
        GGUFCarryError,
        match=rf"14 tensors hold {bits}-bit blocks where q4f16_gguf keeps 4-bit codes, e.g. blk\.0\.\w+\.weight "
        rf"\({linear_type}\).*use q8f16_gguf",
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
    [
        ("q4f32_gguf", "Q4_1"),
        ("q4f16_gguf", "Q4_1"),
        ("q4f32_gguf", "Q4_0"),
        ("q8f32_gguf", "Q8_0"),
        ("q8f32_gguf", "Q5_0"),
    ],
)
def test_package_holds_the_gguf_values(quant: str, linear_type: str) -> None:

    pkg = _package(quant, linear_type)
    manifest = json.loads((pkg / "hearth-manifest.json").read_text())
    assert manifest["quantization"] == quant and manifest["source_file"]["tensor_types"][linear_type] >= 14
    values = _package_values(pkg, make_test_gguf.ensure_test_gguf(linear_type=linear_type))
    for base, (got, want) in values.items():
        assert _same_bits(got, want), base
    assert len(values) == 1 + 2 * 4  # the embedding table; per layer qkv_proj, o_proj, gate_up_proj, down_proj
    assert values["model.embed_tokens"][0].shape == (1024, 64)


def _package_values(pkg: Path, gguf: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each carried weight of a package, decoded, with the converted folder's (transformers') value."""
    from tvm.contrib import tvmjs

    params, _ = tvmjs.load_tensor_cache(str(pkg), None)
    ref = CheckpointReader(resolve_source(str(gguf)).path)
    split = {"qkv_proj": ("q_proj", "k_proj", "v_proj"), "gate_up_proj": ("gate_proj", "up_proj")}
    out = {}
    for name in params:
        if not name.endswith(".q_weight"):
            continue
        base = name.removesuffix(".q_weight")
        got = dequantize_asym(*(params[f"{base}.{p}"].numpy() for p in ("q_weight", "q_scale", "q_min")))
        stem, last = base.rsplit(".", 1)
        out[base] = got, np.concatenate([ref.get(f"{stem}.{p}.weight") for p in split.get(last, (last,))])
    return out


# A wider tiny llama (rows of 256, as K-quants need): Q4_K Linears, optionally Q6_K ffn_down (Q4_K_M's mix).
KQ = {"linear_type": "Q4_K", "hidden_size": 256, "intermediate_size": 512}


@functools.cache
def _kquant_package(quant: str, down_type: str | None = None) -> Path:
    from hearth.build.package import compile_package

    gguf = make_test_gguf.ensure_test_gguf(**KQ, down_type=down_type)
    out = cache_root() / "test-packages" / "gguf-carry"
    model_id = "tiny-llama-gguf-Q4_K" + (f"-{down_type}" if down_type else "")
    return compile_package(str(gguf), quant, ["llvm"], out, model_id=model_id).package_dir


def _llvm_vs_transformers(pkg: Path, gguf: Path) -> float:
    """Max |logit difference| of the native build vs transformers on the GGUF-dequantized weights."""
    import torch
    from transformers import AutoModelForCausalLM

    from hearth.native import load_decoder

    model = AutoModelForCausalLM.from_pretrained(resolve_source(str(gguf)).path, dtype=torch.float32)
    with torch.no_grad():
        ref = model(torch.tensor([PROMPT])).logits[0].numpy()
    dec, _ = load_decoder(pkg, target="llvm")
    got = [dec.prefill(PROMPT[:8])] + [dec.decode(t) for t in PROMPT[8:]]
    return max(float(np.abs(g - r).max()) for g, r in zip(got, ref[7:]))


def test_q4_k_file_is_carried_exactly() -> None:
    """Q4_K Linears in q4f32_gguf's 4-bit layers: every value is the GGUF's, logits are transformers'."""
    gguf = make_test_gguf.ensure_test_gguf(**KQ)
    pkg = _kquant_package("q4f32_gguf")
    values = _package_values(pkg, gguf)
    assert len(values) == 9 and all(_same_bits(got, want) for got, want in values.values())
    assert values["model.layers.0.mlp.down_proj"][0].shape == (256, 512)
    assert _llvm_vs_transformers(pkg, gguf) <= 1e-3
    with pytest.raises(GGUFCarryError, match=r"Q4_K \(14 tensors\).*need float32.*Use q4f32_gguf"):
        check_carry_over(get_scheme("q4f16_gguf"), resolve_source(str(gguf)))


def test_q6_k_file_needs_q8f32_gguf_near_which_is_near() -> None:
    """A Q4_K_M-like file (Q6_K ffn_down): the exact schemes refuse it; q8f32_gguf_near carries the
    Q4_K / Q8_0 tensors bit for bit and holds ffn_down within 1 % (not exactly)."""
    gguf = make_test_gguf.ensure_test_gguf(**KQ, down_type="Q6_K")
    with pytest.raises(GGUFCarryError, match=r"Q6_K \(2 tensors\).*use q8f32_gguf_near"):
        check_carry_over(get_scheme("q8f32_gguf"), resolve_source(str(gguf)))
    pkg = _kquant_package("q8f32_gguf_near", "Q6_K")
    values = _package_values(pkg, gguf)
    assert len(values) == 9
    for base, (got, want) in values.items():
        if base.endswith("down_proj"):
            rel = float(np.linalg.norm(got - want) / np.linalg.norm(want))
            assert 0 < rel < 0.01, (base, rel)
        else:
            assert _same_bits(got, want), base
    assert _llvm_vs_transformers(pkg, gguf) <= 0.1  # measured 0.057 (logits std 2.0; exact files: 6e-6)


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


@pytest.mark.parametrize(("quant", "linear_type"), [("q4f32_gguf", "Q4_1"), ("q8f32_gguf", "Q5_0")])
def test_llvm_logits_match_transformers_on_dequantized_weights(quant: str, linear_type: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from hearth.native import load_decoder

    pkg = _package(quant, linear_type)
    folder = resolve_source(str(make_test_gguf.ensure_test_gguf(linear_type=linear_type))).path
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
