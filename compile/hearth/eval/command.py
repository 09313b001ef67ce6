"""`hearth eval`: the CLI driver (argument handling, progress, outputs, budgets, exit codes).

Exit codes: 0 all good; 1 a budget failed (a table of the failures is printed); 2 the package or
an argument is unusable (tampered or incomplete package, no llvm build, bad budget file, ...).
The last stdout line is a one-line JSON summary, for scripts.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from ..errors import USER_ERRORS
from ..tasks import CHAT, EMBEDDING, package_task
from .budget import Check, check_budget, failed, load_budget
from .decoder import Progress, evaluate_decoder, read_manifest
from .encoder import evaluate_encoder
from .plots import cosine_histogram, cosine_vs_bits_plot, kl_histogram, ppl_vs_bits_plot, weight_error_plot
from .progress import progress_for
from .qa import run_qa_eval
from .report import (
    budget_table,
    compare_header_rows,
    compare_markdown,
    compare_table,
    markdown_report,
    summary_table,
)

COMPARE_FORMAT = "hearth-eval-compare/1"


def _load_json_results(path: Path) -> list[dict[str, Any]]:
    """A result written by `hearth eval --json` (single or --compare), reused without re-running."""
    doc = json.loads(path.read_text())
    if doc.get("format") == COMPARE_FORMAT:
        return list(doc["results"])
    if doc.get("format", "").startswith("hearth-eval/"):
        return [doc]
    raise ValueError(f"{path} is not a `hearth eval --json` result (format {doc.get('format')!r})")


def settings_lines(s: dict[str, Any]) -> list[str]:
    """The effective settings of a decoder eval, printed before the long part (and so in a log)."""
    return [
        f"hearth eval: {s['model_id']} {s['quantization']} ({s['package']})",
        f"  tokens: {s['tokens_used']:,} of the text's {s['tokens_total']:,} "
        f"(max tokens {s['max_tokens']:,}: {s['max_tokens_from']}), "
        f"{s['positions']:,} positions scored",
        f"  windows: {s['windows']} of {s['window']} tokens, stride {s['stride']}",
        f"  text: {s['text']}",
        f"  reference: {s['reference']}",
        f"  weight error: {'yes' if s['weight_error'] else 'no'}",
    ]


Evaluated = tuple[dict[str, Any], Any]  # (JSON result, per-item array for the histogram)


def _evaluate_chat(
    package: Path, manifest: dict[str, Any], args: argparse.Namespace, console: Console, progress: Progress
) -> Evaluated:
    """Decoder metrics; the per-item array is the KL per position."""

    def show_settings(s: dict[str, Any]) -> None:
        for line in settings_lines(s):
            console.print(line, highlight=False, markup=False, soft_wrap=True)

    dec = evaluate_decoder(
        package,
        reference=Path(args.reference) if args.reference else None,
        text_file=Path(args.text) if args.text else None,
        window=args.window,
        stride=args.stride,
        max_tokens=args.max_tokens,
        progress=progress,
        on_settings=show_settings,
    )
    return dec.data, dec.kl


def _evaluate_embedding(
    package: Path, manifest: dict[str, Any], args: argparse.Namespace, console: Console, progress: Progress
) -> Evaluated:
    """Encoder metrics; the per-item array is the cosine per text."""
    console.print(
        f"hearth eval: {manifest.get('model_id')} {manifest.get('quantization')} ({package}): "
        "embedding package; texts: the fixed parity texts and labelled retrieval set "
        "(hearth.eval.embedding_parity, hearth.eval.retrieval)",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    enc = evaluate_encoder(package, reference=Path(args.reference) if args.reference else None, progress=progress)
    return enc.data, enc.cosines


# What `hearth eval` measures for each task's packages (hearth.tasks).
EVALUATORS = {CHAT.name: _evaluate_chat, EMBEDDING.name: _evaluate_embedding}


def _evaluate(package: Path, args: argparse.Namespace, console: Console) -> Evaluated:
    with progress_for(console, f"eval {package.parent.name}/{package.name}") as progress:
        manifest = read_manifest(package)
        return EVALUATORS[package_task(manifest).name](package, manifest, args, console, progress)


def _plot_name(result: dict[str, Any], what: str) -> str:
    p = result["package"]
    return f"{p.get('model_id')}-{p.get('quantization')}-{what}.png"


_SUMMARY_METRICS = {
    "decoder": ("ppl_reference", "ppl_package", "ppl_increase_pct", "top1_agreement", "kl_mean"),
    "encoder": ("min_cosine", "mean_cosine", "recall_at_1", "recall_at_10", "mrr", "reference_recall_at_1"),
}


def _summary_line(r: dict[str, Any]) -> dict[str, Any]:
    kind = r.get("kind", "decoder")
    out: dict[str, Any] = {
        "package": r["package"]["path"],
        "kind": kind,
        "quantization": r["package"].get("quantization"),
    }
    out.update({k: r["metrics"][k] for k in _SUMMARY_METRICS[kind]})
    out["budget_passed"] = (r.get("budget") or {}).get("passed")
    return out


def run_eval(args: argparse.Namespace, console: Console) -> int:
    if getattr(args, "qa", None):  # document-QA accuracy on stored RAG prompts: its own driver (qa.py)
        return run_qa_eval(args, console)
    t0 = time.perf_counter()
    try:
        budget = load_budget(Path(args.budget)) if args.budget else None
        if len(args.packages) > 1 and not args.compare:
            raise ValueError(
                f"{len(args.packages)} packages given; pass --compare to evaluate several and compare them"
            )
        results: list[dict[str, Any]] = []
        kls: list[Any] = []
        for item in map(Path, args.packages):
            if args.compare and item.is_file() and item.suffix == ".json":
                loaded = _load_json_results(item)
                results += loaded
                kls += [None] * len(loaded)
                continue
            data, per_item = _evaluate(item, args, console)
            results.append(data)
            kls.append(per_item)
        if args.compare:
            compare_header_rows(results)  # one kind only: fails before any output is written
    except USER_ERRORS as e:
        console.print(f"[red]hearth eval: {e}[/]", soft_wrap=True)  # unwrapped: paths stay copyable
        return 2

    budget_failed = False
    for r in results:
        if budget is None:
            continue
        checks = check_budget(budget, r)
        bad = failed(checks)
        budget_failed |= bool(bad)
        r["budget"] = {"file": str(args.budget), "passed": not bad, "checks": [c.to_json() for c in checks]}

    plots: list[Path] = []
    if args.plots:
        out_dir = Path(args.plots)
        out_dir.mkdir(parents=True, exist_ok=True)
        encoders = any(r.get("kind") == "encoder" for r in results)
        try:
            if args.compare:
                if encoders:
                    plots.append(cosine_vs_bits_plot(results, out_dir / "cosine_vs_bits.png"))
                else:
                    plots.append(ppl_vs_bits_plot(results, out_dir / "ppl_vs_bits.png"))
            for r, per_item in zip(results, kls):
                if r.get("weights"):
                    plots.append(weight_error_plot(r, out_dir / _plot_name(r, "weight_error")))
                if per_item is not None and len(per_item):
                    if r.get("kind") == "encoder":
                        plots.append(cosine_histogram(per_item, r, out_dir / _plot_name(r, "cosine")))
                    else:
                        plots.append(kl_histogram(per_item, r, out_dir / _plot_name(r, "kl")))
        except RuntimeError as e:  # matplotlib missing
            console.print(f"[red]hearth eval: {e}[/]")
            return 2

    if args.json:
        doc = {"format": COMPARE_FORMAT, "results": results} if args.compare else results[0]
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    if args.report:
        report_path = Path(args.report)
        report_path.parent.mkdir(parents=True, exist_ok=True)
        text = (
            compare_markdown(results, plots, report_path)
            if args.compare
            else markdown_report(results[0], plots, report_path)
        )
        report_path.write_text(text + "\n")

    # Piped/captured output is not a terminal: rich would wrap the tables at 80 columns.
    width = None if console.is_terminal else 140
    if args.compare:
        console.print(compare_table(results), width=width)
    else:
        console.print(summary_table(results[0]), width=width)
    for r in results:
        b = r.get("budget")
        if b:
            checks = [Check(**c) for c in b["checks"]]
            p = r["package"]
            title = f"budget {args.budget}: {p.get('model_id')} {p.get('quantization')}"
            if b["passed"]:
                console.print(budget_table(checks, title), width=width)
            else:
                console.print(budget_table([c for c in checks if c.status == "FAIL"], title + ": FAILED"), width=width)
    written = [x for x in (args.json, args.report) if x] + [str(p) for p in plots]
    if written:
        console.print("wrote " + ", ".join(written))
    console.print(f"eval done in {time.perf_counter() - t0:.1f} s")

    summary = [_summary_line(r) for r in results]
    print(json.dumps(summary if args.compare else summary[0]))
    if budget_failed:
        console.print("[bold red]hearth eval: budget exceeded (see the table above)[/]")
        return 1
    return 0
