"""OpenAI-shaped tool calls for the native /v1 API, in the Hermes format (Qwen2.5 / Qwen3 templates and any
template that renders tools that way):

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

- `plan_tools` validates `tools` / `tool_choice` and says what the request does: "none" (tools are not
  rendered, plain text), "auto" (free generation; <tool_call> blocks in the output are parsed), "required"
  or a named function (one call, enforced by a grammar: the name is one of the tools and the arguments
  match that function's parameters schema, so they always parse and validate).
- `parse_tool_calls` turns finished text into message.tool_calls; a block that does not parse, or names
  no such tool, stays text. `ToolCallStream` does the same on a stream: content deltas until a block
  starts, then OpenAI's tool-call deltas (a first one with index, id, type, name and arguments "", then
  the arguments), each once its block is complete.
- `template_input` renders a conversation with assistant tool_calls and role "tool" results for the
  chat template; a template that knows no tool_calls gets the calls as Hermes text in the content, and
  one that renders no tools gets Qwen2.5's tool prompt in the system message (as the SDK does).
"""

from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

from .schema_check import SchemaError, check_json_schema
from .structured import JSON_SEPARATORS, GrammarSpec, StructuredError, json_schema_grammar

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_BLOCK = re.compile(re.escape(OPEN) + r"(.*?)" + re.escape(CLOSE), re.DOTALL)
_ID_ALPHABET = string.ascii_letters + string.digits
# A function's parameters when the tool gives none: an object with anything in it (OpenAI's reading).
_ANY_PARAMETERS: dict[str, Any] = {"type": "object"}


def new_call_id() -> str:
    return "call_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


@dataclass
class ToolPlan:
    mode: str  # "none", "auto", "required" or "named"
    tools: list[dict[str, Any]]  # OpenAI's {"type": "function", "function": {...}} as sent
    name: str | None = None  # the named function

    @property
    def names(self) -> set[str]:
        return {t["function"]["name"] for t in self.tools}

    @property
    def parses(self) -> bool:
        """Whether the output is read for tool calls."""
        return self.mode != "none" and bool(self.tools)

    def template_tools(self) -> list[dict[str, Any]] | None:
        """What the chat template gets as `tools` (None: render no tools)."""
        return self.tools if self.parses else None

    def grammar(self) -> GrammarSpec | None:
        """The grammar of one enforced call (required / named); None when generation is free."""
        if self.mode not in ("required", "named"):
            return None
        chosen = [t["function"] for t in self.tools if self.mode == "required" or t["function"]["name"] == self.name]
        plan = [(f["name"], f.get("parameters") or _ANY_PARAMETERS) for f in chosen]
        key = "tool_call\0" + json.dumps(plan, ensure_ascii=False, separators=(",", ":"))
        return GrammarSpec(key, lambda xgr: _call_grammar(xgr, plan), "tools", "parameters")


def _ebnf_literal(text: str) -> str:
    # JSON string escapes are valid EBNF string escapes in xgrammar.
    return json.dumps(text)


def _call_grammar(xgr: Any, plan: list[tuple[str, Any]]) -> Any:
    """`<tool_call>\\n{"name": "<name>", "arguments": <schema>}\\n</tool_call>` for one of the functions."""
    sep_item, sep_key = JSON_SEPARATORS
    calls = []
    for name, parameters in plan:
        head = f'{OPEN}\n{{"name"{sep_key}{json.dumps(name)}{sep_item}"arguments"{sep_key}'
        calls.append(
            xgr.Grammar.concat(
                xgr.Grammar.from_ebnf(f"root ::= {_ebnf_literal(head)}"),
                json_schema_grammar(xgr, parameters),
                xgr.Grammar.from_ebnf(f"root ::= {_ebnf_literal('}' + chr(10) + CLOSE)}"),
            )
        )
    return calls[0] if len(calls) == 1 else xgr.Grammar.union(*calls)


