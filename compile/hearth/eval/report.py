"""Markdown reports and rich tables for eval results."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from rich.table import Table

from .budget import Check
from .plots import _layer_order


def _num(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "-"
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    if abs(x) < 1e-3:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def _pct(x: float, signed: bool = False) -> str:
    return f"{x:+.3f} %" if signed else f"{x:.2f} %"


def is_encoder(r: dict[str, Any]) -> bool:
    return r.get("kind") == "encoder"


def encoder_summary_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    m, s, t, x = r["metrics"], r["size"], r["timing"], r["texts"]
    ks = sorted(int(k.rsplit("_", 1)[1]) for k in m if k.startswith("recall_at_"))
    return [
        ("min cosine to the reference", _num(m["min_cosine"], 6)),
        ("mean / 1st-percentile cosine", f"{_num(m['mean_cosine'], 6)} / {_num(m['p1_cosine'], 6)}"),
        (
            "texts",
            f"{m['texts']} ({x['parity']} parity texts, {x['retrieval_passages']} passages, "
            f"{x['retrieval_queries']} queries; "
            f"{x['truncated']} truncated, {x['token_mismatches']} token-id mismatches)",
        ),
        ("recall@k, package", " / ".join(f"@{k} {_pct(100 * m[f'recall_at_{k}'])}" for k in ks)),
        ("recall@k, reference", " / ".join(f"@{k} {_pct(100 * m[f'reference_recall_at_{k}'])}" for k in ks)),
        ("MRR package / reference", f"{m['mrr']:.4f} / {m['reference_mrr']:.4f}"),
        ("retrieval top-1 agreement", _pct(100 * m["retrieval_top1_agreement"])),
        ("bits / param", str(r["package"].get("bits_per_param"))),
        ("package size", f"{s['package_mb']:.3f} MiB ({s['package_bytes']:,} bytes, {s['files']} files)"),
        ("first-load bytes", f"{s['first_load_bytes']:,}"),
        ("eval time", f"{t['total_s']:.1f} s (package {t['package_s']:.1f} s, reference {t['reference_s']:.1f} s)"),
    ]


def summary_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    if is_encoder(r):
        return encoder_summary_rows(r)
    m, s, t = r["metrics"], r["size"], r["timing"]
    rows = [
        ("perplexity, fp32 transformers reference", _num(m["ppl_reference"], 6)),
        ("perplexity, package", _num(m["ppl_package"], 6)),
        ("Δ perplexity", _pct(m["ppl_increase_pct"], signed=True)),
        ("top-1 agreement", _pct(100 * m["top1_agreement"])),
        ("mean KL(reference ‖ package)", f"{_num(m['kl_mean'])} nats"),
        ("KL median / p95 / max", f"{_num(m['kl_median'])} / {_num(m['kl_p95'])} / {_num(m['kl_max'])}"),
        (
            "next-token accuracy, reference / package",
            f"{_pct(100 * m['accuracy_reference'])} / {_pct(100 * m['accuracy_package'])}",
        ),
        ("positions scored", f"{m['tokens_scored']:,}"),
        ("bits / param", str(r["package"].get("bits_per_param"))),
        ("package size", f"{s['package_mb']:.3f} MiB ({s['package_bytes']:,} bytes, {s['files']} files)"),
        ("first-load bytes", f"{s['first_load_bytes']:,}"),
    ]
    w = r.get("weights")
    if w:
        ws = w["summary"]
        rows.append(
            (
                "weight error overall / max (rel. Frobenius)",
                f"{_num(ws['overall_rel_error'])} / {_num(ws['max_rel_error'])}",
            )
        )
    if m.get("nonfinite_logit_rows"):
        rows.append(("positions with non-finite package logits", str(m["nonfinite_logit_rows"])))
    rows.append(
        (
            "eval time",
            f"{t['total_s']:.1f} s (package {t['package_ms_per_token']:.2f} ms/position, "
            f"reference {t['reference_s']:.1f} s)",
        )
    )
    return rows


# ----------------------------------------------------------------------------------------------
# rich


def summary_table(r: dict[str, Any]) -> Table:
    p = r["package"]
    table = Table(title=f"hearth eval: {p.get('model_id')} {p.get('quantization')}", show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value")
    for k, v in summary_rows(r):
        table.add_row(k, v)
    return table


def budget_table(checks: list[Check], title: str = "budget") -> Table:
    table = Table(title=title)
    for col in ("budget", "metric", "value", "limit", "status"):
        table.add_column(col)
    for c in checks:
        style = {"pass": "green", "FAIL": "bold red"}.get(c.status, "yellow")
        table.add_row(c.key, c.metric, _num(c.value, 6), f"{c.op} {_num(c.budget, 6)}", f"[{style}]{c.status}[/]")
    return table


DECODER_COLUMNS = [
    "package",
    "bits/param",
    "MiB",
    "ppl ref",
    "ppl pkg",
    "Δppl",
    "top-1",
    "KL mean",
    "weight err",
    "time",
]
ENCODER_COLUMNS = [
    "package",
    "bits/param",
    "MiB",
    "min cos",
    "mean cos",
    "p1 cos",
    "recall@1",
    "recall@3",
    "recall@10",
    "MRR",
    "time",
]


def compare_table(results: list[dict[str, Any]]) -> Table:
    table = Table(title="hearth eval --compare")
    header, rows = compare_header_rows(results)
    for col in header:
        table.add_column(col, justify="left" if col == "package" else "right")
    for row in rows:
        table.add_row(*row)
    return table


def compare_header_rows(results: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Decoder and encoder results have different metrics: all must be of one kind."""
    kinds = {("encoder" if is_encoder(r) else "decoder") for r in results}
    if len(kinds) > 1:
        raise ValueError("--compare mixes decoder and encoder packages; compare one kind at a time")
    if kinds == {"encoder"}:
        return list(ENCODER_COLUMNS), encoder_compare_rows(results)
    return list(DECODER_COLUMNS), compare_rows(results)


