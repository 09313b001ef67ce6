"""What differs between the two kinds of package Hearth builds and runs, a chat model (decoder) and an
embedding model (encoder), behind one interface: build/ and the layers above it call a Task instead of
branching on the Architecture's `task` string."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import HearthError

if TYPE_CHECKING:  # importing hearth.tasks must not import TVM (see chat.py)
    import tvm
    from tvm.relax.frontend import nn

    from ..models import Architecture
    from ..quant import QuantScheme
    from ..weights.source import ModelSource

NamedParams = list[tuple[str, Any]]  # (name, nn.Parameter) in packed order, as export_tvm returns them


class UnknownTaskError(HearthError, ValueError):
    """An Architecture or a package names a task no module in hearth/tasks implements."""


class Task(ABC):
    name: str  # Architecture.task and the package's model_task ("chat", "embedding")
    noun: str  # for messages: "a chat model", "an embedding model"

    @abstractmethod
    def configure(
        self,
        arch: Architecture,
        source: ModelSource,
        *,
        context_window_size: int | None = None,
        prefill_chunk_size: int | None = None,
        embed_batch_sizes: list[int] | None = None,
        embed_seq_lens: list[int] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """(parsed model config, this task's extra build-key options); refuses the other task's options."""

    @abstractmethod
    def export(self, module: nn.Module, target: tvm.target.Target) -> tuple[tvm.ir.IRModule, NamedParams]:
        """The task's function set as a Relax IRModule, and the packed parameter order."""

    @abstractmethod
    def metadata(self, config: Any, quantization: str, named_params: NamedParams) -> dict[str, Any]:
        """The package's `_metadata` description (params in packed order)."""

    @abstractmethod
    def package_config(
        self,
        source: ModelSource,
        config: Any,
        scheme: QuantScheme,
        tokenizer_files: list[str],
        libs: dict[str, str],
        meta: dict[str, Any],
    ) -> dict[str, Any]:
        """mlc-chat-config.json, without "params" (the caller adds the packed order)."""

    @abstractmethod
    def open_native(self, package_dir: Path, target: str = "llvm") -> Any:
        """The package's native (llvm/cuda) model, every file verified first (hearth.native)."""


def token_id(value: Any) -> int | list[int] | None:
    """A token id field of config.json / generation_config.json as MLC writes it (int, list or null)."""
    return value if isinstance(value, (int, list)) else None
