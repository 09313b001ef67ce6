"""Build (once) and cache the TVM WebAssembly runtime as wasm object files.

The apache-tvm wheel ships the runtime sources (``tvm/src``, ``tvm/include``,
``tvm/web``) and the tvm-ffi sources (``tvm_ffi/include``, ``tvm_ffi/src``,
``tvm_ffi/3rdparty/dlpack``) but omits a few headers; Hearth's versions of
those live in ``compat/`` next to this file. :func:`build_runtime` assembles a
private TVM_HOME from all of them and compiles the three runtime translation
units of ``web/emcc`` with the wheel's ``EMCC_CFLAGS``, except that it emits
wasm object files instead of LLVM bitcode (``-emit-llvm``). Per-model links
(``hearth.build.wasm_link``) then only run ``wasm-ld`` over ready objects
instead of re-optimising ~16 MB of runtime bitcode every time. Linking the
upstream way is also impossible here: TVM 0.27 emits LLVM-22 bitcode that
Debian's emscripten 3.1.6 (LLVM 14) cannot read.

The result is cached in ``runtime_dir()``; a build directory is published with
an atomic rename, and ``done.json`` (timings and versions) inside it marks a
complete build.

``threads=True`` builds the threaded variant (the ``wasm-cpu-mt`` target): the same sources with
``source_patches.THREAD_PATCHES`` plus ``threads/hearth_threads.cc`` (a worker pool behind
``TVMBackendParallelLaunch``, compiled with atomics), cached under its own key; the single-thread
runtime and its key are unchanged by it.

Run ``python -m hearth.runtime.build [--force] [--jobs N] [--threads]`` to build and print
the directory.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "COMPILE_FLAGS",
    "INCLUDE_FLAGS",
    "RUNTIME_SOURCES",
    "RuntimeBuildError",
    "build_runtime",
    "compat_dir",
    "emcc_path",
    "is_threaded",
    "preload_js",
    "runtime_dir",
    "runtime_key",
    "runtime_objects",
]

#: Version of the cache layout; bump when the produced files change meaning.
from ..cache import cache_root
from ..errors import HearthError
from .source_patches import THREAD_PATCHES, SourcePatchError, apply_patches, patch_key

LAYOUT_VERSION = 1

#: The wheel's ``web/Makefile`` EMCC_CFLAGS without the include flags (see
#: INCLUDE_FLAGS).
COMPILE_FLAGS: tuple[str, ...] = ("-O3", "-std=c++17", "-Wno-ignored-attributes")

#: INCLUDE_FLAGS of the wheel's web/Makefile (same order), relative to the
#: private TVM_HOME, which is the compiler's working directory. Relative paths
#: keep the temporary build directory out of the objects (__FILE__ strings,
#: lambda names in __PRETTY_FUNCTION__), so error messages read
#: "./src/runtime/..." and the objects are reproducible.
INCLUDE_FLAGS: tuple[str, ...] = (
    "-I.",
    "-Iinclude",
    "-I3rdparty/tvm-ffi/include",
    "-I3rdparty/tvm-ffi/3rdparty/dlpack/include",
    "-I3rdparty/compiler-rt",
)

#: Translation units of ``web/emcc`` that make up the runtime, in link order
#: (the order of the Makefile's ``tvmjs_runtime.wasm`` rule).
RUNTIME_SOURCES: tuple[str, ...] = ("wasm_runtime.cc", "tvmjs_support.cc", "webgpu_runtime.cc")

#: Extra files copied from ``web/emcc`` into the cache (the link's ``--pre-js``).
_EXTRA_FILES: tuple[str, ...] = ("preload.js",)

#: The threaded runtime's own translation unit (next to this file) and the flags it adds: wasm
#: atomics (wait/notify, atomic RMW) and bulk memory, which shared memory needs. The wheel's units
#: keep the plain flags (no atomics: their thread_local state stays one global, see the .cc file).
THREADS_SOURCE = "hearth_threads.cc"
THREADS_FLAGS: tuple[str, ...] = ("-matomics", "-mbulk-memory")

_MARKER = "done.json"
_OBJ_DIR = "obj"

ProgressFn = Callable[[str, int, int], None]


class RuntimeBuildError(HearthError, RuntimeError):
    """A step of the runtime build failed.

    ``cmd`` is the failing command line (or None for a non-command step),
    ``log_path`` the file holding its complete output, ``returncode`` its exit
    status (None if it did not run to completion).
    """

    def __init__(
        self,
        message: str,
        *,
        cmd: Sequence[str] | None = None,
        log_path: Path | None = None,
        returncode: int | None = None,
    ) -> None:
        parts = [message]
        if cmd is not None:
            parts.append(f"command: {shlex.join(str(c) for c in cmd)}")
        if returncode is not None:
            parts.append(f"exit status: {returncode}")
        if log_path is not None:
            parts.append(f"full output: {log_path}")
        super().__init__("\n  ".join(parts))
        self.cmd = list(cmd) if cmd is not None else None
        self.log_path = log_path
        self.returncode = returncode


# ---------------------------------------------------------------------------
# Locations and versions (no `import tvm`: a cache hit must stay cheap)
# ---------------------------------------------------------------------------


def compat_dir() -> Path:
    """Hearth's headers for the files the wheel omits (a TVM source-tree overlay)."""
    return Path(__file__).resolve().parent / "compat"


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeBuildError(f"Python package {name!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0]).resolve()


def _dist_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def emcc_path() -> str:
    """The ``emcc`` to use: ``$HEARTH_EMCC`` or the one on PATH."""
    env = os.environ.get("HEARTH_EMCC")
    if env:
        return env
    found = shutil.which("emcc")
    if found is None:
        raise RuntimeBuildError(
            "emcc (emscripten) was not found on PATH; install Debian's 'emscripten' "
            "package (see scripts/setup_system.sh) or set HEARTH_EMCC"
        )
    return found


def _emscripten_fingerprint(emcc: str) -> str:
    """Cheap identity of the emscripten install (resolved path + version file)."""
    real = Path(emcc).resolve()
    for candidate in (
        real.parent / "emscripten-version.txt",
        real.parent.parent / "share" / "emscripten" / "emscripten-version.txt",
    ):
        if candidate.is_file():
            return f"{real}:{candidate.read_text().strip()}"
    return str(real)


def _compat_files() -> list[Path]:
    root = compat_dir()
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def threads_source() -> Path:
    return Path(__file__).resolve().parent / "threads" / THREADS_SOURCE


def runtime_key(threads: bool = False) -> str:
    """Cache key: TVM version plus a short sha256 of everything the objects depend on.

    Hashed: the compat headers (paths and contents), the compile flags, the
    source list, the tvm-ffi version, the emscripten install and the layout version;
    for the threaded runtime also its source, flags and patches (and a ``-mt`` suffix).
    """
    h = hashlib.sha256()

    def feed(tag: str, data: bytes) -> None:
        h.update(tag.encode() + b"\0" + len(data).to_bytes(8, "little") + data)

    feed("layout", str(LAYOUT_VERSION).encode())
    feed("flags", "\0".join(INCLUDE_FLAGS + COMPILE_FLAGS).encode())
    feed("sources", "\0".join(RUNTIME_SOURCES).encode())
    feed("tvm-ffi", _dist_version("apache-tvm-ffi").encode())
    try:
        feed("emcc", _emscripten_fingerprint(emcc_path()).encode())
    except RuntimeBuildError:
        feed("emcc", b"missing")
    feed("patches", patch_key())
    root = compat_dir()
    for path in _compat_files():
        feed("file:" + path.relative_to(root).as_posix(), path.read_bytes())
    suffix = ""
    if threads:
        feed("threads-flags", "\0".join(THREADS_FLAGS).encode())
        feed("threads-patches", patch_key(THREAD_PATCHES))
        feed("threads-source", threads_source().read_bytes())
        suffix = "-mt"
    return f"tvm-{_dist_version('apache-tvm')}-{h.hexdigest()[:12]}{suffix}"


def runtime_dir(threads: bool = False) -> Path:
    """``${HEARTH_CACHE:-${XDG_CACHE_HOME:-~/.cache}/hearth}/runtime/<runtime_key()>``."""
    return cache_root() / "runtime" / runtime_key(threads)


def runtime_objects(runtime: Path) -> list[Path]:
    """The runtime's wasm object files inside a built runtime dir, in link order (the threaded
    runtime's pool last)."""
    objs = [runtime / _OBJ_DIR / (Path(src).stem + ".o") for src in RUNTIME_SOURCES]
    pool = runtime / _OBJ_DIR / (Path(THREADS_SOURCE).stem + ".o")
    return objs + [pool] if pool.is_file() else objs


def is_threaded(runtime: Path) -> bool:
    """Whether a built runtime dir is the threaded variant (holds the worker pool's object)."""
    return (runtime / _OBJ_DIR / (Path(THREADS_SOURCE).stem + ".o")).is_file()


def preload_js(runtime: Path) -> Path:
    """The ``--pre-js`` file inside a built runtime dir."""
    return runtime / "preload.js"


def _is_complete(runtime: Path) -> bool:
    marker = runtime / _MARKER
    if not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if info.get("layout") != LAYOUT_VERSION:
        return False
    files = [runtime / f for f in info.get("files", [])]
    return bool(files) and all(f.is_file() for f in files)


# ---------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------


def _copytree(src: Path, dst: Path) -> None:
    if not src.is_dir():
        raise RuntimeBuildError(f"expected directory is missing from the installed wheel: {src}")
    shutil.copytree(
        src,
        dst,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules", "dist"),
    )


def _assemble_tvm_home(tvm_home: Path, threads: bool = False) -> None:
    """Lay out a private TVM source tree: wheel sources + tvm-ffi + compat overlay."""
    tvm_pkg = _package_dir("tvm")
    ffi_pkg = _package_dir("tvm_ffi")
    for sub in ("src", "include", "web"):
        _copytree(tvm_pkg / sub, tvm_home / sub)
    ffi_dst = tvm_home / "3rdparty" / "tvm-ffi"
    _copytree(ffi_pkg / "include", ffi_dst / "include")
    _copytree(ffi_pkg / "src", ffi_dst / "src")
    _copytree(ffi_pkg / "3rdparty" / "dlpack", ffi_dst / "3rdparty" / "dlpack")
    # Overlay Hearth's headers. They only fill holes: should a future wheel ship
    # one of these files itself, the wheel's version wins.
    compat = compat_dir()
    for path in _compat_files():
        dst = tvm_home / path.relative_to(compat)
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dst)
    if threads:
        shutil.copy2(threads_source(), tvm_home / "web" / "emcc" / THREADS_SOURCE)
    try:
        apply_patches(tvm_home, threads=threads)
    except SourcePatchError as err:
        raise RuntimeBuildError(str(err)) from err


