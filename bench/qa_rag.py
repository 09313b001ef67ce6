"""`make bench` suite "qa": answer accuracy of the full RAG path on the project's labelled document-QA set.

    .venv/bin/python bench/qa_rag.py [--quick] [--package-root DIR ...] [--embedder DIR|test] [--webgpu N]

Stage 1 (Node, bench/qa/retrieve.mjs): the SDK's RAG path ingests bench/qa/data (12 PDF/Markdown/HTML
documents), retrieves the top 6 hybrid hits per question with all-MiniLM-L6-v2 on WebGPU (Dawn), builds each
prompt with the SDK's buildPrompt for a 4096-token context (the demo's), and writes the prompts.
Stage 2: greedy answers (at most 64 new tokens) on the same prompts from the transformers fp32 reference
(the GGUF's own dequantized weights) and from each SmolLM2 package's native llvm build
(compile/hearth/eval/qa.py, also `hearth eval --qa`), then from the WebGPU build in Node on a subset,
checked token for token against the native build of the same package.
Scores: answer accuracy, citation accuracy, retrieval recall@k. Results: bench/results/qa.json (quick:
qa-quick.json), with every answer.
Cost: every engine prefills ~1250 prompt tokens per question; on the 2-core machine under load 10-16 that
took 10-37 min per question and engine (docs/benchmarks.md), so split the engines over processes
(--only ENGINE, then --merge) or run fewer questions (--limit N).

Packages are looked up as <root>/SmolLM2-135M-Instruct/<quant> under every --package-root (and
HEARTH_QA_PACKAGES, colon-separated), then dist/; a missing one is skipped with the reason printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, TMP, loadavg, print_table, write_result  # noqa: E402

sys.path.insert(0, str(REPO / "compile"))
from hearth.eval import qa  # noqa: E402

MODEL = "SmolLM2-135M-Instruct"
QUANTS = ["q4f16_1", "q4f32_1", "q4f32_mse", "q4f32_gguf"]
ENCODER = "all-MiniLM-L6-v2"
ENCODER_QUANTS = ["q8f32_1", "q0f32"]  # f32 activations: lavapipe runs f16 too, but the demo's default is f32 here
SET = REPO / "bench" / "qa" / "data"
CONTEXT = 4096  # the demo's context for SmolLM2 (demo_rag/src/main.ts MAX_CONTEXT)
K = 6  # the demo's TOP_K
WEBGPU_QUANT = "q4f32_1"


def log(msg: str) -> None:
    print(f"[qa] {msg}", file=sys.stderr, flush=True)


def package_roots(extra: list[str]) -> list[Path]:
    env = [p for p in os.environ.get("HEARTH_QA_PACKAGES", "").split(":") if p]
    # Named roots first: they hold the builds asked for; dist/ is the fallback.
    return [*map(Path, extra), *map(Path, env), REPO / "dist"]


def find_package(roots: list[Path], model: str, quant: str, target: str) -> tuple[Path | None, str]:
    """(package dir, "") or (None, why not)."""
    seen: list[str] = []
    for root in roots:
        pkg = root / model / quant
        manifest = pkg / "hearth-manifest.json"
        if not manifest.is_file():
            continue
        targets = json.loads(manifest.read_text()).get("targets", {})
        if target in targets:
            return pkg, ""
        seen.append(f"{pkg} has {', '.join(targets)}")
    if seen:
        return None, f"no {target} build ({'; '.join(seen)})"
    return None, f"not built under {', '.join(str(r) for r in roots)}"


def subset(prompts: list[qa.QaPrompt], n: int | None) -> list[qa.QaPrompt]:
    """n prompts spread over the set: evenly over the documents (6 questions each, in order), with the
    offset inside a document rotating so every kind of fact is asked; or all of them."""
    if n is None or n >= len(prompts):
        return prompts
    step = len(prompts) / n
    return [prompts[min(len(prompts) - 1, int(i * step) + i % max(1, int(step)))] for i in range(n)]


def interleave(prompts: list[qa.QaPrompt], document_of: dict[str, str]) -> list[qa.QaPrompt]:
    """Round-robin over the documents (one question of each, then the next of each, ...), so that a run
    stopped early has answered a spread of documents and kinds of fact, the same ones in every engine."""
    by_doc: dict[str, list[qa.QaPrompt]] = {}
    for p in prompts:
        by_doc.setdefault(document_of.get(p.id, ""), []).append(p)
    rounds = max((len(v) for v in by_doc.values()), default=0)
    return [v[i] for i in range(rounds) for v in by_doc.values() if i < len(v)]


def stage1(chat_pkg: Path, embedder: str, out: Path) -> dict[str, Any]:
    cmd = [
        "node",
        "--import",
        "tsx",
        str(REPO / "bench/qa/retrieve.mjs"),
        "--set",
        str(SET),
        "--chat",
        str(chat_pkg),
        "--embedder",
        embedder,
        "--out",
        str(out),
        "--k",
        str(K),
        "--context",
        str(CONTEXT),
    ]
    log(" ".join(cmd))
    subprocess.run(cmd, cwd=REPO / "sdk", check=True)
    return json.loads(out.read_text())


def rows_from_tokens(
    tokenizer: Any, tokens_by_id: dict[str, list[int]], prompts: list[qa.QaPrompt], ms: dict[str, float]
) -> list[dict[str, Any]]:
    """Score answers generated elsewhere (WebGPU, a reference run on another machine)."""
    rows = []
    for p in prompts:
        if p.id not in tokens_by_id:
            continue
        answer = str(tokenizer.decode(tokens_by_id[p.id], skip_special_tokens=True))
        rows.append(
            {
                "id": p.id,
                "tokens": tokens_by_id[p.id],
                "answer": answer,
                "answer_correct": qa.answer_correct(answer, p.accepted),
                "citations": qa.parse_citations(answer),
                "citation_correct": qa.citation_correct(answer, p.sources, p.sentence),
                "recall": p.recall,
                "in_prompt": p.in_prompt,
                "ms": ms.get(p.id, 0.0),
            }
        )
    return rows


def webgpu_entry(pkg: Path, prompts: list[qa.QaPrompt], max_new: int, work: Path) -> dict[str, Any]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(pkg))
    template = getattr(tok, "chat_template", None) or json.loads((pkg / "mlc-chat-config.json").read_text()).get(
        "chat_template"
    )
    job = {
        "maxNewTokens": max_new,
        "prompts": [{"id": p.id, "ids": qa._render_ids(tok, p.messages, template)} for p in prompts],
    }
    (work / "webgpu-in.json").write_text(json.dumps(job))
    out = work / "webgpu-out.json"
    cmd = [
        "node",
        "--import",
        "tsx",
        str(REPO / "bench/qa/webgpu.mjs"),
        str(pkg),
        "--in",
        str(work / "webgpu-in.json"),
        "--out",
        str(out),
    ]
    log(" ".join(cmd))
    subprocess.run(cmd, cwd=REPO / "sdk", check=True)
    return webgpu_entry_from(pkg, prompts, out)


def webgpu_entry_from(pkg: Path, prompts: list[qa.QaPrompt], out: Path) -> dict[str, Any]:
    """Score bench/qa/webgpu.mjs's output (written after every answer, so a stopped run counts too)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(pkg))
    res = json.loads(out.read_text())
    rows = rows_from_tokens(
        tok,
        {r["id"]: r["tokens"] for r in res["prompts"]},
        prompts,
        {r["id"]: round(r["ms"], 1) for r in res["prompts"]},
    )
    return {
        "engine": f"{WEBGPU_QUANT} webgpu (Node, Dawn)",
        "adapter": res.get("adapter"),
        "load_seconds": round(res["loadMs"] / 1000, 1),
        "metrics": qa.summarize(rows),
        "rows": rows,
    }