def plan_tools(tools: list[dict[str, Any]] | None, tool_choice: str | dict[str, Any] | None) -> ToolPlan:
    """The validated plan of a request's tools / tool_choice (native_schemas has checked their shape);
    StructuredError naming the field otherwise."""
    tools = tools or []
    names = [t["function"]["name"] for t in tools]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise StructuredError(f"tools: the function name {dup!r} appears twice; names must be unique", "tools")
    for i, t in enumerate(tools):
        params = t["function"].get("parameters")
        if params is None:
            continue
        where = f"tools[{i}].function.parameters"
        try:
            check_json_schema(params)
        except SchemaError as e:
            raise StructuredError(f"{where}: {e}", where, e.keyword) from None
        if params is not True and not (isinstance(params, dict) and params.get("type", "object") == "object"):
            raise StructuredError(f"{where}: a function's parameters must be an object schema", where, "type")
    if tool_choice is None:
        tool_choice = "auto" if tools else "none"
    if isinstance(tool_choice, dict):
        name = tool_choice["function"]["name"]
        if name not in names:
            known = ", ".join(names) or "none"
            raise StructuredError(
                f"tool_choice names the function {name!r}, which is not in tools (functions: {known})", "tool_choice"
            )
        return ToolPlan("named", tools, name)
    if tool_choice in ("required", "auto") and not tools:
        raise StructuredError(
            f"tool_choice {tool_choice!r} needs tools; pass tools or leave tool_choice out", "tool_choice"
        )
    return ToolPlan(tool_choice, tools)


def _parse_block(body: str, names: set[str]) -> dict[str, Any] | None:
    """One <tool_call> block's body as an OpenAI tool call, or None if it is not one."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("name") not in names:
        return None
    args = doc.get("arguments", {})
    if isinstance(args, str):  # some models send the arguments as JSON text already
        try:
            args = json.loads(args)
        except ValueError:
            return None
    if not isinstance(args, dict):
        return None
    arguments = json.dumps(args, ensure_ascii=False, separators=JSON_SEPARATORS)
    return {"id": new_call_id(), "type": "function", "function": {"name": doc["name"], "arguments": arguments}}


def parse_tool_calls(text: str, names: set[str]) -> tuple[str | None, list[dict[str, Any]]]:
    """(content, tool_calls) of a finished answer. Without a parsed call the text is the content as is;
    with calls, the content is the text outside them, less the whitespace next to them (None if empty)."""
    calls: list[dict[str, Any]] = []
    spans: list[tuple[int, int]] = []
    for m in _BLOCK.finditer(text):
        call = _parse_block(m.group(1).strip(), names)
        if call is not None:
            calls.append(call)
            spans.append((m.start(), m.end()))
    if not calls:
        return text, []
    pieces = []
    at = 0
    for i, (start, end) in enumerate([*spans, (len(text), len(text))]):
        segment = text[at:start]
        if i > 0:
            segment = segment.lstrip()  # after a call
        if i < len(spans):
            segment = segment.rstrip()  # before a call
        pieces.append(segment)
        at = end
    content = "".join(pieces)
    return (content or None), calls


def _prefix_hold(text: str) -> int:
    """Length of the longest tail of `text` that could still grow into OPEN."""
    for n in range(min(len(OPEN) - 1, len(text)), 0, -1):
        if OPEN.startswith(text[-n:]):
            return n
    return 0


class ToolCallStream:
    """Streaming counterpart of parse_tool_calls: feed() text pieces, get OpenAI delta dicts whose
    contents and calls add up to what parse_tool_calls makes of the whole text."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.calls = 0
        self._buf = ""
        self._in_call = False
        self._pending_space = ""  # trailing whitespace: dropped if a call follows, else sent later
        self._after_call = False  # leading whitespace after a call is dropped

    def _content(self, text: str) -> list[dict[str, Any]]:
        if self._after_call:
            text = text.lstrip()
            if not text:
                return []
            self._after_call = False
        combined = self._pending_space + text
        body = combined.rstrip()
        self._pending_space = combined[len(body) :]
        return [{"content": body}] if body else []

    def feed(self, piece: str) -> list[dict[str, Any]]:
        self._buf += piece
        out: list[dict[str, Any]] = []
        while True:
            if not self._in_call:
                i = self._buf.find(OPEN)
                if i < 0:
                    keep = _prefix_hold(self._buf)
                    out += self._content(self._buf[: len(self._buf) - keep])
                    self._buf = self._buf[len(self._buf) - keep :]
                    return out
                out += self._content(self._buf[:i])
                self._buf = self._buf[i:]
                self._in_call = True
            j = self._buf.find(CLOSE)
            if j < 0:
                return out
            block, self._buf = self._buf[: j + len(CLOSE)], self._buf[j + len(CLOSE) :]
            self._in_call = False
            call = _parse_block(block[len(OPEN) : -len(CLOSE)].strip(), self.names)
            if call is None:
                out += self._content(block)
                continue
            self._pending_space = ""
            self._after_call = True
            index, self.calls = self.calls, self.calls + 1
            fn = call["function"]
            first = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": fn["name"], "arguments": ""},
            }
            out.append({"tool_calls": [first]})
            out.append({"tool_calls": [{"index": index, "function": {"arguments": fn["arguments"]}}]})

    def finish(self) -> list[dict[str, Any]]:
        """What is left at the end: an unfinished block (or a held-back "<tool" tail) stays text, and
        trailing whitespace goes out when no call came after it (as parse_tool_calls keeps it)."""
        rest, self._buf = self._buf, ""
        self._in_call = False
        out = self._content(rest)
        if self._pending_space:
            out.append({"content": self._pending_space})
            self._pending_space = ""
        return out


