"""Where things live in a Hearth checkout (the CLI runs from the repo's .venv)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SDK = REPO / "sdk"
BROWSER_TESTS = REPO / "tests" / "browser"
DIST = REPO / "dist"
