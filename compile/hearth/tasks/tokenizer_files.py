"""The tokenizer files a package carries (both tasks): copied as they are, tokenizer.json derived when the
checkpoint has only a slow tokenizer, since the SDK reads only tokenizer.json."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

TOKENIZER_FILES = [
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
]


def copy_tokenizer(src: Path, dst: Path) -> list[str]:
    files = [name for name in TOKENIZER_FILES if (src / name).is_file()]
    if not any(name in files for name in ("tokenizer.json", "tokenizer.model", "vocab.txt")):
        raise FileNotFoundError(
            f"{src} has no tokenizer (tokenizer.json, tokenizer.model or vocab.txt); the package needs one"
        )
    for name in files:
        shutil.copyfile(src / name, dst / name)
    if "tokenizer.json" not in files:
        _write_tokenizer_json(src, dst)
        files.append("tokenizer.json")
    return files


def _write_tokenizer_json(src: Path, dst: Path) -> None:
    """The SDK reads only tokenizer.json; derive it from tokenizer.model / vocab.txt the way
    transformers does (its slow -> fast converters), so ids stay identical."""
    # Lazy: transformers (and torch behind it) takes seconds to import and only slow-tokenizer
    # checkpoints get here.
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(src)
    except Exception as e:  # noqa: BLE001 - converters raise many types
        raise FileNotFoundError(
            f"{src} has no tokenizer.json and transformers could not convert its tokenizer ({e})"
        ) from e
    with tempfile.TemporaryDirectory() as tmp:
        tok.save_pretrained(tmp)
        if not (Path(tmp) / "tokenizer.json").is_file():
            raise FileNotFoundError(f"{src}: transformers did not produce a tokenizer.json for {type(tok).__name__}")
        shutil.copyfile(Path(tmp) / "tokenizer.json", dst / "tokenizer.json")