def reference_entry(prompts: list[qa.QaPrompt], pkg: Path, tokens_file: Path | None) -> dict[str, Any]:
    folder, how = qa_reference(pkg)
    if tokens_file is not None:
        from transformers import AutoTokenizer

        res = json.loads(tokens_file.read_text())
        rows = rows_from_tokens(
            AutoTokenizer.from_pretrained(folder),
            {r["id"]: r["tokens"] for r in res["prompts"]},
            prompts,
            {r["id"]: r["ms"] for r in res["prompts"]},
        )
        return {
            "engine": "reference fp32",
            "device": res.get("device"),
            "from": str(tokens_file),
            "metrics": qa.summarize(rows),
            "rows": rows,
            "reference": {"path": str(folder), "how": how},
        }
    t0 = time.perf_counter()
    engine = qa.ReferenceEngine(folder)
    entry = engine_entry(
        "reference fp32", engine, prompts, time.perf_counter() - t0, TMP / "qa" / "engine-reference.json"
    )
    entry["device"] = "cpu"
    entry["reference"] = {"path": str(folder), "how": how}
    return entry


def engine_entry(
    name: str, engine: Any, prompts: list[qa.QaPrompt], load_s: float, partial: Path | None = None
) -> dict[str, Any]:
    """Answers one prompt at a time; with `partial`, the entry so far is written after each answer, so a run
    stopped early (a busy 2-core machine) keeps what it measured."""
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    entry: dict[str, Any] = {"engine": name, "load_seconds": round(load_s, 1)}
    for i, p in enumerate(prompts):
        rows += qa.answer_rows(engine, [p], qa.DEFAULT_MAX_NEW_TOKENS)
        log(f"{name}: {i + 1}/{len(prompts)} answers ({time.perf_counter() - t0:.0f} s)")
        entry.update(metrics=qa.summarize(rows), rows=rows, complete=i + 1 == len(prompts))
        if partial is not None:
            partial.write_text(json.dumps(entry) + "\n")
    return entry


