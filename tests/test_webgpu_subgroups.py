"""The subgroup WebGPU targets (issue 17): webgpu-fused-sg32 / webgpu-fused-sg8, the staged-fusion build whose
cross-thread reductions are subgroup shuffles (hearth/build/subgroups.py), and the SDK's choice of them
(webgpuBuild "subgroups"; the rule on adapter infos: sdk/test/webgpu-build.test.ts).

Kernel level (seconds): a reduction TVM can lower to shuffles gets them, width = the target's subgroup size;
one it cannot (too wide for a size-8 two-level tree, or a width that is no multiple of the size) comes out as
the plain build's WGSL, not TVM's warp-synchronous tail (a workgroupBarrier under `if`, invalid WGSL).

On Dawn (lavapipe: subgroups of exactly 8 lanes, 16 with LP_NATIVE_VECTOR_WIDTH=512): tiny-llama-trained
q4f32_1 compiled with --target webgpu-fused and the sg8, sg16 and sg32 builds (cached by build key). The sg
libraries really shuffle (their WGSL); sg8 and sg16 give the fused library's greedy tokens over 24 positions
with the top-5 logits equal up to the reduction order (sg16 shuffles every reduction sg32 does, the 256-thread
two-level trees included); the sg32 library's WGSL passes Dawn's validation (every pipeline is created at
load); "auto" on lavapipe (software) never takes a subgroup build. f16: tests/test_webgpu_subgroups_f16.py.
"""

from __future__ import annotations

import contextlib
import functools
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tvm
from tvm import s_tir, te

from conftest import REPO
from hearth.build.subgroups import subgroup_reductions
from hearth.cache import cache_root
from hearth.targets import get_target
from hearth.weights.manifest import verify_package
from webgpu_generate import generate, prompt

sys.path.insert(0, str(REPO / "scripts"))
import build_packages  # noqa: E402
import make_test_models as mtm  # noqa: E402

MODEL = "tiny-llama-trained"
TARGETS = ["webgpu-fused", "webgpu-fused-sg8", "webgpu-fused-sg16", "webgpu-fused-sg32"]
SHUFFLE = re.compile(rb"subgroupShuffleDown\([^;]*, u32\((\d+)i\)\)")
# fused vs sg8 differ only in the order partial sums meet: tests/test_webgpu_fused_target.py's f32 bound, and
# tests/test_fusion_f16.py's for f16 (an f16 rounding may flip by one ulp and carry through the layers).
LOGIT_TOL = {"q4f32_1": 1e-4, "q4f16_1": 1e-2}


# --- kernel level ------------------------------------------------------------------------------------------


def _row_sum_wgsl(target: str, threads: int, *, rows: int = 1, ours: bool = True) -> str:
    """WGSL of a 128x256 row sum with `threads` threads per row (one reduction of that width) and `rows`
    rows per workgroup (threadIdx.y: a GEMV's shape, 8 rows x 32 threads in the staged and dlight ones)."""
    a = te.placeholder((128, 256), name="A")
    k = te.reduce_axis((0, 256), name="k")
    b = te.compute((128,), lambda i: te.sum(a[i, k], axis=k), name="B")
    sch = s_tir.Schedule(te.create_prim_func([a, b]))
    i, kk = sch.get_loops(sch.get_sblock("B"))
    io, ii = sch.split(i, [None, rows])
    sch.bind(io, "blockIdx.x")
    if rows > 1:
        sch.bind(ii, "threadIdx.y")
    sch.bind(sch.split(kk, [None, threads])[1], "threadIdx.x")
    with subgroup_reductions() if ours else contextlib.nullcontext():
        lib = tvm.compile(sch.mod, target=get_target(target).target())
    return "".join(m.inspect_source() for m in lib.mod.imports)


def _shuffle_offsets(wgsl: str) -> set[int]:
    return {int(n) for n in SHUFFLE.findall(wgsl.encode())}


def _barrier_under_if(wgsl: str) -> bool:
    """A workgroupBarrier() inside an `if` block (WGSL requires barriers in uniform control flow)."""
    depth_if: list[bool] = []
    for line in wgsl.splitlines():
        s = line.strip()
        if "workgroupBarrier()" in s and any(depth_if):
            return True
        opens, closes = s.count("{"), s.count("}")
        for _ in range(closes):
            if depth_if:
                depth_if.pop()
        for _ in range(opens):
            depth_if.append(s.startswith("if ") and not s.endswith("}"))
    return False


