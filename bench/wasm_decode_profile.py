"""Where a wasm-cpu decode step's time goes, per kernel, measured in the wasm engine itself (Node's V8).

bench/cpu_kernels.py times each kernel natively (x86, AVX); the wasm-cpu build runs different code (SIMD128,
its own one-row matmul schedule), so this profiles the real thing: `node --cpu-prof` around
sdk/scripts/bench-llm.mjs (`--target wasm-cpu`, mostly decode steps), then charges every sample to the nearest
caller that is a named kernel. V8 names wasm functions only by index (the link strips the name section), so
the names come from the module's system-lib registrations: the disassembly (binaryen's `wasm-dis`, installed
with Debian's emscripten) calls `TVMFFIEnvModRegisterSystemLibSymbol(name, table index)` once per kernel, the
name a C string in a data segment and the index an entry of the element segment.

Usage: .venv/bin/python bench/wasm_decode_profile.py <package folder with a wasm-cpu build> [--decode-new 128]
       [--top 25]
Prints ms and share per kernel (decode kernels and the protocol's short prefills together; "other wasm" is the
VM and runtime, "JS: ..." the host side).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REGISTER_EXPORT = "TVMFFIEnvModRegisterSystemLibSymbol"


def _data_segments(wat: str) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for m in re.finditer(r'\(data (?:\$\S+ )?\(i32\.const (\d+)\) "((?:[^"\\]|\\.)*)"\)', wat):
        raw, buf, i = m.group(2), bytearray(), 0
        while i < len(raw):
            if raw[i] == "\\":
                nxt = raw[i + 1 : i + 3]
                if re.fullmatch(r"[0-9a-f]{2}", nxt):
                    buf.append(int(nxt, 16))
                    i += 3
                    continue
                buf.append({"n": 10, "t": 9, "r": 13}.get(raw[i + 1], ord(raw[i + 1])))
                i += 2
                continue
            buf.append(ord(raw[i]))
            i += 1
        out[int(m.group(1))] = bytes(buf)
    return out


def kernel_names(wasm: Path) -> dict[int, str]:
    """V8 function index -> kernel name, from the registrations in the module's disassembly."""
    if shutil.which("wasm-dis") is None:
        raise SystemExit("wasm-dis (binaryen) is not installed: apt-get install binaryen (emscripten pulls it in)")
    wat = subprocess.run(["wasm-dis", str(wasm)], capture_output=True, text=True, check=True).stdout
    register = re.search(rf'\(export "{REGISTER_EXPORT}" \(func (\$\S+)\)\)', wat)
    elem = re.search(r"\(elem \(i32\.const (\d+)\) ([^)]*)\)", wat)
    if register is None or elem is None:
        raise SystemExit(f"{wasm}: no {REGISTER_EXPORT} export or element segment: not a TVM system-lib wasm")
    data = _data_segments(wat)
    table_base, table = int(elem.group(1)), elem.group(2).split()
    imports = len(re.findall(r'\(import "[^"]*" "[^"]*" \(func', wat))

    def c_string(addr: int) -> str | None:
        for off, b in data.items():
            if off <= addr < off + len(b):
                rest = b[addr - off :]
                return rest[: rest.index(0)].decode(errors="replace") if 0 in rest else None
        return None

    lines = wat.split("\n")
    names: dict[int, str] = {}
    for i, line in enumerate(lines):
        if line.strip() != f"(call {register.group(1)}":
            continue
        operands, buf, depth = [], "", 0
        for nxt in lines[i + 1 : i + 24]:
            s = nxt.strip()
            if s == ")" and depth == 0:
                break
            buf += " " + s
            depth += s.count("(") - s.count(")")
            if depth == 0:
                operands.append(buf)
                buf = ""
            if len(operands) == 2:
                break
        if len(operands) != 2:
            continue
        # Both operands are constants (or a zero base plus a constant) in the registration code.
        name_addr, slot = (sum(int(c) for c in re.findall(r"i32\.const (-?\d+)", op)) for op in operands)
        name = c_string(name_addr)
        if name is None or not table_base <= slot < table_base + len(table):
            continue
        func = table[slot - table_base]
        if func.startswith("$") and func[1:].isdigit():
            names[int(func[1:]) + imports] = name.removeprefix("__tvm_ffi_")
    if not names:
        raise SystemExit(f"{wasm}: found no kernel registrations")
    return names


def attribute(profile: dict, names: dict[int, str]) -> collections.Counter[str]:
    nodes = {n["id"]: n for n in profile["nodes"]}
    parent = {c: n["id"] for n in profile["nodes"] for c in n.get("children", [])}
    cache: dict[int, str] = {}

    def label(nid: int) -> str:
        if nid in cache:
            return cache[nid]
        x: int | None = nid
        out = None
        while x is not None:
            m = re.match(r"wasm-function\[(\d+)\]", nodes[x]["callFrame"]["functionName"])
            if m and int(m.group(1)) in names:
                out = names[int(m.group(1))]
                break
            x = parent.get(x)
        if out is None:
            fn = nodes[nid]["callFrame"]["functionName"]
            out = "other wasm" if fn.startswith("wasm-function") else f"JS: {fn or '(anonymous)'}"
        cache[nid] = out
        return out

    spent: collections.Counter[str] = collections.Counter()
    for sample, dt in zip(profile["samples"], profile["timeDeltas"]):
        spent[label(sample)] += dt
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("package", type=Path)
    ap.add_argument("--decode-new", type=int, default=128)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    wasm = sorted(args.package.resolve().glob("*-wasm-cpu.wasm"))
    if not wasm:
        raise SystemExit(f"{args.package}: no *-wasm-cpu.wasm (compile with --target wasm-cpu)")
    names = kernel_names(wasm[0])
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["node", "--cpu-prof", f"--cpu-prof-dir={tmp}", "scripts/bench-llm.mjs", str(args.package.resolve())]
        cmd += ["--target", "wasm-cpu", "--runs", "1", "--prefill", "16", "--decode-new", str(args.decode_new)]
        cmd += ["--decode-prompt", "16", "--ttft-prompt", "16"]
        proc = subprocess.run(cmd, cwd=REPO / "sdk", capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"bench-llm.mjs failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        # The main thread's profile is the largest (a second, near-empty one comes from a loader thread).
        profile = max(Path(tmp).glob("*.cpuprofile"), key=lambda p: p.stat().st_size)
        spent = attribute(json.loads(profile.read_text()), names)
    busy = sum(v for k, v in spent.items() if k != "JS: (idle)")
    print(f"{wasm[0].name}: {len(names)} kernels named; {busy / 1e3:.0f} ms busy")
    for name, us in spent.most_common(args.top):
        print(f"{us / 1e3:9.1f} ms {100 * us / busy:5.1f} %  {name}")


if __name__ == "__main__":
    main()