class _Processes:
    """The compiler processes of one build, so a failure can stop the others."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen] = set()
        self.cancelled = False

    def start(self, cmd: list[str], **kwargs) -> subprocess.Popen | None:
        with self._lock:
            if self.cancelled:
                return None
            # Own process group: emcc is a driver script, and a failure must stop
            # the clang it runs as well.
            proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)
            self._procs.add(proc)
            return proc

    def done(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.discard(proc)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            for proc in self._procs:
                if proc.poll() is None:
                    try:
                        os.killpg(proc.pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass


def _run_logged(cmd: list[str], log_path: Path, cwd: Path, what: str, procs: _Processes | None = None) -> float:
    """Run ``cmd`` with its output in ``log_path``; raise RuntimeBuildError on failure."""
    procs = procs or _Processes()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        log.write(f"$ cd {shlex.quote(str(cwd))}\n$ {shlex.join(cmd)}\n\n".encode())
        log.flush()
        try:
            proc = procs.start(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        except OSError as err:
            log.write(f"\nfailed to start: {err}\n".encode())
            raise RuntimeBuildError(f"{what}: could not run the command ({err})", cmd=cmd, log_path=log_path) from err
        if proc is None:
            log.write(b"\n[not started: another step of the build failed]\n")
            raise RuntimeBuildError(f"{what}: not started, another step failed", cmd=cmd, log_path=log_path)
        try:
            returncode = proc.wait()
        finally:
            procs.done(proc)
        elapsed = time.perf_counter() - start
        log.write(f"\n[exit status {returncode} after {elapsed:.1f} s]\n".encode())
    if returncode != 0:
        if procs.cancelled:
            raise RuntimeBuildError(
                f"{what}: stopped because another step failed", cmd=cmd, log_path=log_path, returncode=returncode
            )
        tail = _tail(log_path)
        raise RuntimeBuildError(
            f"{what} failed{(':' + chr(10) + tail) if tail else ''}", cmd=cmd, log_path=log_path, returncode=returncode
        )
    return elapsed


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").rstrip().splitlines()
    except OSError:
        return ""
    # Drop the header ("$ cd", "$ cmd") and the "[exit status ...]" line we wrote ourselves.
    body = [ln for ln in text if not ln.startswith(("$ ", "[exit status"))]
    while body and not body[0].strip():
        body.pop(0)
    return "\n".join("    " + ln for ln in body[-lines:])


def _emcc_version(emcc: str) -> str:
    try:
        out = subprocess.run([emcc, "--version"], capture_output=True, text=True, timeout=120)
        return out.stdout.splitlines()[0].strip() if out.stdout else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def _build_lock(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _publish(tmp: Path, final: Path) -> None:
    """Atomically move the finished build into place (replacing an old one)."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.rename(final, old)
    os.rename(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_runtime(
    force: bool = False,
    jobs: int = 2,
    progress: ProgressFn | None = None,
    threads: bool = False,
) -> Path:
    """Return the directory of the compiled wasm runtime, building it if needed.

    A complete cached build (its ``done.json`` marker present) is returned at
    once unless ``force``. Otherwise the runtime is compiled in a temporary
    directory next to the final one, with up to ``jobs`` parallel ``emcc``
    processes, and renamed into place only when complete. ``progress(step,
    done, total)`` is called as each step finishes. Concurrent builders of the
    same key are serialised with a file lock.

    ``threads``: the threaded variant (see the module docstring).

    Raises RuntimeBuildError (message: failing command and log file) on failure.
    """
    final = runtime_dir(threads)
    if not force and _is_complete(final):
        return final

    key = final.name
    parent = final.parent
    parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(parent / f".{key}.lock"):
        if not force and _is_complete(final):  # built by someone else meanwhile
            return final
        return _build_locked(final, max(1, int(jobs)), progress, threads)


def _build_locked(final: Path, jobs: int, progress: ProgressFn | None, threads: bool = False) -> Path:
    key = final.name
    parent = final.parent
    # Logs live outside the temporary directory so that they survive a failure.
    log_dir = parent / "logs" / key
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True, exist_ok=True)

    sources = RUNTIME_SOURCES + ((THREADS_SOURCE,) if threads else ())
    total = 2 + len(sources)
    done_steps = 0

    def step_done(name: str) -> None:
        nonlocal done_steps
        done_steps += 1
        if progress is not None:
            progress(name, done_steps, total)

    emcc = emcc_path()
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=parent))
    try:
        # 1. private TVM_HOME
        t0 = time.perf_counter()
        tvm_home = tmp / "tvm_home"
        try:
            _assemble_tvm_home(tvm_home, threads)
        except OSError as err:
            raise RuntimeBuildError(f"assembling the runtime sources failed: {err}") from err
        timings["prepare"] = round(time.perf_counter() - t0, 3)
        step_done("prepare sources")

        # 2. compile the translation units in parallel
        obj_dir = tmp / _OBJ_DIR
        obj_dir.mkdir()
        cflags = [*INCLUDE_FLAGS, *COMPILE_FLAGS]

        procs = _Processes()

        def compile_one(src_name: str) -> tuple[str, float]:
            obj = obj_dir / (Path(src_name).stem + ".o")
            extra = list(THREADS_FLAGS) if src_name == THREADS_SOURCE else []
            cmd = [emcc, *cflags, *extra, "-c", "-o", str(obj), f"web/emcc/{src_name}"]
            log = log_dir / f"compile-{Path(src_name).stem}.log"
            return src_name, _run_logged(cmd, log, cwd=tvm_home, what=f"compiling {src_name}", procs=procs)

        # RUNTIME_SOURCES starts with wasm_runtime.cc (~95% of the time), so with
        # two jobs the small units compile alongside it.
        with ThreadPoolExecutor(max_workers=min(jobs, len(sources))) as pool:
            pending = {pool.submit(compile_one, s) for s in sources}
            try:
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        name, secs = fut.result()  # re-raises a failed compile
                        timings[f"compile {name}"] = round(secs, 3)
                        step_done(f"compile {name}")
            except BaseException:
                # A failure (or Ctrl-C: the compilers run in their own process
                # groups and do not see it) stops running compiles and skips the
                # queued ones, so the pool shuts down at once.
                procs.cancel()
                raise

        # 3. extra files, marker, publish
        for extra in _EXTRA_FILES:
            shutil.copy2(tvm_home / "web" / "emcc" / extra, tmp / extra)
        shutil.rmtree(tvm_home)  # sources are no longer needed; keep the cache small
        files = [p.relative_to(tmp).as_posix() for p in runtime_objects(tmp)]
        files += list(_EXTRA_FILES)
        timings["total"] = round(time.perf_counter() - t_start, 3)
        info = {
            "layout": LAYOUT_VERSION,
            "key": key,
            "build_seconds": timings["total"],
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "versions": {
                "apache-tvm": _dist_version("apache-tvm"),
                "apache-tvm-ffi": _dist_version("apache-tvm-ffi"),
                "emcc": _emcc_version(emcc),
                "emcc_path": str(Path(emcc).resolve()),
                "python": platform.python_version(),
            },
            "compile_flags": [*INCLUDE_FLAGS, *COMPILE_FLAGS],
            "compile_cwd": "<private TVM_HOME: wheel src/include/web + tvm-ffi + compat>",
            "sources": list(sources),
            "threads": threads,
            "files": files,
            "sizes": {f: (tmp / f).stat().st_size for f in files},
            "timings_s": timings,
            "jobs": jobs,
            "logs": str(log_dir),
        }
        # The marker is written last; the rename below publishes everything at once.
        (tmp / _MARKER).write_text(json.dumps(info, indent=2) + "\n")
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp made it 0700
        _publish(tmp, final)
        step_done("publish")
        return final
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m hearth.runtime.build",
        description="Build (or find in the cache) Hearth's precompiled TVM wasm runtime.",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--jobs", "-j", type=int, default=2, help="parallel compiles (default 2)")
    parser.add_argument("--threads", action="store_true", help="the threaded variant (wasm-cpu-mt)")
    args = parser.parse_args(argv)

    def report(step: str, done: int, total: int) -> None:
        print(f"[{done}/{total}] {step}", file=sys.stderr, flush=True)

    start = time.perf_counter()
    try:
        path = build_runtime(force=args.force, jobs=args.jobs, progress=report, threads=args.threads)
    except RuntimeBuildError as err:
        print(f"runtime build failed: {err}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    print(path)
    print(f"{elapsed:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
