"""hearth-manifest.json: size and SHA-256 of every file in a package, plus provenance.

The SDK verifies every file against it before use (sdk/src/load/manifest.ts, files.ts);
`verify_package` and `require_listed` are the Python twins: the manifest must be well formed,
its paths must stay inside the package, and a loader reads only files that are listed (and so
verified).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path, PurePosixPath
from typing import Any

from ..cache import sha256_file
from ..errors import HearthError

MANIFEST = "hearth-manifest.json"
TENSOR_CACHE = "tensor-cache.json"
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_URL_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*:")


class IntegrityError(HearthError):
    """A package file is missing, resized, altered or unlisted since it was built, or the
    manifest itself is malformed."""


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


def is_inside_path(path: str) -> bool:
    """A plain relative POSIX path that cannot leave the package: the SDK's rule (no absolute
    path, no "..", no URL scheme), plus no backslash or NUL, which a POSIX open would take literally."""
    if not path or path.startswith("/") or "\\" in path or "\0" in path or _URL_SCHEME.match(path):
        return False
    return ".." not in PurePosixPath(path).parts


def read_manifest_doc(package_dir: Path) -> dict[str, Any]:
    """The parsed, structurally valid manifest (not yet checked against the files).

    IntegrityError for every way it can be malformed, so callers need catch one type: a manifest
    that is not JSON, not an object, without a `files` list, or with an entry that is not
    {path, bytes, sha256}, whose path leaves the package, or that is listed twice.
    """
    manifest_file = package_dir / MANIFEST
    if not manifest_file.is_file():
        raise IntegrityError(f"{package_dir} has no {MANIFEST}: not a Hearth package (run `hearth compile`)")
    where = f"{manifest_file}"
    fix = "the package is damaged; recompile it (`hearth compile ... --force`) or re-download it"
    try:
        doc = json.loads(manifest_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise IntegrityError(f"{where} is not valid JSON ({e}): {fix}") from e
    if not isinstance(doc, dict):
        raise IntegrityError(f"{where} is not a JSON object: {fix}")
    files = doc.get("files")
    if not isinstance(files, list):
        raise IntegrityError(f'{where} has no "files" list: {fix}')
    seen: set[str] = set()
    for i, e in enumerate(files):
        ok = (
            isinstance(e, dict)
            and isinstance(e.get("path"), str)
            and isinstance(e.get("bytes"), int)
            and not isinstance(e.get("bytes"), bool)
            and e["bytes"] >= 0
            and isinstance(e.get("sha256"), str)
            and _SHA256.fullmatch(e["sha256"]) is not None
        )
        if not ok:
            raise IntegrityError(f"{where}: files[{i}] must be {{path, bytes, sha256 (64 hex digits)}}: {fix}")
        if not is_inside_path(e["path"]):
            raise IntegrityError(
                f"{where}: files[{i}].path {e['path']!r} is not a relative path inside the package; refusing it"
            )
        if e["path"] in seen:
            raise IntegrityError(f"{where}: files[{i}].path {e['path']!r} is listed twice: {fix}")
        seen.add(e["path"])
    return doc


def verify_package(package_dir: Path) -> dict[str, Any]:
    """Check the manifest's form and every file it lists; raise IntegrityError naming the first bad one."""
    doc = read_manifest_doc(package_dir)
    root = package_dir.resolve()
    for entry in doc["files"]:
        path = package_dir / entry["path"]
        if not path.is_file():
            raise IntegrityError(f"{entry['path']} is missing from {package_dir}; recompile or re-download the package")
        if not path.resolve().is_relative_to(root):
            raise IntegrityError(
                f"{entry['path']} in {package_dir} is a link to a file outside the package; refusing it"
            )
        if path.stat().st_size != entry["bytes"]:
            raise IntegrityError(
                f"{entry['path']} has {path.stat().st_size} bytes, manifest says {entry['bytes']}: corrupt or truncated"
            )
        if sha256_file(path) != entry["sha256"].lower():
            raise IntegrityError(f"{entry['path']} does not match its SHA-256 in {MANIFEST}: corrupt or tampered")
    return doc


