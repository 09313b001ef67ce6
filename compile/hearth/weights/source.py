"""Where a checkpoint comes from: a local folder or GGUF file always; a hub id when the network is up."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import HearthError

CHECKPOINT_PATTERNS = ["*.json", "*.safetensors", "tokenizer.model", "*.txt", "LICENSE*", "README.md"]


class ModelSourceError(HearthError):
    """The checkpoint cannot be found or is incomplete; the message says what to do."""


@dataclass(frozen=True)
class ModelSource:
    model_id: str  # e.g. "Qwen2.5-0.5B-Instruct" (folder-safe)
    path: Path
    origin: str  # "local:<path>", "hub:<repo id>" or "gguf:<file path>"
    config: dict
    # For a GGUF source: file, sha256, file type, tensor type counts (weights.gguf_checkpoint);
    # `path` is then the cached HF folder converted from it.
    gguf: dict[str, Any] | None = None

    @property
    def license(self) -> str:
        """Best effort: config/README front matter, else 'unknown' (recorded, never guessed)."""
        if self.gguf and self.gguf.get("license"):
            return str(self.gguf["license"])
        readme = self.path / "README.md"
        if readme.exists():
            m = re.search(r"^license:\s*(\S+)", readme.read_text(errors="replace"), re.MULTILINE)
            if m:
                return m.group(1)
        return "unknown"


def _is_hub_id(model: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+", model))


def resolve_source(model: str) -> ModelSource:
    """Resolve a local folder, a GGUF file (or a folder holding one) or a hub id ("org/name") to
    a folder with config.json."""
    from .gguf_checkpoint import converted_folder, find_gguf, model_id_from_file

    path = Path(model).expanduser()
    gguf_file = find_gguf(path) if path.exists() else None
    if gguf_file is not None:
        folder, info = converted_folder(gguf_file)
        config = json.loads((folder / "config.json").read_text())
        return ModelSource(model_id_from_file(gguf_file), folder, f"gguf:{gguf_file.resolve()}", config, gguf=info)
    if path.exists():
        origin = f"local:{path.resolve()}"
    elif _is_hub_id(model):
        path, origin = _download(model)
    else:
        raise ModelSourceError(
            f"model {model!r} is neither an existing folder or .gguf file nor a hub id like 'org/name'"
        )
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelSourceError(
            f"{path} has no config.json: pass the folder of a Hugging Face checkpoint "
            "(config.json + *.safetensors) or a .gguf file"
        )
    try:
        config = json.loads(config_file.read_text())
    except json.JSONDecodeError as e:
        raise ModelSourceError(f"{config_file} is not valid JSON ({e}); re-download the checkpoint") from e
    model_id = path.resolve().name if origin.startswith("local:") else model.split("/")[-1]
    return ModelSource(model_id=model_id, path=path, origin=origin, config=config)


def _download(repo_id: str) -> tuple[Path, str]:
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(repo_id, allow_patterns=CHECKPOINT_PATTERNS)
    except Exception as e:  # noqa: BLE001 - the hub client raises many types for "offline"
        try:
            folder = snapshot_download(repo_id, allow_patterns=CHECKPOINT_PATTERNS, local_files_only=True)
        except Exception:  # noqa: BLE001
            raise ModelSourceError(
                f"cannot download {repo_id!r} from the Hugging Face hub ({type(e).__name__}: {str(e)[:160]}) "
                "and there is no local copy. Connect to the network, or download the checkpoint elsewhere "
                "and pass its folder: make compile MODEL=/path/to/folder"
            ) from e
    return Path(str(folder)), f"hub:{repo_id}"
