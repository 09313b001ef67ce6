"""The packages under dist/<model_id>/<quant>/, found without trusting any of them.

One bad package (a manifest that is not JSON, a folder that links outside dist/, a symlink loop)
must not take the listing, /healthz or the native API down for the others: it is reported as
broken (logged once per change) and left out. Hidden folders are never packages: `hearth compile`
builds into `.<quant>.tmp-*` siblings (hearth.cache.atomic_dir) and renames them into place only
when complete, so a hidden one is unfinished or left behind by a killed compile.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..weights.manifest import MANIFEST, IntegrityError, read_manifest_doc

log = logging.getLogger("hearth.serve")


@dataclass(frozen=True)
class Package:
    rel: str  # "<model_id>/<quant>": the folder relative to dist/
    folder: Path
    doc: dict[str, Any]  # the manifest, structurally valid (files not hashed: that is the loaders' job)
    mtime: int


@dataclass(frozen=True)
class BrokenPackage:
    rel: str
    error: str


class _ReportOnce:
    """Log each broken package once per distinct problem, not on every request that lists them."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def __call__(self, broken: BrokenPackage) -> None:
        key = (broken.rel, broken.error)
        with self._lock:
            if key in self._seen:
                return
            self._seen.add(key)
        log.warning("skipping broken package dist/%s: %s", broken.rel, broken.error)


_report = _ReportOnce()


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_dir())


def scan_packages(dist: Path) -> tuple[list[Package], list[BrokenPackage]]:
    """(good packages, broken ones) under dist/, each sorted by folder."""
    good: list[Package] = []
    broken: list[BrokenPackage] = []
    try:
        root = dist.resolve(strict=True)
        model_dirs = _visible_dirs(dist)
    except (OSError, RuntimeError):
        return good, broken  # no dist/ (yet): nothing is compiled
    for model_dir in model_dirs:
        try:
            quant_dirs = _visible_dirs(model_dir)
        except (OSError, RuntimeError) as e:
            broken.append(BrokenPackage(model_dir.name, f"cannot list the folder ({e})"))
            continue
        for folder in quant_dirs:
            rel = f"{model_dir.name}/{folder.name}"
            try:
                if not (folder / MANIFEST).is_file():
                    continue  # not a package (a stray folder)
                if not folder.resolve(strict=True).is_relative_to(root):
                    raise IntegrityError("the folder links outside dist/; it cannot be served")
                doc = read_manifest_doc(folder)
                good.append(Package(rel, folder, doc, int((folder / MANIFEST).stat().st_mtime)))
            except (IntegrityError, OSError, RuntimeError) as e:  # RuntimeError: a symlink loop (Python < 3.13)
                broken.append(BrokenPackage(rel, str(e)))
    for b in broken:
        _report(b)
    return good, broken


def package_listing(dist: Path) -> list[dict[str, Any]]:
    """The /models/ index: one entry per good package (see the SDK's fetchModelIndex)."""
    out = []
    for p in scan_packages(dist)[0]:
        targets = p.doc.get("targets")
        out.append(
            {
                "model_id": p.doc.get("model_id"),
                "quantization": p.doc.get("quantization"),
                "task": p.doc.get("model_task"),
                "url": f"/models/{p.rel}/",
                "bytes": sum(f["bytes"] for f in p.doc["files"]),
                "targets": targets if isinstance(targets, dict) else {},
            }
        )
    return out
