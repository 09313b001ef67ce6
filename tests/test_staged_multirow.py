"""build/staged_gemv.py's multi-row prefetch schedule (fusion mode staged[-r<N>][-b<BYTES>]-p-m<R>, issue 17):
each thread computes up to R output rows of a staged decode GEMV.

The mode's parsing and its limits (seconds); the WGSL of Qwen2.5-0.5B-shaped kernels (f32 and f16, whole and
chunked K): every register a constant index, R rows' words loaded before the prologue, R cut where the
registers or the workgroup storage would not hold them; then on Dawn (lavapipe) tiny-llama-trained q4f32_1
rebuilt with --fused2 --prefetch --multirow R against --fused2 --prefetch (R = 4, and R = 2 with K staged in
chunks): the same greedy tokens and bit-identical top-5 logits (each row's multiply-adds and its cross-thread
reduction are the one-row kernel's), and the same launches.
"""

from __future__ import annotations

import re

import pytest
import tvm
from tvm_ffi import structural_equal

from hearth.build import staged_gemv
from hearth.build.fusion import fusion_passes
from hearth.targets import get_target
from test_fusion2 import CHUNK_BYTES, MODEL, _greedy_pair, _packages
from test_fusion_f16 import _gemv


@pytest.mark.parametrize(
    "mode", ["staged-m2", "staged-m2-p", "staged-p-m3", "staged-p-m0", "staged-p-m16", "staged-p-mx", "staged-p-m2-p"]
)
def test_bad_multirow_mode_is_an_error(mode: str) -> None:
    with pytest.raises(ValueError, match=f"unknown fusion mode '{mode}'.*-p-m<R>"):
        fusion_passes(get_target("webgpu").target(), mode)


@pytest.mark.parametrize("mode", ["staged-p-m1", "staged-p-m8", f"staged-r2-b{CHUNK_BYTES}-p-m4"])
def test_multirow_modes_are_accepted(mode: str) -> None:
    assert len(fusion_passes(get_target("webgpu").target(), mode)) == 1


@pytest.mark.parametrize(("multirow", "prefetch"), [(3, True), (16, True), (0, True), (2, False)])
def test_build_refuses_bad_multirow(multirow: int, prefetch: bool) -> None:
    with pytest.raises(ValueError, match="rows per thread"):
        staged_gemv.build(_gemv(896, 64, "float32"), "rms_norm", False, 1e-6, prefetch=prefetch, multirow=multirow)


@pytest.mark.parametrize(
    ("n", "words", "free_kib", "rows"),
    [
        (9728, 8, 8, 8),  # Qwen2.5-0.5B's gate_up: 8 rows of 8 words, 8 x 1 KiB of sums
        (9728, 8, 3, 2),  # a 12 KiB staged vector leaves 3 KiB: 2 rows' sums
        (896, 20, 8, 2),  # its down projection's chunk: 20 words a row, 3 rows would pass 64
        (8 * 4 * 3, 8, 8, 4),  # N = 96: 8 x 8 rows do not divide it
        (64, 40, 8, 1),  # 2 rows would pass 64 words
    ],
)
def test_rows_per_thread_fit_n_registers_and_storage(n: int, words: int, free_kib: int, rows: int) -> None:
    assert staged_gemv._rows_per_thread(n, 8, words, 8, free_kib << 10) == rows


def _wgsl(k: int, n: int, dtype: str, prologue: staged_gemv.Prologue, multirow: int) -> str:
    built = staged_gemv.build(
        _gemv(k, n, dtype), prologue, prologue == "swiglu", 1e-6, prefetch=True, multirow=multirow
    )
    lib = tvm.tirx.build(
        tvm.IRModule({"main": built.with_attr("global_symbol", "main")}), get_target("webgpu").target()
    )
    return "".join(m.inspect_source() for m in lib.imports)


