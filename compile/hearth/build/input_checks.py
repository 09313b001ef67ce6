"""Checks of a checkpoint folder's tokenizer before any build work.

The SDK loads only tokenizer.json, and only at load time: an invalid one used to compile fine and
fail in the browser. Here it must load with the `tokenizers` library (the reference the SDK's
tokenizer is tested against), and tokenizer_config.json, read later for the chat template, must be
a JSON object. A folder with no tokenizer at all is refused here too, not after the build.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import HearthError


class TokenizerCheckError(HearthError, ValueError):
    """The checkpoint's tokenizer files cannot be used."""


def check_tokenizer(src: Path) -> None:
    """TokenizerCheckError naming the file and the problem, or None when the tokenizer is usable."""
    tokenizer_json = src / "tokenizer.json"
    if tokenizer_json.is_file():
        from tokenizers import Tokenizer

        try:
            Tokenizer.from_file(str(tokenizer_json))
        except Exception as e:  # noqa: BLE001 - the Rust side raises bare Exception for every parse error
            raise TokenizerCheckError(
                f"{tokenizer_json} does not load with the `tokenizers` library ({e}); "
                "replace it with the checkpoint's original tokenizer.json"
            ) from e
    elif not any((src / name).is_file() for name in ("tokenizer.model", "vocab.txt")):
        raise TokenizerCheckError(
            f"{src} has no tokenizer (tokenizer.json, tokenizer.model or vocab.txt); the package needs one"
        )
    config = src / "tokenizer_config.json"
    if config.is_file():
        try:
            doc = json.loads(config.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise TokenizerCheckError(f"{config} is not valid JSON ({e}); fix or remove it") from e
        if not isinstance(doc, dict):
            raise TokenizerCheckError(f"{config} must hold a JSON object, not {type(doc).__name__}; fix or remove it")
        template = doc.get("chat_template")
        if template is not None and not isinstance(template, (str, list)):
            raise TokenizerCheckError(f"{config}: chat_template must be a string, not {type(template).__name__}")
