"""Quantization schemes (hearth.quant): MLC-LLM q4f16_1 / q4f32_1 layout, layers, compilation.

- numpy codec: hand-computed bit layout, padding, rounding, error bound, bits/param, and bit-exact
  agreement with a TE transcription of MLC-LLM's own quantize kernel compiled by TVM;
- nn layers: a quantized Linear + tied LM head + embedding lookup compiled for llvm and run in the
  Relax VM against numpy over the dequantized weights; compiled for webgpu to check that every
  layer is one fused kernel that dlight schedules (GEMV for decode, Matmul for prefill);
- param plan: names/shapes/dtypes of converted params equal the exported model's.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import tvm
from tvm import relax, te, tirx
from tvm.relax.frontend import nn
from tvm.s_tir import dlight as dl

from hearth.build.pipeline import compile_module
from hearth.quant import (
    SCHEMES,
    GroupQuantEmbedding,
    GroupQuantLinear,
    UnknownQuantizationError,
    bits_per_param,
    build_plan,
    dequantize_weight,
    get_scheme,
    quantize_model,
    quantize_params,
    quantize_weight,
    unpack_codes,
)
from hearth.targets import get_target

Q4 = ["q4f32_1", "q4f16_1"]


# ------------------------------------------------------------------------------------------------
# schemes
# ------------------------------------------------------------------------------------------------
def test_schemes_match_mlc() -> None:
    assert {"q0f16", "q0f32", "q4f16_1", "q4f32_1"} <= set(SCHEMES)  # MLC's four, plus Hearth's q8
    q = get_scheme("q4f16_1")
    assert (q.kind, q.bits, q.group_size, q.storage_dtype, q.model_dtype, q.scale_dtype) == (
        "group",
        4,
        32,
        "uint32",
        "float16",
        "float16",
    )
    assert (q.max_int, q.elems_per_storage, q.storage_per_group, q.linear_weight_layout) == (7, 8, 4, "NK")
    assert get_scheme("q4f32_1").scale_dtype == "float32"
    assert get_scheme("q0f16").kind == "none" and get_scheme("q0f32").model_dtype == "float32"


def test_unknown_scheme_names_the_known_ones() -> None:
    with pytest.raises(UnknownQuantizationError) as err:
        get_scheme("q3f16_7")
    msg = str(err.value)
    assert "q3f16_7" in msg
    for name in ["q0f32", "q0f16", "q4f16_1", "q4f32_1"]:
        assert name in msg
    assert isinstance(err.value, ValueError)


def test_bits_per_param() -> None:
    assert bits_per_param("q4f16_1", [(4096, 4096)]) == 4.5
    assert bits_per_param("q4f32_1", [(4096, 4096)]) == 5.0
    assert bits_per_param("q0f16", [(4096, 4096)]) == 16.0
    assert bits_per_param("q0f32", [(10, 3)]) == 32.0
    # padding counts: K=40 is stored as 2 groups (64 slots)
    assert bits_per_param("q4f16_1", [(1, 40)]) == (8 * 32 + 2 * 16) / 40


# ------------------------------------------------------------------------------------------------
# numpy codec
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", Q4)
def test_pack_layout_hand_computed(name: str) -> None:
    # one group of 32, max|w| = 7 -> scale = 1, code = w + 7
    w = np.zeros((1, 32), np.float32)
    w[0, 0:8] = [-7, -6, -5, -4, -3, -2, -1, 0]  # codes 0..7
    w[0, 8:16] = [1, 2, 3, 4, 5, 6, 7, 0]  # codes 8..14, 7
    w[0, 24:26] = [7, -7]  # codes 14, 0, then six 7s
    qw, qs = quantize_weight(w, name)
    assert qw.dtype == np.uint32 and qw.shape == (1, 4)
    assert qs.dtype == np.dtype(get_scheme(name).model_dtype) and qs.shape == (1, 1)
    assert qs[0, 0] == 1.0
    # element i of each 8 at bits 4*i (first element in the lowest nibble)
    assert [hex(v) for v in qw[0]] == ["0x76543210", "0x7edcba98", "0x77777777", "0x7777770e"]
    np.testing.assert_array_equal(dequantize_weight(qw, qs, name), w)


@pytest.mark.parametrize("name", Q4)
def test_round_half_to_even_and_padding(name: str) -> None:
    # K = 40: two groups; group 1 has 8 real elements and 24 padded slots (code 0, like MLC)
    w = np.zeros((2, 40), np.float32)
    w[0, :4] = [0.5, 1.5, -0.5, 7.0]  # scale 1: 7.5 -> 8, 8.5 -> 8, 6.5 -> 6 (half to even)
    w[1, 32:40] = np.arange(1, 9) * 0.25  # second group: max 2.0, scale 2/7
    qw, qs = quantize_weight(w, name)
    assert qw.shape == (2, 8) and qs.shape == (2, 2)
    codes = unpack_codes(qw)
    assert list(codes[0, :4]) == [8, 8, 6, 14]
    assert (codes[:, 40:] == 0).all()  # padding slots
    assert qs[1, 1] == np.array(2.0 / 7, dtype=qs.dtype)
    assert (codes[0, 32:40] == 7).all()  # all-zero group -> zero code, scale 0
    assert qs[0, 1] == 0
    d = dequantize_weight(qw, qs, name, k=40)
    assert d.shape == (2, 40) and np.all(d[0, 32:] == 0)


@pytest.mark.parametrize("name", Q4)
def test_round_trip_error_at_most_half_scale(name: str) -> None:
    scheme = get_scheme(name)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((300, 200)).astype(np.float32) * rng.choice([1e-3, 0.05, 4.0], (300, 1))
    qw, qs = quantize_weight(w, name)
    assert qw.shape == (300, 7 * 4) and qs.shape == (300, 7)
    d = dequantize_weight(qw, qs, name, k=200)
    assert d.dtype == np.dtype(scheme.model_dtype) and d.shape == w.shape
    wm = w.astype(scheme.model_dtype).astype(np.float64)  # MLC quantizes the model-dtype weight
    s = np.repeat(qs.astype(np.float64), 32, axis=1)[:, :200]
    err = np.abs(d.astype(np.float64) - wm)
    # f32: exactly half a step (plus f32 ulp). f16: w/scale and +7 are rounded to f16 first
    # (<= 0.0054 of a step) and the product too (<= 7 * 2**-11 of a step).
    slack = 1e-5 if scheme.model_dtype == "float32" else 0.01
    assert np.all(err <= s * (0.5 + slack)), float((err / s).max())
    # the scale is max|w|/7 per group
    gmax = np.abs(np.pad(wm, ((0, 0), (0, 24)))).reshape(300, 7, 32).max(-1)
    np.testing.assert_allclose(qs.astype(np.float64), gmax / 7, rtol=1e-3 if scheme.model_dtype == "float16" else 1e-6)


def _mlc_quantize_reference(shape: tuple[int, int], mdt: str):
    """TE transcription of MLC-LLM GroupQuantize._quantize + utils.pack_weight (int4, axis=-1)."""
    n, k = shape
    gs, epw = 32, 8
    w = te.placeholder(shape, mdt, name="w")
    max_int = tirx.const(7, mdt)
    ng = (k + gs - 1) // gs
    r = te.reduce_axis((0, gs), name="r")
    max_abs = te.compute(
        (n, ng),
        lambda i, g: te.max(tirx.if_then_else(g * gs + r < k, te.abs(w[i, g * gs + r]), te.min_value(mdt)), axis=r),
        name="max_abs_value",
    )
    scale = te.compute((n, ng), lambda i, g: max_abs[i, g] / max_int, name="scale")
    scaled = te.compute(
        (n, k),
        lambda i, j: tirx.min(
            tirx.max(tirx.round(w[i, j] / scale[i, j // gs] + max_int), tirx.const(0, mdt)), max_int * 2
        ).astype("uint32"),
        name="scaled",
    )
    r2 = te.reduce_axis((0, epw), name="r2")
    packed = te.compute(
        (n, ng * 4),
        lambda i, j: tirx.sum(
            tirx.if_then_else(
                j * epw + r2 < k, scaled[i, j * epw + r2] << (r2 * 4).astype("uint32"), tirx.const(0, "uint32")
            ),
            axis=r2,
        ),
        name="packed_weight",
    )
    return tvm.compile(te.create_prim_func([w, packed, scale]), target="llvm")


@pytest.mark.parametrize("name", Q4)
def test_bit_exact_against_mlc_te_kernel(name: str) -> None:
    """numpy codec == MLC's TE quantize compiled by TVM (llvm), bit for bit, including f16
    rounding, ties (round half to even) and K padding. Groups are never all-zero here: MLC
    computes 0/0 there (LLVM yields code 0, we write 7; both dequantize to zeros)."""
    mdt = get_scheme(name).model_dtype
    rng = np.random.default_rng(1)
    n, k = 48, 200
    w = (rng.standard_normal((n, k)) * rng.choice([1e-3, 0.02, 3.0], (n, 1))).astype(mdt)
    # exact ties: group scale 1 (max 7), values at half steps
    w[0, :32] = np.resize(np.arange(-7, 7.5, 0.5, dtype=np.float32), 32)
    w[0, 31] = 7.0
    dev = tvm.cpu()
    ng = (k + 31) // 32
    packed = tvm.runtime.empty((n, ng * 4), "uint32", dev)
    scale = tvm.runtime.empty((n, ng), mdt, dev)
    _mlc_quantize_reference((n, k), mdt)(tvm.runtime.tensor(w, dev), packed, scale)
    qw, qs = quantize_weight(w, name)
    np.testing.assert_array_equal(qs, scale.numpy())
    np.testing.assert_array_equal(qw, packed.numpy())


def test_f16_codec_equals_plain_float16_arithmetic() -> None:
    """The fast path (f32 math + bit-level rounding to f16) == numpy float16 ops done literally."""
    rng = np.random.default_rng(4)
    w = (rng.standard_normal((512, 256)) * rng.choice([1e-4, 1e-2, 1.0, 300.0], (512, 1))).astype(np.float16)
    g = w.reshape(512, 8, 32)
    scale = np.abs(g).max(-1) / np.float16(7)  # float16 arithmetic throughout
    t = np.rint(g / scale[..., None] + np.float16(7))
    codes = np.clip(t, 0, 14).astype(np.uint32).reshape(512, 256)
    words = sum(codes[:, i::8] << np.uint32(4 * i) for i in range(8))
    qw, qs = quantize_weight(w, "q4f16_1")
    np.testing.assert_array_equal(qs, scale)
    np.testing.assert_array_equal(qw, words)
    deq = ((codes.astype(np.float16) - np.float16(7)) * np.repeat(scale, 32, axis=1)).astype(np.float16)
    np.testing.assert_array_equal(dequantize_weight(qw, qs, "q4f16_1"), deq)


def test_quantize_casts_to_model_dtype_first() -> None:
    w = np.random.default_rng(2).standard_normal((4, 64)).astype(np.float32)
    a = quantize_weight(w, "q4f16_1")
    b = quantize_weight(w.astype(np.float16), "q4f16_1")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="non-finite"):
        quantize_weight(np.full((1, 32), 1e6, np.float32), "q4f16_1")  # inf in f16
    with pytest.raises(TypeError):
        quantize_weight(np.zeros((2, 32), np.int32), "q4f32_1")


# ------------------------------------------------------------------------------------------------
# nn layers: compile + run
# ------------------------------------------------------------------------------------------------
class TiedEmbedding(nn.Embedding):
    """Like hearth.models.layers.Embedding: an nn.Embedding subclass with a tied LM head."""

    def lm_head_forward(self, x: nn.Tensor) -> nn.Tensor:
        return nn.op.matmul(x, nn.op.permute_dims(self.weight), out_dtype="float32")


class Tiny(nn.Module):
    def __init__(self, dtype: str) -> None:
        self.embed = TiedEmbedding(100, 128, dtype=dtype)
        self.proj = nn.Linear(128, 96, bias=True, dtype=dtype)
        self.blocks = nn.ModuleList([nn.Linear(72, 16, bias=False, dtype=dtype)])  # K % 32 != 0

    def forward(self, x: nn.Tensor):
        return self.proj(x), self.embed.lm_head_forward(x)

    def decode(self, x: nn.Tensor):  # same layers, exported with seq_len 1 (GEMV path)
        return self.proj(x), self.embed.lm_head_forward(x)

    def odd(self, x: nn.Tensor):
        return self.blocks[0](x)

    def embed_ids(self, ids: nn.Tensor):
        return self.embed(ids)


def _spec(dtype: str, seq: int | str = "n") -> dict:
    return {
        "forward": {"x": nn.spec.Tensor([1, seq, 128], dtype)},
        "odd": {"x": nn.spec.Tensor([seq, 72], dtype)},
        "embed_ids": {"ids": nn.spec.Tensor([2, "m"], "int32")},
    }


def _source_params(dtype: str, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "embed.weight": (rng.standard_normal((100, 128)) * 0.05).astype(dtype),
        "proj.weight": (rng.standard_normal((96, 128)) * 0.05).astype(dtype),
        "proj.bias": (rng.standard_normal(96) * 0.1).astype(dtype),
        "blocks.0.weight": (rng.standard_normal((16, 72)) * 0.05).astype(dtype),
    }


def test_quantize_model_replaces_layers_and_keeps_q0() -> None:
    m = quantize_model(Tiny("float16"), "q4f16_1")
    assert isinstance(m.embed, GroupQuantEmbedding) and hasattr(m.embed, "lm_head_forward")
    assert isinstance(m.proj, GroupQuantLinear) and isinstance(m.blocks[0], GroupQuantLinear)
    names = {n: (tuple(p.shape), p.dtype) for n, p in m.named_parameters()}
    assert names == {
        "embed.q_weight": ((100, 16), "uint32"),
        "embed.q_scale": ((100, 4), "float16"),
        "proj.q_weight": ((96, 16), "uint32"),
        "proj.q_scale": ((96, 4), "float16"),
        "proj.bias": ((96,), "float16"),
        "blocks.0.q_weight": ((16, 12), "uint32"),
        "blocks.0.q_scale": ((16, 3), "float16"),
    }
    plain = Tiny("float16")
    assert quantize_model(plain, "q0f16") is plain and isinstance(plain.proj, nn.Linear)
    with pytest.raises(ValueError, match="float16"):
        quantize_model(Tiny("float32"), "q4f16_1")

    # MLC's exceptions: MoE router gates and opted-out modules stay float (and are plain params)
    class Moe(nn.Module):
        def __init__(self) -> None:
            self.gate = nn.Linear(64, 8, bias=False, dtype="float32")
            self.up = nn.Linear(64, 8, bias=False, dtype="float32")
            self.keep = nn.Linear(64, 8, bias=False, dtype="float32")
            self.keep.no_quantization = True

    moe = quantize_model(Moe(), "q4f32_1")
    assert type(moe.gate) is nn.Linear and type(moe.keep) is nn.Linear and isinstance(moe.up, GroupQuantLinear)
    assert build_plan(moe, "q4f32_1").params["gate.weight"].kind == "cast"
    root = quantize_model(nn.Linear(64, 8, dtype="float32"), "q4f32_1")  # a bare layer as root
    assert isinstance(root, GroupQuantLinear)
    assert build_plan(root, "q4f32_1").output_names() == ["q_weight", "q_scale", "bias"]


@pytest.mark.parametrize("name", Q4)
def test_param_plan_matches_exported_params(name: str) -> None:
    scheme = get_scheme(name)
    model = quantize_model(Tiny(scheme.model_dtype), scheme)
    _, exported = model.export_tvm(_spec(scheme.model_dtype))
    src = _source_params("float32")  # e.g. a float32 checkpoint
    plan = build_plan(model, scheme)
    out = quantize_params(src, plan)
    assert list(out) == [n for n, _ in exported]
    for n, p in exported:
        assert out[n].shape == tuple(p.shape) and out[n].dtype == np.dtype(p.dtype), n
    # streaming: one tensor in, its outputs out
    one = plan.quantize_param("proj.weight", src["proj.weight"])
    assert list(one) == ["proj.q_weight", "proj.q_scale"]
    assert plan.quantize_param("proj.bias", src["proj.bias"])["proj.bias"].dtype == np.dtype(scheme.model_dtype)
    with pytest.raises(KeyError, match="rotary"):
        plan.quantize_param("rotary.inv_freq", np.zeros(4))
    with pytest.raises(ValueError, match="shape"):
        plan.quantize_param("proj.weight", src["proj.weight"].T)
    with pytest.raises(KeyError, match="missing"):
        quantize_params({k: v for k, v in src.items() if k != "proj.bias"}, model, scheme)
    total = sum(v.size for v in src.values())
    expect = (
        100 * 16 * 32
        + 100 * 4 * scheme.model_bits
        + 96 * 16 * 32
        + 96 * 4 * scheme.model_bits
        + 96 * scheme.model_bits
        + 16 * 12 * 32
        + 16 * 3 * scheme.model_bits
    ) / total
    assert plan.bits_per_param() == pytest.approx(expect)


def _run_llvm(name: str, seq: int):
    scheme = get_scheme(name)
    mdt = scheme.model_dtype
    model = quantize_model(Tiny(mdt), scheme)
    mod, exported = model.export_tvm(_spec(mdt))
    src = _source_params(mdt)
    qparams = quantize_params(src, model, scheme)
    dev = tvm.cpu()
    vm = relax.VirtualMachine(compile_module(mod, get_target("llvm")), dev)
    args = [tvm.runtime.tensor(qparams[n], dev) for n, _ in exported]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, seq, 128)).astype(mdt)
    x_odd = rng.standard_normal((seq, 72)).astype(mdt)
    ids = rng.integers(0, 100, (2, 5)).astype(np.int32)
    y, logits = vm["forward"](tvm.runtime.tensor(x, dev), *args)
    y_odd = vm["odd"](tvm.runtime.tensor(x_odd, dev), *args)
    rows = vm["embed_ids"](tvm.runtime.tensor(ids, dev), *args)
    # reference over the DEQUANTIZED weights (float64 math)
    deq = {
        k: dequantize_weight(
            qparams[k.replace("weight", "q_weight")], qparams[k.replace("weight", "q_scale")], scheme, k=src[k].shape[1]
        )
        for k in ["embed.weight", "proj.weight", "blocks.0.weight"]
    }
    x64 = x.astype(np.float64)
    ref_y = x64 @ deq["proj.weight"].astype(np.float64).T + qparams["proj.bias"].astype(np.float64)
    ref_logits = x64 @ deq["embed.weight"].astype(np.float64).T
    ref_odd = x_odd.astype(np.float64) @ deq["blocks.0.weight"].astype(np.float64).T
    return (
        (y.numpy(), ref_y),
        (logits.numpy(), ref_logits),
        (y_odd.numpy(), ref_odd),
        (rows.numpy(), deq["embed.weight"][ids]),
    )


@pytest.mark.parametrize("seq", [1, 7])
def test_q4f32_1_llvm_matches_dequantized_reference(seq: int) -> None:
    (y, ry), (lg, rlg), (yo, ryo), (rows, rrows) = _run_llvm("q4f32_1", seq)
    assert y.dtype == np.float32 and lg.dtype == np.float32
    assert np.abs(y - ry).max() <= 1e-4
    assert np.abs(lg - rlg).max() <= 1e-4
    assert np.abs(yo - ryo).max() <= 1e-4
    np.testing.assert_array_equal(rows, rrows)  # gather+decode is exact


@pytest.mark.parametrize("seq", [1, 7])
def test_q4f16_1_llvm_matches_dequantized_reference(seq: int) -> None:
    """f16 model: weights decode exactly to the reference's f16 values, products are summed in
    f32 with the bias, and rounded once, so the f16 outputs are off by at most that rounding
    (2**-11 relative) plus f32 summation noise: bound |d| <= 5e-4 * |ref| + 1e-5. The tied LM
    head returns f32 logits: bound 1e-4 as for q4f32_1."""
    (y, ry), (lg, rlg), (yo, ryo), (rows, rrows) = _run_llvm("q4f16_1", seq)
    assert y.dtype == np.float16 and lg.dtype == np.float32 and rows.dtype == np.float16
    for got, ref in [(y, ry), (yo, ryo)]:
        err = np.abs(got.astype(np.float64) - ref)
        assert np.all(err <= 5e-4 * np.abs(ref) + 1e-5), float(err.max())
    assert np.abs(lg - rlg).max() <= 1e-4
    np.testing.assert_array_equal(rows, rrows)


# ------------------------------------------------------------------------------------------------
# webgpu: compile only (WGSL + wasm32 host), one kernel per layer, scheduled by dlight
# ------------------------------------------------------------------------------------------------
def _dlight_rule(func: tirx.PrimFunc, target: tvm.target.Target) -> str | None:
    """Which rule of the generic GPU pipeline's ApplyDefaultSchedule takes `func` (same order)."""
    for rule in [dl.gpu.Matmul(), dl.gpu.GEMV(), dl.gpu.Reduction(), dl.gpu.GeneralReduction(), dl.gpu.Fallback()]:
        if rule.apply(func, target, False) is not None:
            return type(rule).__name__
    return None


