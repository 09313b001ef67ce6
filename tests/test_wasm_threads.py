"""The threaded wasm-cpu build (target wasm-cpu-mt): a tiny parallel kernel, linked once with the
single-thread runtime and once with the threaded one, run in Node through the SDK (worker_threads on a
shared WebAssembly.Memory). The threaded run must give the serial run's values bit for bit (each output
is reduced by one task, in the same order) and must really have run its loops on the workers. And the
threaded build's decode GEMV: parallel, same values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tvm
from tvm import relax, s_tir, te

from hearth.build.cpu_schedule import WeightMatmul
from hearth.build.wasm_link import link_wasm
from hearth.cache import atomic_dir, cache_root, content_key, hash_files
from hearth.runtime.build import runtime_key
from hearth.targets import get_target

REPO = Path(__file__).resolve().parents[1]
ROWS, COLS = 256, 2048


def _kernel() -> tvm.IRModule:
    """y[i] = sum_j x[i, j]^2, the row loop parallel; each row is first copied into a 2048-float buffer
    inside the parallel body, which TVM allocates with TVMBackendAllocWorkspace (over its 1 KiB stack
    limit): the workspace pool is hit from every worker, as the prefill tiles do."""
    x = te.placeholder((ROWS, COLS), "float32", name="x")
    j = te.reduce_axis((0, COLS), name="j")
    y = te.compute((ROWS,), lambda i: te.sum(x[i, j] * x[i, j], axis=j), name="y")
    sch = s_tir.Schedule(te.create_prim_func([x, y]).with_attr("global_symbol", "rowsumsq"))
    block = sch.get_sblock("y")
    i, _ = sch.get_loops(block)
    sch.parallel(i)
    row = sch.cache_read(block, 0, "global")
    sch.compute_at(row, i)
    bb = relax.BlockBuilder()
    gv = bb.add_func(sch.mod["main"], "rowsumsq")
    xv = relax.Var("x", relax.TensorType((ROWS, COLS), "float32"))
    with bb.function("main", [xv]):
        out = bb.emit(relax.call_tir(gv, (xv,), out_ty=relax.TensorType((ROWS,), "float32")))
        bb.emit_func_output(out)
    return bb.get()


def _wasm(target: str) -> Path:
    spec = get_target(target)
    code = [Path(__file__), REPO / "compile/hearth/build/wasm_link.py", REPO / "compile/hearth/targets.py"]
    key = content_key([tvm.__version__, target, runtime_key(spec.threads), hash_files(code, root=REPO)])
    out = cache_root() / "test-wasm-threads" / key / f"rowsumsq-{target}.wasm"
    if out.is_file():
        return out
    with atomic_dir(out.parent) as tmp:
        lib = relax.build(_kernel(), target=spec.target(), system_lib=True)
        link_wasm(lib, tmp / out.name, threads=spec.threads)
    return out


def _run(wasm: Path, threads: int, repeats: int = 20) -> dict:
    script = REPO / "tests" / "support" / "wasm_threads_check.mjs"
    proc = subprocess.run(
        ["node", "--import", "tsx", str(script), str(wasm), str(threads), str(ROWS), str(COLS), str(repeats)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO / "sdk",
    )
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {"error": f"no output (exit {proc.returncode})"}
    result["stderr"] = proc.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def builds() -> dict[str, Path]:
    return {t: _wasm(t) for t in ("wasm-cpu", "wasm-cpu-mt")}


def test_threaded_kernel_matches_serial(builds: dict[str, Path]) -> None:
    serial = _run(builds["wasm-cpu"], 0)
    assert "error" not in serial, serial
    i = np.arange(ROWS * COLS)
    x = (((i * 7919) % 1000) / 1000 - 0.5).astype(np.float32).reshape(ROWS, COLS)
    np.testing.assert_allclose(serial["y"], (x.astype(np.float64) ** 2).sum(1), rtol=1e-5)
    for threads in (0, 1, 3):
        got = _run(builds["wasm-cpu-mt"], threads)
        assert "error" not in got, got
        assert got["y"] == serial["y"], f"threads={threads}"
        assert got["workers"] == threads
        # warm-up + 20 timed calls, one parallel loop each; tasks are claimed, so the launching thread
        # may run some launches alone, but an awake worker takes tasks of most of them
        assert got["launches"] == (21 if threads else 0), got
        assert (got["workerTasks"] > 0) == (threads > 0), got
        print(f"threads={threads}: {got['ms']:.3f} ms per call (serial build {serial['ms']:.3f} ms)")


def test_threads_need_the_threaded_build(builds: dict[str, Path]) -> None:
    got = _run(builds["wasm-cpu"], 2, repeats=1)
    assert "wasm-cpu-mt" in got.get("error", ""), got


@pytest.mark.parametrize(("bits", "symmetric"), [(4, False), (8, False), (None, False), (4, True)])
def test_threaded_decode_gemv_is_parallel_and_equal(bits: int | None, symmetric: bool) -> None:
    """On wasm-cpu-mt the decode GEMV's output blocks run as parallel tasks (the asym kernel of
    build/wasm_gemv.py and the scheduled GEMV alike); each output is still reduced by one task in the
    same order, so the values equal the serial schedule's bit for bit (the same TIR run natively, where
    the parallel loop runs on TVM's thread pool)."""
    from test_cpu_schedule_wasm_gemv import _decode_matmul, _inputs, _run_natively

    func, _ = _decode_matmul(bits, False, symmetric)
    scheduled = {}
    for target in ("wasm-cpu", "wasm-cpu-mt"):
        sch = WeightMatmul().apply(func, get_target(target).target(), False)
        assert sch is not None
        scheduled[target] = sch.mod["main"]
    assert "T.parallel" not in scheduled["wasm-cpu"].script()
    assert "T.parallel" in scheduled["wasm-cpu-mt"].script()
    arrays, _ = _inputs(bits, np.random.default_rng(0), symmetric)
    serial = _run_natively(scheduled["wasm-cpu"], arrays)
    np.testing.assert_array_equal(_run_natively(scheduled["wasm-cpu-mt"], arrays), serial)


