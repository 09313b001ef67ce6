"""JSON Schemas and tools for structured-output tests and the cost benchmark (tests/test_serve_structured.py,
bench/structured_native.py): varied shapes, nested objects, arrays with min/max items, enums, number ranges,
required and optional fields, anyOf / oneOf, string patterns, $defs references."""

from __future__ import annotations

# Numbers carry ranges: an unbounded number lets a tiny model write digits until max_tokens (then the
# answer is "length", tested below), which says nothing about the grammar.
SCHEMAS: dict[str, dict] = {
    "flat": {
        "type": "object",
        "properties": {"title": {"type": "string"}, "year": {"type": "integer", "minimum": 1900, "maximum": 2100}},
        "required": ["title", "year"],
    },
    "optional_fields": {
        "type": "object",
        "properties": {
            "a": {"type": "string"},
            "b": {"type": "number", "minimum": -1, "maximum": 1},
            "c": {"type": "boolean"},
        },
        "required": ["a"],
    },
    "enum_label": {
        "type": "object",
        "properties": {"label": {"enum": ["positive", "negative", "neutral"]}},
        "required": ["label"],
    },
    "string_enum_top": {"type": "string", "enum": ["red", "green", "blue"]},
    "int_range": {
        "type": "object",
        "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 10}},
        "required": ["score"],
    },
    "number_exclusive": {
        "type": "object",
        "properties": {"p": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}},
        "required": ["p"],
    },
    "array_bounds": {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 8}, "minItems": 2, "maxItems": 4}
        },
        "required": ["tags"],
    },
    "array_top": {
        "type": "array",
        "items": {"type": "integer", "minimum": -5, "maximum": 5},
        "minItems": 1,
        "maxItems": 5,
    },
    "nested": {
        "type": "object",
        "properties": {
            "person": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 16},
                    "address": {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string", "maxLength": 16},
                            "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
                        },
                        "required": ["city", "zip"],
                    },
                },
                "required": ["name", "address"],
            }
        },
        "required": ["person"],
    },
    "array_of_objects": {
        "type": "object",
        "properties": {
            "people": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "maxLength": 12},
                        "age": {"type": "integer", "minimum": 0, "maximum": 130},
                    },
                    "required": ["name", "age"],
                },
                "minItems": 1,
                "maxItems": 3,
            }
        },
        "required": ["people"],
    },
    "anyof_scalar": {
        "type": "object",
        "properties": {
            "value": {
                "anyOf": [
                    {"type": "integer", "minimum": -999, "maximum": 999},
                    {"type": "string", "maxLength": 10},
                    {"type": "null"},
                ]
            }
        },
        "required": ["value"],
    },
    "anyof_objects": {
        "anyOf": [
            {
                "type": "object",
                "properties": {"kind": {"const": "circle"}, "r": {"type": "number", "minimum": 0, "maximum": 10}},
                "required": ["kind", "r"],
            },
            {
                "type": "object",
                "properties": {"kind": {"const": "square"}, "side": {"type": "integer", "minimum": 1, "maximum": 99}},
                "required": ["kind", "side"],
            },
        ]
    },
    "pattern_date": {
        "type": "object",
        "properties": {"date": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}},
        "required": ["date"],
    },
    "pattern_code": {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2,4}$"}},
        "required": ["code"],
    },
    "string_lengths": {
        "type": "object",
        "properties": {"s": {"type": "string", "minLength": 3, "maxLength": 6}},
        "required": ["s"],
    },
    "const_and_bool": {
        "type": "object",
        "properties": {"version": {"const": 2}, "ok": {"type": "boolean"}},
        "required": ["version", "ok"],
    },
    "nullable_type_list": {
        "type": "object",
        "properties": {"note": {"type": ["string", "null"], "maxLength": 10}},
        "required": ["note"],
    },
    "defs_ref": {
        "type": "object",
        "$defs": {
            "pt": {
                "type": "object",
                "properties": {
                    "x": {"type": "integer", "minimum": -99, "maximum": 99},
                    "y": {"type": "integer", "minimum": -99, "maximum": 99},
                },
                "required": ["x", "y"],
            }
        },
        "properties": {"from": {"$ref": "#/$defs/pt"}, "to": {"$ref": "#/$defs/pt"}},
        "required": ["from", "to"],
    },
    "tuple_prefix_items": {
        "type": "array",
        "prefixItems": [
            {"type": "string", "maxLength": 5},
            {"type": "integer", "minimum": 0, "maximum": 9},
            {"type": "boolean"},
        ],
        "items": False,
    },
    "additional_properties": {
        "type": "object",
        "propertyNames": {"pattern": "^[a-z]{1,6}$"},
        "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 999},
        "maxProperties": 3,
    },
    "matrix": {
        "type": "object",
        "properties": {
            "rows": {
                "type": "array",
                "items": {
                    "type": "array",
                    "items": {"type": "number", "minimum": -1, "maximum": 1},
                    "minItems": 2,
                    "maxItems": 2,
                },
                "minItems": 2,
                "maxItems": 2,
            }
        },
        "required": ["rows"],
    },
    "invoice": {
        "type": "object",
        "properties": {
            "invoice_id": {"type": "string", "pattern": "^INV-[0-9]{3}$"},
            "amount": {"type": "number", "minimum": 0, "maximum": 10000},
            "currency": {"enum": ["EUR", "USD"]},
            "paid": {"type": "boolean"},
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "sku": {"type": "string", "maxLength": 6},
                        "qty": {"type": "integer", "minimum": 1, "maximum": 9},
                    },
                    "required": ["sku", "qty"],
                },
                "maxItems": 2,
            },
        },
        "required": ["invoice_id", "amount", "currency", "lines"],
    },
    "multiple_of": {
        "type": "object",
        "properties": {"n": {"type": "integer", "multipleOf": 5, "minimum": 0, "maximum": 100}},
        "required": ["n"],
    },
    "oneof": {
        "type": "object",
        "properties": {"v": {"oneOf": [{"type": "integer", "minimum": 100, "maximum": 999}, {"enum": ["none"]}]}},
        "required": ["v"],
    },
    "boolean_top": {"type": "boolean"},
    "deep_nesting": {
        "type": "object",
        "properties": {
            "a": {
                "type": "object",
                "properties": {
                    "b": {
                        "type": "object",
                        "properties": {
                            "c": {
                                "type": "object",
                                "properties": {"d": {"type": "integer", "minimum": 0, "maximum": 9}},
                                "required": ["d"],
                            }
                        },
                        "required": ["c"],
                    }
                },
                "required": ["b"],
            }
        },
        "required": ["a"],
    },
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 20},
                "unit": {"enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}
ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "parameters": {
            "type": "object",
            "properties": {
                "a": {"type": "integer", "minimum": -100, "maximum": 100},
                "b": {"type": "integer", "minimum": -100, "maximum": 100},
            },
            "required": ["a", "b"],
        },
    },
}
TOOLS = [WEATHER, ADD]
