"""PNG plots of eval results (matplotlib, object API: no pyplot global state, no display needed).

weight_error_plot(result, path)   per-layer weight-quantization error, one bar per matrix kind
kl_histogram(kl, result, path)    distribution of per-position KL(reference || package)
ppl_vs_bits_plot(results, path)   perplexity and top-1 agreement vs bits/param across schemes
cosine_histogram(cos, result, path)   encoder: distribution of per-text cosine to the reference
cosine_vs_bits_plot(results, path)    encoder: min/mean cosine and recall@1 vs bits/param
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError as e:  # not a core dependency of the compiler
        raise RuntimeError("plots need matplotlib: .venv/bin/pip install matplotlib") from e
    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _label(result: dict[str, Any]) -> str:
    p = result["package"]
    return f"{p.get('model_id')} {p.get('quantization')}"


def _log_histogram(ax: Any, values: Any, floor: float, color: str) -> None:
    """Histogram on log-spaced bins (values clipped at `floor`), log x axis: for long-tailed errors."""
    vals = np.clip(np.asarray(values, dtype=np.float64), floor, None)
    bins = np.logspace(np.log10(vals.min()), np.log10(max(vals.max(), vals.min() * 10)), 50)
    ax.hist(vals, bins=bins, color=color, alpha=0.8)
    ax.set_xscale("log")


def _by_model(results: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]], list[float]]]:
    """Results grouped by model id, each group sorted by bits/param: (model, results, bits)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(r["package"].get("model_id") or "?", []).append(r)
    out = []
    for model, rs in groups.items():
        rs = sorted(rs, key=lambda r: r["package"].get("bits_per_param") or 0)
        out.append((model, rs, [r["package"].get("bits_per_param") or np.nan for r in rs]))
    return out


def _layer_order(layer: str) -> tuple[int, int]:
    if layer == "embed":
        return (0, 0)
    if layer.isdigit():
        return (1, int(layer))
    return (2, 0)


def weight_error_plot(result: dict[str, Any], path: Path) -> Path:
    tensors = (result.get("weights") or {}).get("tensors") or []
    layers = sorted({t["layer"] for t in tensors}, key=_layer_order)
    modules = list(dict.fromkeys(t["module"] for t in tensors))
    value = {(t["layer"], t["module"]): t["rel_error"] for t in tensors}
    fig = _figure(min(24.0, max(7.0, 0.15 * len(layers) * max(1, len(modules)) + 3)), 4.0)
    ax = fig.add_subplot()
    x = np.arange(len(layers))
    width = 0.8 / max(1, len(modules))
    for i, m in enumerate(modules):
        ys = [value.get((layer, m), np.nan) for layer in layers]
        ax.bar(x + (i - (len(modules) - 1) / 2) * width, ys, width, label=m)
    ax.set_xticks(
        x, [f"layer {layer}" if layer.isdigit() else layer for layer in layers], rotation=45 if len(layers) > 12 else 0
    )
    ax.set_ylabel("||W - dequant(W_q)||_F / ||W||_F")
    ax.set_title(f"Weight quantization error: {_label(result)}")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.savefig(path)
    return path


def kl_histogram(kl: np.ndarray, result: dict[str, Any], path: Path) -> Path:
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot()
    _log_histogram(ax, kl, 1e-16, "tab:blue")
    m = result["metrics"]
    ax.axvline(m["kl_mean"], color="tab:red", linestyle="--", label=f"mean {m['kl_mean']:.2e}")
    ax.set_xlabel("KL(reference || package) per position [nats] (clipped at 1e-16)")
    ax.set_ylabel("positions")
    ax.set_title(f"Next-token KL: {_label(result)}")
    ax.legend(fontsize="small")
    fig.savefig(path)
    return path


