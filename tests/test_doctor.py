"""`hearth doctor`: every piece reported; a missing one named, with its fix, and exit 1."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from hearth.doctor import CHECKS, run_doctor


def _results(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, dict]]:
    import json

    rc = run_doctor(as_json=True)
    return rc, {c["name"]: c for c in json.loads(capsys.readouterr().out)}


def test_everything_present_on_a_set_up_machine(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, checks = _results(monkeypatch, capsys)
    assert len(checks) == len(CHECKS)
    assert rc == 0, {k: v for k, v in checks.items() if not v["ok"]}
    assert "shader-f16: yes" in checks["Node WebGPU (Dawn)"]["detail"]
    assert "shader-f16: no" in checks["Chromium WebGPU"]["detail"]  # SwiftShader


def test_missing_runtime_is_named_with_its_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEARTH_CACHE", str(tmp_path))
    rc, checks = _results(monkeypatch, capsys)
    assert rc == 1
    runtime = checks["TVM wasm runtime"]
    assert not runtime["ok"] and "hearth runtime build" in runtime["fix"]


def test_missing_emcc_and_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    node = shutil.which("node")
    assert node
    os.symlink(node, bin_dir / "node")  # a PATH with node but no emcc and no chromium
    monkeypatch.setenv("PATH", str(bin_dir))
    rc, checks = _results(monkeypatch, capsys)
    assert rc == 1
    assert not checks["emcc"]["ok"] and "emscripten" in checks["emcc"]["fix"]
    assert not checks["Chromium WebGPU"]["ok"] and "chromium" in checks["Chromium WebGPU"]["fix"]
    assert checks["Node WebGPU (Dawn)"]["ok"]
