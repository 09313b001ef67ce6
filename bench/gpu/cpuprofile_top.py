"""Where the host's time went in a Node CPU profile (`node --cpu-prof`): self and inclusive time per function.

Used on the GPU run's WebGPU decode (device_run.sh PROFILE=1) to split a decode token's host cost between
the Relax VM (wasm), tvmjs's JS glue, Hearth's launch path (webgpu-dispatch.ts) and Dawn's native calls
(which V8 charges to the JS function that called them, as self time).

    python bench/gpu/cpuprofile_top.py <file.cpuprofile> [--top 30]
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path


def summarize(profile: dict, top: int) -> list[tuple[str, float, float]]:
    nodes = {n["id"]: n for n in profile["nodes"]}
    parent = {c: n["id"] for n in profile["nodes"] for c in n.get("children", [])}
    deltas = profile["timeDeltas"]
    self_us: collections.Counter[int] = collections.Counter()
    for sample, dt in zip(profile["samples"], deltas, strict=True):
        self_us[sample] += dt

    def label(nid: int) -> str:
        f = nodes[nid]["callFrame"]
        url = Path(f.get("url", "")).name or "-"
        return f"{f.get('functionName') or '(anonymous)'} [{url}:{f.get('lineNumber', -1) + 1}]"

    by_self: collections.Counter[str] = collections.Counter()
    by_incl: collections.Counter[str] = collections.Counter()
    for nid, us in self_us.items():
        by_self[label(nid)] += us
        seen: set[str] = set()
        cur: int | None = nid
        while cur is not None:  # inclusive: charge each distinct function on the stack once
            lab = label(cur)
            if lab not in seen:
                by_incl[lab] += us
                seen.add(lab)
            cur = parent.get(cur)
    return [(lab, by_self[lab] / 1e3, by_incl[lab] / 1e3) for lab, _ in by_self.most_common(top)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("profile", type=Path)
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    profile = json.loads(args.profile.read_text())
    total = sum(profile["timeDeltas"]) / 1e3
    print(f"total sampled: {total:.0f} ms")
    print(f"{'self ms':>9} {'incl ms':>9}  function")
    for lab, self_ms, incl_ms in summarize(profile, args.top):
        print(f"{self_ms:9.1f} {incl_ms:9.1f}  {lab}")


if __name__ == "__main__":
    main()
