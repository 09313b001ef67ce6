"""The wasm runtime build: cached by key, and a failure is loud and leaves nothing behind."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hearth.runtime.build import RuntimeBuildError, build_runtime, runtime_dir


def test_cached_runtime_is_reused_instantly() -> None:
    first = build_runtime()  # builds once per machine (about 75 s on 2 cores), then cached
    t0 = time.perf_counter()
    assert build_runtime() == first
    assert time.perf_counter() - t0 < 1.0
    assert (first / "done.json").is_file()


def test_failed_build_names_command_and_log_and_caches_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "emcc"
    fake.write_text("#!/bin/sh\necho 'fatal error: simulated compiler failure' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("HEARTH_EMCC", str(fake))
    monkeypatch.setenv("HEARTH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(RuntimeBuildError) as info:
        build_runtime()
    err = info.value
    assert str(fake) in str(err), "the failing command is shown"
    assert err.log_path is not None and Path(err.log_path).is_file() and str(err.log_path) in str(err)
    assert "simulated compiler failure" in Path(err.log_path).read_text()
    final = runtime_dir()
    assert not final.exists(), "nothing half-built is cached as good"
    # the lock file (concurrent builds wait on it) and logs/ (holding the failure log) stay; no build folder may
    leftovers = (
        [p for p in final.parent.iterdir() if p.suffix != ".lock" and p.name != "logs"] if final.parent.exists() else []
    )
    assert leftovers == [], f"temp build folders left behind: {leftovers}"
