"""Bounds on one request's size and work for the native API (`hearth serve --native-api`).

Without them one request could hold a model for minutes (2,048 inputs to /v1/embeddings held the
encoder for 170 s; a 50 MB prompt took 184 s and 4.7 GB). Every bound is an environment variable,
read when the server starts; docs/serve-limits.md lists them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

ENV_PREFIX = "HEARTH_SERVE_"


@dataclass(frozen=True)
class ServeLimits:
    # Request body, bytes (413 above it). 2 MiB is ~500k tokens of text: far past any context window.
    max_body_bytes: int = 2 << 20
    # Inputs in one /v1/embeddings request (OpenAI allows 2,048; the encoder runs ~100 short inputs/s on 2 cores).
    max_embedding_inputs: int = 256
    # Tokens embedded by one /v1/embeddings request, after truncation, [CLS]/[SEP] included.
    max_embedding_tokens: int = 16384
    # Tokens one chat completion may generate (the context window bounds it too).
    max_completion_tokens: int = 2048
    # Requests waiting for one busy model; more get 429 (the openai client retries those).
    max_waiting: int = 16

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServeLimits:
        """The defaults, overridden by HEARTH_SERVE_<FIELD> (e.g. HEARTH_SERVE_MAX_BODY_BYTES=4194304)."""
        env = os.environ if env is None else env
        values: dict[str, int] = {}
        for f in fields(cls):
            name = ENV_PREFIX + f.name.upper()
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            try:
                value = int(raw.strip())
            except ValueError:
                raise ValueError(
                    f"{name}={raw!r} is not an integer; set it to a positive whole number or unset it"
                ) from None
            if value < 1:
                raise ValueError(f"{name}={value} must be at least 1")
            values[f.name] = value
        return cls(**values)

    @staticmethod
    def env_names() -> list[str]:
        return [ENV_PREFIX + f.name.upper() for f in fields(ServeLimits)]
