"""`hearth compile --decode-fusion staged`: the option reaches the GPU build (the staged kernels are in the
WebGPU library), is part of the build key (a default build of the same checkpoint is not reused), and a
value outside the list is refused before any work. The kernels themselves: tests/test_fusion2.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from hearth.build.package import CompileOptionError, compile_package

sys.path.insert(0, str(REPO / "scripts"))
import make_test_models as mtm  # noqa: E402

MODEL = "tiny-llama-trained"


def test_staged_decode_fusion_is_built_and_keyed(tmp_path: Path) -> None:
    ckpt = mtm.ensure_test_model(MODEL)
    fused = compile_package(str(ckpt), "q4f32_1", ["webgpu"], tmp_path / "fused", decode_fusion="staged")
    plain = compile_package(str(ckpt), "q4f32_1", ["webgpu"], tmp_path / "plain")
    assert fused.manifest["build_key"] != plain.manifest["build_key"]
    lib = lambda r: next(r.package_dir.glob("*-webgpu.wasm")).read_bytes()  # noqa: E731
    assert b"hearth_rms_norm" in lib(fused), "the staged RMSNorm + GEMV kernel is not in the fused library"
    assert b"hearth_rms_norm" not in lib(plain)


def test_unknown_decode_fusion_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CompileOptionError, match="decode_fusion must be one of none, staged, got 'gate'"):
        compile_package(str(mtm.ensure_test_model(MODEL)), "q4f32_1", ["webgpu"], tmp_path, decode_fusion="gate")
    proc = subprocess.run(
        [str(REPO / ".venv" / "bin" / "hearth"), "compile", "x", "--decode-fusion", "fast"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "--decode-fusion" in proc.stderr and "'fast'" in proc.stderr
