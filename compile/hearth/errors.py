"""HearthError: the base of every error that means "the input or the environment is wrong, here is what
to do", as opposed to a bug. The CLI prints these as one line without a traceback.

A leaf module (imports nothing from Hearth), so every layer can raise its own subclass; subclasses keep
their historical builtin base too (ValueError, RuntimeError) so callers that catch those still work.
"""

from __future__ import annotations


class HearthError(Exception):
    """Bad input or a missing prerequisite; the message names the problem and what to do."""


# Bad input as the CLI reports it: one clear line, no traceback. HearthError is the project's own base;
# the two builtins cover argument values checked by the standard library (paths, numbers).
USER_ERRORS: tuple[type[BaseException], ...] = (HearthError, FileNotFoundError, ValueError)
