"""The staged decode fusion (build/staged_gemv.py, fusion.py "staged") for float16 activations: q4f16_* packages.

Structure on the Relax of tiny-llama-trained for WebGPU (seconds), q4f16_1 and q4f16_gguf: the same 3 kernels
per layer plus one (the final norm + lm_head, whose f16 input writes f32 logits) fold as for float32, and the
kernels round where the unfused ones do (sum of squares and GEMV accumulation in float32, the staged vector
in f16). The workgroup-storage limit counts bytes: a K that float32 stages in chunks fits whole in
float16.

Then on Dawn (lavapipe, which has shader-f16): tiny-llama-trained q4f16_1 compiled with --target webgpu
--target webgpu-fused, the fused library against the plain one: the same greedy tokens over 24 positions,
top-5 logits within F16_LOGIT_TOL, and 3 launches fewer per layer plus one per decode call.
The weight prefetch (staged_gemv's prefetch) in WGSL, f32 and f16: the loads into registers before the first
barrier, per chunk for a chunked K, none where a thread's slice would not fit.
(q4f16_gguf needs a GGUF source, which the tiny test models have not: SmolLM2's package was checked by hand,
docs/benchmarks.md.)
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import tvm
from tvm import te, tirx

from conftest import REPO, call_tir_kernels
from hearth.build import staged_gemv
from hearth.cache import cache_root
from hearth.targets import get_target
from test_fusion2 import _exported, _legalized

sys.path.insert(0, str(REPO / "scripts"))
import make_test_models as mtm  # noqa: E402

MODEL = "tiny-llama-trained"
GENERATE = REPO / "sdk" / "scripts" / "generate.mjs"
# Fused and plain round to f16 at the same points, but add their f32 sums in another order: a sum next to
# an f16 rounding boundary can round the other way (one f16 ulp, 2^-11 relative) and carry through the
# layers. On lavapipe this model's top-5 logits came out bit-equal (max |d| 0.0 over 24 positions); the
# bound leaves room for a few f16 ulps of a logit around 10 (ulp 2^-7) on other devices.
F16_LOGIT_TOL = 1e-2


@pytest.mark.parametrize("quant", ["q4f16_1", "q4f16_gguf"])
def test_f16_decode_norms_and_gate_fold_into_gemvs(quant: str) -> None:
    _, layers = _exported(quant)
    before, after = (
        call_tir_kernels(_legalized(False, quant), "decode"),
        call_tir_kernels(_legalized(True, quant), "decode"),
    )
    assert not [k for k in after if k.startswith("rms_norm") or ("silu" in k)], after
    staged = Counter({k: v for k, v in after.items() if k.startswith("hearth_")})
    # per layer: norm+qkv, norm+gate_up, gate+down+residual; once: the final norm + lm_head
    assert sum(staged.values()) == 3 * layers + 1, after
    assert sum(after.values()) == sum(before.values()) - 3 * layers - 1


def test_f16_kernels_round_where_the_unfused_ones_do() -> None:
    mod = _legalized(True, "q4f16_1")
    names = [gv.name_hint for gv in mod.get_global_vars() if gv.name_hint.startswith("hearth_")]
    assert {n.split("_dequantize")[0] for n in names} == {"hearth_rms_norm", "hearth_swiglu_add"}, names
    for name in names:
        script = mod[name].script()
        # the staged vector in f16 (what the unfused norm / gate kernel wrote), the GEMV summed in f32
        assert '"float16", scope="shared")' in script, name
        assert re.search(r"hearth_gemv\w*\[v_a, v_b, v_j\] = T.float32\(0.0\)", script), name
        assert re.search(
            r"hearth_gemv\w*\[v_a, v_b, v_j\] \+ T.Cast\(\"float32\", hearth_staged_shared\[v_k\]\)", script
        ), name
        if name.startswith("hearth_rms_norm"):
            # TOPI's rms_norm: x^2 summed in f32, the normalised value cast to f16 once
            assert 'T.Cast("float32", x[0, 0, v_r]) * T.Cast("float32", x[0, 0, v_r])' in script, name
            assert 'hearth_staged_shared[v_i] = T.Cast("float16", T.rsqrt(' in script, name
        else:
            assert 'hearth_residual[v_a, v_b, v_j] = residual[v_a, v_b, v_j] + T.Cast("float16"' in script, name
    lm_head = [n for n in names if mod[n].params[-1].dtype == "float32"]
    assert len(lm_head) == 1, names  # the final norm + lm_head: f16 in, f32 logits out


def _gemv(k: int, n: int, dtype: str) -> tirx.PrimFunc:
    """A [1, 1, K] x W^T GEMV in hearth.quant's form (4-bit codes, a scale per 32, dequantize then a sum of
    products accumulated in float32, an f16 output cast)."""
    x = te.placeholder((1, 1, k), dtype, name="x")
    w = te.placeholder((n, k // 8), "uint32", name="w")
    s = te.placeholder((n, k // 32), dtype, name="s")
    code = lambda i, j: (w[i, j // 8] >> tirx.Cast("uint32", j % 8 * 4)) & tirx.const(15, "uint32")  # noqa: E731
    deq = te.compute(
        (n, k), lambda i, j: (tirx.Cast(dtype, code(i, j)) - tirx.const(7, dtype)) * s[i, j // 32], name="dequantize"
    )
    r = te.reduce_axis((0, k), name="k")
    f32 = lambda e: tirx.Cast("float32", e)  # noqa: E731
    mm = te.compute((1, 1, n), lambda a, b, i: te.sum(f32(x[a, b, r]) * f32(deq[i, r]), axis=r), name="NT_matmul")
    if dtype == "float32":
        return te.create_prim_func([x, w, s, mm])
    out = te.compute((1, 1, n), lambda a, b, i: tirx.Cast(dtype, mm[a, b, i]), name="cast")
    return te.create_prim_func([x, w, s, out])


def test_staged_vector_limit_counts_bytes() -> None:
    """Qwen2.5-0.5B's down projection (K = 4864): 19 KiB in float32, staged in 2 chunks of at most 2560
    elements; 9.5 KiB in float16, staged whole."""
    k = 4864
    assert 4 * k > staged_gemv.MAX_STAGED_BYTES >= 2 * k
    target = get_target("webgpu").target()
    for dtype, wgsl_type, staged in (("float32", "f32", 2560), ("float16", "f16", k)):
        built = staged_gemv.rebuild_or_none(_gemv(k, 64, dtype), "swiglu", True)
        assert built is not None, dtype
        lib = tvm.tirx.build(tvm.IRModule({"main": built.with_attr("global_symbol", "main")}), target=target)
        wgsl = "".join(m.inspect_source() for m in lib.imports)
        assert f"var<workgroup> hearth_staged_shared : array<{wgsl_type}, {staged}>;" in wgsl, wgsl[:2000]
        # chunked: the chunk loop (2 iterations) holds both barriers: before restaging and after staging
        assert ("for (var k_0 : i32 = 0i; k_0 < 2i; k_0++)" in wgsl) == (staged < k), wgsl[:3000]


# --- on Dawn (lavapipe) --------------------------------------------------------------------------------


@functools.cache
def _package() -> Path:
    out = cache_root() / "test-packages" / "webgpu-fused-f16"
    cmd = [str(REPO / ".venv" / "bin" / "hearth"), "compile", str(mtm.ensure_test_model(MODEL)), "--quant", "q4f16_1"]
    cmd += ["--target", "webgpu", "--target", "webgpu-fused", "--out", str(out), "--model-id", MODEL]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Path(proc.stdout.strip().splitlines()[-1])


def _generate(pkg: Path, *args: str) -> dict:
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: the WebGPU side cannot run (make setup)")
    cmd = ["node", str(GENERATE), str(pkg), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    lines = proc.stdout.strip().splitlines()
    assert lines, f"{' '.join(cmd[:3])} printed nothing ({proc.returncode}): {proc.stderr[-3000:]}"
    got = json.loads(lines[-1])
    assert "error" not in got, got
    return got


def test_f16_fused_library_same_tokens_close_logits_fewer_launches() -> None:
    pkg = _package()
    config = json.loads((pkg / "mlc-chat-config.json").read_text())
    layers, vocab = config["model_config"]["num_hidden_layers"], config["vocab_size"]
    prompt = ",".join(str((i * 7919 + 13) % vocab) for i in range(32))
    args = ("--ids", prompt, "--max-new", "24", "--trace", "5")
    a = _generate(pkg, *args, "--webgpu-build", "plain")
    b = _generate(pkg, *args, "--webgpu-build", "fused")
    assert (a["target"], b["target"]) == ("webgpu", "webgpu-fused")
    assert a["usesF16"] and b["usesF16"], "the package did not run its f16 kernels"
    assert a["tokens"] == b["tokens"]
    worst = 0.0
    for sa, sb in zip(a["steps"], b["steps"], strict=True):
        assert [t for t, _ in sa["top"]][:2] == [t for t, _ in sb["top"]][:2] or sa["margin"] < 5e-2
        for (ta, la), (tb, lb) in zip(sa["top"], sb["top"], strict=True):
            if ta == tb:
                worst = max(worst, abs(la - lb) / max(1.0, abs(la)))
    assert worst < F16_LOGIT_TOL, worst
    launches = [Counter(r["stats"]["dispatch"]["launchesByKernel"]) for r in (a, b)]
    decode_calls = len(a["tokens"]) - 1  # the first token comes from the prefill, which is not fused
    staged = sum(v for k, v in launches[1].items() if k.startswith("hearth_"))
    assert staged == decode_calls * (3 * layers + 1), launches[1]
    assert launches[1].total() == launches[0].total() - decode_calls * (3 * layers + 1), launches


@pytest.mark.parametrize(
    ("k", "prologue", "dtype", "regs"),
    [
        (896, "rms_norm", "float32", 4),  # Qwen2.5-0.5B's gate_up: 3.5 steps of 256, the last one clamped
        (4864, "swiglu", "float32", 10),  # its down projection: 19 steps x 2 words over the limit, per chunk
        (4864, "swiglu", "float16", None),  # not chunked, 38 words: not prefetched, the plain kernel
    ],
)
def test_prefetch_loads_precede_the_prologue(k: int, prologue: str, dtype: str, regs: int | None) -> None:
    """prefetch: each thread's packed words and scales are loaded into `regs`-element registers (indexed by
    constants) before the first barrier of the prologue; where they would not fit, the plain kernel."""
    target = get_target("webgpu").target()

    def wgsl(prefetch: bool) -> str:
        built = staged_gemv.rebuild_or_none(
            _gemv(k, 64, dtype), prologue, prologue == "swiglu", 1e-6, prefetch=prefetch
        )
        assert built is not None
        lib = tvm.tirx.build(tvm.IRModule({"main": built.with_attr("global_symbol", "main")}), target=target)
        return "".join(m.inspect_source() for m in lib.imports)

    got = wgsl(True)
    if regs is None:
        assert got == wgsl(False)
        return
    assert f"var hearth_prefetch0_local : array<u32, {regs}>;" in got, got[:3000]
    barrier = got.index("workgroupBarrier()")
    for i in range(regs):
        assert got.index(f"hearth_prefetch0_local[{i}i] = w_ptr[") < barrier, got[:6000]
        assert got.index(f"hearth_prefetch1_local[{i}i] = s_ptr[") < barrier, got[:6000]
    assert "w_ptr[" not in got[barrier:] and "s_ptr[" not in got[barrier:], got
