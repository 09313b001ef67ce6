"""Safe, cache-aware file responses for the demo app and the model packages.

- Paths are resolved strictly inside a root: `..`, encoded dots/slashes, absolute paths,
  backslashes and NUL are refused before touching the filesystem; the path left after every
  rewrite (a folder's index.html) is resolved once and must lie inside the root (symlinks).
- Files listed in a package's hearth-manifest.json get their SHA-256 as a strong ETag, and
  are `immutable` when the URL names that hash (`?sha256=...`): content-addressed.
- Range requests (206/416) come from Starlette's FileResponse.
"""
from __future__ import annotations

import gzip
import mimetypes
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from ..weights.manifest import MANIFEST, IntegrityError, read_manifest_doc

MIME = {
    ".wasm": "application/wasm",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".bin": "application/octet-stream",
    ".model": "application/octet-stream",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
}
COMPRESSIBLE = ("application/json", "text/", "application/manifest+json", "image/svg+xml")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"  # always revalidate; the ETag makes that a cheap 304
MAX_GZIP_BYTES = 16 << 20


class UnsafePath(Exception):
    pass


def check_spelling(url_path: str) -> None:
    """UnsafePath unless `url_path` is a plain relative path (checked before touching the filesystem)."""
    if "\\" in url_path or "\0" in url_path or "%" in url_path:
        raise UnsafePath(url_path)  # the router already decoded once; a second encoding is an attack
    parts = PurePosixPath(url_path).parts
    if url_path.startswith("/") or any(p in ("..", ".") for p in parts) or ":" in url_path:
        raise UnsafePath(url_path)


def resolve_served(root: Path, url_path: str, *, hidden: bool = True) -> Path | None:
    """The file to serve for `url_path` under `root` (a folder means its index.html), or None when
    there is none. UnsafePath when the spelling is refused or the file lies outside `root`.

    The path is resolved once, after every rewrite (the index.html appended to a folder included),
    and only that resolved path is checked and served: a symlink anywhere on the way, the final
    index.html too, cannot lead outside the root. `hidden=False` refuses dot-names (unfinished builds).
    """
    check_spelling(url_path)
    if not hidden and any(part.startswith(".") for part in PurePosixPath(url_path).parts):
        return None
    try:
        base = root.resolve(strict=True)
        candidate = root / url_path if url_path else root
        if candidate.is_dir():
            candidate = candidate / "index.html"
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, a name too long, a symlink loop (RuntimeError before 3.13)
        return None
    if not resolved.is_relative_to(base):
        raise UnsafePath(url_path)  # a symlink pointing outside
    return resolved if resolved.is_file() else None


def content_type(path: Path) -> str:
    return MIME.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


@dataclass(frozen=True)
class ManifestEntry:
    sha256: str
    size: int


@lru_cache(maxsize=256)
def _manifest_entries(manifest: Path, mtime_ns: int) -> dict[str, ManifestEntry]:
    try:
        doc = read_manifest_doc(manifest.parent)
    except IntegrityError:
        return {}  # a damaged manifest vouches for nothing: its files get plain ETags
    return {f["path"]: ManifestEntry(f["sha256"].lower(), f["bytes"]) for f in doc["files"]}


def manifest_entry(file: Path, root: Path) -> ManifestEntry | None:
    """The entry for `file` in the nearest enclosing hearth-manifest.json inside `root`, if any."""
    for folder in file.parents:
        if not folder.is_relative_to(root):
            break
        manifest = folder / MANIFEST
        if manifest.is_file():
            entries = _manifest_entries(manifest, manifest.stat().st_mtime_ns)
            return entries.get(file.relative_to(folder).as_posix())
    return None


def file_response(request: Request, file: Path, root: Path) -> Response:
    """`file` as resolved by resolve_served under `root` (resolved too)."""
    ctype = content_type(file)
    entry = manifest_entry(file, root)
    headers: dict[str, str] = {}
    if entry is not None and entry.size == file.stat().st_size:
        etag = f'"{entry.sha256}"'
        wanted = request.query_params.get("sha256")
        if wanted is not None and wanted != entry.sha256:
            # The client asked for other content than we have: never serve it as that hash.
            return Response(f"{file.name} has changed (sha256 {entry.sha256[:12]}..., asked {wanted[:12]}...)", 409)
        headers["Cache-Control"] = IMMUTABLE if wanted else REVALIDATE
    else:
        st = file.stat()
        etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
        headers["Cache-Control"] = REVALIDATE
    headers["ETag"] = etag
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    compressible = ctype.startswith(COMPRESSIBLE) and file.stat().st_size <= MAX_GZIP_BYTES
    if compressible and "range" not in request.headers and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(file.read_bytes(), compresslevel=6)
        headers.update({"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
        return Response(body if request.method != "HEAD" else b"", media_type=ctype, headers=headers)
    return FileResponse(file, media_type=ctype, headers=headers)