@pytest.mark.parametrize("name", Q4)
def test_webgpu_compiles_fused_dequant_kernels(name: str) -> None:
    scheme = get_scheme(name)
    model = quantize_model(Tiny(scheme.model_dtype), scheme)
    spec = {
        "forward": {"x": nn.spec.Tensor([1, "n", 128], scheme.model_dtype)},
        "decode": {"x": nn.spec.Tensor([1, 1, 128], scheme.model_dtype)},
        "embed_ids": {"ids": nn.spec.Tensor([2, "m"], "int32")},
    }
    mod, _ = model.export_tvm(spec)

    tspec = get_target("webgpu")
    target = tspec.target()
    with target:
        fused = tvm.transform.Sequential(
            [
                relax.transform.LegalizeOps(),
                relax.transform.AnnotateTIROpPattern(),
                relax.transform.FoldConstant(),
                relax.transform.FuseOps(),
                relax.transform.FuseTIR(),
            ]
        )(mod)
    prims = {gv.name_hint: f for gv, f in fused.functions_items() if isinstance(f, tirx.PrimFunc)}
    # one kernel per layer call: no standalone dequantize / transpose / matmul kernels
    assert all("dequantize" in n for n in prims), sorted(prims)
    rules = {n: _dlight_rule(f, target) for n, f in prims.items()}

    def calls(fn: str) -> list[str]:
        return [
            b.value.args[0].name_hint
            for blk in fused[fn].body.blocks
            for b in blk.bindings
            if isinstance(b.value, relax.Call) and b.value.op.name == "relax.call_tir"
        ]

    assert len(calls("decode")) == 2 and len(calls("forward")) == 2 and len(calls("embed_ids")) == 1
    assert all(rules[c] == "GEMV" for c in calls("decode")), rules
    assert all(rules[c] == "Matmul" for c in calls("forward")), rules
    assert any(c.startswith("dequantize_NT_matmul_add") for c in calls("decode"))  # bias in-kernel
    assert rules[calls("embed_ids")[0]] == "Fallback"

    ex = compile_module(mod, tspec)
    webgpu_mods = [m for m in ex.mod.imports[0].imports if m.kind == "webgpu"]
    assert len(webgpu_mods) == 1
    wgsl = webgpu_mods[0].inspect_source()
    kernels = re.findall(r"fn (\w+)_kernel\(", wgsl)
    assert sorted(set(kernels)) == sorted(prims)
    assert ("enable f16;" in wgsl) == (scheme.model_dtype == "float16")
    assert "workgroupBarrier" in wgsl or "@workgroup_size" in wgsl


