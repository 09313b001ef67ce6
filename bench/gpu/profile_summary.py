"""Summarise a V8 .cpuprofile (bench/gpu/profile_run.sh): self time per function, and native time
(Dawn calls, GC) attributed to the JavaScript function that called it.

    python3 bench/gpu/profile_summary.py <file.cpuprofile> [top]
"""

from __future__ import annotations

import collections
import json
import sys


def main() -> int:
    prof = json.load(open(sys.argv[1]))
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    nodes = {n["id"]: n for n in prof["nodes"]}
    parent = {c: n["id"] for n in prof["nodes"] for c in n.get("children", [])}

    def name(i: int) -> str:
        cf = nodes[i]["callFrame"]
        return f"{cf['functionName'] or '(anon)'} {cf['url'].rsplit('/', 1)[-1]}:{cf['lineNumber']}"

    own: collections.Counter[str] = collections.Counter()
    native_by_caller: collections.Counter[str] = collections.Counter()
    for sample, dt in zip(prof["samples"], prof["timeDeltas"]):
        n = name(sample)
        own[n] += dt
        if n.startswith("(anon) :-1") and sample in parent:
            native_by_caller[name(parent[sample])] += dt
    total = sum(own.values())
    print(f"total {total / 1e3:.0f} ms")
    for k, v in own.most_common(top):
        print(f"{v / 1e3:9.1f} ms {100 * v / total:5.1f}%  {k}")
    print("native time by calling function:")
    for k, v in native_by_caller.most_common(15):
        print(f"{v / 1e3:9.1f} ms {100 * v / total:5.1f}%  {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
