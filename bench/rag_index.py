"""`make bench` suite "rag": the RAG index at scale in headless Chromium (bench/rag/run.mjs).

Full mode: 100k chunks of 384-d vectors (the issue's size); quick mode: 20k. Synthetic text and random
unit vectors: the index's speed and size do not depend on what the vectors mean.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def run(quick: bool) -> dict:
    chunks = 20_000 if quick else 100_000
    # Quick runs keep their own file, so they never overwrite the recorded 100k figures.
    result = BENCH / "results" / ("rag-quick.json" if quick else "rag.json")
    cmd = ["node", str(BENCH / "rag" / "run.mjs"), "--chunks", str(chunks), "--out", str(result)]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=BENCH.parent)
    return json.loads(result.read_text())
