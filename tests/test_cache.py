from __future__ import annotations

from pathlib import Path

import pytest

from hearth.cache import atomic_dir, content_key


def test_atomic_dir_publishes_only_on_success(tmp_path: Path) -> None:
    final = tmp_path / "artifact"
    with atomic_dir(final) as tmp:
        (tmp / "a.txt").write_text("ok")
    assert (final / "a.txt").read_text() == "ok"
    assert [p.name for p in tmp_path.iterdir()] == ["artifact"]


def test_atomic_dir_failure_leaves_nothing_and_keeps_old(tmp_path: Path) -> None:
    final = tmp_path / "artifact"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(final) as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("build failed")
    assert [p.name for p in tmp_path.iterdir()] == ["artifact"]
    assert [p.name for p in final.iterdir()] == ["old.txt"]


def test_content_key_is_unambiguous() -> None:
    assert content_key(["ab", "c"]) != content_key(["a", "bc"])
    assert content_key(["x"]) == content_key([b"x"])
