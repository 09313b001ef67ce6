"""Progress of a long evaluation, readable both on a terminal and in a log.

The evaluators report `progress(step, done, total)` (a step's name, units done, units in the
step). On a terminal a rich bar with an ETA shows it; anywhere else (a pipe, a CI log, `make`
output captured to a file) the bar would vanish, so plain lines are printed instead: one when a
step starts, then whenever another `every_pct` % is done or `every_s` seconds have passed, and one
when it completes. Each line carries the step, done/total, percent, elapsed time and an ETA.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

Clock = Callable[[], float]


def fmt_duration(seconds: float) -> str:
    """1h02m, 3m05s, 42s: short, fixed style for log lines."""
    s = max(0, int(round(seconds)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class LineProgress:
    """Plain progress lines (for a log): see the module docstring."""

    def __init__(
        self,
        label: str,
        write: Callable[[str], None],
        *,
        every_pct: float = 10.0,
        every_s: float = 30.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.label = label
        self.write = write
        self.every_pct = every_pct
        self.every_s = every_s
        self.clock = clock
        self.t0 = clock()
        self.step: str | None = None
        self.step_t0 = self.t0
        self.last_t = self.t0
        self.last_pct = -1.0
        self.finished = False
        # (time, done) of the step's first update with done > 0: the rate for the ETA is taken from
        # there, so a step's set-up (e.g. the reference forward before the first position) does not
        # inflate the early estimates.
        self.first: tuple[float, int] | None = None

    def __call__(self, step: str, done: int, total: int) -> None:
        now = self.clock()
        if step != self.step:
            self.step, self.step_t0, self.last_pct, self.finished, self.first = step, now, -1.0, False, None
            self.last_t = now
            self._line(step, done, total, now)
            return
        if self.finished:
            return
        if self.first is None and done > 0:
            self.first = (now, done)
        pct = 100.0 * done / total if total > 0 else 0.0
        complete = total > 0 and done >= total
        if complete or pct >= self.last_pct + self.every_pct or now - self.last_t >= self.every_s:
            self._line(step, done, total, now)

    def _line(self, step: str, done: int, total: int, now: float) -> None:
        step_s = now - self.step_t0
        parts = [f"{self.label}: {step}"]
        if total > 1:
            pct = 100.0 * done / total
            parts.append(f"{done:,}/{total:,} ({pct:.0f} %)")
            self.last_pct = pct - pct % self.every_pct  # lines land on 10 %, 20 %, ... even if updates are coarse
            if done >= total:
                self.finished = True
                parts.append(f"step took {fmt_duration(step_s)}")
            elif self.first is not None and done > self.first[1] and now > self.first[0]:
                rate = (done - self.first[1]) / (now - self.first[0])
                parts.append(f"ETA {fmt_duration((total - done) / rate)}")
            else:  # no rate yet: an estimate from the set-up alone is wild (17 h printed for 25 min)
                parts.append("ETA -")
        parts.append(f"elapsed {fmt_duration(now - self.t0)}")
        self.last_t = now
        self.write(", ".join(parts))


class BarProgress:
    """A rich bar with an ETA, one bar per step (a step's rate says nothing about the next's)."""

    def __init__(self, label: str, console: Console) -> None:
        self.label = label
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.step: str | None = None
        self.task: Any = None

    def __enter__(self) -> BarProgress:
        self.bar.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.bar.__exit__(exc_type, exc, tb)

    def __call__(self, step: str, done: int, total: int) -> None:
        if step != self.step:
            if self.task is not None:
                self.bar.remove_task(self.task)
            self.step = step
            self.task = self.bar.add_task(f"{self.label}: {step}", total=total or None)
        self.bar.update(self.task, completed=done, total=total or None)


class _Lines:
    """LineProgress as a context manager, so both kinds are used the same way."""

    def __init__(self, progress: LineProgress) -> None:
        self.progress = progress

    def __enter__(self) -> LineProgress:
        return self.progress

    def __exit__(self, *exc: object) -> None:
        return None


def progress_for(
    console: Console, label: str, *, every_pct: float = 10.0, every_s: float = 30.0
) -> BarProgress | _Lines:
    """A bar on a terminal, plain lines elsewhere; use as `with progress_for(...) as progress:`."""
    if console.is_terminal:
        return BarProgress(label, console)

    def write(line: str) -> None:
        # highlight=False: rich would colour the numbers; soft_wrap: one line per update, never wrapped.
        console.print(line, highlight=False, markup=False, soft_wrap=True)
        console.file.flush()

    return _Lines(LineProgress(label, write, every_pct=every_pct, every_s=every_s))
