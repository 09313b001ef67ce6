"""`make bench` entry point: run the benchmark suites, print their tables, write bench/results/*.json.

    .venv/bin/python bench/run.py [--quick] [--suite llm --suite build ...]

Suites (each a module with `run(quick: bool) -> dict`, imported lazily so one missing or broken
suite does not stop the others):
    llm         bench/llm.py         LLM prefill/decode/TTFT/load: WebGPU (Node+Dawn) vs native llvm vs PyTorch
    build       bench/build.py       runtime build, per-model link, end-to-end compile
    embeddings  bench/embeddings.py  encoder sentences/s: WebGPU vs transformers.js vs sentence-transformers
    rag         bench/rag_index.py   RAG index in Chromium: 100k chunks (quick: 20k), query p50, size, ingest
    qa          bench/qa_rag.py      document-QA accuracy of the full RAG path: fp32 reference vs SmolLM2
                                     packages (native, WebGPU)
The H200 run is separate (bench/gpu/README.md): it needs the device tool, not this machine.
Benchmarks print numbers; they are not pass/fail tests. Exit status 1 only if a suite crashed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

SUITES = {"llm": "llm", "build": "build", "embeddings": "embeddings", "rag": "rag_index", "qa": "qa_rag"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 runs, fewer models, no cold runtime build")
    ap.add_argument("--suite", action="append", choices=list(SUITES), help="run only these (repeatable)")
    args = ap.parse_args()
    failed: list[str] = []
    for name in args.suite or list(SUITES):
        print(f"\n=== suite {name} ({'quick' if args.quick else 'full'}) ===", flush=True)
        if not (BENCH / f"{SUITES[name]}.py").is_file():
            print(f"suite {name}: bench/{SUITES[name]}.py is missing (not built yet); skipped", flush=True)
            failed.append(f"{name} (missing)")
            continue
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(SUITES[name])
            module.run(quick=args.quick)
        except Exception:  # noqa: BLE001 - report and go on with the next suite
            traceback.print_exc()
            failed.append(name)
        print(f"=== suite {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    if failed:
        print(f"\nsuites not completed: {', '.join(failed)}", file=sys.stderr)
    return 1 if any(not f.endswith("(missing)") for f in failed) else 0


if __name__ == "__main__":
    sys.exit(main())