def test_targets_carry_their_subgroup_size() -> None:
    for name, size in (("webgpu-fused-sg8", 8), ("webgpu-fused-sg32", 32)):
        spec = get_target(name)
        target = spec.target()
        assert spec.subgroup_size == size and spec.decode_fusion == "staged" and spec.is_wasm
        assert int(target.attrs["thread_warp_size"]) == size and bool(target.attrs["supports_subgroups"])
        assert int(target.attrs["max_num_threads"]) == 256  # the same schedules as webgpu-fused
        assert str(target.host.attrs["mtriple"]).startswith("wasm32")
    assert get_target("webgpu-fused").subgroup_size is None


@pytest.mark.parametrize(
    ("target", "threads", "rows", "widest"),
    [
        ("webgpu-fused-sg8", 16, 1, 4),
        ("webgpu-fused-sg8", 64, 1, 4),
        ("webgpu-fused-sg8", 32, 8, 4),  # 256 threads, 8 reductions of 32: two-level 8-lane trees
        ("webgpu-fused-sg32", 32, 8, 16),
    ],
)
def test_reductions_that_fit_become_shuffles_of_the_subgroup_width(
    target: str, threads: int, rows: int, widest: int
) -> None:
    wgsl = _row_sum_wgsl(target, threads, rows=rows)
    assert "enable subgroups;" in wgsl
    assert max(_shuffle_offsets(wgsl)) == widest, wgsl
    assert not _barrier_under_if(wgsl), wgsl


def test_sg32_shuffles_a_256_thread_reduction() -> None:
    wgsl = _row_sum_wgsl("webgpu-fused-sg32", 256)
    assert max(_shuffle_offsets(wgsl)) == 16 and not _barrier_under_if(wgsl), wgsl


@pytest.mark.parametrize(
    ("target", "threads", "rows", "mask"), [("webgpu-fused-sg32", 32, 8, 31), ("webgpu-fused-sg8", 4, 4, 7)]
)
def test_broadcast_lane_stays_in_the_subgroup(target: str, threads: int, rows: int, mask: int) -> None:
    """The reduced value goes back to every lane from its group's first lane, which TVM numbers past the
    subgroup (row 1 of 32-thread rows: lane 32); WGSL's subgroupShuffle is indeterminate there."""
    wgsl = _row_sum_wgsl(target, threads, rows=rows)
    lanes = re.findall(r"subgroupShuffle\(red_buf0\[0i\], u32\((.*)\)\);", wgsl)
    assert lanes and all(lane.endswith(f"& {mask}i)") for lane in lanes), lanes


@pytest.mark.parametrize(("target", "threads"), [("webgpu-fused-sg8", 128), ("webgpu-fused-sg32", 48)])
def test_reductions_that_do_not_fit_are_lowered_like_the_plain_build(target: str, threads: int) -> None:
    raw = _row_sum_wgsl(target, threads, ours=False)
    assert _barrier_under_if(raw), "TVM lowered this shape validly by itself: the case tests nothing"
    ours = _row_sum_wgsl(target, threads)
    assert not _shuffle_offsets(ours) and not _barrier_under_if(ours), ours
    plain = _row_sum_wgsl("webgpu", threads)
    assert ours.replace("enable subgroups;\n\n", "") == plain


# --- on Dawn (lavapipe) --------------------------------------------------------------------------------------


@functools.cache
def _package(quant: str, targets: tuple[str, ...] = tuple(TARGETS)) -> Path:
    out = cache_root() / "test-packages" / f"webgpu-subgroups-{len(targets)}"
    cmd = [str(REPO / ".venv" / "bin" / "hearth"), "compile", str(mtm.ensure_test_model(MODEL)), "--quant", quant]
    for t in targets:
        cmd += ["--target", t]
    cmd += ["--out", str(out), "--model-id", MODEL]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Path(proc.stdout.strip().splitlines()[-1])


def _generate(pkg: Path, *args: str, lanes: int = 8) -> dict:
    """generate.mjs on lavapipe with `lanes`-wide subgroups: llvmpipe's subgroup is its native vector width
    in f32 lanes, 256 bits by default, 512 with LP_NATIVE_VECTOR_WIDTH (LLVM splits what the CPU lacks)."""
    return generate(pkg, *args, env={"LP_NATIVE_VECTOR_WIDTH": str(32 * lanes)})


