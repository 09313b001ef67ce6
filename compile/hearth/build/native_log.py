"""Keep TVM's C++ log lines out of the user's terminal during a build, and count them.

TVM writes its warnings straight to file descriptor 2 (C++ `LOG(WARNING)`), so Python's logging and
`warnings` filters never see them. A compile of SmolLM2 prints ~158, all expected (for example "Fast mode
segfaults when there are out-of-bounds indices", from `take` on token ids the SDK checks). They go to a
log file instead; the caller prints one line with the count and the path. Python output keeps going to
the terminal through `terminal`, a duplicate of the original descriptor.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO


@dataclass
class NativeLog:
    path: Path
    terminal: TextIO  # where the user's own output should go while fd 2 is redirected

    def warnings(self) -> int:
        text = self.path.read_text(errors="replace") if self.path.exists() else ""
        return sum(1 for line in text.splitlines() if "Warning" in line or "warning" in line)


def _writes_to_fd2(stream: TextIO) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return False


@contextmanager
def native_stderr_to(path: Path) -> Iterator[NativeLog]:
    """Redirect fd 2 to `path` for the block (appending); yields the log and a handle on the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    # Python's sys.stderr writes to fd 2 unless something (a test's capture, an embedding app) replaced it;
    # a replaced stream is where the user's output belongs, and it is not redirected.
    terminal = os.fdopen(os.dup(saved), "w", buffering=1) if _writes_to_fd2(sys.stderr) else sys.stderr
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield NativeLog(path, terminal)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if terminal is not sys.stderr:
                terminal.close()
