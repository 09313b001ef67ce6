"""Link a TVM-compiled module into a standalone WebGPU wasm for tvmjs.

``link_wasm(lib, out)`` exports an executable built by ``tvm.relax.build`` /
``tvm.compile`` for the webgpu target (``hearth.targets``) and links it with emscripten against
the precompiled runtime objects from :func:`hearth.runtime.build.build_runtime`.

Why not ``tvm.support.emcc.create_tvmjs_wasm`` itself: it always looks up the
runtime as LLVM bitcode (``wasm_runtime.bc``, ``tvmjs_support.bc``,
``webgpu_runtime.bc``) under ``$TVM_HOME/web/dist``, which (a) costs a full LTO
of ~16 MB of bitcode on every link (160-225 s) and (b) cannot work here at all,
because TVM 0.27 writes LLVM-22 bitcode that emscripten 3.1.6's wasm-ld (LLVM 14)
cannot read. :func:`make_fcompile` is therefore a drop-in replacement with the
same calling convention and the same link flags as ``create_tvmjs_wasm`` (plus
``--pre-js preload.js`` from the wheel's ``web/Makefile``), taking wasm object
files for both the model (``object_format = "o"``) and the runtime.

A threaded runtime (``build_runtime(threads=True)``, the ``wasm-cpu-mt`` target) links into a module
that imports its memory as a shared ``WebAssembly.Memory`` (``env.memory``, the size limits in its
import), so that Workers can instantiate the same module on it (sdk/src/runtime/wasm-threads.ts).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from hearth.cache import cache_root
from hearth.runtime.build import (
    build_runtime,
    emcc_path,
    is_threaded,
    preload_js,
    runtime_objects,
)

from ..errors import HearthError

__all__ = [
    "DEFAULT_LINK_OPT",
    "WasmLinkError",
    "link_flags",
    "link_wasm",
    "make_fcompile",
]

logger = logging.getLogger(__name__)

#: Post-link optimisation level. The objects (runtime and model) are already
#: optimised by LLVM, so at link time the level only selects binaryen's
#: (wasm-opt's) whole-module passes, which dominate the link time; wasm-ld itself
#: takes ~0.2 s. Measured on the proof MLP (2 cores, binaryen 108):
#:   -O0       1.7 s   6.3 MB  (no wasm-opt: name section kept, no cross-TU cleanup)
#:   -O1       7.3 s   3.76 MB (default)
#:   -O2      45 s     3.67 MB
#:   -O3      87 s     3.56 MB (create_tvmjs_wasm's level)
#:   -Os     113 s     3.53 MB
#: -O1 keeps 97% of -O3's size win at 1/12 of the time; the host code is the VM
#: interpreter and glue, not the hot path (the kernels run on the GPU).
DEFAULT_LINK_OPT = "-O1"

# emcc runs no binaryen optimiser below -O2, so for -O1 the same passes emcc
# uses at -O2 are requested explicitly with binaryen's -O1 pipeline (emcc then
# also strips the name/producers sections as it does at -O2).
_BINARYEN_O1_PASSES = "--post-emscripten,-O1,--low-memory-unused,--zero-filled-memory"
_OPT_LEVELS = ("-O0", "-O1", "-O2", "-O3", "-Os", "-Oz")

#: wasm-ld flags of a threaded link. Emscripten 3.1.6 refuses its own pthreads with STANDALONE_WASM
#: (tvmjs instantiates the module itself, without emscripten's JS), so the shared memory is asked of
#: wasm-ld directly: passive data segments initialised once (by the first instance) and an imported
#: memory that every Worker's instance shares. --no-check-features: the wheel's runtime units and
#: emscripten's single-thread libc are compiled without atomics; only kernel bodies, the pool and the
#: locked workspace allocator run on workers (runtime/threads/hearth_threads.cc).
THREAD_LINK_FLAGS: tuple[str, ...] = (
    "-Wl,--shared-memory",
    "-Wl,--import-memory",
    "-Wl,--no-check-features",
)


class WasmLinkError(HearthError, RuntimeError):
    """The emscripten link failed; ``cmd`` and ``log_path`` say what and where."""

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


def link_flags(
    runtime: Path, *, asyncify: bool = False, opt_level: str = DEFAULT_LINK_OPT, threads: bool = False
) -> list[str]:
    """emcc link flags (everything except inputs and ``-o``).

    The union of ``create_tvmjs_wasm``'s flags and the web Makefile's
    EMCC_LDFLAGS, with the optimisation level of :data:`DEFAULT_LINK_OPT`
    instead of -O3. ``-s ASYNCIFY=1`` only when asked: it doubles the wasm
    (3.8 -> 7.4 MB) and the binaryen asyncify transform makes the link ~90 s;
    tvmjs needs it only to await async JS functions from inside wasm calls.
    """
    if opt_level not in _OPT_LEVELS:
        raise ValueError(f"opt_level must be one of {_OPT_LEVELS}, not {opt_level!r}")
    flags = [opt_level]
    if opt_level == "-O1":
        flags += ["-s", f"BINARYEN_EXTRA_PASSES={_BINARYEN_O1_PASSES}"]
    flags += [
        "-std=c++17",
        "--no-entry",
        "-s",
        "WASM_BIGINT=1",
        "-s",
        "ERROR_ON_UNDEFINED_SYMBOLS=0",
        "-s",
        "STANDALONE_WASM=1",
        "-s",
        "ALLOW_MEMORY_GROWTH=1",
        "-s",
        "TOTAL_MEMORY=160MB",
        "--pre-js",
        str(preload_js(runtime)),
    ]
    if asyncify:
        flags += ["-s", "ASYNCIFY=1"]
    if threads:
        flags += list(THREAD_LINK_FLAGS)
    return flags


def _log_path_for(out_path: Path) -> Path:
    digest = hashlib.sha256(str(out_path.resolve()).encode()).hexdigest()[:8]
    return cache_root() / "logs" / "link" / f"{out_path.stem}-{digest}.log"


def make_fcompile(
    runtime: Path,
    *,
    asyncify: bool = False,
    opt_level: str = DEFAULT_LINK_OPT,
    log_path: Path | None = None,
) -> Callable[..., None]:
    """An ``fcompile`` for ``export_library`` that links against the runtime objects.

    Same calling convention as ``tvm.support.emcc.create_tvmjs_wasm``:
    ``fcompile(output, objects, options=None, cc=None, libs=None)``; ``libs``
    are extra link inputs, ``options`` extra emcc arguments (appended last).
    """
    runtime = Path(runtime)
    rt_objs = runtime_objects(runtime)
    missing = [p for p in rt_objs + [preload_js(runtime)] if not p.is_file()]
    if missing:
        raise WasmLinkError(f"runtime dir {runtime} is incomplete; missing {missing}")

    def fcompile(
        output: str,
        objects: Sequence[str] | str,
        options: Sequence[str] | None = None,
        cc: str | None = None,
        libs: Sequence[str] | None = None,
    ) -> None:
        objects = [objects] if isinstance(objects, str) else list(objects)
        extra_libs = list(libs or [])
        for lib in extra_libs:
            if not Path(lib).is_file():
                raise WasmLinkError(f"link input from libs does not exist: {lib}")
        if isinstance(options, str):
            options = [options]
        cmd = [
            cc or emcc_path(),
            *link_flags(runtime, asyncify=asyncify, opt_level=opt_level, threads=is_threaded(runtime)),
            "-o",
            str(output),
            # runtime and libraries before the model objects, as create_tvmjs_wasm does
            *map(str, rt_objs),
            *extra_libs,
            *objects,
            *(options or []),
        ]
        log = log_path or _log_path_for(Path(output))
        log.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with open(log, "wb") as fh:
            fh.write(f"$ {shlex.join(cmd)}\n\n".encode())
            fh.flush()
            try:
                proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False)
            except OSError as err:
                raise WasmLinkError(f"could not run emcc ({err})", cmd=cmd, log_path=log) from err
            elapsed = time.perf_counter() - start
            fh.write(f"\n[exit status {proc.returncode} after {elapsed:.1f} s]\n".encode())
        if proc.returncode != 0:
            lines = [
                ln
                for ln in log.read_text(errors="replace").splitlines()
                if ln.strip() and not ln.startswith(("$ ", "[exit status"))
            ]
            tail = "\n".join("    " + ln for ln in lines[-15:])
            raise WasmLinkError(f"wasm link failed:\n{tail}", cmd=cmd, log_path=log, returncode=proc.returncode)
        fcompile.last_link_seconds = elapsed  # type: ignore[attr-defined]
        fcompile.last_log_path = log  # type: ignore[attr-defined]

    fcompile.object_format = "o"  # type: ignore[attr-defined]
    fcompile.need_system_lib = True  # type: ignore[attr-defined]
    fcompile.last_link_seconds = None  # type: ignore[attr-defined]
    fcompile.last_log_path = None  # type: ignore[attr-defined]
    return fcompile


def link_wasm(
    lib,
    out_path: Path,
    runtime: Path | None = None,
    asyncify: bool = False,
    *,
    opt_level: str = DEFAULT_LINK_OPT,
    threads: bool = False,
) -> Path:
    """Export ``lib`` (from ``tvm.relax.build`` / ``tvm.compile`` for
    the webgpu target (``hearth.targets``)) as a standalone wasm at ``out_path``.

    ``runtime`` is a built runtime dir (default: ``build_runtime()``, which builds it on first use;
    ``threads``: the threaded one, linked on a shared memory). The wasm is written under a temporary
    name in the same directory and renamed into place, so ``out_path`` is never partial.
    Raises WasmLinkError with the emcc command and the log path on failure.
    """
    out_path = Path(out_path)
    if runtime is None:
        runtime = build_runtime(threads=threads)
    elif is_threaded(Path(runtime)) != threads:
        raise WasmLinkError(f"runtime {runtime} is {'not ' if threads else ''}the threaded one, but threads={threads}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fcompile = make_fcompile(Path(runtime), asyncify=asyncify, opt_level=opt_level, log_path=_log_path_for(out_path))
    # emcc picks the output kind from the suffix, so the temporary name ends in .wasm.
    tmp = out_path.with_name(f".{out_path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp.wasm")
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="hearth-export-") as workspace:
            lib.export_library(str(tmp), fcompile=fcompile, workspace_dir=workspace)
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise WasmLinkError("emcc reported success but wrote no wasm", log_path=fcompile.last_log_path)  # type: ignore[attr-defined]
        os.replace(tmp, out_path)
    finally:
        if tmp.exists():
            tmp.unlink()
    logger.info(
        "linked %s (%.1f MB) in %.1f s (emcc %.1f s)",
        out_path,
        out_path.stat().st_size / 1e6,
        time.perf_counter() - start,
        fcompile.last_link_seconds or 0.0,
    )  # type: ignore[attr-defined]
    return out_path