def encoder_compare_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for r in results:
        m, p = r["metrics"], r["package"]
        rows.append(
            [
                f"{p.get('model_id')} {p.get('quantization')}",
                str(p.get("bits_per_param")),
                f"{r['size']['package_mb']:.3f}",
                _num(m["min_cosine"], 6),
                _num(m["mean_cosine"], 6),
                _num(m["p1_cosine"], 6),
                _pct(100 * m["recall_at_1"]),
                _pct(100 * m["recall_at_3"]),
                _pct(100 * m["recall_at_10"]),
                f"{m['mrr']:.4f}",
                f"{r['timing']['total_s']:.1f} s",
            ]
        )
    return rows


def compare_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for r in results:
        m, p = r["metrics"], r["package"]
        w = (r.get("weights") or {}).get("summary") or {}
        rows.append(
            [
                f"{p.get('model_id')} {p.get('quantization')}",
                str(p.get("bits_per_param")),
                f"{r['size']['package_mb']:.3f}",
                _num(m["ppl_reference"], 6),
                _num(m["ppl_package"], 6),
                _pct(m["ppl_increase_pct"], signed=True),
                _pct(100 * m["top1_agreement"]),
                _num(m["kl_mean"]),
                _num(w.get("overall_rel_error")),
                f"{r['timing']['total_s']:.1f} s",
            ]
        )
    return rows


# ----------------------------------------------------------------------------------------------
# Markdown


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _rel(path: Path, report_path: Path | None) -> str:
    if report_path is None:
        return str(path)
    return os.path.relpath(path, report_path.parent)


def _budget_md(checks: list[Check] | None, budget_file: str | None) -> list[str]:
    if checks is None:
        return []
    bad = [c for c in checks if c.status == "FAIL"]
    head = f"**{'FAILED' if bad else 'passed'}** ({budget_file})"
    rows = [[c.key, c.metric, _num(c.value, 6), f"{c.op} {_num(c.budget, 6)}", c.status] for c in checks]
    return ["## Budget", "", head, "", _md_table(["budget", "metric", "value", "limit", "status"], rows), ""]


