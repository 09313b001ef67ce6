"""The document-QA set answered by a SmolLM2 package's wasm-cpu build (the no-WebGPU fallback), scored and
compared token for token with the engines of an earlier `bench/qa_rag.py` run.

The wasm-cpu build runs its own kernels (SIMD128, its decode GEMV: build/wasm_gemv.py), whose summation order
differs from the native build's, so its answers are checked on the same prompts: bench/qa/webgpu.mjs with
`--target wasm-cpu` (the SDK's DecoderModel in Node), greedy, at most qa.DEFAULT_MAX_NEW_TOKENS new tokens, in
qa_rag's round-robin document order. Answers are written after each question, so a stopped run still counts;
`--resume` skips the questions already in the output.

Usage: .venv/bin/python bench/qa_wasm_cpu.py <package> [--limit N] [--work bench/tmp/qa] [--out DIR] [--resume]
       (work: the qa_rag run's folder with prompts.json and engine-*.json; out: default <work>/wasm-cpu)
Prints the accuracy of the answered questions, the reference's on the same questions and the token agreement
with each earlier engine; writes <out>/summary.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import qa_rag
from common import REPO
from hearth.eval import qa


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("package", type=Path)
    ap.add_argument("--limit", type=int, default=None, help="the first N questions in round-robin order")
    ap.add_argument("--work", type=Path, default=REPO / "bench/tmp/qa")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--resume", action="store_true", help="keep the answers already in <out>/tokens.json")
    args = ap.parse_args()
    out = args.out or args.work / "wasm-cpu"
    out.mkdir(parents=True, exist_ok=True)
    prompts_file = args.work / "prompts.json"
    doc = json.loads(prompts_file.read_text())
    _, all_prompts = qa.load_prompts(prompts_file)
    document_of = {str(p["id"]): str(p.get("document", "")) for p in doc.get("prompts", [])}
    prompts = qa_rag.interleave(all_prompts, document_of)[: args.limit]

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(args.package))
    tokens_file = out / "tokens.json"
    done = {r["id"]: r for r in json.loads(tokens_file.read_text())["prompts"]} if args.resume else {}
    todo = [p for p in prompts if p.id not in done]
    if todo:
        job = {
            "maxNewTokens": qa.DEFAULT_MAX_NEW_TOKENS,
            "prompts": [{"id": p.id, "ids": qa._render_ids(tok, p.messages, tok.chat_template)} for p in todo],
        }
        (out / "in.json").write_text(json.dumps(job))
        run_file = out / "tokens-run.json"
        cmd = ["node", "--import", "tsx", str(REPO / "bench/qa/webgpu.mjs"), str(args.package.resolve())]
        cmd += ["--target", "wasm-cpu", "--in", str((out / "in.json").resolve()), "--out", str(run_file.resolve())]
        subprocess.run(cmd, cwd=REPO / "sdk", check=True)
        for r in json.loads(run_file.read_text())["prompts"]:
            done[r["id"]] = r
        tokens_file.write_text(json.dumps({"package": str(args.package), "prompts": list(done.values())}) + "\n")

    rows = qa_rag.rows_from_tokens(
        tok, {i: r["tokens"] for i, r in done.items()}, prompts, {i: round(r["ms"], 1) for i, r in done.items()}
    )
    ids = {r["id"] for r in rows}
    summary: dict = {"package": str(args.package), "wasm_cpu": qa.summarize(rows)}
    for engine_file in sorted(args.work.glob("engine-*.json")):
        other = json.loads(engine_file.read_text())
        name = engine_file.stem.removeprefix("engine-")
        summary[f"{name}_same_questions"] = qa.summarize([r for r in other["rows"] if r["id"] in ids])
        summary[f"vs_{name}"] = qa.token_agreement(rows, other["rows"])
    (out / "summary.json").write_text(json.dumps({**summary, "rows": rows}, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
