"""hearth-manifest.json: size and SHA-256 of every file in a package, plus provenance.

The SDK verifies every file against it before use; `verify_package` is the Python twin.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..cache import sha256_file

MANIFEST = "hearth-manifest.json"


class IntegrityError(Exception):
    """A package file is missing, resized or altered since it was built."""


def write_manifest(package_dir: Path, meta: dict[str, Any]) -> Path:
    files = sorted(p for p in package_dir.rglob("*") if p.is_file() and p.name != MANIFEST)
    doc = {
        **meta,
        "files": [
            {"path": p.relative_to(package_dir).as_posix(), "bytes": p.stat().st_size, "sha256": sha256_file(p)}
            for p in files
        ],
    }
    out = package_dir / MANIFEST
    out.write_text(json.dumps(doc, indent=2) + "\n")
    return out


def verify_package(package_dir: Path) -> dict[str, Any]:
    """Check every file listed in the manifest; raise IntegrityError naming the first bad one."""
    manifest_file = package_dir / MANIFEST
    if not manifest_file.is_file():
        raise IntegrityError(f"{package_dir} has no {MANIFEST}: not a Hearth package (run `hearth compile`)")
    doc = json.loads(manifest_file.read_text())
    for entry in doc["files"]:
        path = package_dir / entry["path"]
        if not path.is_file():
            raise IntegrityError(f"{entry['path']} is missing from {package_dir}; recompile or re-download the package")
        if path.stat().st_size != entry["bytes"]:
            raise IntegrityError(f"{entry['path']} has {path.stat().st_size} bytes, manifest says {entry['bytes']}: corrupt or truncated")
        if sha256_file(path) != entry["sha256"]:
            raise IntegrityError(f"{entry['path']} does not match its SHA-256 in {MANIFEST}: corrupt or tampered")
    return doc