def require_listed(package_dir: Path, doc: dict[str, Any], paths: list[str]) -> None:
    """Refuse to read any of `paths` (package-relative) that the verified manifest `doc` does not list:
    an unlisted file was never checked, so it may be anything. Paths must also stay inside."""
    listed = {e["path"] for e in doc["files"]}
    for path in paths:
        if not is_inside_path(path):
            raise IntegrityError(f"{package_dir} asks to read {path!r}, which is outside the package; refusing it")
        if PurePosixPath(path).as_posix() not in listed:
            raise IntegrityError(
                f"{path} is not listed in {package_dir / MANIFEST}; refusing to load an unverifiable file "
                "(recompile or re-download the package)"
            )


def unlisted_files(package_dir: Path, doc: dict[str, Any]) -> list[str]:
    """Files in the package folder that the manifest does not list (the manifest itself aside)."""
    listed = {e["path"] for e in doc["files"]}
    return sorted(
        rel
        for p in package_dir.rglob("*")
        if p.is_file() and (rel := p.relative_to(package_dir).as_posix()) != MANIFEST and rel not in listed
    )


def require_all_listed(package_dir: Path, doc: dict[str, Any]) -> None:
    """Refuse a package folder holding any file its manifest does not list. A native loader hands
    the folder to readers (transformers' AutoTokenizer, TVM) that pick up whatever files are there,
    so "every file it reads is verified" means every file in the folder is."""
    extra = unlisted_files(package_dir, doc)
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise IntegrityError(
            f"{extra[0]}{more} in {package_dir} is not listed in {MANIFEST}; refusing to load an unverifiable file "
            "(remove it, or recompile / re-download the package)"
        )


def tensor_cache_index(package_dir: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """tensor-cache.json of a package whose manifest `doc` was verified, checked so that it and every
    shard it names are listed in that manifest (and so verified) and lie inside the package."""
    require_listed(package_dir, doc, [TENSOR_CACHE])
    where = package_dir / TENSOR_CACHE
    try:
        index = json.loads(where.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IntegrityError(f"{where} is not valid JSON ({e}); recompile the package") from e
    records = index.get("records") if isinstance(index, dict) else None
    if not isinstance(records, list) or not all(
        isinstance(r, dict) and isinstance(r.get("dataPath"), str) for r in records
    ):
        raise IntegrityError(f'{where} must hold "records": [{{"dataPath": ...}}, ...]; recompile the package')
    require_listed(package_dir, doc, [r["dataPath"] for r in records])
    _check_records(package_dir, records)
    return index


_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "uint32": 4, "int32": 4, "uint8": 1, "int8": 1}


def _check_records(package_dir: Path, shards: list[dict[str, Any]]) -> None:
    """Every weight record must fit its shard and its shape: TVM's loader would otherwise fail with a bare
    assertion or a numpy reshape error that names neither the file nor the weight (a rehashed manifest
    vouches for the bytes, not for their layout)."""
    where = package_dir / TENSOR_CACHE
    for shard in shards:
        size = (package_dir / shard["dataPath"]).stat().st_size
        for rec in shard.get("records", []):
            name = rec.get("name", "?") if isinstance(rec, dict) else "?"
            try:
                shape, dtype = [int(d) for d in rec["shape"]], str(rec["dtype"])
                offset, nbytes = int(rec["byteOffset"]), int(rec["nbytes"])
            except (KeyError, TypeError, ValueError) as e:
                raise IntegrityError(
                    f"{where}: weight {name!r} has a malformed record ({e!r}); recompile the package"
                ) from e
            if offset < 0 or offset + nbytes > size:
                raise IntegrityError(
                    f"{where}: weight {name!r} lies at bytes [{offset}, {offset + nbytes}) but {shard['dataPath']} "
                    f"holds {size}; recompile the package"
                )
            width = _DTYPE_BYTES.get(dtype)
            if rec.get("format", "raw") == "raw" and width is not None and math.prod(shape) * width != nbytes:
                raise IntegrityError(
                    f"{where}: weight {name!r} is {dtype}{shape} ({math.prod(shape) * width} bytes) but its record "
                    f"says {nbytes}; recompile the package"
                )
