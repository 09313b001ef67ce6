"""Evaluate a decoder package as shipped: perplexity, top-1 agreement and KL vs fp32 transformers.

The package runs natively through TVM (`hearth.tasks.CHAT.open_native(pkg, "llvm")`, which verifies
every file against the manifest first). The reference is the fp32 transformers model of the
package's source checkpoint (or `reference=`).

Sliding windows. Token positions j = 0..N-2 are scored (position j's logits predict token j+1).
A window feeds tokens [begin, end) with end - begin <= `window` (<= the package's context) and
scores positions [score_from, end): the first window scores everything it feeds; each next one
starts `stride` tokens later and scores only positions no earlier window scored, so every scored
position after the first window sees at least window - stride tokens of context. This is the
"sliding window" perplexity of the transformers docs, applied identically to both models.

Per-position logits from the package. The exported `prefill` returns only the last token's
logits; `batch_prefill` returns logits at `logit_positions`, but its buffers are planned with
the package's max_batch_size (1 for every package `hearth compile` builds), so asking it for
more positions than that fails ("storage allocation failure ... in region that is 4096bytes").
So each window is run the way an engine generates: `prefill(tokens[begin:score_from+1])` gives
the logits at score_from, then `decode(token)` for every later position: the same kernels the
browser runs in generation. Cost: one decode call per scored token (~1-2 ms for the tiny test
model with f32 kernels on llvm; f16 kernels on llvm are ~20x slower since LLVM emulates f16;
~0.2-0.4 s for SmolLM2-135M on 2 shared cores).

Default length. The cost is about (parameters x scored tokens), so by default the text is cut
to DEFAULT_PARAM_TOKENS / parameters tokens, rounded down to a multiple of 128 (1,024 for a 135M
model: minutes on 2 idle cores), never fewer than MIN_DEFAULT_TOKENS; the test models (~1M
parameters) use their whole held-out text. `max_tokens=` (`--max-tokens`) overrides it.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import HearthError
from ..tasks import CHAT
from ..weights.manifest import MANIFEST, verify_package
from ..weights.source import resolve_source
from .text import resolve_text

Progress = Callable[[str, int, int], None]
Settings = Callable[[dict[str, Any]], None]

DEFAULT_MAX_WINDOW = 1024
DEFAULT_PARAM_TOKENS = 1024 * 135_000_000  # 1,024 tokens of a 135M model (see the module docstring)
MIN_DEFAULT_TOKENS = 256
REFERENCE_BATCH = 16  # windows per transformers forward
# Reference logits of a group of windows are computed before the package runs that group:
# alternating torch and TVM call by call leaves each runtime's spinning worker threads
# competing for the cores (measured 2x slower on 2 cores). The cap bounds the held logits.
GROUP_LOGIT_BYTES = 256 << 20
EVAL_FORMAT = "hearth-eval/1"


class EvalError(HearthError, ValueError):
    """The package or the arguments cannot be evaluated; the message says why and what to do."""


@dataclass(frozen=True)
class Window:
    begin: int  # first token fed
    score_from: int  # first scored position (its logits predict token score_from + 1)
    end: int  # one past the last token fed (= one past the last scored position)


def plan_windows(n_tokens: int, window: int, stride: int) -> list[Window]:
    """Windows covering positions 0..n_tokens-2 exactly once (see the module docstring)."""
    if window < 1 or not 1 <= stride <= window:
        raise EvalError(f"need window >= 1 and 1 <= stride <= window, got window={window}, stride={stride}")
    positions = n_tokens - 1  # the last token is only a target
    if positions < 1:
        raise EvalError(f"the evaluation text has {n_tokens} token(s); at least 2 are needed")
    out: list[Window] = []
    begin, scored_to = 0, 0
    while scored_to < positions:
        end = min(begin + window, positions)
        if end > scored_to:
            out.append(Window(begin, scored_to, end))
            scored_to = end
        begin += stride
    return out


# ----------------------------------------------------------------------------------------------
# Metric accumulation


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))


@dataclass
class Accumulator:
    nll_ref: float = 0.0
    nll_pkg: float = 0.0
    count: int = 0
    top1_agree: int = 0
    correct_ref: int = 0
    correct_pkg: int = 0
    nonfinite_rows: int = 0
    kl: list[np.ndarray] = field(default_factory=list)
    nll_delta: list[np.ndarray] = field(default_factory=list)

    def add(self, ref_logits: np.ndarray, pkg_logits: np.ndarray, targets: np.ndarray) -> None:
        if ref_logits.shape != pkg_logits.shape:
            raise EvalError(
                f"reference logits {ref_logits.shape} and package logits {pkg_logits.shape} differ in shape"
            )
        for r0 in range(0, len(targets), 64):  # bounded float64 temporaries for large vocabularies
            r1 = min(len(targets), r0 + 64)
            ref, pkg, tgt = ref_logits[r0:r1], pkg_logits[r0:r1], targets[r0:r1]
            self.nonfinite_rows += int((~np.isfinite(pkg).all(axis=-1)).sum())
            lr, lp = _log_softmax(ref), _log_softmax(pkg)
            rows = np.arange(r1 - r0)
            nr, npk = -lr[rows, tgt], -lp[rows, tgt]
            self.nll_ref += float(nr.sum())
            self.nll_pkg += float(npk.sum())
            self.nll_delta.append((npk - nr).astype(np.float32))
            kl = (np.exp(lr) * (lr - lp)).sum(axis=-1)
            self.kl.append(kl.astype(np.float32))
            am_ref, am_pkg = ref.argmax(axis=-1), pkg.argmax(axis=-1)
            self.top1_agree += int((am_ref == am_pkg).sum())
            self.correct_ref += int((am_ref == tgt).sum())
            self.correct_pkg += int((am_pkg == tgt).sum())
            self.count += r1 - r0

    def metrics(self) -> dict[str, Any]:
        n = max(self.count, 1)
        kl = np.concatenate(self.kl) if self.kl else np.zeros(0, np.float32)
        ppl_ref, ppl_pkg = math.exp(self.nll_ref / n), math.exp(self.nll_pkg / n)
        return {
            "tokens_scored": self.count,
            "ppl_reference": ppl_ref,
            "ppl_package": ppl_pkg,
            "ppl_increase_pct": 100.0 * (ppl_pkg / ppl_ref - 1.0),
            "nll_reference": self.nll_ref / n,
            "nll_package": self.nll_pkg / n,
            "top1_agreement": self.top1_agree / n,
            "kl_mean": float(kl.mean()) if kl.size else math.nan,
            "kl_median": float(np.median(kl)) if kl.size else math.nan,
            "kl_p95": float(np.quantile(kl, 0.95)) if kl.size else math.nan,
            "kl_max": float(kl.max()) if kl.size else math.nan,
            "accuracy_reference": self.correct_ref / n,
            "accuracy_package": self.correct_pkg / n,
            "nonfinite_logit_rows": self.nonfinite_rows,
        }


# ----------------------------------------------------------------------------------------------
# The two models


class ReferenceModel:
    """fp32 transformers model of a Hugging Face folder; logits as float32 numpy."""

    def __init__(self, folder: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        self.torch = torch
        was_enabled = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # the eval's own progress bar is shown instead
        try:
            self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        finally:
            if was_enabled:
                hf_logging.enable_progress_bar()

    def logits(self, ids: list[int]) -> np.ndarray:
        return self.batch_logits([ids])[0]

    def batch_logits(self, batch: list[list[int]]) -> list[np.ndarray]:
        """Logits of several token lists; equal-length ones go through one batched forward."""
        out: list[np.ndarray | None] = [None] * len(batch)
        by_len: dict[int, list[int]] = {}
        for i, ids in enumerate(batch):
            by_len.setdefault(len(ids), []).append(i)
        with self.torch.no_grad():
            for idx in by_len.values():
                for k in range(0, len(idx), REFERENCE_BATCH):
                    part = idx[k : k + REFERENCE_BATCH]
                    logits = self.model(self.torch.tensor([batch[i] for i in part])).logits.float().numpy()
                    for row, i in enumerate(part):
                        out[i] = logits[row]
        return out  # type: ignore[return-value]


def package_window_logits(
    decoder, ids: list[int], w: Window, on_position: Callable[[int], None] | None = None
) -> np.ndarray:
    """Logits at positions w.score_from .. w.end-1 from a fresh sequence (prefill, then decode).
    `on_position(k)`: k positions of this window done (for progress: a window can take minutes)."""
    decoder.reset()
    rows = [decoder.prefill(ids[w.begin : w.score_from + 1]).ravel()]
    for j in range(w.score_from + 1, w.end):
        if on_position is not None:
            on_position(len(rows))
        rows.append(decoder.decode(ids[j]).ravel())
    return np.stack(rows)


def default_max_tokens(params: int | None) -> int:
    """Tokens evaluated when --max-tokens is not given: scales inversely with model size."""
    if not params:
        return DEFAULT_PARAM_TOKENS // 135_000_000
    # Rounded down to a multiple of 128: round numbers, and runs of similar-size models score
    # the same tokens (SmolLM2-135M's 134.5M parameters give 1,024, not 1,027).
    return max(MIN_DEFAULT_TOKENS, DEFAULT_PARAM_TOKENS // int(params) // 128 * 128)


# ----------------------------------------------------------------------------------------------
# Package and reference resolution


def read_manifest(package_dir: Path) -> dict[str, Any]:
    """The manifest as JSON, unverified (only to route; load_decoder verifies every file)."""
    path = package_dir / MANIFEST
    if not path.is_file():
        verify_package(package_dir)  # raises IntegrityError with the standard message
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise EvalError(f"{path} is not valid JSON ({e}): corrupt package; recompile or re-download it") from e


def resolve_reference(manifest: dict[str, Any], reference: Path | None) -> tuple[Path, str]:
    """(folder, how it was chosen). Defaults to the package's source checkpoint."""
    if reference is not None:
        folder, how = Path(reference), "--reference"
    else:
        source = str(manifest.get("source", ""))
        kind, _, where = source.partition(":")
        if kind == "local":
            folder, how = Path(where), "the package's source (manifest)"
        elif kind == "hub":
            repo = where.split("@", 1)[0]
            folder, how = resolve_source(repo).path, f"the package's source (manifest: {source})"
        elif kind == "gguf":
            folder, how = _gguf_reference(manifest, Path(where))
        else:
            raise EvalError(
                f"the manifest's source {source!r} is not a local folder, GGUF file or hub id; "
                "pass --reference <hf folder>"
            )
    if not (folder / "config.json").is_file():
        raise EvalError(
            f"reference checkpoint {folder} ({how}) is missing or has no config.json; "
            "pass --reference <hf folder> with the checkpoint the package was compiled from"
        )
    return folder, how