def _weights_md(r: dict[str, Any]) -> list[str]:
    w = r.get("weights")
    if not w:
        return []
    tensors = w["tensors"]
    layers = sorted({t["layer"] for t in tensors}, key=_layer_order)
    modules = list(dict.fromkeys(t["module"] for t in tensors))
    value = {(t["layer"], t["module"]): t["rel_error"] for t in tensors}
    per_layer = w["summary"]["per_layer"]
    rows = [[layer] + [_num(value.get((layer, m))) for m in modules] + [_num(per_layer.get(layer))] for layer in layers]
    trows = [[t["name"], "×".join(map(str, t["shape"])), t["stored_as"], _num(t["rel_error"])] for t in tensors]
    s = w["summary"]
    return [
        "## Weight quantization error",
        "",
        "Relative Frobenius error ‖W − dequant(package)‖ / ‖W‖ of every weight matrix, read from the "
        "package's shards and compared with the checkpoint tensor it was converted from "
        "(fused projections compared fused). `all` is over the whole layer.",
        "",
        f"Overall {_num(s['overall_rel_error'])}, mean {_num(s['mean_rel_error'])}, max {_num(s['max_rel_error'])} "
        f"(`{s['max_rel_error_tensor']}`).",
        "",
        _md_table(["layer"] + modules + ["all"], rows),
        "",
        "<details><summary>Per tensor</summary>",
        "",
        _md_table(["tensor", "shape", "stored as", "rel. error"], trows),
        "",
        "</details>",
        "",
    ]


def _settings_md(r: dict[str, Any]) -> list[str]:
    p, t, w, tm = r["package"], r["text"], r["windows"], r["timing"]
    tok_note = t["tokenizer"]
    if t.get("tokenizer_matches_reference") is False:
        tok_note += " (**differs from the reference tokenizer on this text**)"
    elif t.get("tokenizer_matches_reference"):
        tok_note += " (same ids as the reference tokenizer)"
    rows = [
        ["package", f"`{p['path']}`"],
        ["quantization", str(p.get("quantization"))],
        ["run on", r.get("evaluated_on", "llvm")],
        ["reference", f"`{r['reference']['path']}` ({r['reference']['chosen_by']}), fp32 transformers"],
        ["text", t["source"]],
        ["text sha256", f"`{t['sha256'][:16]}…`, {t['chars']:,} chars"],
        [
            "tokens",
            f"{t['tokens_used']:,} used of {t['tokens_total']:,}"
            + (f" (limit {t['max_tokens']:,}: {t['max_tokens_from']})" if t.get("max_tokens") else ""),
        ],
        ["tokenizer", tok_note],
        [
            "windows",
            f"{w['count']} windows of ≤ {w['window']} tokens, stride {w['stride']} "
            f"(context {p.get('context_window_size')})",
        ],
        ["package logits", w["logits"]],
        ["timing", ", ".join(f"{k} {v}" for k, v in tm.items())],
        ["versions", ", ".join(f"{k} {v}" for k, v in r.get("versions", {}).items())],
    ]
    return ["## Settings", "", _md_table(["", ""], rows), ""]


def _encoder_md(r: dict[str, Any]) -> list[str]:
    p, x = r["package"], r["texts"]
    worst = [[str(w["index"]), w["category"], _num(w["cosine"], 6), w["text"]] for w in r["worst"]]
    queries = [[q["question"], q["gold"], str(q["rank"]), str(q["reference_rank"])] for q in r["retrieval"]["queries"]]
    settings = [
        ["package", f"`{p['path']}`"],
        ["quantization", str(p.get("quantization"))],
        ["run on", r.get("evaluated_on", "llvm")],
        ["reference", f"`{r['reference']['path']}` ({r['reference']['chosen_by']}), {r['reference']['runtime']}"],
        ["texts", x["source"]],
        ["max_seq_length / pooling", f"{p.get('max_seq_length')} / {p.get('pooling')}"],
        ["passages sha256", f"`{x['passages_sha256'][:16]}…`"],
        ["timing", ", ".join(f"{k} {v}" for k, v in r["timing"].items())],
        ["versions", ", ".join(f"{k} {v}" for k, v in r.get("versions", {}).items())],
    ]
    return [
        "## Lowest cosines",
        "",
        _md_table(["#", "category", "cosine", "text"], worst),
        "",
        "## Retrieval",
        "",
        "Rank of the gold passage among the pydoc-topic passages (1 = retrieved first), package and reference.",
        "",
        "<details><summary>Per query</summary>",
        "",
        _md_table(["question", "gold topic", "rank", "reference rank"], queries),
        "",
        "</details>",
        "",
        "## Settings",
        "",
        _md_table(["", ""], settings),
        "",
    ]