def run_one(
    what: str,
    prompts: list[qa.QaPrompt],
    packages: dict[str, Path],
    roots: list[Path],
    work: Path,
    reference_tokens: Path | None,
) -> dict[str, Any] | None:
    """One engine's entry ("reference", a quantization, or "webgpu"), also saved as work/engine-<what>.json."""
    if what == "reference":
        entry = reference_entry(prompts, next(iter(packages.values())), reference_tokens)
    elif what == "webgpu":
        pkg, why = find_package(roots, MODEL, WEBGPU_QUANT, "webgpu")
        if pkg is None:
            log(f"skip WebGPU: {why}")
            return None
        entry = webgpu_entry(pkg, prompts, qa.DEFAULT_MAX_NEW_TOKENS, work)
    else:
        t0 = time.perf_counter()
        engine = qa.PackageEngine(packages[what])
        entry = engine_entry(f"{what} native", engine, prompts, time.perf_counter() - t0, work / f"engine-{what}.json")
        entry["package"] = str(packages[what])
    (work / f"engine-{what}.json").write_text(json.dumps(entry) + "\n")
    return entry


def assemble(
    entries: list[dict[str, Any]],
    prompts_doc: dict[str, Any],
    prompts: list[qa.QaPrompt],
    skipped: list[dict[str, str]],
    out_name: str,
    seconds: float,
) -> dict[str, Any]:
    """Agreement columns, the table, bench/results/<out_name>.json."""
    ids = {p.id for p in prompts}
    ref = next((e for e in entries if e["engine"].startswith("reference")), None)
    native = {e["engine"].split()[0]: e for e in entries if e["engine"].endswith("native")}
    for e in entries:
        if e is not ref and ref is not None:
            e["vs_reference"] = qa.token_agreement(e["rows"], ref["rows"])
        if "webgpu" in e["engine"] and WEBGPU_QUANT in native:
            e["vs_native"] = qa.token_agreement(e["rows"], native[WEBGPU_QUANT]["rows"])
            # The reference on the same (sub)set of questions, for an accuracy to compare with.
        if ref is not None and e is not ref and len(e["rows"]) < len(ref["rows"]):
            sub = {r["id"] for r in e["rows"]}
            e["reference_on_same_questions"] = qa.summarize([r for r in ref["rows"] if r["id"] in sub])
    stage1 = {k: v for k, v in prompts_doc.items() if k != "prompts"}
    extra = {
        "stage1": stage1,
        "skipped": skipped,
        "questions": sorted(ids),
        "max_new_tokens": qa.DEFAULT_MAX_NEW_TOKENS,
        "seconds": round(seconds, 1),
        "loadavg": loadavg(),
    }
    write_result(out_name, entries, extra)

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}"

    table = []
    for e in entries:
        m = e["metrics"]
        agree = e.get("vs_native") or e.get("vs_reference")
        same = (
            "-"
            if agree is None
            else f"{agree['identical']}/{agree['compared']}" + (" native" if "vs_native" in e else " ref")
        )
        same_q = e.get("reference_on_same_questions")
        table.append(
            [
                e["engine"],
                m["n"],
                pct(m["answer_accuracy"]),
                pct(same_q["answer_accuracy"]) if same_q else "-",
                pct(m["citation_accuracy"]),
                pct(m["recall_at_k"]),
                same,
                f"{m['seconds']:.0f}",
            ]
        )
    emb = prompts_doc["embedder"]
    print_table(
        f"document QA: {len(ids)} questions, greedy <= {qa.DEFAULT_MAX_NEW_TOKENS} tokens; "
        f"retrieval {emb['modelId']} ({emb['kind']}), "
        f"k={prompts_doc['k']}, context {prompts_doc['chat']['contextWindow']}; recall@{prompts_doc['k']} on all "
        f"{prompts_doc['summary']['questions']} questions {pct(prompts_doc['summary']['recallAtK'])} %",
        [
            "engine",
            "n",
            "answer acc %",
            "reference on its n %",
            "citation acc %",
            f"recall@{prompts_doc['k']} %",
            "same tokens",
            "gen s",
        ],
        table,
    )
    for s in skipped:
        print(f"skipped {s['engine']}: {s['reason']}")
    return {"results": entries, **extra}


