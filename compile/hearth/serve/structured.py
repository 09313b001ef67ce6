"""Structured output for the native /v1 API: `response_format` as a grammar, compiled with xgrammar
against a chat model's tokenizer, cached per (model, canonical spec), and one request's Constraint that
masks each step's tokens (native_models.ChatModel.start/step apply it before sampling).

The request forms are the shared contract's (notes: structured-spec; the SDK's sdk/src/grammar/ is the
browser twin): {"type": "text"}, {"type": "json_object"}, OpenAI's {"type": "json_schema",
"json_schema": {name, schema, strict}}, WebLLM's {"type": "json_object", "schema": ...}, and Hearth's
{"type": "grammar", "grammar": EBNF} and {"type": "regex", "regex": pattern}. JSON comes out compact on
one line (separators ", " and ": ", no free whitespace), as the SDK makes it: a small model given free
whitespace can loop on newlines until max_tokens.

xgrammar (and torch behind it) loads on the first structured request, not with the server.
"""

from __future__ import annotations

import json
import re
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .schema_check import SchemaError, check_json_schema

if TYPE_CHECKING:
    import xgrammar

JSON_SEPARATORS = (", ", ": ")
# JSON Schema keywords to look for in xgrammar's messages, to name the one at fault (the SDK's list).
_KEYWORDS = (
    "minProperties maxProperties minItems maxItems minLength maxLength exclusiveMinimum exclusiveMaximum "
    "minimum maximum multipleOf patternProperties propertyNames additionalProperties prefixItems items "
    "required properties pattern format enum const anyOf oneOf allOf $ref type"
).split()
_FATAL_PREFIX = re.compile(r"^\[[0-9:]+\] [^:]+:\d+: ")


