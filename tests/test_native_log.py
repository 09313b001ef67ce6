"""TVM's C++ warnings go to a log file during a build (hearth.build.native_log), not to the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hearth.build.native_log import native_stderr_to


def test_fd2_goes_to_the_log_and_is_counted(tmp_path: Path, capfd) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "build.log"
    with native_stderr_to(log) as native:
        os.write(2, b"[12:00:00] transform.h:1261: Warning: Fast mode segfaults\n" * 3)
        native.terminal.write("progress line\n")
    os.write(2, b"after\n")
    out = capfd.readouterr()
    assert native.warnings() == 3
    assert "Fast mode" in log.read_text() and "Fast mode" not in out.err
    assert "after" in out.err  # fd 2 is restored


def test_a_real_tvm_warning_is_captured(tmp_path: Path) -> None:
    # TVM's own C++ logging (not Python's): a wasm32 target prints "Set native vector bits" at build time.
    code = (
        "import sys; from pathlib import Path; from hearth.build.native_log import native_stderr_to\n"
        "import tvm\n"
        f"with native_stderr_to(Path({str(tmp_path / 'tvm.log')!r})) as n:\n"
        "    from tvm import te\n"
        "    a = te.placeholder((16,), name='a'); b = te.compute((16,), lambda i: a[i] * 2, name='b')\n"
        "    wasm = tvm.target.Target({'kind': 'llvm', 'mtriple': 'wasm32-unknown-unknown-wasm'})\n"
        "    tvm.build(te.create_prim_func([a, b]), target=wasm)\n"
        "print(n.warnings())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "vector bits" not in proc.stderr
    assert int(proc.stdout.strip().splitlines()[-1]) >= 1, (tmp_path / "tvm.log").read_text()
