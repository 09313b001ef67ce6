"""Content-addressed cache for built artifacts (runtime, smoke cases, model packages).

Everything is keyed by a hash of its inputs, written to a temporary sibling folder and
renamed into place only when complete, so an interrupted build never looks valid.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path


def cache_root() -> Path:
    """`$HEARTH_CACHE`, else `$XDG_CACHE_HOME/hearth`, else `~/.cache/hearth`."""
    if env := os.environ.get("HEARTH_CACHE"):
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "hearth"


def content_key(parts: Iterable[str | bytes], length: int = 16) -> str:
    """A short sha256 over the given parts (each length-prefixed, so ("ab","c") != ("a","bc"))."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:length]


def hash_files(paths: Iterable[Path], root: Path | None = None) -> str:
    """Hash of file names (relative to root) and contents, in sorted order."""
    parts: list[str | bytes] = []
    for p in sorted(paths):
        parts.append(str(p.relative_to(root)) if root else p.name)
        parts.append(p.read_bytes())
    return content_key(parts)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# A temp folder whose name carries no live owner is left over once it is this old (seconds):
# only names from before owners were recorded, or from another host sharing the cache.
STALE_UNOWNED_S = 3600.0


def _temp_prefix(final: Path) -> str:
    return f".{final.name}.tmp-"


def _owner_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def clean_stale_temps(final: Path) -> list[Path]:
    """Remove `final`'s temp siblings (`.<name>.tmp-<pid>-*`) whose process is gone: what a SIGKILL
    or power loss leaves behind (the `except` below never ran). A live owner's folder is kept: two
    compiles of one package may run at once. Returns the folders removed."""
    removed: list[Path] = []
    prefix = _temp_prefix(final)
    try:
        siblings = [p for p in final.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return removed
    now = time.time()
    for tmp in siblings:
        pid_text = tmp.name[len(prefix) :].split("-", 1)[0]
        try:
            stale = (
                not _owner_alive(int(pid_text)) if pid_text.isdigit() else now - tmp.lstat().st_mtime > STALE_UNOWNED_S
            )
        except OSError:
            continue
        if stale:
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a fresh temp folder next to `final`; on success replace `final` with it.

    On any exception the temp folder is removed and `final` is left untouched. The temp folder's
    name holds this process's id, so a later call can tell a dead build's leftovers (removed
    first, by clean_stale_temps) from a concurrent one's.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(final)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_temp_prefix(final)}{os.getpid()}-", dir=final.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it 0700; a published artifact gets normal permissions
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
