"""Turn bench/gpu/embed_run.sh's output into bench/results/<name>-embeddings.json, a table on stdout and
docs/images/bench-embed-<name>.png (issue 17 item 4: all-MiniLM-L6-v2 on one GPU, sentences/s).

    .venv/bin/python bench/gpu/collect_embed.py <files_at> [--name h100]

<files_at> holds embed.jsonl, embed-vectors.jsonl and env.txt. Each WebGPU row drops embed.mjs's first
`warmup` repeats (shader compilation of the bucket); the rest are the timed runs. The cosine column compares
each engine's vectors for four sentences with torch float32 on the same (random) weights: only the q0f32
package holds those weights, the quantized package's random bits are other values, so it gets no cosine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import IMAGES, REPO, RESULTS, git_rev, print_table, summarize  # noqa: E402

BATCHES = ["1", "8", "32"]


def rows_from(lines: list[str]) -> dict[str, dict[str, Any]]:
    """'<engine> <package>' -> {batch: summary | {"error"}}."""
    out: dict[str, dict[str, Any]] = {}
    for line in lines:
        if not line.strip():
            continue
        doc = json.loads(line)
        res = doc.get("result")
        if doc["engine"].startswith("torch"):
            key = f"{doc['engine']} ({(res or {}).get('engine', '?')})"
            out[key] = (
                {"error": "no output (see embed-errors.txt)"}
                if not res
                else {b: summarize(v) for b, v in res["batches"].items()}
            )
            continue
        key = f"{doc['engine']} {doc['package']}"
        row = out.setdefault(key, {})
        if res is None or "error" in res:
            row[str(doc["batch"])] = {"error": (res or {}).get("error", "no output (see embed-errors.txt)")}
            continue
        timed = res["runs"][doc["warmup"] :]
        row[str(doc["batch"])] = summarize([r["textsPerSec"] for r in timed])
        row["adapter"] = (res.get("adapter") or {}).get("description")
    return out


def cosines(vec_lines: list[str]) -> dict[str, list[float]]:
    docs = [json.loads(ln) for ln in vec_lines if ln.strip()]
    ref = next((d["vectors"] for d in docs if d["engine"] == "torch-cuda-float32" and d.get("vectors")), None)
    if ref is None:
        return {}
    r = np.asarray(ref, dtype=np.float64)
    out: dict[str, list[float]] = {}
    for d in docs:
        if d["engine"].startswith("torch"):
            v = d.get("vectors")
            name = d["engine"]
        elif "q0f32" in d["package"]:
            v = [ln["embedding"] for ln in d["lines"] if "embedding" in ln]
            name = f"{d['engine']} {d['package']}"
        else:
            continue
        if not v or len(v) != len(r):
            out[name] = []
            continue
        x = np.asarray(v, dtype=np.float64)
        out[name] = [
            round(float(c), 6) for c in (x * r).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(r, axis=1))
        ]
    return out


def plot(rows: dict[str, dict[str, Any]], name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    x = np.arange(len(BATCHES))
    width = 0.8 / max(1, len(rows))
    for i, (eng, r) in enumerate(rows.items()):
        vals = [r.get(b, {}).get("median", 0) if "error" not in r.get(b, {}) else 0 for b in BATCHES]
        ax.bar(x + (i - (len(rows) - 1) / 2) * width, vals, width, label=eng.split(" (")[0])
    ax.set_xticks(x, [f"batch {b} x 128 tokens" for b in BATCHES])
    ax.set_yscale("log")
    ax.set_ylabel("sentences/s (median of 5)")
    ax.set_title(f"all-MiniLM-L6-v2 on one NVIDIA {name.upper()}: Hearth WebGPU (Node + Dawn) vs PyTorch CUDA")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    IMAGES.mkdir(parents=True, exist_ok=True)
    fig.savefig(IMAGES / f"bench-embed-{name}.png", dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files_at", type=Path)
    ap.add_argument("--name", default="h100")
    ap.add_argument("--command", default="bash bench/gpu/embed_run.sh 5 (device tool, carrying .gpu)")
    args = ap.parse_args()
    rows = rows_from((args.files_at / "embed.jsonl").read_text().splitlines())
    vec_file = args.files_at / "embed-vectors.jsonl"
    cos = cosines(vec_file.read_text().splitlines()) if vec_file.exists() else {}
    print_table(
        f"{args.name}: all-MiniLM-L6-v2 sentences/s, batch x 128 tokens (median [min-max])",
        ["engine", *[f"batch {b}" for b in BATCHES]],
        [[e, *[r.get(b, {}).get("error", r.get(b)) for b in BATCHES]] for e, r in rows.items()],
    )
    for e, c in cos.items():
        print(f"  cosine vs torch float32, 4 sentences: {e}: {c}")
    env = args.files_at / "env.txt"
    doc = {
        "suite": f"{args.name}-embeddings",
        "command": args.command,
        "git_rev": git_rev(),
        "machine": env.read_text().strip().splitlines() if env.exists() else None,
        "results": rows,
        "cosine_vs_torch_float32": cos,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{args.name}-embeddings.json"
    out.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    plot(rows, args.name)
    print(f"wrote {out.relative_to(REPO)}, docs/images/bench-embed-{args.name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