@pytest.mark.parametrize(
    ("k", "n", "dtype", "prologue", "multirow", "rows", "regs"),
    [
        # Qwen2.5-0.5B's gate_up / lm_head K: 4 steps x (word + scale) a row
        (896, 256, "float32", "rms_norm", 4, 4, 16),
        (896, 256, "float16", "rms_norm", 8, 8, 32),  # 64 words: the multi-row cap
        (896, 48, "float32", "rms_norm", 4, 2, 8),  # N = 48: 8 x 4 rows do not divide it, 8 x 2 do
        # its down projection in float32: per chunk of 10 steps, 20 words a row: 4 rows would be 80
        (4864, 64, "float32", "swiglu", 4, 2, 20),
        # K = 2560 in float16 (a 5 KiB chunk, whole): 10 steps, 2 rows
        (2560, 64, "float16", "swiglu", 2, 2, 20),
    ],
)
def test_multirow_registers_are_constant_indexed(
    k: int, n: int, dtype: str, prologue: staged_gemv.Prologue, multirow: int, rows: int, regs: int
) -> None:
    """Each thread holds `rows` rows' words (`regs` per weight buffer) and one partial sum per row in
    function-scope arrays indexed only by constants (a runtime index would make them scratch memory: a
    spill), loads them all before the prologue's first barrier, and the kernel's workgroup storage stays
    within WebGPU's guaranteed 16 KiB."""
    got = _wgsl(k, n, dtype, prologue, multirow)
    assert "var<private>" not in got
    wtype = {"float32": "f32", "float16": "f16"}[dtype]
    assert f"var hearth_prefetch0_local : array<u32, {regs}>;" in got, got[:3000]
    assert f"var hearth_prefetch1_local : array<{wtype}, {regs}>;" in got, got[:3000]
    assert f"var hearth_gemv_rf_local : array<f32, {rows}>;" in got, got[:3000]
    indices = re.findall(r"\b\w+_local\[([^\]]*)\]", got)
    assert indices and all(re.fullmatch(r"\d+i", i) for i in indices), sorted(set(indices))
    # one cross-thread reduction per row, each writing its row
    assert got.count("= hearth_gemv_rf_local[") == rows, got[-3000:]
    barrier = got.index("workgroupBarrier()")
    for i in range(regs):
        assert got.index(f"hearth_prefetch0_local[{i}i] = w_ptr[") < barrier, got[:6000]
        assert got.index(f"hearth_prefetch1_local[{i}i] = s_ptr[") < barrier, got[:6000]
    shared = re.findall(r"var<workgroup> \w+ : array<(f32|f16), (\d+)>;", got)
    assert sum(int(size) * (4 if t == "f32" else 2) for t, size in shared) <= staged_gemv.WORKGROUP_BYTES, shared


def test_one_row_per_thread_is_the_prefetch_kernel() -> None:
    """multirow=1 (and a kernel whose words would not fit) builds staged-p's kernel, byte for byte."""
    one = staged_gemv.build(_gemv(896, 128, "float32"), "rms_norm", False, 1e-6, prefetch=True)
    multi = staged_gemv.build(_gemv(896, 128, "float32"), "rms_norm", False, 1e-6, prefetch=True, multirow=1)
    assert structural_equal(one, multi)
    # 4864 in float16: 38 words a row, over PREFETCH_MAX_WORDS: not prefetched, so one row per thread
    plain = staged_gemv.build(_gemv(4864, 64, "float16"), "swiglu", True, prefetch=True)
    wide = staged_gemv.build(_gemv(4864, 64, "float16"), "swiglu", True, prefetch=True, multirow=4)
    assert structural_equal(plain, wide)


# --- on Dawn (lavapipe) --------------------------------------------------------------------------------


# 4 rows a thread with the default staging (the prefetch package is test_fusion2's), 2 with CHUNK_BYTES: the
# down projection staged in two chunks, its words prefetched per chunk (the norm GEMVs' K fits whole)
@pytest.mark.parametrize(("staged_bytes", "multirow"), [(None, 4), (CHUNK_BYTES, 2)])
def test_webgpu_multirow_same_tokens_and_logits_as_prefetch(staged_bytes: int | None, multirow: int) -> None:
    """--multirow R against --prefetch (tiny-llama, lavapipe): the same greedy tokens, bit-identical top-5
    logits at every step and the same launches."""
    _, one = _packages(MODEL, staged_bytes, True)
    _, multi = _packages(MODEL, staged_bytes, True, multirow)
    a, b = _greedy_pair(one, multi)
    assert a["tokens"] == b["tokens"]
    assert [s["top"] for s in a["steps"]] == [s["top"] for s in b["steps"]]
    launches = [r["stats"]["dispatch"]["launchesByKernel"] for r in (a, b)]
    assert launches[0] == launches[1]