GREEDY_PROMPT = [341, 220, 557, 332, 74, 283, 349, 86, 77, 284, 78, 87, 220, 73, 84, 330]


def _greedy(pkg: Path, target: str, threads: int, n: int = 12, env: dict[str, str] | None = None) -> dict:
    script = REPO / "tests" / "support" / "wasm_cpu_mt_greedy.mjs"
    ids = ",".join(map(str, GREEDY_PROMPT))
    proc = subprocess.run(
        ["node", "--import", "tsx", str(script), str(pkg), target, str(threads), ids, str(n)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO / "sdk",
        env={**os.environ, **(env or {})},
    )
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {"error": f"no output (exit {proc.returncode})"}
    assert proc.returncode == 0 and "error" not in result, f"{result}\n{proc.stderr[-3000:]}"
    return result


def test_wasm_cpu_mt_greedy_matches_single_thread() -> None:
    """A whole decoder (the tiny llama GGUF, q4f32_gguf: the asym GEMV kernels, prefill tiles, attention) built
    for wasm-cpu and wasm-cpu-mt in one package: the threaded build on 1 and 2 workers gives the single-thread
    build's greedy tokens, with its parallel loops on the workers."""
    sys.path.insert(0, str(REPO / "scripts"))
    import make_test_gguf
    from hearth.build.package import compile_package

    gguf = make_test_gguf.ensure_test_gguf(linear_type="Q4_1")
    out = cache_root() / "test-packages" / "wasm-threads"
    pkg = compile_package(str(gguf), "q4f32_gguf", ["wasm-cpu", "wasm-cpu-mt"], out, model_id="tiny-llama-gguf")
    single = _greedy(pkg.package_dir, "wasm-cpu", 0)
    for threads in (1, 2):
        got = _greedy(pkg.package_dir, "wasm-cpu-mt", threads)
        assert got["tokens"] == single["tokens"], f"threads={threads}"
        assert got["loadedTarget"] == "wasm-cpu-mt" and got["launches"] > 0, got
    # No SharedArrayBuffer (a page without cross-origin isolation): the package's wasm-cpu build is loaded.
    fallback = _greedy(pkg.package_dir, "wasm-cpu-mt", 1, env={"HEARTH_NO_SAB": "1"})
    assert fallback["loadedTarget"] == "wasm-cpu" and fallback["tokens"] == single["tokens"], fallback
    # No target and no WebGPU: the loader falls back to the CPU on its own and takes the threaded build
    # where threads can run, the single-thread one where they cannot; a "wasm-cpu" asked for by name stays.
    auto = _greedy(pkg.package_dir, "auto", 1)
    assert auto["loadedTarget"] == "wasm-cpu-mt" and auto["tokens"] == single["tokens"], auto
    auto_no_sab = _greedy(pkg.package_dir, "auto", 1, env={"HEARTH_NO_SAB": "1"})
    assert auto_no_sab["loadedTarget"] == "wasm-cpu", auto_no_sab
    assert single["loadedTarget"] == "wasm-cpu", single
