"""Safe, cache-aware file responses for the demo app and the model packages.

- Paths are resolved strictly inside a root: `..`, encoded dots/slashes, absolute paths,
  backslashes and NUL are refused before touching the filesystem; the path left after every
  rewrite (a folder's index.html) is resolved once and must lie inside the root (symlinks).
- Files listed in a package's hearth-manifest.json get their SHA-256 as a strong ETag, and
  are `immutable` when the URL names that hash (`?sha256=...`): content-addressed.
- gzip for text-like files when the client accepts it: that body is another representation, so it
  gets its own ETag (`"<sha256>-gzip"`) and every answer for such a file says `Vary: Accept-Encoding`;
  HEAD reports the Content-Length the GET would send.
- Range requests (206/416) come from Starlette's FileResponse; a Range header that is not valid
  RFC 9110 syntax (or not in bytes) is ignored and the whole file is sent (RFC 9110 section 14.2).
"""

from __future__ import annotations

import gzip
import mimetypes
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

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
# Longer than any file a package or the app holds; past it a path is refused before touching the
# filesystem (which would fail with ENAMETOOLONG at PATH_MAX anyway).
MAX_URL_PATH = 1024


class UnsafePath(Exception):
    pass


class PathTooLong(UnsafePath):
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
    if len(url_path) > MAX_URL_PATH:
        raise PathTooLong(url_path[:64])
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


# RFC 9110 section 14.1.1: bytes=<first>-[<last>] or bytes=-<suffix>, comma-separated (empty elements allowed).
_RANGE_SPEC = re.compile(r"(\d+)-(\d*)|-(\d+)")


def valid_byte_range(header: str) -> bool:
    """Whether `header` is a syntactically valid bytes Range (satisfiable or not: that is 416's job)."""
    unit, sep, specs = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return False
    seen = False
    for spec in specs.split(","):
        spec = spec.strip(" \t")
        if not spec:
            continue
        m = _RANGE_SPEC.fullmatch(spec)
        if m is None or (m.group(1) is not None and m.group(2) and int(m.group(2)) < int(m.group(1))):
            return False
        seen = True
    return seen


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding value allows gzip (`gzip;q=0` refuses it; `*` stands for it)."""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        weights[name.strip().lower()] = q
    if "gzip" in weights:
        return weights["gzip"] > 0
    return weights.get("*", 0) > 0


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match's weak comparison (RFC 9110 section 13.1.2): W/ prefixes are ignored, * matches."""
    if if_none_match is None:
        return False
    opaque = etag.removeprefix("W/")
    return any(t.strip() == "*" or t.strip().removeprefix("W/") == opaque for t in if_none_match.split(","))


class _WholeFile(FileResponse):
    """A FileResponse that ignores the request's Range header (which was not valid)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != b"range"]}
        await super().__call__(scope, receive, send)


def file_response(request: Request, file: Path, root: Path) -> Response:
    """`file` as resolved by resolve_served under `root` (resolved too)."""
    ctype = content_type(file)
    st = file.stat()
    entry = manifest_entry(file, root)
    headers: dict[str, str] = {}
    if entry is not None and entry.size == st.st_size:
        tag = entry.sha256
        wanted = request.query_params.get("sha256")
        if wanted is not None and wanted != entry.sha256:
            # The client asked for other content than we have: never serve it as that hash.
            return PlainTextResponse(
                f"{file.name} has changed (sha256 {entry.sha256[:12]}..., asked {wanted[:12]}...)", 409
            )
        headers["Cache-Control"] = IMMUTABLE if wanted else REVALIDATE
    else:
        tag = f"{st.st_mtime_ns:x}-{st.st_size:x}"
        headers["Cache-Control"] = REVALIDATE
    byte_range = request.headers.get("range")
    ignore_range = byte_range is not None and not valid_byte_range(byte_range)
    compressible = ctype.startswith(COMPRESSIBLE) and st.st_size <= MAX_GZIP_BYTES
    gzipped = (
        compressible
        and (byte_range is None or ignore_range)
        and accepts_gzip(request.headers.get("accept-encoding", ""))
    )
    if compressible:
        headers["Vary"] = "Accept-Encoding"  # caches must not hand the gzip body to a client that did not ask
    headers["ETag"] = f'"{tag}-gzip"' if gzipped else f'"{tag}"'  # two bodies, two strong validators
    if etag_matches(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    if gzipped:
        body = gzip.compress(file.read_bytes(), compresslevel=6)
        headers.update({"Content-Encoding": "gzip", "Content-Length": str(len(body))})
        return Response(body if request.method != "HEAD" else b"", media_type=ctype, headers=headers)
    response_class = _WholeFile if ignore_range else FileResponse
    return response_class(file, media_type=ctype, headers=headers, stat_result=st)
