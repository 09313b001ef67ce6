"""The runtime source patches (hearth/runtime/source_patches.py) apply to this wheel's sources, and a
source that changed under them stops the build with the patch named instead of compiling unfixed code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hearth.runtime.build import _package_dir, runtime_key
from hearth.runtime.source_patches import PATCHES, SourcePatchError, apply_patches


def _wheel_tree(tmp_path: Path) -> Path:
    home = tmp_path / "tvm_home"
    for rel in {p.path for p in PATCHES}:
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(_package_dir("tvm") / rel, home / rel)
    return home


def test_patches_apply_to_the_wheel_sources(tmp_path: Path) -> None:
    home = _wheel_tree(tmp_path)
    apply_patches(home)
    kv = (home / "src/runtime/vm/paged_kv_cache.cc").read_text()
    # the four copies of the window's tables go to their own depth slots
    assert kv.count("d + kPagedKVCacheMaxBlockDepth") == 4
    assert "d < 2 * kPagedKVCacheMaxBlockDepth" in (home / "src/runtime/vm/attn_utils.h").read_text()


def test_a_changed_source_fails_naming_the_patch(tmp_path: Path) -> None:
    home = _wheel_tree(tmp_path)
    apply_patches(home)  # applied once: the text to replace is gone now
    with pytest.raises(SourcePatchError, match=PATCHES[0].name):
        apply_patches(home)


def test_patches_are_in_the_runtime_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import hearth.runtime.build as build

    before = runtime_key()
    monkeypatch.setattr(build, "patch_key", lambda: b"other")
    assert runtime_key() != before