# ------------------------------------------------------------------------------------------------
# q4f16_mse / q4f32_mse: q4's layout and kernels, MSE-searched scales + row gain
# ------------------------------------------------------------------------------------------------
MSE = ["q4f32_mse", "q4f16_mse"]
MSE_BASE = {"q4f32_mse": "q4f32_1", "q4f16_mse": "q4f16_1"}


def _heavy_tailed(rows: int, k: int, seed: int = 0) -> np.ndarray:
    """Student-t weights (outliers, like trained checkpoints), row scales over 3 decades."""
    rng = np.random.default_rng(seed)
    return (rng.standard_t(4, (rows, k)) * rng.choice([1e-3, 0.05, 2.0], (rows, 1))).astype(np.float32)


@pytest.mark.parametrize("name", MSE)
def test_mse_scheme_has_the_base_layout_and_bits(name: str) -> None:
    mse, base = get_scheme(name), get_scheme(MSE_BASE[name])
    assert (mse.bits, mse.group_size, mse.model_dtype, mse.storage_dtype, mse.max_int) == (
        base.bits,
        base.group_size,
        base.model_dtype,
        base.storage_dtype,
        base.max_int,
    )
    assert mse.scale_method == "mse" and base.scale_method == "absmax"
    shapes = [(352, 128), (2048, 128), (7, 40)]
    assert bits_per_param(mse, shapes) == bits_per_param(base, shapes)
    w = _heavy_tailed(9, 40)
    (qw, qs), (bw, bs) = quantize_weight(w, mse), quantize_weight(w, base)
    assert qw.shape == bw.shape and qs.shape == bs.shape and qw.dtype == bw.dtype and qs.dtype == bs.dtype
    assert (unpack_codes(qw)[:, 40:] == 0).all() and unpack_codes(qw).max() <= 14  # padding, code range


