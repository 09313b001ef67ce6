"""LLM suite: prefill/decode throughput, time to first token and load time of compiled decoder
packages, on the same CPU, in one run:

    Hearth WebGPU   Node + Dawn (lavapipe here)             sdk/scripts/bench-llm.mjs
    Hearth WebGPU   headless Chromium (SwiftShader here),   bench/embed/browser.mjs, runtime
                    in a module Worker                      hearth-llm-chromium (same protocol module)
    Hearth native   the same package's `llvm` build (TVM VM) hearth.native.load_decoder
    PyTorch eager   transformers, float32, same checkpoint   AutoModelForCausalLM

Every engine gets the same token ids and the same protocol (bench-llm.mjs's header): prefill of
128 and 512 tokens, `decode_new` greedy decode steps (batch 1, EOS ignored) after a 16-token
prompt, TTFT = prefill(128) + argmax, load cold (first) and warm (second). Ratios are taken
within the same run. Models: tiny-llama-trained (q4f16_1, q4f32_1), tiny-qwen2-bpe (q4f16_1) and
a Qwen2.5-0.5B-shaped random-weight checkpoint (q4f16_1, q4f32_1; scripts/make_shaped_checkpoint.py).
BENCH_LLM_MODELS=tiny-llama-trained (comma-separated ids) restricts the run to those models.
Chromium runs the tiny models' f32 packages only: SwiftShader has no shader-f16, and the 0.5B shape takes
minutes per decode step on it; those rows list the reason under "skipped".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common import REPO, TMP, loadavg, print_table, summarize, write_result
from protocol import run_protocol

SHAPED = "qwen2.5-0.5b-shaped"
SHAPED_CONTEXT = 2048
SHAPED_CHUNK = 512


@dataclass(frozen=True)
class Case:
    model: str
    quant: str
    package: Callable[[], Path]
    source: Callable[[], Path]


def _scripts() -> None:
    if str(REPO / "scripts") not in sys.path:
        sys.path.insert(0, str(REPO / "scripts"))


def dist_package(model: str, quant: str) -> Path:
    _scripts()
    from build_packages import ensure_package

    return ensure_package(model, quant)


def test_model(model: str) -> Path:
    _scripts()
    from make_test_models import ensure_test_model

    return ensure_test_model(model)


def shaped_source() -> Path:
    out = TMP / SHAPED
    if not (out / "config.json").exists():
        subprocess.run(
            [sys.executable, str(REPO / "scripts" / "make_shaped_checkpoint.py"), "qwen2.5-0.5b", str(out)], check=True
        )
    return out


def shaped_package(quant: str) -> Path:
    """The 0.5B shape compiled for webgpu + llvm (no wasm-cpu: nothing here runs it), cached by build key."""
    from hearth.build.package import compile_package

    return compile_package(
        str(shaped_source()),
        quant,
        ["webgpu", "llvm"],
        TMP / "dist",
        model_id=SHAPED,
        context_window_size=SHAPED_CONTEXT,
        prefill_chunk_size=SHAPED_CHUNK,
    ).package_dir


def cases(quick: bool) -> list[Case]:
    """The models of the suite; BENCH_LLM_MODELS (comma-separated model ids) keeps only those."""
    keep = [m for m in os.environ.get("BENCH_LLM_MODELS", "").split(",") if m]
    return [c for c in _all_cases(quick) if not keep or c.model in keep]


def _all_cases(quick: bool) -> list[Case]:
    out = [
        Case(
            "tiny-llama-trained",
            q,
            lambda q=q: dist_package("tiny-llama-trained", q),
            lambda: test_model("tiny-llama-trained"),
        )
        for q in ("q4f16_1", "q4f32_1")
    ]
    if not quick:
        out.append(
            Case(
                "tiny-qwen2-bpe",
                "q4f16_1",
                lambda: dist_package("tiny-qwen2-bpe", "q4f16_1"),
                lambda: test_model("tiny-qwen2-bpe"),
            )
        )
    for q in ("q4f16_1",) if quick else ("q4f16_1", "q4f32_1"):
        out.append(Case(SHAPED, q, lambda q=q: shaped_package(q), shaped_source))
    return out


def bench_webgpu_node(pkg: Path, runs: int, prefill_lens: list[int], decode_new: int) -> dict[str, Any]:
    cmd = [
        "node",
        "scripts/bench-llm.mjs",
        str(pkg),
        "--runs",
        str(runs),
        "--prefill",
        ",".join(map(str, prefill_lens)),
        "--decode-new",
        str(decode_new),
    ]
    proc = subprocess.run(cmd, cwd=REPO / "sdk", capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(
            f"bench-llm.mjs printed no result (exit {proc.returncode}); stderr tail:\n{proc.stderr[-2000:]}"
        )
    doc = json.loads(lines[-1])
    if "error" in doc:
        raise RuntimeError(f"bench-llm.mjs failed on {pkg}: {doc['error']}")
    adapter = doc.get("adapter") or {}
    return {
        "samples": doc["samples"],
        "skipped": doc["skipped"],
        "detail": {
            "adapter": adapter.get("description"),
            "pipelines_ms_cold": doc["load"]["cold"]["pipelinesMs"],
            "pipelines_ms_warm": doc["load"]["warm"]["pipelinesMs"],
        },
    }


def bench_webgpu_chromium(pkg: Path, runs: int, prefill_lens: list[int], decode_new: int) -> dict[str, Any]:
    """The same protocol (sdk/scripts/bench-llm-protocol.mjs) in a module Worker of headless Chromium."""
    from embeddings import EMBED_DIR, ensure_node_modules

    ensure_node_modules()
    cfg = {
        "package": "/nonexistent",
        "onnxRoot": "/nonexistent",
        "modelId": "",
        "runtimes": ["hearth-llm-chromium"],
        "batches": {},
        "runs": runs,
        "warmup": 0,
        "benchTexts": [],
        "verifyTexts": [],
        "wasmThreads": 1,
        "llmPackage": str(pkg),
        "llm": {
            "runs": runs,
            "prefillLens": prefill_lens,
            "decodeNew": decode_new,
            "decodePrompt": 16,
            "ttftPrompt": 128,
        },
    }
    f = TMP / "llm-chromium.json"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(cfg))
    proc = subprocess.run(["node", str(EMBED_DIR / "browser.mjs"), str(f)], cwd=REPO, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(
            f"browser.mjs printed no result (exit {proc.returncode}); stderr tail:\n{proc.stderr[-2000:]}"
        )
    doc = json.loads(lines[-1])
    res = (doc.get("runtimes") or {}).get("hearth-llm-chromium") or {"error": doc.get("error", "no result")}
    if "error" in res:
        raise RuntimeError(f"Chromium: {res['error']}")
    adapter = res.get("adapter") or {}
    return {
        "samples": res["samples"],
        "skipped": res["skipped"],
        "detail": {
            "chromium": doc.get("chromium"),
            "adapter": adapter.get("architecture"),
            "breakdown": res.get("breakdown"),
            "pipelines_ms_cold": res["load"]["cold"]["pipelinesMs"],
            "pipelines_ms_warm": res["load"]["warm"]["pipelinesMs"],
        },
    }


def chromium_skip(case: Case) -> str | None:
    """Why Chromium (SwiftShader) does not run this case, or None."""
    if "f16" in case.quant:
        return "SwiftShader (Chromium's software WebGPU) has no shader-f16"
    if case.model == SHAPED:
        return "the 0.5B shape on SwiftShader takes minutes per decode step on 2 cores"
    return None


def bench_native(pkg: Path, runs: int, prefill_lens: list[int], decode_new: int) -> dict[str, Any]:
    from hearth.native import load_decoder

    loads = []
    for _ in range(2):  # cold (first in this process), then warm
        t0 = time.perf_counter()
        dec, cfg = load_decoder(pkg, "llvm")
        loads.append((time.perf_counter() - t0) * 1000)
    vocab = int(cfg["vocab_size"])
    samples, skipped = run_protocol(
        dec.reset,
        lambda ids: int(np.argmax(dec.prefill(ids))),
        lambda t: int(np.argmax(dec.decode(t))),
        vocab,
        int(cfg["context_window_size"]),
        runs,
        prefill_lens,
        decode_new,
    )
    samples["load_cold_ms"], samples["load_warm_ms"] = [loads[0]], [loads[1]]
    return {"samples": samples, "skipped": skipped, "detail": {"threads": os.environ.get("TVM_NUM_THREADS", "default")}}


def bench_torch(src: Path, max_seq: int, runs: int, prefill_lens: list[int], decode_new: int) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, DynamicCache

    torch.set_num_threads(os.cpu_count() or 1)
    loads = []
    for _ in range(2):
        t0 = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
        loads.append((time.perf_counter() - t0) * 1000)
    state: dict[str, Any] = {}

    def reset() -> None:
        state["cache"] = DynamicCache()

    @torch.inference_mode()
    def step(ids: list[int]) -> int:
        # logits_to_keep=1: only the last position's logits, as the compiled prefill returns.
        out = model(torch.tensor([ids]), past_key_values=state["cache"], use_cache=True, logits_to_keep=1)
        state["cache"] = out.past_key_values
        return int(out.logits[0, -1].argmax())

    vocab = int(model.config.vocab_size)
    samples, skipped = run_protocol(reset, step, lambda t: step([t]), vocab, max_seq, runs, prefill_lens, decode_new)
    samples["load_cold_ms"], samples["load_warm_ms"] = [loads[0]], [loads[1]]
    return {"samples": samples, "skipped": skipped, "detail": {"dtype": "float32", "threads": torch.get_num_threads()}}


# -- suite ----------------------------------------------------------------------------------------

METRICS = ["prefill_128_tok_s", "prefill_512_tok_s", "decode_tok_s", "ttft_ms", "load_cold_ms", "load_warm_ms"]


def run(quick: bool = False) -> dict[str, Any]:
    runs = 3 if quick else 5
    prefill_lens = [128, 512]
    results: list[dict[str, Any]] = []
    for case in cases(quick):
        pkg = case.package()
        cfg = json.loads((pkg / "mlc-chat-config.json").read_text())
        max_seq = int(cfg["context_window_size"])
        # quick mode: 32 decode steps on the 0.5B shape (lavapipe decodes it at a few tok/s).
        decode_new = 32 if quick and case.model == SHAPED else 128
        engines: dict[str, Callable[[], dict[str, Any]]] = {
            "webgpu-node": lambda: bench_webgpu_node(pkg, runs, prefill_lens, decode_new),
            "webgpu-chromium": lambda: bench_webgpu_chromium(pkg, runs, prefill_lens, decode_new),
            "native-llvm": lambda: bench_native(pkg, runs, prefill_lens, decode_new),
            "torch-eager-cpu": lambda: bench_torch(case.source(), max_seq, runs, prefill_lens, decode_new),
        }
        row: dict[str, Any] = {"model": case.model, "quant": case.quant, "decode_new": decode_new, "engines": {}}
        results.append(row)
        for name, fn in engines.items():
            if name == "webgpu-chromium" and (why := chromium_skip(case)) is not None:
                row["engines"][name] = {"skipped": {"all": why}}
                continue
            print(f"[llm] {case.model} {case.quant} {name} ...", flush=True)
            la0 = loadavg()
            t0 = time.perf_counter()
            try:
                r = fn()
                entry: dict[str, Any] = {k: summarize(v) for k, v in r["samples"].items()}
                entry["skipped"] = r["skipped"]
                entry["detail"] = r["detail"]
            except Exception as err:  # noqa: BLE001 - one engine failing must not hide the others' numbers
                entry = {"error": f"{type(err).__name__}: {err}"}
                print(f"[llm]   failed: {entry['error'][:500]}", flush=True)
            entry["loadavg"] = [la0, loadavg()]
            entry["wall_s"] = round(time.perf_counter() - t0, 1)
            row["engines"][name] = entry
            row["ratios"] = ratios(row["engines"])
            # Written after every engine, so a long run that is stopped still leaves what it measured.
            doc = write_result("llm", results, {"mode": "quick" if quick else "full", "runs": runs})
        print_rows([row])
    plot(doc)
    return doc


def ratios(engines: dict[str, dict[str, Any]]) -> dict[str, float]:
    """WebGPU / reference, medians of the same run; > 1 means WebGPU is faster (for tok/s)."""
    out: dict[str, float] = {}
    for web in ("webgpu-node", "webgpu-chromium"):
        w = engines.get(web, {})
        prefix = "" if web == "webgpu-node" else "chromium:"
        for ref in ("native-llvm", "torch-eager-cpu"):
            e = engines.get(ref, {})
            for m in ("prefill_128_tok_s", "prefill_512_tok_s", "decode_tok_s"):
                if m in w and m in e:
                    out[f"{prefix}{m}/{ref}"] = round(w[m]["median"] / e[m]["median"], 3)
    return out


def print_rows(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        table = []
        for name, e in row["engines"].items():
            if "all" in e.get("skipped", {}):
                table.append([name, f"skipped: {e['skipped']['all']}"] + [None] * (len(METRICS) - 1))
                continue
            table.append(
                [name] + ([e.get(m) for m in METRICS] if "error" not in e else ["error"] + [None] * (len(METRICS) - 1))
            )
        print_table(
            f"{row['model']} {row['quant']} (decode {row['decode_new']} tokens; median [min-max])",
            ["engine", *METRICS],
            table,
        )
        if row.get("ratios"):
            print("  ratios: " + ", ".join(f"{k} {v}" for k, v in row["ratios"].items()))


def plot(doc: dict[str, Any]) -> None:
    """docs/images/bench-llm-cpu.png: decode and prefill-128 tok/s per model and engine (log scale)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("[llm] matplotlib missing: no plot (pip install matplotlib)")
        return
    from common import IMAGES

    rows = doc["results"]
    engines = ["webgpu-node", "webgpu-chromium", "native-llvm", "torch-eager-cpu"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ["prefill_128_tok_s", "decode_tok_s"]):
        x = np.arange(len(rows))
        for i, eng in enumerate(engines):
            vals = [r["engines"].get(eng, {}).get(metric, {}).get("median", 0) for r in rows]
            ax.bar(x + (i - 1.5) * 0.2, vals, 0.2, label=eng)
        ax.set_xticks(x, [f"{r['model']}\n{r['quant']}" for r in rows], fontsize=7)
        ax.set_yscale("log")
        ax.set_title(metric.replace("_", " "))
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"Hearth LLM on CPU ({doc['machine']['cores']} cores, loadavg {doc['machine']['loadavg_start'][0]}), "
        f"median of {doc['runs']}"
    )
    fig.tight_layout()
    IMAGES.mkdir(parents=True, exist_ok=True)
    fig.savefig(IMAGES / "bench-llm-cpu.png", dpi=110)
    plt.close(fig)
