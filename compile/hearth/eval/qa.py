"""Document-QA accuracy of a chat package on stored RAG prompts (`hearth eval --qa PROMPTS PACKAGE`).

The prompts come from the SDK's own RAG path (bench/qa/retrieve.mjs: ingest, hybrid search, buildPrompt),
so every engine answers the same messages with the same numbered sources. Each engine generates greedily
(no sampling, no repetition penalty: the comparison is of the models, not of the samplers):
- the reference: transformers fp32 on the package's source checkpoint (for a GGUF, its dequantized
  weights), prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True);
- a package: its native llvm build (NativeDecoder), the same prompt rendered by the package's tokenizer.

Scores per answer: answer correct (normalised contains-match of the expected answer or a variant),
citation correct (a number cited as [n] points at a source whose text holds the fact sentence),
and, from the retrieval stage, recall@k (a retrieved chunk holds the fact sentence).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as Bar
from rich.table import Table

from ..errors import HearthError
from ..tasks import CHAT, EMBEDDING, package_task
from .decoder import read_manifest, resolve_reference

PROMPTS_FORMAT = "hearth-qa-prompts/1"
RESULT_FORMAT = "hearth-eval-qa/1"
DEFAULT_MAX_NEW_TOKENS = 64

Progress = Callable[[str, int, int], None]


class QaError(HearthError, ValueError):
    """The prompts file or a package cannot be used for the QA evaluation."""


# ----------------------------------------------------------------------------------------------
# Scoring


_THOUSANDS = re.compile(r"(?<=\d)[,\u202f\u00a0'](?=\d{3}\b)")
_CITATION = re.compile(r"\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")


def normalize(text: str) -> str:
    """Lower case, NFKC, thousands separators dropped ("4,812" == "4812"), punctuation to spaces,
    whitespace collapsed: what an answer and an expected fact are compared in."""
    t = unicodedata.normalize("NFKC", text).lower()
    t = _THOUSANDS.sub("", t)
    t = re.sub(r"[^\w]+", " ", t)
    return " ".join(t.split())


def answer_correct(answer: str, accepted: Sequence[str]) -> bool:
    """True when a whole-word run of the normalised answer equals a normalised accepted answer."""
    hay = f" {normalize(answer)} "
    return any(f" {n} " in hay for n in (normalize(a) for a in accepted) if n)


def parse_citations(answer: str) -> list[int]:
    """Source numbers cited as [n] or [n, m] (the SDK's citation syntax), in order, without repeats."""
    out: list[int] = []
    for m in _CITATION.finditer(answer):
        for part in re.split(r"[,;]", m.group(1)):
            n = int(part)
            if n not in out:
                out.append(n)
    return out


def _squash(text: str) -> str:
    return " ".join(text.split())


def sentence_in(text: str, sentence: str) -> bool:
    """The fact sentence occurs in a passage, whitespace-insensitive (PDF lines wrap inside sentences)."""
    return _squash(sentence) in _squash(text)


def citation_correct(answer: str, sources: Sequence[dict[str, Any]], sentence: str) -> bool:
    """At least one number the answer cites is a source given to the model whose text holds the fact
    sentence. No citation, or only numbers that were not given, is wrong."""
    by_n = {int(s["n"]): s for s in sources}
    return any(n in by_n and sentence_in(str(by_n[n]["text"]), sentence) for n in parse_citations(answer))


# ----------------------------------------------------------------------------------------------
# Prompts


@dataclass
class QaPrompt:
    id: str
    question: str
    messages: list[dict[str, str]]
    sources: list[dict[str, Any]]
    accepted: list[str]
    sentence: str
    recall: bool  # a retrieved hit (top k) holds the fact sentence
    in_prompt: bool  # a source given to the model holds it
    prompt_tokens: int | None


def load_prompts(path: Path) -> tuple[dict[str, Any], list[QaPrompt]]:
    """(metadata, prompts) of a prompts.json written by bench/qa/retrieve.mjs."""
    if not path.is_file():
        raise QaError(
            f"{path} does not exist: write it with `cd sdk && node --import tsx ../bench/qa/retrieve.mjs --out {path}`"
        )
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise QaError(f"{path} is not valid JSON ({e}); regenerate it with bench/qa/retrieve.mjs") from e
    if not isinstance(doc, dict) or doc.get("format") != PROMPTS_FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise QaError(
            f"{path} is not a QA prompts file (format {got!r}, expected {PROMPTS_FORMAT!r}); "
            "write it with bench/qa/retrieve.mjs"
        )
    prompts: list[QaPrompt] = []
    for i, p in enumerate(doc.get("prompts", [])):
        try:
            prompts.append(
                QaPrompt(
                    id=str(p["id"]),
                    question=str(p["question"]),
                    messages=[{"role": str(m["role"]), "content": str(m["content"])} for m in p["messages"]],
                    sources=list(p["sources"]),
                    accepted=[str(a) for a in p["accepted"]],
                    sentence=str(p["sentence"]),
                    recall=bool(p["recall"]),
                    in_prompt=bool(p["inPrompt"]),
                    prompt_tokens=p.get("promptTokens"),
                )
            )
        except (KeyError, TypeError) as e:
            raise QaError(f"{path}: prompt {i} lacks {e}; regenerate the file with bench/qa/retrieve.mjs") from e
    if not prompts:
        raise QaError(f"{path} holds no prompts")
    meta = {k: v for k, v in doc.items() if k != "prompts"}
    return meta, prompts


# ----------------------------------------------------------------------------------------------
# Engines


class Engine(Protocol):
    name: str

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]: ...

    def greedy(self, ids: list[int], max_new_tokens: int) -> list[int]: ...

    def decode_text(self, tokens: list[int]) -> str: ...