def _same_tokens_close_logits(a: dict, b: dict, tol: float) -> float:
    assert a["tokens"] == b["tokens"]
    worst = 0.0
    for sa, sb in zip(a["steps"], b["steps"], strict=True):
        assert [t for t, _ in sa["top"]][:2] == [t for t, _ in sb["top"]][:2] or sa["margin"] < 1e-3
        for (ta, la), (tb, lb) in zip(sa["top"], sb["top"], strict=True):
            if ta == tb:
                worst = max(worst, abs(la - lb) / max(1.0, abs(la)))
    assert worst < tol, worst
    return worst


def check_sg_library_against_fused(quant: str, targets: tuple[str, ...], lanes: int) -> float:
    pkg = _package(quant, targets)
    manifest = verify_package(pkg)
    assert manifest["targets"] == {t: f"{MODEL}-{quant}-{t}.wasm" for t in targets}
    libs = {t: (pkg / manifest["targets"][t]).read_bytes() for t in targets}
    assert b"subgroupShuffle" not in libs["webgpu-fused"]
    for t in targets[1:]:  # trees as wide as the subgroup: the widest step shuffles half of it
        assert b"enable subgroups;" in libs[t] and b"hearth_rms_norm" in libs[t], t
        assert max(int(n) for n in SHUFFLE.findall(libs[t])) == get_target(t).subgroup_size // 2, t

    args = ("--ids", prompt(pkg), "--max-new", "24", "--trace", "5")
    a = _generate(pkg, *args, "--webgpu-build", "fused", lanes=lanes)
    b = _generate(pkg, *args, "--webgpu-build", "subgroups", lanes=lanes)
    assert "error" not in a and "error" not in b, (a, b)
    assert b["adapter"]["subgroupMinSize"] == b["adapter"]["subgroupMaxSize"] == lanes, b["adapter"]
    assert (a["target"], b["target"]) == ("webgpu-fused", f"webgpu-fused-sg{lanes}")
    return _same_tokens_close_logits(a, b, LOGIT_TOL[quant])


def test_sg8_library_same_greedy_tokens_and_logits_as_fused() -> None:
    check_sg_library_against_fused("q4f32_1", tuple(TARGETS), 8)


def test_sg16_library_on_16_lane_lavapipe() -> None:
    """16 lanes cover every reduction of up to 256 threads with a two-level tree, as 32 lanes do on a GPU: the
    staged RMSNorm + GEMV kernels (a 256-thread norm) and the decode attention, which sg8 lowers without
    shuffles, shuffle here."""
    pkg = _package("q4f32_1")
    lib = (pkg / f"{MODEL}-q4f32_1-webgpu-fused-sg16.wasm").read_bytes()
    for kernel in (b"fn hearth_rms_norm", b"fn batch_decode_paged_kv_kernel"):
        body = lib[lib.index(kernel) :]
        assert SHUFFLE.search(body[: body.find(b"@compute")]), kernel
    check_sg_library_against_fused("q4f32_1", tuple(TARGETS), 16)


def test_sg32_wgsl_passes_dawn_validation_and_auto_takes_no_sg_build_on_lavapipe() -> None:
    """lavapipe's subgroups are 8 lanes, so the sg32 library computes garbage there, but loading it creates
    every compute pipeline: Dawn's WGSL validation (uniformity included) runs on all its kernels."""
    pkg = _package("q4f32_1")
    got = _generate(pkg, "--ids", prompt(pkg, 8), "--max-new", "2", "--target", "webgpu-fused-sg32")
    assert "error" not in got and got["target"] == "webgpu-fused-sg32" and len(got["tokens"]) == 2, got
    # A software adapter never gets a subgroup build under "auto", also where one fits its subgroups (sg8
    # here); this package has no plain library, so the fused one is what it gets.
    auto = _generate(pkg, "--ids", prompt(pkg, 8), "--max-new", "2")
    assert "error" not in auto and auto["target"] == "webgpu-fused", auto


def test_subgroups_build_missing_from_the_package_is_named() -> None:
    pkg = build_packages.ensure_package(MODEL, "q4f32_1")  # the standard test package: no sg build
    got = _generate(pkg, "--ids", "1,2,3", "--max-new", "1", "--webgpu-build", "subgroups")
    assert got.get("errorName") == "PackageCompatibilityError", got
    assert '"webgpu-fused-sg<N>"' in got["error"] and "hearth compile --target webgpu-fused-sg32" in got["error"], got