@pytest.mark.parametrize("name", MSE)
def test_mse_scheme_beats_round_to_nearest(name: str) -> None:
    """Lower error than RTN on every row scale, and each row keeps its projection <w, w_hat> = |w|^2
    (the gain correction), up to the scale's rounding to the model dtype."""
    w = _heavy_tailed(300, 200)
    scheme = get_scheme(name)
    wm = w.astype(scheme.model_dtype).astype(np.float64)
    d = dequantize_weight(*quantize_weight(w, name), name, k=200).astype(np.float64)
    d0 = dequantize_weight(*quantize_weight(w, MSE_BASE[name]), MSE_BASE[name], k=200).astype(np.float64)
    err, err0 = np.linalg.norm(d - wm, axis=1), np.linalg.norm(d0 - wm, axis=1)
    assert err.sum() < 0.97 * err0.sum(), (err.sum(), err0.sum())
    proj = (d * wm).sum(1) / (wm * wm).sum(1)
    np.testing.assert_allclose(proj, 1.0, atol=2e-3 if scheme.model_dtype == "float16" else 1e-5)


def test_mse_scheme_zero_rows_and_groups() -> None:
    w = np.zeros((3, 64), np.float32)
    w[1, :32] = np.linspace(-1, 1, 32)
    qw, qs = quantize_weight(w, "q4f16_mse")
    d = dequantize_weight(qw, qs, "q4f16_mse", k=64)
    assert np.all(d[0] == 0) and np.all(d[2] == 0) and np.all(d[1, 32:] == 0)
    assert np.all(np.isfinite(qs)) and qs[0].max() == 0
    assert np.abs(d[1, :32].astype(np.float64) - w[1, :32]).max() < 0.1


def test_q4f16_mse_llvm_matches_dequantized_reference() -> None:
    """The _mse schemes reuse q4f16_1's kernels: same bounds as test_q4f16_1_llvm_matches_dequantized_reference."""
    (y, ry), (lg, rlg), (yo, ryo), (rows, rrows) = _run_llvm("q4f16_mse", 7)
    for got, ref in [(y, ry), (yo, ryo)]:
        err = np.abs(got.astype(np.float64) - ref)
        assert np.all(err <= 5e-4 * np.abs(ref) + 1e-5), float(err.max())
    assert np.abs(lg - rlg).max() <= 1e-4
    np.testing.assert_array_equal(rows, rrows)