def _render_ids(tokenizer: Any, messages: list[dict[str, str]], template: str | None) -> list[int]:
    """What the SDK's engine prefills: the template rendered with the generation prompt, encoded
    without adding special tokens again."""
    text = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False, add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _eos_ids(config_eos: Any, tokenizer: Any) -> set[int]:
    eos = config_eos if isinstance(config_eos, list) else [config_eos]
    out = {int(e) for e in eos if e is not None}
    if getattr(tokenizer, "eos_token_id", None) is not None:
        out.add(int(tokenizer.eos_token_id))
    return out


class ReferenceEngine:
    """transformers fp32, greedy with its KV cache (one forward per new token)."""

    def __init__(self, folder: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.name = "reference (transformers fp32)"
        self.folder = folder
        self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.eos = _eos_ids(self.model.config.eos_token_id, self.tokenizer)

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        return _render_ids(self.tokenizer, messages, None)

    def greedy(self, ids: list[int], max_new_tokens: int) -> list[int]:
        torch = self.torch
        out: list[int] = []
        with torch.no_grad():
            res = self.model(torch.tensor([ids]), use_cache=True)
            while True:
                tok = int(torch.argmax(res.logits[0, -1]))
                if tok in self.eos:
                    break
                out.append(tok)
                if len(out) >= max_new_tokens:
                    break
                res = self.model(torch.tensor([[tok]]), past_key_values=res.past_key_values, use_cache=True)
        return out

    def decode_text(self, tokens: list[int]) -> str:
        return str(self.tokenizer.decode(tokens, skip_special_tokens=True))


class PackageEngine:
    """A package's native (llvm) build, greedy: the same computation its WebGPU build runs."""

    def __init__(self, package: Path, max_total_seq_len: int | None = None) -> None:
        from transformers import AutoTokenizer  # transformers (and torch) load when the QA eval runs

        self.decoder, self.config = CHAT.open_native(package, "llvm", max_total_seq_len)  # verifies every file
        self.context_window = int(max_total_seq_len or self.config["context_window_size"])
        self.tokenizer = AutoTokenizer.from_pretrained(str(package))
        self.template: str | None = getattr(self.tokenizer, "chat_template", None) or self.config.get("chat_template")
        if self.template is None:
            raise QaError(f"{package} has no chat template; the QA evaluation needs a chat model")
        self.eos = _eos_ids(self.config.get("eos_token_id"), self.tokenizer)
        self.name = (
            f"{self.config.get('model_id', package.parent.name)} "
            f"{self.config.get('quantization', package.name)} (native llvm)"
        )

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        return _render_ids(self.tokenizer, messages, self.template)

    def greedy(self, ids: list[int], max_new_tokens: int) -> list[int]:
        if len(ids) + max_new_tokens > self.context_window:
            raise QaError(
                f"a prompt of {len(ids)} tokens plus {max_new_tokens} new ones exceeds the package's "
                f"{self.context_window}-token KV cache"
            )
        self.decoder.reset()
        tok = int(np.argmax(self.decoder.prefill(ids)))
        out: list[int] = []
        while tok not in self.eos:
            out.append(tok)
            if len(out) >= max_new_tokens:
                break
            tok = int(np.argmax(self.decoder.decode(tok)))
        return out

    def decode_text(self, tokens: list[int]) -> str:
        return str(self.tokenizer.decode(tokens, skip_special_tokens=True))


# ----------------------------------------------------------------------------------------------
# Running and scoring


def answer_rows(
    engine: Engine,
    prompts: Sequence[QaPrompt],
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Generate an answer for every prompt and score it."""
    rows: list[dict[str, Any]] = []
    for i, p in enumerate(prompts):
        ids = engine.prompt_ids(p.messages)
        t0 = time.perf_counter()
        tokens = engine.greedy(ids, max_new_tokens)
        ms = (time.perf_counter() - t0) * 1000
        answer = engine.decode_text(tokens)
        rows.append(
            {
                "id": p.id,
                "prompt_tokens": len(ids),
                "prompt_ids_sha": _ids_digest(ids),
                "tokens": tokens,
                "answer": answer,
                "answer_correct": answer_correct(answer, p.accepted),
                "citations": parse_citations(answer),
                "citation_correct": citation_correct(answer, p.sources, p.sentence),
                "recall": p.recall,
                "in_prompt": p.in_prompt,
                "ms": round(ms, 1),
            }
        )
        if progress is not None:
            progress(engine.name, i + 1, len(prompts))
    return rows


def _ids_digest(ids: list[int]) -> str:
    return hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:16]


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Accuracies in [0, 1] over the rows; answer accuracy also over the prompts whose sources hold the fact."""
    n = len(rows)
    held = [r for r in rows if r["in_prompt"]]
    return {
        "n": n,
        "answer_accuracy": sum(r["answer_correct"] for r in rows) / n if n else None,
        "citation_accuracy": sum(r["citation_correct"] for r in rows) / n if n else None,
        "recall_at_k": sum(r["recall"] for r in rows) / n if n else None,
        "fact_in_prompt": len(held) / n if n else None,
        "answer_accuracy_fact_in_prompt": sum(r["answer_correct"] for r in held) / len(held) if held else None,
        "mean_new_tokens": sum(len(r["tokens"]) for r in rows) / n if n else None,
        "seconds": round(sum(r["ms"] for r in rows) / 1000, 1),
    }


def token_agreement(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How many answers two engines generated token for token alike (same prompts)."""
    by_id = {r["id"]: r for r in b}
    same = [r["id"] for r in a if r["id"] in by_id and by_id[r["id"]]["tokens"] == r["tokens"]]
    both = [r["id"] for r in a if r["id"] in by_id]
    return {"compared": len(both), "identical": len(same), "differ": [i for i in both if i not in same]}


def evaluate_qa(
    packages: Sequence[Path],
    prompts_file: Path,
    reference: Path | None = None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Answer every stored prompt with the reference and each package; the result document."""
    meta, prompts = load_prompts(prompts_file)
    if not packages:
        raise QaError("no package given")
    manifests = [read_manifest(p) for p in packages]
    for p, m in zip(packages, manifests):
        if package_task(m) is EMBEDDING:
            raise QaError(f"{p} is an embedding model; the QA evaluation needs a chat package")
    ref_folder, how = resolve_reference(manifests[0], reference)
    engines: list[tuple[str, Callable[[], Engine]]] = [("reference", lambda: ReferenceEngine(ref_folder))]
    for p in packages:
        engines.append((str(p), lambda p=p: PackageEngine(p)))
    results: list[dict[str, Any]] = []
    ref_rows: list[dict[str, Any]] | None = None
    for key, make in engines:
        t0 = time.perf_counter()
        engine = make()
        load_s = time.perf_counter() - t0
        rows = answer_rows(engine, prompts, max_new_tokens, progress)
        entry: dict[str, Any] = {
            "engine": engine.name,
            "key": key,
            "load_seconds": round(load_s, 1),
            "metrics": summarize(rows),
            "rows": rows,
        }
        if ref_rows is None:
            ref_rows = rows
        else:
            entry["vs_reference"] = token_agreement(rows, ref_rows)
            entry["same_prompt_ids_as_reference"] = all(
                a["prompt_ids_sha"] == b["prompt_ids_sha"] for a, b in zip(rows, ref_rows)
            )
        results.append(entry)
        del engine
    return {
        "format": RESULT_FORMAT,
        "prompts": str(prompts_file),
        "prompts_meta": meta,
        "reference": {"path": str(ref_folder), "how": how},
        "max_new_tokens": max_new_tokens,
        "results": results,
    }


def results_table_rows(doc: dict[str, Any]) -> list[list[str]]:
    """[engine, n, answer acc, citation acc, recall@k, identical-to-reference] as printable cells."""
    k = doc.get("prompts_meta", {}).get("k", "k")

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}"

    out = [["engine", "n", "answer acc %", "citation acc %", f"recall@{k} %", "= reference tokens"]]
    for r in doc["results"]:
        m = r["metrics"]
        agree = r.get("vs_reference")
        out.append(
            [
                r["engine"],
                str(m["n"]),
                pct(m["answer_accuracy"]),
                pct(m["citation_accuracy"]),
                pct(m["recall_at_k"]),
                "-" if agree is None else f"{agree['identical']}/{agree['compared']}",
            ]
        )
    return out


def run_qa_eval(args: Any, console: Any) -> int:
    """`hearth eval --qa PROMPTS PACKAGE [PACKAGE...] [--reference DIR] [--json OUT]`."""
    t0 = time.perf_counter()
    try:
        with Bar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        ) as bar:
            task = bar.add_task("qa", total=None)

            def progress(engine: str, done: int, total: int) -> None:
                bar.update(task, description=f"qa {engine}", completed=done, total=total)
                # Off a terminal the bar is invisible: a plain line every 10 % keeps a log informative.
                if not console.is_terminal and (done == total or done % max(1, total // 10) == 0):
                    console.print(f"qa {engine}: {done}/{total} ({time.perf_counter() - t0:.0f} s)")

            doc = evaluate_qa(
                [Path(p) for p in args.packages],
                Path(args.qa),
                reference=Path(args.reference) if args.reference else None,
                progress=progress,
            )
    except (HearthError, FileNotFoundError) as e:  # QaError, EvalError, IntegrityError, PackageTargetError...
        console.print(f"[red]hearth eval --qa: {e}[/]", soft_wrap=True)
        return 2
    table = Table(title=f"document QA on {args.qa} (greedy, {doc['max_new_tokens']} new tokens)")
    head, *body = results_table_rows(doc)
    for h in head:
        table.add_column(h)
    for row in body:
        table.add_row(*row)
    console.print(table, width=None if console.is_terminal else 140)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
        console.print(f"wrote {args.json}")
    console.print(f"eval --qa done in {time.perf_counter() - t0:.1f} s")
    print(json.dumps([{"engine": r["engine"], **{k: v for k, v in r["metrics"].items()}} for r in doc["results"]]))
    return 0
