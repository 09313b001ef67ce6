"""Hearth's reimplementations of the headers the TVM wheel omits, tested natively.

The wasm runtime is built from them, so a wrong byte order or rounding here would corrupt
every executable loaded in the browser. Built with g++ under ASan/UBSan.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tvm_ffi

from hearth.runtime.build import compat_dir

HERE = Path(__file__).parent / "runtime"
FFI = Path(tvm_ffi.__file__).parent


def _compile(src: Path, out: Path, extra: list[str]) -> None:
    if not shutil.which("g++"):
        pytest.fail("g++ is required to test the runtime compat headers (apt-get install g++)")
    c = compat_dir()
    cmd = [
        "g++",
        "-std=c++17",
        "-O1",
        "-g",
        "-fsanitize=address,undefined",
        "-fno-sanitize-recover=all",
        "-Wall",
        "-Wextra",
        f"-I{c / 'include'}",
        f"-I{c / 'src'}",
        f"-I{c / '3rdparty' / 'compiler-rt'}",
        f"-I{FFI / 'include'}",
        f"-I{FFI / '3rdparty' / 'dlpack' / 'include'}",
        str(src),
        "-o",
        str(out),
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]


def test_serializer_streams_base64_utils(tmp_path: Path) -> None:
    exe = tmp_path / "io_test"
    _compile(HERE / "compat_io_test.cc", exe, [f"-L{FFI / 'lib'}", "-ltvm_ffi", f"-Wl,-rpath,{FFI / 'lib'}"])
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAIL" not in proc.stdout


def test_fp16_conversions_match_numpy(tmp_path: Path) -> None:
    exe = tmp_path / "fp16_test"
    _compile(HERE / "compat_fp16_test.cc", exe, [])
    rng = np.random.default_rng(0)
    specials = [
        0.0,
        -0.0,
        np.inf,
        -np.inf,
        np.nan,
        65504.0,
        65520.0,
        65519.99,
        6e-8,
        2.98e-8,
        5.96e-8,
        1.0 + 2**-11,
        1.0 + 3 * 2**-11,
    ]
    f32 = np.concatenate(
        [
            np.array(specials, np.float32),
            rng.standard_normal(200_000).astype(np.float32) * 1000,
            np.frombuffer(rng.bytes(4 * 200_000), np.float32),
        ]
    )
    f64 = np.concatenate(
        [np.array(specials, np.float64), rng.standard_normal(100_000) * 10, rng.standard_normal(50_000) * 1e-6]
    )
    f32.tofile(tmp_path / "f32.bin")
    f64.tofile(tmp_path / "f64.bin")
    subprocess.run([str(exe)], cwd=tmp_path, check=True, timeout=120)

    halves = np.arange(65536, dtype=np.uint16).view(np.float16)
    got = np.fromfile(tmp_path / "h2f.bin", np.float32)
    want = halves.astype(np.float32)
    assert np.array_equal(got.view(np.uint32)[~np.isnan(want)], want.view(np.uint32)[~np.isnan(want)])
    assert np.all(np.isnan(got[np.isnan(want)]))

    for src, out in [(f32, "f2h.bin"), (f64, "d2h.bin")]:
        got16 = np.fromfile(tmp_path / out, np.uint16)
        with np.errstate(over="ignore", invalid="ignore"):
            want16 = src.astype(np.float16)
        nan = np.isnan(want16)
        assert np.array_equal(got16[~nan], want16.view(np.uint16)[~nan]), out
        assert np.all(np.isnan(got16[nan].view(np.float16)))
