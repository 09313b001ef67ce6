"""The measurement protocol every engine follows (same as sdk/scripts/bench-llm.mjs), with no
dependencies beyond the standard library, so device-side drivers (bench/gpu/) can use it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def prompt_ids(n: int, vocab: int, salt: int = 0) -> list[int]:
    """The same ids bench-llm.mjs uses (values do not change the speed)."""
    return [(i * 7919 + 104729 * salt + 13) % vocab for i in range(n)]


def run_protocol(
    reset: Callable[[], None],
    prefill: Callable[[list[int]], int],
    decode: Callable[[int], int],
    vocab: int,
    max_seq: int,
    runs: int,
    prefill_lens: list[int],
    decode_new: int,
    decode_prompt: int = 16,
    decode_run: Callable[[int, int], list[int]] | None = None,
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """bench-llm.mjs's measurement loop, for Python engines. prefill/decode return the argmax id.
    `decode_run(tok, n)`: the timed decode run as one call returning the n tokens (bench-llm.mjs's
    HEARTH_GPU_ARGMAX=ahead), instead of n decode calls."""
    samples: dict[str, list[float]] = {}
    skipped: dict[str, str] = {}
    reset()
    tok = prefill(prompt_ids(min(decode_prompt, max_seq - 4), vocab, 9))
    for _ in range(3):
        tok = decode(tok)
    for n in prefill_lens:
        if n <= max_seq:
            reset()
            prefill(prompt_ids(n, vocab, 8))
    for n in prefill_lens:
        if n > max_seq:
            skipped[f"prefill_{n}"] = f"prompt of {n} tokens exceeds the context window ({max_seq})"
            continue
        xs = []
        for r in range(runs):
            reset()
            ids = prompt_ids(n, vocab, r + 1)
            t0 = time.perf_counter()
            prefill(ids)
            xs.append(n / (time.perf_counter() - t0))
        samples[f"prefill_{n}_tok_s"] = xs
    if 128 <= max_seq:
        xs = []
        for r in range(runs):
            reset()
            ids = prompt_ids(128, vocab, r + 11)
            t0 = time.perf_counter()
            prefill(ids)
            xs.append((time.perf_counter() - t0) * 1000)
        samples["ttft_ms"] = xs
    if decode_prompt + decode_new <= max_seq:
        xs = []
        for r in range(runs):
            reset()
            tok = prefill(prompt_ids(decode_prompt, vocab, r + 21))
            t0 = time.perf_counter()
            if decode_run is not None:
                got = decode_run(tok, decode_new)
                if len(got) != decode_new:
                    raise RuntimeError(f"decode_run returned {len(got)} of {decode_new} tokens")
            else:
                for _ in range(decode_new):
                    tok = decode(tok)
            xs.append(decode_new / (time.perf_counter() - t0))
        samples["decode_tok_s"] = xs
    else:
        skipped["decode_tok_s"] = f"{decode_prompt} + {decode_new} tokens exceed the context window ({max_seq})"
    return samples, skipped
