"""Evaluate an encoder (embedding) package as shipped: cosine to the reference and retrieval recall.

The package runs natively through TVM (`hearth.tasks.EMBEDDING.open_native(pkg, "llvm")`, which verifies
every file against the manifest first), through the same bucket functions the SDK calls. The
reference is sentence-transformers on the package's source checkpoint (transformers + the
package's recorded pooling when the checkpoint has no modules.json), as in
`hearth.eval.embedding_parity`.

Measured:
* cosine(package, reference) over the parity texts of `embedding_parity.parity_texts()` (241:
  phrases, sentences, paragraphs, truncated long texts, unicode, emoji, code, numbers, empty
  strings) plus every retrieval passage and query: min (`metrics.cosine`, what `min_cosine`
  budgets check), mean, 1st percentile, the 5 worst texts;
* retrieval on `hearth.eval.retrieval` (pydoc topics + hand-written questions): recall@k and MRR
  with the package's embeddings AND with the reference's, and how often the top-1 passage agrees.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..tasks import EMBEDDING, package_task
from .decoder import EVAL_FORMAT, EvalError, Progress, package_info, read_manifest, resolve_reference, size_info
from .embedding_parity import cosine, parity_texts, reference_embeddings
from .retrieval import KS, QUESTIONS, labelled_set, retrieval_metrics


@dataclass
class EncoderEval:
    data: dict[str, Any]  # JSON-ready result
    cosines: np.ndarray  # per text, for plots


def _versions() -> dict[str, str]:
    import torch  # torch and TVM load when an eval runs, not with the CLI
    import tvm

    out = {
        "hearth": __version__,
        "tvm": tvm.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    try:
        import sentence_transformers

        out["sentence_transformers"] = sentence_transformers.__version__
    except ImportError:
        pass
    return out


def evaluate_encoder(
    package_dir: Path, *, reference: Path | None = None, progress: Progress | None = None
) -> EncoderEval:
    from ..models.encoder import PoolingConfig  # models/ imports TVM: loaded when an eval runs

    note = progress or (lambda step, done, total: None)
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    package_dir = Path(package_dir)
    manifest = read_manifest(package_dir)
    if package_task(manifest) is not EMBEDDING:
        raise EvalError(f"{package_dir} is a {manifest.get('model_task')!r} package, not an embedding model")
    if "llvm" not in manifest.get("targets", {}):
        raise EvalError(
            f"{package_dir} has no native 'llvm' library (it has: {', '.join(manifest.get('targets', {}))}); "
            "recompile with --target llvm"
        )
    note("verify + load", 0, 4)
    enc = EMBEDDING.open_native(package_dir, "llvm")  # verifies every file first
    manifest = json.loads((package_dir / "hearth-manifest.json").read_text())  # the verified one
    cfg = json.loads((package_dir / "mlc-chat-config.json").read_text())
    meta = cfg["embedding_metadata"]
    timing["verify_load_s"] = time.perf_counter() - t0
    ref_dir, ref_how = resolve_reference(manifest, reference)

    parity = parity_texts()
    passages, queries, gold, passages_sha = labelled_set()
    strings = [t for _, t in parity] + passages + queries
    categories = [c for c, _ in parity] + ["passage"] * len(passages) + ["query"] * len(queries)

    note("reference", 1, 4)
    ts = time.perf_counter()
    pooling = PoolingConfig(meta["pooling"], meta["normalize"], meta["pooling_source"])
    ref, ref_ids = reference_embeddings(ref_dir, strings, meta["max_seq_length"], pooling)
    timing["reference_s"] = time.perf_counter() - ts

    note("package", 2, 4)
    ts = time.perf_counter()
    out = enc.embed(strings)
    timing["package_s"] = time.perf_counter() - ts
    pkg_ids, _ = enc.tokenize(strings)
    mismatches = [i for i in range(len(strings)) if pkg_ids[i] != ref_ids[i]]

    note("metrics", 3, 4)
    cos = cosine(out.embeddings, ref)
    if not np.all(np.isfinite(cos)):
        bad = [int(i) for i in np.flatnonzero(~np.isfinite(cos))]
        raise EvalError(f"{package_dir}: non-finite embeddings for texts {bad[:10]} (a broken package or kernel)")
    n_par, n_pas = len(parity), len(passages)
    pkg_ret = retrieval_metrics(out.embeddings[n_par + n_pas :], out.embeddings[n_par : n_par + n_pas], gold)
    ref_ret = retrieval_metrics(ref[n_par + n_pas :], ref[n_par : n_par + n_pas], gold)
    top1_agree = float(np.mean([a == b for a, b in zip(pkg_ret["top1"], ref_ret["top1"])]))
    metrics: dict[str, Any] = {
        "texts": len(strings),
        "cosine": float(cos.min()),  # what `min_cosine` budgets check
        "min_cosine": float(cos.min()),
        "mean_cosine": float(cos.mean()),
        "p1_cosine": float(np.percentile(cos, 1)),
        "min_cosine_parity_texts": float(cos[:n_par].min()),
    }
    for k in KS:
        metrics[f"recall_at_{k}"] = pkg_ret[f"recall_at_{k}"]
        metrics[f"reference_recall_at_{k}"] = ref_ret[f"recall_at_{k}"]
    metrics["mrr"] = pkg_ret["mrr"]
    metrics["reference_mrr"] = ref_ret["mrr"]
    metrics["retrieval_top1_agreement"] = top1_agree
    worst = [
        {"index": int(i), "category": categories[i], "cosine": float(cos[i]), "text": strings[i][:60]}
        for i in np.argsort(cos)[:5]
    ]
    timing["total_s"] = time.perf_counter() - t0
    note("done", 4, 4)
    data = {
        "format": EVAL_FORMAT,
        "kind": "encoder",
        "package": package_info(
            manifest,
            package_dir,
            max_seq_length=meta["max_seq_length"],
            pooling=meta["pooling"] + (" + L2" if meta["normalize"] else ""),
        ),
        "evaluated_on": "llvm (native TVM, CPU)",
        "reference": {
            "path": str(ref_dir.resolve()),
            "chosen_by": ref_how,
            "dtype": "float32",
            "runtime": "sentence-transformers" if (ref_dir / "modules.json").is_file() else "transformers",
        },
        "size": size_info(manifest, package_dir),
        "texts": {
            "parity": n_par,
            "parity_categories": sorted(set(c for c, _ in parity)),
            "retrieval_passages": n_pas,
            "retrieval_queries": len(queries),
            "passages_sha256": passages_sha,
            "source": "hearth.eval.embedding_parity.parity_texts() + hearth.eval.retrieval "
            "(pydoc_data.topics passages, hand-written questions)",
            "truncated": len(out.truncated),
            "token_mismatches": len(mismatches),
        },
        "metrics": metrics,
        "worst": worst,
        "retrieval": {
            "queries": [
                {"question": q, "gold": t, "rank": r, "reference_rank": rr}
                for (q, t), r, rr in zip(QUESTIONS, pkg_ret["ranks"], ref_ret["ranks"])
            ],
        },
        "timing": {k: round(v, 3) for k, v in timing.items()},
        "versions": _versions(),
    }
    return EncoderEval(data, cos)
