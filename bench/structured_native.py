"""Cost of structured output on the native /v1 path (issue 16): grammar compile time per JSON Schema
and decode speed with and without a JSON-Schema constraint, on a chat package's llvm build (the model
`hearth serve --native-api` runs), through the same ChatModel.start/step the server calls.

    .venv/bin/python bench/structured_native.py [--model tiny-llama-trained/q4f32_1] [--tokens 120] [--runs 3]

Decode speed: greedy, the same prompt; the unconstrained run generates exactly --tokens (end-of-sequence
ignored), the constrained one an array schema whose length fixes the token count near --tokens. tok/s
counts decode steps (prefill excluded); mask_ms is the matcher's share (fill the bitmask, unpack it).
Compile: each schema of tests/structured_schemas.py compiled once against the model's tokenizer (a
fresh Grammars, so nothing is cached), then once more (the cache hit every later request gets).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "scripts"))

from hearth.serve.native_models import ChatModel, Generation, Sampling, find_native_packages  # noqa: E402
from hearth.serve.structured import Grammars, GrammarSpec, json_schema_grammar  # noqa: E402
from structured_schemas import SCHEMAS  # noqa: E402


def open_model(dist: Path, model_id: str) -> ChatModel:
    found = [p for p in find_native_packages(dist) if p.id == model_id and p.task == "chat"]
    if not found:
        raise SystemExit(f"no chat package {model_id} with an llvm build under {dist}/ (build it first)")
    return ChatModel(found[0])


def decode_run(model: ChatModel, prompt: list[int], tokens: int, grammars: Grammars | None, spec: GrammarSpec | None):
    """(decode steps, decode seconds, mask ms, text) of one greedy run."""
    sampling = Sampling(temperature=0.0, top_p=1.0, rng=np.random.default_rng(0))
    eos = set() if spec is None else model.eos_ids  # unconstrained: run the full budget
    gen = Generation(model.tokenizer, eos, [], tokens)
    constraint = None if spec is None or grammars is None else grammars.constraint(spec)
    model.start(prompt, sampling, gen, constraint)
    steps, t0 = 0, time.perf_counter()
    while gen.finish_reason is None:
        model.step(sampling, gen, constraint)
        steps += 1
    seconds = time.perf_counter() - t0
    return steps, seconds, (constraint.mask_ms if constraint is not None else 0.0), gen.emitted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny-llama-trained/q4f32_1")
    ap.add_argument("--dist", type=Path, default=REPO / "dist")
    ap.add_argument("--tokens", type=int, default=120)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    model = open_model(args.dist, args.model)
    stops = sorted(model.eos_ids)

    # -- compile time per schema ------------------------------------------------------------------
    fresh = Grammars(model.tokenizer, model.vocab_size, stops)
    rows = []
    for name, schema in SCHEMAS.items():
        spec = GrammarSpec(f"bench\0{name}", lambda xgr, s=schema: json_schema_grammar(xgr, s))
        t0 = time.perf_counter()
        fresh.compile(spec)
        cold = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        fresh.compile(spec)
        warm = (time.perf_counter() - t0) * 1000
        rows.append({"schema": name, "compile_ms": round(cold, 3), "cached_ms": round(warm, 4)})
    for r in rows:
        print(json.dumps(r))
    cold_all = [r["compile_ms"] for r in rows]
    print(
        json.dumps(
            {
                "model": args.model,
                "vocab": model.vocab_size,
                "schemas": len(rows),
                "compile_ms_median": round(statistics.median(cold_all), 3),
                "compile_ms_max": round(max(cold_all), 3),
                "cached_ms_max": max(r["cached_ms"] for r in rows),
            }
        )
    )

    # -- decode speed with and without a schema ---------------------------------------------------
    messages = [{"role": "user", "content": "List some numbers as JSON."}]
    prompt = model.prompt_ids(messages)
    budget = min(args.tokens, model.context_window - len(prompt) - 1)
    # Each item is one to three digits plus ", ": about two to four tokens; a fixed count pins the length.
    items = max(1, budget // 4)
    schema = {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": 999},
        "minItems": items,
        "maxItems": items,
    }
    grammars = Grammars(model.tokenizer, model.vocab_size, stops)
    spec = GrammarSpec("bench\0numbers", lambda xgr: json_schema_grammar(xgr, schema))
    decode_run(model, prompt, 8, None, None)  # warm-up (first calls build caches)
    decode_run(model, prompt, budget, grammars, spec)
    free, bound = [], []
    for _ in range(args.runs):
        steps, secs, _, _ = decode_run(model, prompt, budget, None, None)
        free.append(steps / secs)
        steps, secs, mask_ms, text = decode_run(model, prompt, budget, grammars, spec)
        bound.append((steps / secs, mask_ms / max(steps, 1), steps))
        json.loads(text)  # the constrained answer is the schema's JSON
    free_tps = statistics.median(free)
    bound_tps = statistics.median(b[0] for b in bound)
    print(
        json.dumps(
            {
                "model": args.model,
                "decode_tok_s_free": round(free_tps, 1),
                "decode_tok_s_schema": round(bound_tps, 1),
                "cost_pct": round(100 * (1 - bound_tps / free_tps), 1),
                "mask_ms_per_token": round(statistics.median(b[1] for b in bound), 4),
                "schema_tokens": bound[0][2],
                "free_tokens": budget,
                "runs": args.runs,
            }
        )
    )


if __name__ == "__main__":
    main()
