"""One line per row of a device call's results (bench/gpu/device_run.sh's $OUT): medians of prefill 128 / 512
and decode tok/s, and per package the 512-token prefill's GPU time with its six largest kernels (ms).

    python3 bench/gpu/summarize_call.py <OUT>

Runs on the device machine (its python3, the standard library only) at the end of a call script.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def median(xs: list[float] | None) -> int | None:
    return round(sorted(xs)[len(xs) // 2]) if xs else None


def main(out: Path) -> None:
    for line in (out / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        s = (r["result"] or {}).get("samples") or {}
        print(
            r["package"],
            r["engine"],
            *(median(s.get(k)) for k in ("prefill_128_tok_s", "prefill_512_tok_s", "decode_tok_s")),
        )
    times = out / "kernel-times.jsonl"
    for line in times.read_text().splitlines() if times.exists() else []:
        r = json.loads(line)
        res = r["result"] or {}
        kernels = {k: round(v["ms"], 2) for k, v in list((res.get("byKernel") or {}).items())[:6]}
        gpu, wall = res.get("gpuMs"), res.get("prefillMs")
        print(r["package"], gpu and round(gpu, 2), wall and round(wall, 2), res.get("token"), kernels)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
