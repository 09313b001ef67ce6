"""Build suite: how long the toolchain takes.

    runtime_cold_s     TVM wasm runtime built into an empty cache (full mode only: ~75 s idle)
    runtime_cached_s   the same call with the cache warm (a key lookup)
    compile_<m>_s      a model's webgpu executable (relax.build: export, passes, codegen), no link
    link_<m>_s         link_wasm of that executable (precompiled runtime objects, binaryen -O1)
    e2e_<m>_s          compile_package(force=True) into a temp folder, webgpu target: the whole
                       `hearth compile` (export, build, link, weights, manifest)

Models: tiny-llama-trained q4f16_1 (both modes) and the Qwen2.5-0.5B shape (full mode).
Runs: 5 for link and the cached runtime (quick 3); compile and e2e of the 0.5B shape once
(minutes each on 2 cores), of the tiny model 3 times (quick 1).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import REPO, loadavg, print_table, summarize, write_result


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def runtime_build(cache: str | None) -> float:
    env = dict(os.environ)
    if cache is not None:
        env["HEARTH_CACHE"] = cache
    t0 = time.perf_counter()
    subprocess.run(
        [str(REPO / ".venv" / "bin" / "hearth"), "runtime", "build"], env=env, check=True, capture_output=True
    )
    return time.perf_counter() - t0


def model_source(model: str) -> Path:
    sys.path.insert(0, str(REPO / "scripts"))
    if model == "qwen2.5-0.5b-shaped":
        from llm import shaped_source

        return shaped_source()
    from make_test_models import ensure_test_model

    return ensure_test_model(model)


def run(quick: bool = False) -> dict[str, Any]:
    from hearth.build.package import compile_package

    runs = 3 if quick else 5
    results: list[dict[str, Any]] = []

    def record(metric: str, samples: list[float], note: str = "") -> None:
        results.append({"metric": metric, **summarize(samples), "loadavg": loadavg(), "note": note})
        print(f"[build] {metric}: {results[-1]['median']:.2f} s (n={len(samples)}) {note}", flush=True)

    if not quick:
        with tempfile.TemporaryDirectory() as cache:
            record("runtime_cold_s", [runtime_build(cache)], "empty HEARTH_CACHE")
    runtime_build(None)  # make sure the cached one exists before timing the lookup
    record("runtime_cached_s", [runtime_build(None) for _ in range(runs)], "key lookup (process start included)")

    models = [("tiny-llama-trained", "q4f16_1", 1 if quick else 3)]
    if not quick:
        models.append(("qwen2.5-0.5b-shaped", "q4f16_1", 1))
    from hearth.build.wasm_link import link_wasm

    for model, quant, n in models:
        src = model_source(model)
        with tempfile.TemporaryDirectory() as tmp:
            from hearth.build.pipeline import build_target
            from hearth.models import config_from_hf
            from hearth.quant import get_scheme
            from hearth.targets import get_target
            from hearth.weights.source import resolve_source

            spec, scheme = get_target("webgpu"), get_scheme(quant)
            source = resolve_source(str(src))
            compiles, exe = [], None
            for _ in range(n):
                t0 = time.perf_counter()
                arch, config = config_from_hf(
                    source.config, context_window_size=2048 if model.endswith("shaped") else None
                )
                exe = build_target(arch, config, scheme, spec).executable
                compiles.append(time.perf_counter() - t0)
            record(f"compile_{model}_{quant}_s", compiles, "webgpu relax.build, no link")
            out = Path(tmp) / "m.wasm"
            record(
                f"link_{model}_{quant}_s",
                [timed(lambda: link_wasm(exe, out)) for _ in range(runs if n > 1 else 1)],
                f"{out.stat().st_size / 2**20:.1f} MiB wasm",
            )
            e2e = []
            for i in range(n):
                e2e.append(
                    timed(
                        lambda: compile_package(
                            str(src),
                            quant,
                            ["webgpu"],
                            Path(tmp) / f"pkgs{i}",
                            model_id=model,
                            context_window_size=2048 if model.endswith("shaped") else None,
                            force=True,
                        )
                    )
                )
            record(f"e2e_{model}_{quant}_s", e2e, "compile_package, webgpu only, weights included")
    print_table(
        "build (seconds; median [min-max])",
        ["metric", "time", "note"],
        [[r["metric"], {k: r[k] for k in ("median", "min", "max")}, r["note"]] for r in results],
    )
    return write_result("build", results, {"mode": "quick" if quick else "full"})
