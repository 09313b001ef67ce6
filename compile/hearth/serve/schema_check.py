"""Checks a JSON Schema before xgrammar sees it (the native twin of sdk/src/grammar/json-schema.ts).

A schema that is not valid JSON Schema, or that uses a keyword xgrammar's converter accepts but does not
enforce (so the output could break the schema while looking constrained), is refused with a SchemaError
naming the keyword and where it is ("properties.tags.uniqueItems"). The keyword sets are the SDK's, so
both paths accept and refuse the same schemas.
"""

from __future__ import annotations

import math
import re
from typing import Any

TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})

# Keywords that only annotate (validation ignores them too).
ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "$anchor",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "contentEncoding",
        "contentMediaType",
    }
)

# Keywords xgrammar turns into grammar.
SUPPORTED = frozenset(
    {
        "type",
        "enum",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "unevaluatedProperties",
        "patternProperties",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "items",
        "prefixItems",
        "unevaluatedItems",
        "minItems",
        "maxItems",
        "contains",
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "anyOf",
        "oneOf",
        "allOf",
        "$ref",
        "$defs",
        "definitions",
    }
)

# Accepted by xgrammar but not enforced: refused rather than silently dropped.
UNENFORCED = {
    "uniqueItems": "unique array items",
    "dependentRequired": "dependent required properties",
    "dependentSchemas": "dependent schemas",
    "dependencies": "dependencies",
    "if": "conditional schemas",
    "then": "conditional schemas",
    "else": "conditional schemas",
    "not": "negated schemas",
    "contentSchema": "content schemas",
    "minContains": "minContains",
    "maxContains": "maxContains",
    "$dynamicRef": "dynamic references",
    "$dynamicAnchor": "dynamic references",
    "$recursiveRef": "recursive references",
}

_PAIRS = (
    ("minLength", "maxLength"),
    ("minItems", "maxItems"),
    ("minProperties", "maxProperties"),
    ("minimum", "maximum"),
)


class SchemaError(ValueError):
    """A JSON Schema the grammar engine cannot enforce; `keyword` names the keyword at fault."""

    def __init__(self, message: str, keyword: str) -> None:
        super().__init__(message)
        self.keyword = keyword


def _fail(path: str, keyword: str, why: str) -> SchemaError:
    return SchemaError(f"{path}: {why}" if path else why, keyword)


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_json_schema(schema: object) -> None:
    """Raise SchemaError unless `schema` is a JSON Schema the grammar engine can enforce."""
    if not isinstance(schema, (dict, bool)):
        raise _fail("", "schema", "a JSON Schema must be an object (or a boolean)")
    _walk(schema, "", schema)


def _walk(schema: object, path: str, root: object) -> None:
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        got = "an array" if isinstance(schema, list) else type(schema).__name__
        raise _fail(path, "schema", f"must be a schema object, got {got}")
    for key, value in schema.items():
        here = _at(path, key)
        if key in ANNOTATIONS:
            continue
        if key in UNENFORCED:
            raise _fail(
                here, key, f'keyword "{key}" ({UNENFORCED[key]}) is not supported by the grammar engine; remove it'
            )
        if key not in SUPPORTED:
            raise _fail(here, key, f'unknown or unsupported JSON Schema keyword "{key}"')
        _check_keyword(schema, key, value, here, root)
    for lo, hi in _PAIRS:
        a, b = schema.get(lo), schema.get(hi)
        if _is_number(a) and _is_number(b) and a > b:
            raise _fail(_at(path, lo), lo, f"{lo} ({a}) is greater than {hi} ({b}): nothing can match")


def _check_keyword(schema: dict[str, Any], key: str, value: object, here: str, root: object) -> None:
    if key == "type":
        names = value if isinstance(value, list) else [value]
        if not names:
            raise _fail(here, key, "type must name at least one type")
        for t in names:
            if not isinstance(t, str) or t not in TYPES:
                raise _fail(here, key, f"type {t!r} is not a JSON Schema type ({', '.join(sorted(TYPES))})")
    elif key == "enum":
        if not isinstance(value, list) or not value:
            raise _fail(here, key, "enum must be a non-empty array")
    elif key in ("properties", "patternProperties", "$defs", "definitions"):
        if not isinstance(value, dict):
            raise _fail(here, key, f"{key} must be an object of schemas")
        for name, sub in value.items():
            if key == "patternProperties":
                _check_pattern(name, here, key)
            _walk(sub, _at(here, name), root)
    elif key == "required":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _fail(here, key, "required must be an array of property names")
        if len(set(value)) != len(value):
            raise _fail(here, key, "required lists a property twice")
    elif key in ("additionalProperties", "unevaluatedProperties", "unevaluatedItems", "propertyNames", "contains"):
        _walk(value, here, root)
    elif key == "items":
        if isinstance(value, list):
            raise _fail(here, key, "items must be one schema (use prefixItems for a tuple)")
        _walk(value, here, root)
    elif key in ("prefixItems", "anyOf", "oneOf", "allOf"):
        if not isinstance(value, list) or not value:
            raise _fail(here, key, f"{key} must be a non-empty array of schemas")
        if key == "allOf" and len(value) > 1:
            raise _fail(here, key, "allOf with more than one schema is not supported by the grammar engine; merge them")
        for i, sub in enumerate(value):
            _walk(sub, f"{here}[{i}]", root)
    elif key in ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"):
        if not _is_count(value):
            raise _fail(here, key, f"{key} must be a non-negative integer")
    elif key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if not _is_number(value):
            raise _fail(here, key, f"{key} must be a number")
    elif key == "multipleOf":
        if not _is_number(value) or value <= 0:  # type: ignore[operator]
            raise _fail(here, key, "multipleOf must be a number > 0")
        if schema.get("type") != "integer" or not float(value).is_integer():  # type: ignore[arg-type]
            raise _fail(here, key, "multipleOf is supported only on integers, with an integer divisor")
    elif key == "pattern":
        if not isinstance(value, str):
            raise _fail(here, key, "pattern must be a string")
        _check_pattern(value, here, key)
    elif key == "format":
        if not isinstance(value, str):
            raise _fail(here, key, "format must be a string")
    elif key == "$ref":
        if not isinstance(value, str):
            raise _fail(here, key, "$ref must be a string")
        if value != "#" and _resolve(root, value) is None:
            raise _fail(
                here,
                key,
                f'$ref {value!r} does not point into this schema (only local "#/..." references are supported)',
            )


def _check_pattern(pattern: str, here: str, keyword: str) -> None:
    # Python's re is close to ECMAScript's for what schemas use; xgrammar's own parser checks it again.
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as e:
        raise _fail(here, keyword, f"{pattern!r} is not a valid regular expression ({e})") from None


def _resolve(root: object, ref: str) -> object | None:
    if not ref.startswith("#/"):
        return None
    node = root
    for raw in ref[2:].split("/"):
        key = raw.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node
