"""The wasm-cpu decode GEMV schedule (hearth.build.cpu_schedule._wasm_gemv).

The rule applies only to wasm targets, so the scheduled TIR is checked two ways: its shape (a 4-lane partial
sum per output, no parallel loop, x copied once in [group, code, lane] order) and its values, by compiling the
very same scheduled PrimFunc for the native CPU (a schedule is target-independent TIR) and comparing with
numpy. Real quantized layouts: 4-bit and 8-bit asymmetric codes (the _gguf schemes) and a plain f32 weight.
The end-to-end wasm run is tests/test_quant_gguf.py::test_wasm_cpu_greedy_matches_native.
"""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import te, tirx

from hearth.build.cpu_schedule import WeightMatmul
from hearth.quant.asym import dequantize_asym, te_dequantize_asym
from hearth.quant.group import te_matmul_nt
from hearth.targets import get_target

N, K = 96, 128


def _i64(*dims: int) -> list[tirx.IntImm]:
    """int64 shapes, as the model's Relax export gives every kernel."""
    return [tirx.IntImm("int64", d) for d in dims]


def _decode_matmul(bits: int | None) -> tuple[tirx.PrimFunc, list[te.Tensor]]:
    x = te.placeholder(_i64(1, 1, K), "float32", name="x")
    if bits is None:
        w = te.placeholder(_i64(N, K), "float32", name="w")
        args = [x, w]
        weight = w
    else:
        qw = te.placeholder(_i64(N, K * bits // 32), "uint32", name="q_weight")
        qs = te.placeholder(_i64(N, K // 32), "float32", name="q_scale")
        qm = te.placeholder(_i64(N, K // 32), "float32", name="q_min")
        args = [x, qw, qs, qm]
        weight = te_dequantize_asym(bits, qw, qs, qm, K)
    y = te_matmul_nt(x, weight, K, "float32")
    return te.create_prim_func([*args, y]), args


def _inputs(bits: int | None, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    x = rng.standard_normal((1, 1, K)).astype(np.float32)
    if bits is None:
        w = rng.standard_normal((N, K)).astype(np.float32)
        return [x, w], w
    codes = rng.integers(0, 1 << bits, (N, K), dtype=np.uint64)
    per_word = 32 // bits
    words = np.zeros((N, K // per_word), np.uint64)
    for i in range(per_word):
        words |= codes[:, i::per_word] << np.uint64(bits * i)
    qw = words.astype(np.uint32)
    qs = rng.uniform(0.01, 0.1, (N, K // 32)).astype(np.float32)
    qm = rng.uniform(-0.5, 0.0, (N, K // 32)).astype(np.float32)
    return [x, qw, qs, qm], dequantize_asym(qw, qs, qm)


@pytest.mark.parametrize("bits", [4, 8, None], ids=["q4", "q8", "f32"])
def test_wasm_decode_gemv_schedule(bits: int | None) -> None:
    func, _ = _decode_matmul(bits)
    sch = WeightMatmul().apply(func, get_target("wasm-cpu").target(), False)
    assert sch is not None, "WeightMatmul declined a one-row matmul on wasm"
    scheduled = sch.mod["main"]
    script = scheduled.script()
    assert "NT_matmul_rf" in script and 'scope="local"' in script  # the 4-lane partial sums
    assert "T.parallel" not in script  # wasm: serial (a parallel body allocated the partial sums per iteration)
    assert "T.vectorized(4)" in script.replace("T.int64(4)", "4")

    # The same TIR natively: values as numpy computes them (summation order differs: f32 tolerance).
    lib = tvm.compile(tvm.IRModule({"main": scheduled.with_attr("global_symbol", "main")}), target="llvm")
    rng = np.random.default_rng(0)
    arrays, weight = _inputs(bits, rng)
    dev = tvm.cpu()
    out = tvm.runtime.tensor(np.zeros((1, 1, N), np.float32), dev)
    lib["main"](*(tvm.runtime.tensor(a, dev) for a in arrays), out)
    want = arrays[0].reshape(1, K).astype(np.float64) @ weight.astype(np.float64).T
    np.testing.assert_allclose(out.numpy().reshape(1, N), want, rtol=1e-4, atol=1e-4)


def test_wasm_gemv_declines_what_its_layout_does_not_divide() -> None:
    """K = 38, not a multiple of the 4 lanes: the older one-row path (vectorized across outputs) applies."""
    x = te.placeholder(_i64(1, 1, 38), "float32", name="x")
    w = te.placeholder(_i64(N, 38), "float32", name="w")
    r = te.reduce_axis((tirx.IntImm("int64", 0), tirx.IntImm("int64", 38)), name="k")
    y = te.compute(_i64(1, 1, N), lambda a, b, n: te.sum(x[a, b, r] * w[n, r], axis=r), name="NT_matmul")
    sch = WeightMatmul().apply(te.create_prim_func([x, w, y]), get_target("wasm-cpu").target(), False)
    assert sch is not None
    script = sch.mod["main"].script()
    assert "NT_matmul_rf" not in script and "T.parallel" in script
