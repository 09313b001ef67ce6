"""Turn the H200 run's results.jsonl (bench/gpu/device_run.sh) into bench/results/h200.json, a
table on stdout and docs/images/bench-llm-h200.png.

    .venv/bin/python bench/gpu/collect.py <results.jsonl> [<env.txt>] [--command "..."] [--name h100-fusion]

--name (default h200) names the outputs, bench/results/<name>.json and docs/images/bench-llm-<name>.png, so
a later run (another GPU, the decode-fusion A/B) does not overwrite the recorded H200 one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import IMAGES, REPO, RESULTS, git_rev, print_table, summarize  # noqa: E402

ENGINES = ["webgpu-node-vulkan", "native-cuda", "torch-eager-cuda"]
# device_run.sh DISPATCH_AB=1: the same WebGPU run with tvmjs's own launch encoding (the "before").
BEFORE = "webgpu-node-vulkan+dispatch-tvmjs"  # earlier runs named it "+tvmjs-dispatch"
METRICS = ["prefill_128_tok_s", "prefill_512_tok_s", "decode_tok_s", "ttft_ms", "load_cold_ms", "load_warm_ms"]


def collect(lines: list[str]) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for line in lines:
        if not line.strip():
            continue
        doc = json.loads(line)
        row = rows.setdefault(doc["package"], {"package": doc["package"], "engines": {}})
        res = doc["result"]
        if res is None or "error" in res:
            row["engines"][doc["engine"]] = {"error": (res or {}).get("error", "no output (see errors.txt)")}
            continue
        entry = {k: summarize(v) for k, v in res["samples"].items()}
        entry["skipped"] = res.get("skipped", {})
        if doc["engine"].startswith("webgpu"):
            entry["adapter"] = (res.get("adapter") or {}).get("description")
            entry["dawn_flags"] = res.get("dawnFlags")
            # which WebGPU library ran (webgpu-fused on a GPU unless HEARTH_WEBGPU_BUILD said otherwise)
            entry["loaded_target"] = res.get("loadedTarget")
            entry["breakdown"] = {
                k: round(v, 3) if isinstance(v, float) else v for k, v in (res.get("breakdown") or {}).items()
            }
            entry["pipelines_ms"] = {k: round(v["pipelinesMs"]) for k, v in res["load"].items()}
        row["engines"][doc["engine"]] = entry
    for row in rows.values():
        w, n, t = (row["engines"].get(e, {}) for e in ENGINES)
        b = row["engines"].get(BEFORE, {})
        row["ratios"] = {
            f"{prefix}{m}/{ref}": round(x[m]["median"] / r[m]["median"], 3)
            for prefix, x in (("", w), ("tvmjs-dispatch:", b))
            for ref, r in (("native-cuda", n), ("torch-eager-cuda", t))
            for m in ("prefill_128_tok_s", "prefill_512_tok_s", "decode_tok_s")
            if m in x and m in r
        }
    return list(rows.values())


def plot(rows: list[dict[str, Any]], name: str = "h200") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, metric in zip(axes, ["prefill_128_tok_s", "prefill_512_tok_s", "decode_tok_s"]):
        x = np.arange(len(rows))
        engines = [BEFORE, *ENGINES] if any(BEFORE in r["engines"] for r in rows) else ENGINES
        width = 0.8 / len(engines)
        for i, eng in enumerate(engines):
            vals = [r["engines"].get(eng, {}).get(metric, {}).get("median", 0) for r in rows]
            label = "webgpu, tvmjs launch path (before)" if eng == BEFORE else eng
            ax.bar(x + (i - (len(engines) - 1) / 2) * width, vals, width, label=label)
        ax.set_xticks(
            x,
            [
                r["package"]
                .replace("qwen2.5-0.5b-shaped", "0.5B")
                .replace("tiny-llama-trained", "tiny")
                .replace("-q4", "\nq4")
                for r in rows
            ],
            fontsize=8,
        )
        ax.set_yscale("log")
        ax.set_title(metric.replace("_", " "))
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"Hearth LLM on one NVIDIA {name.split('-')[0].upper()}: WebGPU (Node + Dawn, Vulkan) "
        "vs TVM-native CUDA vs PyTorch eager (median of 5)"
    )
    fig.tight_layout()
    IMAGES.mkdir(parents=True, exist_ok=True)
    fig.savefig(IMAGES / f"bench-llm-{name}.png", dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("results", type=Path, nargs="+")
    ap.add_argument("--env", type=Path)
    ap.add_argument("--command", default="bash bench/gpu/device_run.sh 5 128 '*' (device tool, nvidia-h200)")
    ap.add_argument("--name", default="h200", help="output names: bench/results/<name>.json, bench-llm-<name>.png")
    args = ap.parse_args()
    lines = [ln for f in args.results for ln in f.read_text().splitlines()]
    rows = collect(lines)
    for row in rows:
        print_table(
            f"{args.name} {row['package']} (median [min-max])",
            ["engine", *METRICS],
            [
                [
                    e,
                    *(
                        [row["engines"][e].get(m) for m in METRICS]
                        if "error" not in row["engines"][e]
                        else [row["engines"][e]["error"][:60]]
                    ),
                ]
                for e in [*ENGINES, *(x for x in row["engines"] if x not in ENGINES)]
                if e in row["engines"]
            ],
        )
        for e, v in row["engines"].items():
            if v.get("breakdown"):
                print(f"  {e} decode breakdown: {v['breakdown']}")
        print("  ratios: " + ", ".join(f"{k} {v}" for k, v in row["ratios"].items()))
    doc = {
        "suite": args.name,
        "command": args.command,
        "git_rev": git_rev(),
        "machine": args.env.read_text().strip().splitlines() if args.env else None,
        "results": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    plot(rows, args.name)
    print(f"wrote {(RESULTS / f'{args.name}.json').relative_to(REPO)}, docs/images/bench-llm-{args.name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
