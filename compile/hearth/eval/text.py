"""The text perplexity is measured on.

Order of preference:
1. an explicit file (`hearth eval --text FILE`);
2. `heldout.txt` in the reference checkpoint's folder (the test models ship one: text their
   tokenizer and weights never saw, see docs/test-models.md);
3. the same held-out split generated from `pydoc_data.topics` (help texts shipped with CPython).
   The split rule is the one scripts/make_test_models.py uses, so for the test models (3) gives
   byte-for-byte the text of (2). For a real checkpoint it is merely text that ships with
   Python, not text guaranteed unseen in pre-training (Python's docs are on the web).
"""

from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass
from pathlib import Path

# Must stay equal to scripts/make_test_models.py (HELDOUT_SALT / HELDOUT_PERCENT / join_docs).
HELDOUT_SALT = "hearth-test-models/heldout-v3:"
HELDOUT_PERCENT = 10


@dataclass(frozen=True)
class EvalText:
    text: str
    source: str  # human-readable provenance, recorded in the report

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def _is_heldout(topic: str) -> bool:
    digest = hashlib.sha256((HELDOUT_SALT + topic).encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < HELDOUT_PERCENT


def pydoc_heldout_text() -> str:
    """The held-out pydoc topics in key order, joined by blank lines (= the test models' heldout.txt)."""
    from pydoc_data.topics import topics

    docs = [topics[k] for k in sorted(topics) if _is_heldout(k)]
    return "\n\n".join(text.strip("\n") for text in docs) + "\n"


def resolve_text(text_file: Path | None, reference_dir: Path | None) -> EvalText:
    if text_file is not None:
        path = Path(text_file)
        if not path.is_file():
            raise FileNotFoundError(f"evaluation text {path} does not exist")
        return EvalText(path.read_text(encoding="utf-8"), f"file {path.resolve()}")
    if reference_dir is not None and (reference_dir / "heldout.txt").is_file():
        path = reference_dir / "heldout.txt"
        return EvalText(path.read_text(encoding="utf-8"), f"reference heldout.txt ({path.resolve()})")
    return EvalText(
        pydoc_heldout_text(),
        f"generated: held-out pydoc_data.topics split (salt {HELDOUT_SALT!r}, Python {platform.python_version()})",
    )