def ppl_vs_bits_plot(results: list[dict[str, Any]], path: Path) -> Path:
    """Perplexity (left) and top-1 agreement (right) vs bits/param; one point per package."""
    fig = _figure(10.0, 4.0)
    ax_ppl, ax_top1 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for model, rs, bits in _by_model(results):
        line = ax_ppl.plot(bits, [r["metrics"]["ppl_package"] for r in rs], "o-", label=f"{model} (package)")[0]
        ax_ppl.axhline(
            rs[0]["metrics"]["ppl_reference"], color=line.get_color(), linestyle=":", label=f"{model} fp32 transformers"
        )
        ax_top1.plot(
            bits, [100 * r["metrics"]["top1_agreement"] for r in rs], "o-", color=line.get_color(), label=model
        )
        for r, b in zip(rs, bits):
            q = r["package"].get("quantization")
            ax_ppl.annotate(
                q, (b, r["metrics"]["ppl_package"]), textcoords="offset points", xytext=(4, 4), fontsize="small"
            )
            ax_top1.annotate(
                q,
                (b, 100 * r["metrics"]["top1_agreement"]),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize="small",
            )
    for ax in (ax_ppl, ax_top1):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("stored bits / parameter")
        ax.grid(alpha=0.3)
    ax_ppl.set_ylabel("held-out perplexity")
    ax_ppl.set_title("Perplexity vs bits/param")
    ax_ppl.legend(fontsize="small")
    ax_top1.set_ylabel("top-1 agreement with fp32 reference [%]")
    ax_top1.set_title("Top-1 agreement vs bits/param")
    fig.savefig(path)
    return path


def cosine_histogram(cos: np.ndarray, result: dict[str, Any], path: Path) -> Path:
    """Per-text 1 - cosine on a log axis (the interesting tail is the low cosines)."""
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot()
    _log_histogram(ax, 1.0 - np.asarray(cos, dtype=np.float64), 1e-9, "tab:green")
    m = result["metrics"]
    ax.axvline(1 - m["min_cosine"], color="tab:red", linestyle="--", label=f"min cosine {m['min_cosine']:.4f}")
    ax.axvline(1 - m["mean_cosine"], color="tab:blue", linestyle=":", label=f"mean cosine {m['mean_cosine']:.5f}")
    ax.set_xlabel("1 - cosine(package, reference) per text (clipped at 1e-9)")
    ax.set_ylabel("texts")
    ax.set_title(f"Embedding parity: {_label(result)}")
    ax.legend(fontsize="small")
    fig.savefig(path)
    return path


def cosine_vs_bits_plot(results: list[dict[str, Any]], path: Path) -> Path:
    """Min and mean cosine (left) and retrieval recall@1 (right) vs bits/param; one point per package."""
    fig = _figure(10.0, 4.0)
    ax_cos, ax_rec = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for model, rs, bits in _by_model(results):
        line = ax_cos.plot(bits, [r["metrics"]["min_cosine"] for r in rs], "o-", label=f"{model} min")[0]
        ax_cos.plot(
            bits, [r["metrics"]["mean_cosine"] for r in rs], "s--", color=line.get_color(), label=f"{model} mean"
        )
        ax_rec.plot(
            bits,
            [100 * r["metrics"]["recall_at_1"] for r in rs],
            "o-",
            color=line.get_color(),
            label=f"{model} package",
        )
        ax_rec.axhline(
            100 * rs[0]["metrics"]["reference_recall_at_1"],
            color=line.get_color(),
            linestyle=":",
            label=f"{model} reference",
        )
        for r, b in zip(rs, bits):
            q = r["package"].get("quantization")
            ax_cos.annotate(
                q, (b, r["metrics"]["min_cosine"]), textcoords="offset points", xytext=(4, 4), fontsize="small"
            )
            ax_rec.annotate(
                q, (b, 100 * r["metrics"]["recall_at_1"]), textcoords="offset points", xytext=(4, -10), fontsize="small"
            )
    for ax in (ax_cos, ax_rec):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("stored bits / parameter")
        ax.grid(alpha=0.3)
    ax_cos.set_ylabel("cosine to the reference")
    ax_cos.set_title("Embedding cosine vs bits/param")
    ax_cos.legend(fontsize="small")
    ax_rec.set_ylabel("retrieval recall@1 [%]")
    ax_rec.set_title("Retrieval recall@1 vs bits/param")
    ax_rec.legend(fontsize="small")
    fig.savefig(path)
    return path
