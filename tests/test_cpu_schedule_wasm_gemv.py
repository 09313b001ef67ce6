"""The wasm-cpu decode GEMV (hearth.build.cpu_schedule: _asym_gemv with hearth.build.wasm_gemv's kernel for
the asymmetric group codes, _wasm_gemv's schedule for the rest).

The rules apply only to wasm targets, so the result is checked two ways: its shape (for 4-/8-bit asym codes the
hand-written kernel with scale and minimum per group, for f32 weights and other codes a 4-lane partial sum per
output; no parallel loop; x copied once per call) and its values, by compiling the very same PrimFunc for the
native CPU (TIR is target-independent) and comparing with numpy, with and without a residual-add epilogue.
Real quantized layouts: 4-bit and 8-bit asymmetric codes (the _gguf schemes), a symmetric 4-bit decode
(falls back to the schedule) and a plain f32 weight. The wasm kernels are also compiled for wasm32 (SIMD128).
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


def _decode_matmul(bits: int | None, residual: bool = False, symmetric: bool = False) -> tuple[tirx.PrimFunc, list]:
    """A decode step's fused matmul: x [1, 1, K] against W [N, K] (f32, or `bits`-wide codes decoded in the
    kernel), optionally + a residual r [1, 1, N] in a second block (the `_add` epilogue of o/down_proj)."""
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
        if symmetric:  # q4f16_1-style (code - 7) * scale: no minimum, not the asym kernel's pattern
            args = [x, qw, qs]
            weight = te.compute(
                _i64(N, K),
                lambda n, k: (
                    ((qw[n, k // 8] >> (k % 8 * 4).astype("uint32")) & 15).astype("float32") * qs[n, k // 32]
                    - 7 * qs[n, k // 32]
                ),
                name="decode",
            )
    y = te_matmul_nt(x, weight, K, "float32")
    if residual:
        r = te.placeholder(_i64(1, 1, N), "float32", name="residual")
        args.append(r)
        y = te.compute(y.shape, lambda a, b, n: r[a, b, n] + y[a, b, n], name="T_add")
    return te.create_prim_func([*args, y]), args


def _inputs(bits: int | None, rng: np.random.Generator, symmetric: bool = False) -> tuple[list[np.ndarray], np.ndarray]:
    x = rng.standard_normal((1, 1, K)).astype(np.float32)
    if bits is None:
        w = rng.standard_normal((N, K)).astype(np.float32)
        return [x, w], w
    codes = rng.integers(0, 1 << bits, (N, K), dtype=np.uint64)
    codes[0] = (1 << bits) - 1  # every code at its top value: the top code of a word sets the sign bit
    per_word = 32 // bits
    words = np.zeros((N, K // per_word), np.uint64)
    for i in range(per_word):
        words |= codes[:, i::per_word] << np.uint64(bits * i)
    qw = words.astype(np.uint32)
    qs = rng.uniform(0.01, 0.1, (N, K // 32)).astype(np.float32)
    qm = rng.uniform(-0.5, 0.0, (N, K // 32)).astype(np.float32)
    if symmetric:
        return [x, qw, qs], (codes.astype(np.float32) - 7) * np.repeat(qs, 32, axis=1)
    return [x, qw, qs, qm], dequantize_asym(qw, qs, qm)


def _run_natively(func: tirx.PrimFunc, arrays: list[np.ndarray]) -> np.ndarray:
    lib = tvm.compile(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}), target="llvm")
    dev = tvm.cpu()
    out = tvm.runtime.tensor(np.zeros((1, 1, N), np.float32), dev)
    lib["main"](*(tvm.runtime.tensor(a, dev) for a in arrays), out)
    return out.numpy().reshape(1, N)


CASES = [(4, False), (8, False), (None, False), (4, "symmetric")]


@pytest.mark.parametrize("residual", [False, True], ids=["plain", "residual"])
@pytest.mark.parametrize(("bits", "symmetric"), CASES, ids=["q4", "q8", "f32", "q4sym"])
def test_wasm_decode_gemv(bits: int | None, symmetric: bool, residual: bool) -> None:
    func, _ = _decode_matmul(bits, residual, bool(symmetric))
    wasm = get_target("wasm-cpu").target()
    sch = WeightMatmul().apply(func, wasm, False)
    assert sch is not None, "WeightMatmul declined a one-row matmul on wasm"
    scheduled = sch.mod["main"]
    script = scheduled.script()
    assert "T.parallel" not in script  # wasm: serial (a parallel body allocated the partial sums per iteration)
    if bits is not None and not symmetric:
        # the asym kernel: code dot products per group, then scale and minimum once per group and row
        assert "xsum" in script and "NT_matmul_rf" not in script and "dequantize" not in script
        assert "q_scale[no * 4 + r, grp] * dot[r, lane]" in script
    else:  # the scheduled GEMV: 4-lane partial sums per output (rfactor)
        assert "NT_matmul_rf" in script and 'scope="local"' in script and "xsum" not in script
    assert "T.vectorized(4)" in script.replace("T.int64(4)", "4")
    assert ("T_add" in script) == residual  # the epilogue block is kept as it was

    rng = np.random.default_rng(0)
    arrays, weight = _inputs(bits, rng, bool(symmetric))
    want = arrays[0].reshape(1, K).astype(np.float64) @ weight.astype(np.float64).T
    if residual:
        arrays.append(rng.standard_normal((1, 1, N)).astype(np.float32))
        want = want + arrays[-1].reshape(1, N)
    # Same TIR natively: values as numpy computes them (summation order differs: f32 tolerance).
    np.testing.assert_allclose(_run_natively(scheduled, arrays), want, rtol=1e-4, atol=1e-4)
    # and it compiles for wasm32 with SIMD128
    asm = tvm.compile(tvm.IRModule({"main": scheduled.with_attr("global_symbol", "main")}), target=wasm)
    assert "f32x4.mul" in asm.mod.inspect_source("asm")


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
