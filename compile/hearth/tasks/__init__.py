"""One module per task: what a chat package and an embedding package each need from the compiler
(export, metadata, config writing, option checks) and how each is opened natively.

    task = get_task(arch.task)                   # from the Architecture (compiling)
    task = package_task(manifest)                # from a built package (eval, serve)
    config, options = task.configure(arch, source, context_window_size=...)
    model = task.open_native(package_dir)        # NativeDecoder + config, or NativeEncoder
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import NamedParams, Task, UnknownTaskError
from .chat import CHAT
from .embedding import EMBEDDING
from .tokenizer_files import copy_tokenizer

TASKS: dict[str, Task] = {t.name: t for t in (CHAT, EMBEDDING)}


def get_task(name: str) -> Task:
    """The task an Architecture declares (models/registry.py)."""
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownTaskError(
            f"task {name!r} is not implemented (tasks: {', '.join(TASKS)}); add a module for it in "
            "compile/hearth/tasks/ and register it in TASKS (compile/hearth/tasks/__init__.py)"
        ) from None


def package_task(doc: Mapping[str, Any]) -> Task:
    """The task of a built package from its manifest or mlc-chat-config.json: "embedding" packages are
    encoders; anything else (model_task "chat", or none) is read as a chat package."""
    return TASKS.get(str(doc.get("model_task")), CHAT)


__all__ = [
    "CHAT",
    "EMBEDDING",
    "TASKS",
    "NamedParams",
    "Task",
    "UnknownTaskError",
    "copy_tokenizer",
    "get_task",
    "package_task",
]