class StructuredError(ValueError):
    """A response_format or tool grammar that cannot be enforced: a 400 naming `param` and `keyword`."""

    def __init__(self, message: str, param: str, keyword: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.keyword = keyword


def load_xgrammar() -> Any:
    """The xgrammar module; StructuredError saying how to install it when it is missing."""
    try:
        import xgrammar
    except ImportError as e:
        raise StructuredError(
            f"structured output needs the xgrammar package ({e}); install it with pip install -e '.[serve]'",
            "response_format",
        ) from None
    return xgrammar


@dataclass(frozen=True)
class GrammarSpec:
    """A grammar to enforce: `key` is its canonical text (the cache key), `build` makes the xgrammar
    Grammar, `param` is the request field it came from (for errors)."""

    key: str
    build: Callable[[Any], xgrammar.Grammar] = field(compare=False)
    param: str = "response_format"
    fallback_keyword: str = "schema"


def json_schema_grammar(xgr: Any, schema: object) -> xgrammar.Grammar:
    return xgr.Grammar.from_json_schema(
        json.dumps(schema), any_whitespace=False, separators=JSON_SEPARATORS, strict_mode=True
    )


def _schema_spec(schema: object, param: str) -> GrammarSpec:
    try:
        check_json_schema(schema)
    except SchemaError as e:
        raise StructuredError(f"{param}: {e}", param, e.keyword) from None
    text = json.dumps(schema, ensure_ascii=False, separators=(",", ":"))
    return GrammarSpec(f"json_schema\0{text}", lambda xgr: json_schema_grammar(xgr, schema), param)


JSON_OBJECT_SCHEMA: dict[str, Any] = {"type": "object"}


def response_format_spec(fmt: dict[str, Any] | None) -> GrammarSpec | None:
    """The grammar a validated response_format (native_schemas.ResponseFormat, as a dict) asks for;
    None for plain text. StructuredError (naming the keyword) for a schema that cannot be enforced."""
    if fmt is None or fmt.get("type") == "text":
        return None
    kind = fmt["type"]
    if kind == "json_object":
        schema = fmt.get("schema")
        if schema is None:
            return GrammarSpec("json_object", lambda xgr: json_schema_grammar(xgr, JSON_OBJECT_SCHEMA))
        if isinstance(schema, str):  # WebLLM passes the schema as JSON text
            try:
                schema = json.loads(schema)
            except ValueError as e:
                raise StructuredError(
                    f"response_format.schema is not valid JSON ({e})", "response_format.schema", "schema"
                ) from None
        return _schema_spec(schema, "response_format.schema")
    if kind == "json_schema":
        schema = fmt["json_schema"].get("schema")
        if schema is None:  # OpenAI makes `schema` optional: then any JSON object
            return GrammarSpec("json_object", lambda xgr: json_schema_grammar(xgr, JSON_OBJECT_SCHEMA))
        return _schema_spec(schema, "response_format.json_schema.schema")
    if kind == "grammar":
        ebnf = fmt["grammar"]
        return GrammarSpec(
            f"ebnf\0{ebnf}", lambda xgr: xgr.Grammar.from_ebnf(ebnf), "response_format.grammar", "grammar"
        )
    if kind == "regex":
        pattern = fmt["regex"]
        return GrammarSpec(
            f"regex\0{pattern}", lambda xgr: xgr.Grammar.from_regex(pattern), "response_format.regex", "regex"
        )
    raise StructuredError(f"response_format type {kind!r} is not supported", "response_format", "type")


def _keyword_of(detail: str, fallback: str) -> str:
    for k in _KEYWORDS:
        if re.search(rf"(^|[^\w$]){re.escape(k)}([^\w]|$)", detail):
            return k
    return fallback


class Constraint:
    """One request's grammar matcher: allowed() before each sampling step, accept() after it."""

    def __init__(self, xgr: Any, compiled: Any, vocab_size: int, stop_ids: list[int]) -> None:
        self._matcher = xgr.GrammarMatcher(compiled, override_stop_tokens=stop_ids)
        self._bitmask = xgr.allocate_token_bitmask(1, vocab_size)
        self._vocab_size = vocab_size
        self.mask_ms = 0.0  # time spent computing masks (for the cost report)

    def allowed(self) -> np.ndarray:
        t0 = time.perf_counter()
        self._matcher.fill_next_token_bitmask(self._bitmask)
        # xgrammar's mask is one bit per token in int32 words, lowest bit first.
        bits = np.unpackbits(self._bitmask.numpy().view(np.uint8), bitorder="little")[: self._vocab_size]
        self.mask_ms += (time.perf_counter() - t0) * 1000
        return bits.astype(bool)

    def accept(self, token: int) -> None:
        if not self._matcher.accept_token(token):
            # Only a token outside the mask can be refused; sample() never picks one.
            raise RuntimeError(f"the grammar refused token {token}, which its own mask allowed")


class Grammars:
    """The grammar compiler of one chat model's tokenizer and its compiled grammars, by spec key."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_ids: list[int]) -> None:
        self.xgr = load_xgrammar()
        self.vocab_size = vocab_size
        self.stop_ids = stop_ids
        info = self.xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=stop_ids)
        self._compiler = self.xgr.GrammarCompiler(info, max_threads=1)
        self._compiled: dict[str, Any] = {}
        self.compile_ms: dict[str, float] = {}  # per spec key: the one compile's time

    def compile(self, spec: GrammarSpec) -> Any:
        """The compiled grammar (cached); StructuredError naming the keyword when xgrammar refuses it."""
        hit = self._compiled.get(spec.key)
        if hit is not None:
            return hit
        t0 = time.perf_counter()
        try:
            compiled = self._compiler.compile_grammar(spec.build(self.xgr))
        except (RuntimeError, ValueError, TypeError) as e:
            detail = _FATAL_PREFIX.sub("", str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
            keyword = _keyword_of(detail, spec.fallback_keyword)
            raise StructuredError(f"{spec.param}: the grammar was refused: {detail}", spec.param, keyword) from None
        self.compile_ms[spec.key] = (time.perf_counter() - t0) * 1000
        self._compiled[spec.key] = compiled
        return compiled

    def constraint(self, spec: GrammarSpec) -> Constraint:
        return Constraint(self.xgr, self.compile(spec), self.vocab_size, self.stop_ids)


_by_model: weakref.WeakKeyDictionary[Any, Grammars] = weakref.WeakKeyDictionary()
_by_model_lock = threading.Lock()


def grammars_for(model: Any) -> Grammars:
    """The Grammars of a ChatModel (made on first use; callers hold the model's lock)."""
    with _by_model_lock:
        found = _by_model.get(model)
        if found is None:
            found = _by_model[model] = Grammars(model.tokenizer, model.vocab_size, sorted(model.eos_ids))
        return found