def run(
    quick: bool,
    package_root: list[str] | None = None,
    embedder: str | None = None,
    webgpu: int | None = None,
    limit: int | None = None,
    prompts_file: Path | None = None,
    only: str | None = None,
    merge: bool = False,
    reference_tokens: Path | None = None,
) -> dict[str, Any] | None:
    t_start = time.perf_counter()
    roots = package_roots(package_root or [])
    work = TMP / "qa"
    work.mkdir(parents=True, exist_ok=True)
    skipped: list[dict[str, str]] = []
    packages: dict[str, Path] = {}
    for quant in QUANTS:
        pkg, why = find_package(roots, MODEL, quant, "llvm")
        if pkg is None:
            log(f"skip {MODEL} {quant}: {why}")
            skipped.append({"engine": f"{quant} native", "reason": why})
        else:
            packages[quant] = pkg
    if not packages:
        raise RuntimeError(
            f"no {MODEL} package with an llvm build under {', '.join(map(str, roots))}: run `make packages` first"
        )

    if prompts_file is None:
        if embedder is None:
            for quant in ENCODER_QUANTS:
                pkg, why = find_package(roots, ENCODER, quant, "webgpu")
                if pkg is not None:
                    embedder = str(pkg)
                    break
            else:
                log(f"no {ENCODER} webgpu package ({why}): retrieval uses the test embedder (not a model)")
                embedder = "test"
        prompts_file = work / "prompts.json"
        t0 = time.perf_counter()
        stage1(next(iter(packages.values())), embedder, prompts_file)
        log(f"stage 1 in {time.perf_counter() - t0:.0f} s")
    prompts_doc = json.loads(prompts_file.read_text())
    _, all_prompts = qa.load_prompts(prompts_file)
    document_of = {str(p["id"]): str(p.get("document", "")) for p in prompts_doc.get("prompts", [])}
    prompts = interleave(subset(all_prompts, limit if limit is not None else (12 if quick else None)), document_of)
    n_webgpu = webgpu if webgpu is not None else (1 if quick else 6)
    out_name = "qa-quick" if quick else "qa"

    if only is not None:
        run_one(
            only, subset(prompts, n_webgpu) if only == "webgpu" else prompts, packages, roots, work, reference_tokens
        )
        return None
    entries: list[dict[str, Any]] = []
    if merge:
        for what in ["reference", *packages, "webgpu"]:
            f = work / f"engine-{what}.json"
            wg_pkg = find_package(roots, MODEL, WEBGPU_QUANT, "webgpu")[0] if what == "webgpu" else None
            if f.is_file():
                entries.append(json.loads(f.read_text()))
            elif wg_pkg is not None and (work / "webgpu-out.json").is_file():
                entries.append(webgpu_entry_from(wg_pkg, prompts, work / "webgpu-out.json"))
            else:
                skipped.append({"engine": what, "reason": f"no {f.relative_to(REPO)} (not run)"})
    else:
        for what in ["reference", *packages]:
            entries.append(run_one(what, prompts, packages, roots, work, reference_tokens))  # type: ignore[arg-type]
        if n_webgpu > 0:
            e = run_one("webgpu", subset(prompts, n_webgpu), packages, roots, work, None)
            if e is None:
                skipped.append({"engine": "webgpu", "reason": f"no {MODEL} {WEBGPU_QUANT} webgpu build"})
            else:
                entries.append(e)
    return assemble(entries, prompts_doc, prompts, skipped, out_name, time.perf_counter() - t_start)


def qa_reference(pkg: Path) -> tuple[Path, str]:
    from hearth.eval.decoder import read_manifest, resolve_reference

    return resolve_reference(read_manifest(pkg), None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="12 of the 72 questions (one per document), 1 on WebGPU")
    ap.add_argument(
        "--package-root", action="append", default=[], help="another folder holding <model>/<quant> packages"
    )
    ap.add_argument(
        "--embedder", default=None, help="encoder package dir for retrieval, or 'test' (default: dist's MiniLM)"
    )
    ap.add_argument(
        "--webgpu", type=int, default=None, help="questions answered on WebGPU (default 6; quick 1; 0: none)"
    )
    ap.add_argument(
        "--limit",
        type=int,
        default=None,
        help="questions for stage 2, spread over the documents (default all 72; quick 12)",
    )
    ap.add_argument(
        "--prompts", type=Path, default=None, help="reuse a stage-1 prompts.json instead of running stage 1"
    )
    ap.add_argument(
        "--only",
        default=None,
        help="run one engine (reference, a quantization, webgpu) into bench/tmp/qa/engine-*.json",
    )
    ap.add_argument(
        "--merge", action="store_true", help="assemble the result from the bench/tmp/qa/engine-*.json of --only runs"
    )
    ap.add_argument(
        "--reference-tokens",
        type=Path,
        default=None,
        help="reference answers computed elsewhere (bench/qa/reference_ids.py), instead of running transformers here",
    )
    args = ap.parse_args()
    run(
        args.quick,
        args.package_root,
        args.embedder,
        args.webgpu,
        args.limit,
        args.prompts,
        args.only,
        args.merge,
        args.reference_tokens,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
