"""Read Hugging Face safetensors checkpoints lazily, one tensor at a time, as float32 numpy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import HearthError


class CheckpointError(HearthError):
    """The checkpoint's weight files are missing, unreadable or lack a tensor."""


class CheckpointReader:
    """Maps tensor name -> file for every *.safetensors in a folder; loads tensors on demand."""

    def __init__(self, folder: Path) -> None:
        from safetensors import SafetensorError, safe_open

        self.folder = folder
        files = sorted(folder.glob("*.safetensors"))
        if not files:
            hint = (
                " (found PyTorch *.bin files: convert them to safetensors first)" if any(folder.glob("*.bin")) else ""
            )
            raise CheckpointError(f"{folder} has no *.safetensors weight files{hint}")
        self._where: dict[str, Path] = {}
        self._handles: dict[Path, object] = {}
        for f in files:
            try:
                handle = safe_open(str(f), framework="pt")
                names = list(handle.keys())
            except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as e:
                raise CheckpointError(
                    f"{f.name} is not a readable safetensors file ({e}); it is corrupt or truncated: re-download it"
                ) from e
            self._handles[f] = handle
            for name in names:
                self._where[name] = f

    def names(self) -> list[str]:
        return list(self._where)

    def __contains__(self, name: str) -> bool:
        return name in self._where

    def get(self, name: str) -> np.ndarray:
        """The tensor as float32 (bf16/f16 upcast exactly); integer tensors keep their dtype."""
        import torch

        if name not in self._where:
            raise CheckpointError(
                f"tensor {name!r} is not in the checkpoint at {self.folder}; is this the right architecture?"
            )
        f = self._where[name]
        try:
            t = self._handles[f].get_tensor(name)  # type: ignore[attr-defined]
        except Exception as e:  # noqa: BLE001 - safetensors raises several types for bad data
            raise CheckpointError(
                f"cannot read {name!r} from {f.name} ({e}): the file is corrupt; re-download it"
            ) from e
        if t.is_floating_point():
            t = t.to(torch.float32)
        return t.numpy()