def _hermes_text(calls: list[dict[str, Any]]) -> str:
    blocks = []
    for c in calls:
        fn = c["function"]
        try:
            args: Any = json.loads(fn["arguments"])
        except ValueError:
            args = fn["arguments"]
        body = json.dumps({"name": fn["name"], "arguments": args}, ensure_ascii=False, separators=JSON_SEPARATORS)
        blocks.append(f"{OPEN}\n{body}\n{CLOSE}")
    return "\n".join(blocks)


def template_input(
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    template: str | None,
    free_call: bool = True,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """(messages, tools) as the chat template takes them; the SDK's service/tool-prompt.ts does the same.

    A template that renders tools (its source mentions `tools`: Qwen2.5, Qwen3) gets them as transformers
    passes them. One that does not (SmolLM2's, the tiny test models') would drop them silently, so when
    the model writes any call itself (`free_call`: tool_choice "auto") Qwen2.5's Hermes tool prompt goes
    into the system message instead. A forced call (required, named) is written by its grammar, and the
    prompt (~400 tokens for two tools) would not fit small models' windows."""
    knows_calls = template is not None and "tool_calls" in template
    out = template_messages(messages, knows_calls)
    if not tools:
        return out, None
    if template is not None and re.search(r"\btools\b", template):
        return out, tools
    if not free_call:
        return out, None
    prompt = hermes_tool_prompt(tools)
    if out and out[0].get("role") == "system":
        out[0] = {**out[0], "content": f"{out[0].get('content') or ''}\n\n{prompt}"}
    else:
        out.insert(0, {"role": "system", "content": prompt})
    return out, None


def hermes_tool_prompt(tools: list[dict[str, Any]]) -> str:
    """Qwen2.5's tool instructions (its chat template's text); tools compact, as the SDK writes them."""
    listed = "".join("\n" + json.dumps(t, ensure_ascii=False, separators=(",", ":")) for t in tools)
    return (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
        f"{listed}\n</tools>\n\nFor each function call, return a json object with function name and arguments "
        f'within {OPEN}{CLOSE} XML tags:\n{OPEN}\n{{"name": <function-name>, "arguments": <args-json-object>}}\n{CLOSE}'
    )


def template_messages(messages: list[dict[str, Any]], knows_calls: bool) -> list[dict[str, Any]]:
    """Messages as the chat template takes them. Assistant tool_calls carry their arguments parsed
    (templates write them with `| tojson`); a template that never mentions tool_calls gets them as
    Hermes text in the content instead, and tool results inside <tool_response>, so the model still
    sees what it called and what came back."""
    out = []
    for m in messages:
        calls = m.get("tool_calls")
        if not knows_calls and m.get("role") == "tool":
            out.append({**m, "content": f"<tool_response>\n{m.get('content') or ''}\n</tool_response>"})
            continue
        if not calls:
            out.append(m)
            continue
        if not knows_calls:
            text = m.get("content") or ""
            out.append(
                {
                    **{k: v for k, v in m.items() if k != "tool_calls"},
                    "content": (text + "\n" if text else "") + _hermes_text(calls),
                }
            )
            continue
        parsed = []
        for c in calls:
            fn = dict(c["function"])
            try:
                fn["arguments"] = json.loads(fn["arguments"])
            except ValueError:
                pass  # not JSON: the template gets the text as sent
            parsed.append({**c, "function": fn})
        out.append({**m, "content": m.get("content") or "", "tool_calls": parsed})
    return out