def markdown_report(
    r: dict[str, Any],
    plots: list[Path] | None = None,
    report_path: Path | None = None,
) -> str:
    p = r["package"]
    if is_encoder(r):
        out = [f"# hearth eval: {p.get('model_id')} {p.get('quantization')}", ""]
        out += ["## Summary", "", _md_table(["metric", "value"], [list(x) for x in summary_rows(r)]), ""]
        if r.get("budget"):
            out += _budget_md([Check(**c) for c in r["budget"]["checks"]], r["budget"].get("file"))
        if plots:
            out += ["## Plots", ""] + [f"![{pl.stem}]({_rel(pl, report_path)})" for pl in plots] + [""]
        return "\n".join(out + _encoder_md(r))
    out = [f"# hearth eval: {p.get('model_id')} {p.get('quantization')}", ""]
    out += ["## Summary", "", _md_table(["metric", "value"], [list(x) for x in summary_rows(r)]), ""]
    budget = r.get("budget")
    if budget:
        out += _budget_md([Check(**c) for c in budget["checks"]], budget.get("file"))
    out += _weights_md(r)
    if plots:
        out += ["## Plots", ""] + [f"![{pl.stem}]({_rel(pl, report_path)})" for pl in plots] + [""]
    out += _settings_md(r)
    return "\n".join(out)


def compare_markdown(
    results: list[dict[str, Any]], plots: list[Path] | None = None, report_path: Path | None = None
) -> str:
    header, rows = compare_header_rows(results)
    if any(r.get("budget") for r in results):
        header.append("budget")
        for row, r in zip(rows, results):
            b = r.get("budget")
            row.append(
                "-"
                if not b
                else (
                    "pass"
                    if b["passed"]
                    else "FAIL: " + ", ".join(c["key"] for c in b["checks"] if c["status"] == "FAIL")
                )
            )
    out = ["# hearth eval: comparison", "", _md_table(header, rows), ""]
    if any(is_encoder(r) for r in results):
        out += [
            "cos: cosine of package vs reference embeddings over the parity texts, retrieval passages "
            "and queries; recall@k / MRR: retrieval of the gold pydoc passage with the package's embeddings.",
            "",
        ]
    else:
        out += [
            "Δppl: package perplexity vs its fp32 transformers reference on the same positions; top-1: "
            "argmax agreement; KL: mean KL(reference ‖ package) in nats; weight err: overall relative "
            "Frobenius weight error.",
            "",
        ]
    if plots:
        out += ["## Plots", ""] + [f"![{pl.stem}]({_rel(pl, report_path)})" for pl in plots] + [""]
    for r in results:
        p = r["package"]
        out += [f"## {p.get('model_id')} {p.get('quantization')}", ""]
        out += [_md_table(["metric", "value"], [list(x) for x in summary_rows(r)]), ""]
        if is_encoder(r):
            out += [f"Package `{p['path']}`; texts: {r['texts']['source']}.", ""]
        else:
            out += [
                f"Package `{p['path']}`; text: {r['text']['source']}; {r['windows']['count']} windows "
                f"of ≤ {r['windows']['window']} tokens, stride {r['windows']['stride']}.",
                "",
            ]
    return "\n".join(out)