def _gguf_reference(manifest: dict[str, Any], gguf_file: Path) -> tuple[Path, str]:
    """The HF folder converted from the package's GGUF (its dequantized f32 weights): the
    reference a GGUF-compiled package is measured against. The file at the recorded path must
    still be the one compiled (same SHA-256), else the comparison would be with another model."""
    if not gguf_file.is_file():
        raise EvalError(
            f"the package was compiled from {gguf_file}, which no longer exists; "
            "pass --reference <hf folder> (e.g. the cached conversion under ~/.cache/hearth/gguf/)"
        )
    src = resolve_source(str(gguf_file))  # cached after the compile: a folder lookup, no reconversion
    want = (manifest.get("source_file") or {}).get("sha256")
    have = (src.gguf or {}).get("sha256")
    if want and have and want != have:
        raise EvalError(
            f"{gguf_file} has changed since the package was compiled (SHA-256 {have[:16]}..., the package records "
            f"{want[:16]}...); recompile the package or pass --reference <hf folder> of the original"
        )
    return src.path, f"the package's source GGUF, dequantized to f32 (manifest: gguf:{gguf_file})"


def _load_tokenizer(package_dir: Path, reference_dir: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(package_dir), "package"
    except Exception:  # noqa: BLE001 - transformers raises many types for an unloadable folder
        return AutoTokenizer.from_pretrained(reference_dir), "reference (the package's tokenizer files did not load)"


def package_info(manifest: dict[str, Any], package_dir: Path, **extra: Any) -> dict[str, Any]:
    """The report's "package" section: what was evaluated, from its manifest, plus kind-specific facts."""
    keys = ("model_id", "quantization", "bits_per_param", "source")
    return {
        "path": str(package_dir.resolve()),
        **{k: manifest.get(k) for k in keys},
        "targets": manifest.get("targets", {}),
        "build_key": manifest.get("build_key"),
        **extra,
    }


def size_info(manifest: dict[str, Any], package_dir: Path) -> dict[str, Any]:
    files = manifest.get("files", [])
    libs = set(manifest.get("targets", {}).values())
    by_kind: dict[str, int] = {}
    for f in files:
        p = f["path"]
        if p in libs:
            kind = "library"
        elif p.endswith(".bin"):
            kind = "weights"
        elif p.startswith("tokenizer") or p.endswith(".model"):
            kind = "tokenizer"
        else:
            kind = "config"
        by_kind[kind] = by_kind.get(kind, 0) + f["bytes"]
    manifest_bytes = (package_dir / MANIFEST).stat().st_size
    total = sum(f["bytes"] for f in files) + manifest_bytes
    by_kind["manifest"] = manifest_bytes
    return {
        "package_bytes": total,
        "package_mb": total / 2**20,
        # What the SDK fetches before the first token: the manifest and every file it lists.
        "first_load_bytes": total,
        "files": len(files) + 1,
        "bytes_by_kind": by_kind,
    }


def _versions() -> dict[str, str]:
    import torch  # torch, transformers and TVM load when an eval runs, not with the CLI
    import transformers
    import tvm

    return {
        "hearth": __version__,
        "tvm": tvm.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }


# ----------------------------------------------------------------------------------------------
# Entry point


@dataclass
class DecoderEval:
    data: dict[str, Any]  # JSON-ready result
    kl: np.ndarray  # per scored position, for plots
    nll_delta: np.ndarray  # package NLL - reference NLL per scored position


def evaluate_decoder(
    package_dir: Path,
    *,
    reference: Path | None = None,
    text_file: Path | None = None,
    window: int | None = None,
    stride: int | None = None,
    max_tokens: int | None = None,
    with_weights: bool = True,
    progress: Progress | None = None,
    on_settings: Settings | None = None,
) -> DecoderEval:
    """`progress(step, done, total)` as it goes; `on_settings(dict)` once the effective settings
    (tokens, window, text, reference) are known, before the long part starts."""
    note = progress or (lambda step, done, total: None)
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    package_dir = Path(package_dir)
    manifest = read_manifest(package_dir)
    task = manifest.get("model_task", "chat")
    if task != "chat":
        raise EvalError(f"{package_dir} is a {task!r} package; `hearth eval` measures decoder (chat) packages")

    note("verify + load", 0, 1)
    decoder, chat_cfg = CHAT.open_native(package_dir, "llvm")  # verifies every file first
    manifest = json.loads((package_dir / MANIFEST).read_text())  # the verified one
    timing["verify_load_s"] = time.perf_counter() - t0

    ref_dir, ref_how = resolve_reference(manifest, reference)
    ctx = int(chat_cfg["context_window_size"])
    window = int(window) if window else min(ctx, DEFAULT_MAX_WINDOW)
    if window > ctx:
        raise EvalError(f"window {window} exceeds the package's context_window_size {ctx}")
    stride = int(stride) if stride else max(1, window // 2)

    ts = time.perf_counter()
    note("tokenize", 0, 1)
    text = resolve_text(text_file, ref_dir)
    tok, tok_from = _load_tokenizer(package_dir, ref_dir)
    ids = list(tok(text.text, verbose=False)["input_ids"])  # long text: no max-length warning
    total_tokens = len(ids)
    params = manifest.get("source_params")
    if max_tokens:
        limit, limit_how = int(max_tokens), "--max-tokens"
    else:
        limit = default_max_tokens(params)
        limit_how = f"default for {params / 1e6:.1f}M parameters" if params else "default (parameter count unknown)"
    ids = ids[:limit]
    tokenizer_matches_reference = None
    if tok_from == "package":
        from transformers import AutoTokenizer

        ref_ids = AutoTokenizer.from_pretrained(ref_dir)(text.text, verbose=False)["input_ids"]
        tokenizer_matches_reference = list(ref_ids[: len(ids)]) == ids and len(ref_ids) == total_tokens
    windows = plan_windows(len(ids), window, stride)
    timing["tokenize_s"] = time.perf_counter() - ts
    if on_settings is not None:
        on_settings(
            {
                "package": str(package_dir),
                "model_id": manifest.get("model_id"),
                "quantization": manifest.get("quantization"),
                "params": params,
                "max_tokens": limit,
                "max_tokens_from": limit_how,
                "tokens_used": len(ids),
                "tokens_total": total_tokens,
                "positions": len(ids) - 1,
                "window": window,
                "stride": stride,
                "windows": len(windows),
                "text": text.source,
                "reference": f"{ref_dir} ({ref_how})",
                "weight_error": with_weights,
            }
        )

    ts = time.perf_counter()
    note("load reference", 0, 1)
    ref_model = ReferenceModel(ref_dir)
    timing["reference_load_s"] = time.perf_counter() - ts
    vocab = int(chat_cfg.get("vocab_size") or 0)

    acc = Accumulator()
    t_ref = t_pkg = 0.0
    total = windows[-1].end
    per_group = max(1, GROUP_LOGIT_BYTES // max(1, 4 * (vocab or 32000) * window))
    # One step for reference and package together: they alternate group by group, and the ETA
    # must cover both.
    note("score", 0, total)
    for g in range(0, len(windows), per_group):
        group = windows[g : g + per_group]
        ts = time.perf_counter()
        ref_all = ref_model.batch_logits([ids[w.begin : w.end] for w in group])
        t_ref += time.perf_counter() - ts
        for w, ref_logits in zip(group, ref_all):
            ts = time.perf_counter()
            pkg_logits = package_window_logits(decoder, ids, w, lambda k, at=w.score_from: note("score", at + k, total))
            t_pkg += time.perf_counter() - ts
            if vocab and pkg_logits.shape[-1] != vocab:
                raise EvalError(
                    f"package logits have {pkg_logits.shape[-1]} columns, its config says vocab_size {vocab}"
                )
            acc.add(ref_logits[w.score_from - w.begin :], pkg_logits, np.asarray(ids[w.score_from + 1 : w.end + 1]))
    note("score", total, total)
    timing["reference_s"] = t_ref
    timing["package_s"] = t_pkg
    timing["package_ms_per_token"] = 1000 * t_pkg / max(acc.count, 1)
    del ref_model

    weights: dict[str, Any] | None = None
    if with_weights:
        from .weights import summarize, weight_errors  # imports models/ (TVM): only when weights are compared

        note("weight error", 0, 1)
        ts = time.perf_counter()
        errors = weight_errors(package_dir, ref_dir, manifest, chat_cfg)
        weights = {"summary": summarize(errors), "tensors": [e.to_json() for e in errors]}
        timing["weights_s"] = time.perf_counter() - ts
    timing["total_s"] = time.perf_counter() - t0

    metrics = acc.metrics()
    data = {
        "format": EVAL_FORMAT,
        "kind": "decoder",
        "package": package_info(manifest, package_dir, context_window_size=ctx),
        "evaluated_on": "llvm (native TVM, CPU)",
        "reference": {
            "path": str(ref_dir.resolve()),
            "chosen_by": ref_how,
            "dtype": "float32",
            "runtime": "transformers",
        },
        "size": size_info(manifest, package_dir),
        "text": {
            "source": text.source,
            "sha256": text.sha256,
            "chars": len(text.text),
            "tokens_total": total_tokens,
            "tokens_used": len(ids),
            "max_tokens": limit,
            "max_tokens_from": limit_how,
            "tokenizer": tok_from,
            "tokenizer_matches_reference": tokenizer_matches_reference,
        },
        "windows": {"window": window, "stride": stride, "count": len(windows), "logits": "prefill + per-token decode"},
        "metrics": metrics,
        "weights": weights,
        "timing": {k: round(v, 3) for k, v in timing.items()},
        "versions": _versions(),
    }
    return DecoderEval(data, np.concatenate(acc.kl), np.concatenate(acc.nll_delta))
