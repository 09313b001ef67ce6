"""Structured output and tool calls on `hearth serve --native-api` (issue 16, the native side), through
the official `openai` client over real HTTP, on the trained test package run natively (llvm build):
JSON Schemas of varied shape all parse and validate (jsonschema), json_object and WebLLM's form, the
grammar / regex extensions, max_tokens mid-JSON -> "length", tool_choice required / named (arguments
validate against the function's parameters), a round trip with a "tool" message, streamed tool-call
deltas, and bad schemas refused (400 naming the keyword) before any generation. The Hermes
<tool_call> parser (what "auto" reads) is checked directly on texts, whole and streamed."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator

import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

from hearth.serve.app import create_app
from hearth.serve.tool_calls import ToolCallStream, hermes_tool_prompt, parse_tool_calls, template_input
from structured_schemas import SCHEMAS, TOOLS, WEATHER
from test_serve import _start_server
from test_serve_native import CHAT, CHAT_ID

MESSAGES = [{"role": "user", "content": "Answer in JSON."}]

# Greedy, and two seeded samplers: the mask holds in every sampling mode.
SAMPLERS = [
    {"temperature": 0},
    {"temperature": 1.0, "seed": 7},
    {"temperature": 0.7, "top_p": 0.9, "seed": 11},
]

PARAMETERS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    from build_packages import DIST, ensure_package

    ensure_package(*CHAT)
    srv, thread, port = _start_server(create_app(DIST, None, native_api=True))
    yield openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=120)
    srv.should_exit = True
    thread.join(timeout=10)


def schema_format(name: str, schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


# -- response_format ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_json_schema_outputs_parse_and_validate(client: openai.OpenAI, name: str) -> None:
    schema = SCHEMAS[name]
    for sampler in SAMPLERS:
        r = client.chat.completions.create(
            model=CHAT_ID,
            messages=MESSAGES,
            response_format=schema_format(name, schema),  # type: ignore[arg-type]
            max_tokens=180,
            **sampler,  # type: ignore[arg-type]
        )
        choice = r.choices[0]
        assert choice.finish_reason == "stop", (sampler, choice.message.content)
        jsonschema.validate(json.loads(choice.message.content or ""), schema)


def test_json_object_and_webllm_schema_form(client: openai.OpenAI) -> None:
    for seed in range(3):
        r = client.chat.completions.create(
            model=CHAT_ID,
            messages=MESSAGES,
            response_format={"type": "json_object"},
            max_tokens=180,
            temperature=1.0,
            seed=seed,
        )
        if r.choices[0].finish_reason == "stop":
            assert isinstance(json.loads(r.choices[0].message.content or ""), dict)
        else:  # a free-form object may run out of tokens; then it says so
            assert r.choices[0].finish_reason == "length"
    schema = SCHEMAS["invoice"]
    for form in (schema, json.dumps(schema)):  # WebLLM: {"type": "json_object", "schema": object or JSON text}
        r = client.chat.completions.create(
            model=CHAT_ID,
            messages=MESSAGES,
            response_format={"type": "json_object", "schema": form},  # type: ignore[typeddict-unknown-key]
            max_tokens=180,
            temperature=0,
        )
        jsonschema.validate(json.loads(r.choices[0].message.content or ""), schema)


def test_openai_parse_helper_with_a_pydantic_model(client: openai.OpenAI) -> None:
    class Event(BaseModel):
        title: str = Field(max_length=20)
        attendees: list[str] = Field(min_length=1, max_length=3)
        day: int = Field(ge=1, le=31)

    # The client turns the model into a strict json_schema and parses the answer back.
    r = client.chat.completions.parse(model=CHAT_ID, messages=MESSAGES, response_format=Event, max_tokens=180)
    assert isinstance(r.choices[0].message.parsed, Event)


def test_grammar_and_regex_extensions(client: openai.OpenAI) -> None:
    ebnf = 'root ::= "The answer is " ("yes" | "no") "."'
    for seed in range(3):
        r = client.chat.completions.create(
            model=CHAT_ID,
            messages=MESSAGES,
            response_format={"type": "grammar", "grammar": ebnf},  # type: ignore[typeddict-item]
            temperature=1.0,
            seed=seed,
            max_tokens=20,
        )
        assert r.choices[0].message.content in ("The answer is yes.", "The answer is no.")
        r = client.chat.completions.create(
            model=CHAT_ID,
            messages=MESSAGES,
            response_format={"type": "regex", "regex": "[A-Z]{2}-[0-9]{3}"},  # type: ignore[typeddict-item]
            temperature=1.0,
            seed=seed,
            max_tokens=20,
        )
        assert re.fullmatch("[A-Z]{2}-[0-9]{3}", r.choices[0].message.content or ""), r.choices[0].message.content


def test_max_tokens_mid_json_is_length(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model=CHAT_ID,
        messages=MESSAGES,
        response_format=schema_format("nested", SCHEMAS["nested"]),  # type: ignore[arg-type]
        max_tokens=6,
        temperature=0,
    )
    assert r.choices[0].finish_reason == "length" and r.usage is not None and r.usage.completion_tokens == 6
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.choices[0].message.content or "")


def test_streamed_json_equals_whole_and_stops_with_the_grammar(client: openai.OpenAI) -> None:
    fmt = schema_format("people", SCHEMAS["array_of_objects"])
    whole = client.chat.completions.create(
        model=CHAT_ID,
        messages=MESSAGES,
        response_format=fmt,  # type: ignore[arg-type]
        max_tokens=180,
        temperature=0,
    )
    pieces, finish = [], None
    for chunk in client.chat.completions.create(
        model=CHAT_ID,
        messages=MESSAGES,
        response_format=fmt,  # type: ignore[arg-type]
        max_tokens=180,
        temperature=0,
        stream=True,
    ):
        pieces.append(chunk.choices[0].delta.content or "")
        finish = chunk.choices[0].finish_reason or finish
    assert "".join(pieces) == whole.choices[0].message.content and finish == "stop"
    # The grammar ended the answer: fewer tokens than the budget.
    assert whole.usage is not None and whole.usage.completion_tokens < 180


# -- tools ----------------------------------------------------------------------------------------


def _check_calls(message: openai.types.chat.ChatCompletionMessage, names: set[str]) -> list:
    calls = message.tool_calls or []
    assert calls and message.content is None
    for call in calls:
        assert re.fullmatch(r"call_[A-Za-z0-9]{24}", call.id) and call.type == "function"
        assert call.function.name in names
        jsonschema.validate(json.loads(call.function.arguments), PARAMETERS[call.function.name])
    return calls


def test_tool_choice_required_calls_a_tool_with_valid_arguments(client: openai.OpenAI) -> None:
    seen = set()
    for sampler in SAMPLERS:
        r = client.chat.completions.create(
            model=CHAT_ID,
            messages=[{"role": "user", "content": "What is the weather in Paris?"}],
            tools=TOOLS,  # type: ignore[arg-type]
            tool_choice="required",
            max_tokens=120,
            **sampler,  # type: ignore[arg-type]
        )
        assert r.choices[0].finish_reason == "tool_calls"
        seen |= {c.function.name for c in _check_calls(r.choices[0].message, {"get_weather", "add"})}
    assert seen


@pytest.mark.parametrize("name", ["get_weather", "add"])
def test_named_function_is_the_one_called(client: openai.OpenAI, name: str) -> None:
    for sampler in SAMPLERS:
        r = client.chat.completions.create(
            model=CHAT_ID,
            messages=[{"role": "user", "content": "Use the tool."}],
            tools=TOOLS,  # type: ignore[arg-type]
            tool_choice={"type": "function", "function": {"name": name}},
            max_tokens=120,
            **sampler,  # type: ignore[arg-type]
        )
        calls = _check_calls(r.choices[0].message, {name})
        assert len(calls) == 1 and r.choices[0].finish_reason == "tool_calls"


def test_round_trip_with_a_tool_result(client: openai.OpenAI) -> None:
    question = {"role": "user", "content": "What is the weather in Paris?"}
    first = client.chat.completions.create(
        model=CHAT_ID,
        messages=[question],  # type: ignore[list-item]
        tools=TOOLS,  # type: ignore[arg-type]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=120,
        temperature=0,
    )
    call = _check_calls(first.choices[0].message, {"get_weather"})[0]
    result = "Sunny, 21 degrees, light wind from the west."
    history = [
        question,
        first.choices[0].message.model_dump(exclude_none=True),  # echoed back as the client returned it
        {"role": "tool", "tool_call_id": call.id, "content": result},
    ]
    # tool_choice "none": the 256-token window holds the history, not the tool prompt on top of it.
    second = client.chat.completions.create(
        model=CHAT_ID,
        messages=history,  # type: ignore[arg-type]
        tools=TOOLS,  # type: ignore[arg-type]
        tool_choice="none",
        max_tokens=24,
        temperature=0,
    )
    assert second.choices[0].finish_reason in ("stop", "length", "tool_calls")
    # The call and its result reached the prompt: the same conversation without the result is shorter by
    # at least the result's words.
    without = client.chat.completions.create(
        model=CHAT_ID,
        messages=history[:2],  # type: ignore[arg-type]
        tools=TOOLS,  # type: ignore[arg-type]
        tool_choice="none",
        max_tokens=1,
        temperature=0,
    )
    assert second.usage is not None and without.usage is not None
    assert second.usage.prompt_tokens - without.usage.prompt_tokens >= len(result.split())
    bare = client.chat.completions.create(
        model=CHAT_ID,
        messages=[question],  # type: ignore[list-item]
        max_tokens=1,
    )
    assert bare.usage is not None and without.usage.prompt_tokens > bare.usage.prompt_tokens + 5  # the call itself


def test_streamed_tool_call_deltas(client: openai.OpenAI) -> None:
    body = {
        "model": CHAT_ID,
        "messages": [{"role": "user", "content": "Add two numbers."}],
        "tools": TOOLS,
        "tool_choice": {"type": "function", "function": {"name": "add"}},
        "max_tokens": 120,
        "temperature": 0,
    }
    whole = client.chat.completions.create(**body)  # type: ignore[call-overload]
    want = _check_calls(whole.choices[0].message, {"add"})[0]
    deltas, finish, content = [], None, ""
    for chunk in client.chat.completions.create(**body, stream=True):  # type: ignore[call-overload]
        delta = chunk.choices[0].delta
        content += delta.content or ""
        deltas += delta.tool_calls or []
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls" and content == ""
    first, rest = deltas[0], deltas[1:]
    assert first.index == 0 and re.fullmatch(r"call_[A-Za-z0-9]{24}", first.id or "") and first.type == "function"
    assert first.function is not None and first.function.name == "add" and first.function.arguments == ""
    assert all(d.index == 0 and d.id is None for d in rest)
    assert "".join(d.function.arguments or "" for d in rest if d.function) == want.function.arguments


# -- refused before any generation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "status", "param", "needle"),
    [
        (
            {"response_format": schema_format("s", {"type": "array", "uniqueItems": True})},
            400,
            "response_format",
            "uniqueItems",
        ),
        ({"response_format": schema_format("s", {"type": "strin"})}, 400, "response_format", "type"),
        (
            {"response_format": schema_format("s", {"type": "string", "pattern": "(("})},
            400,
            "response_format",
            "pattern",
        ),
        ({"response_format": schema_format("s", {"$ref": "#/$defs/nope"})}, 400, "response_format", "$ref"),
        (
            {"response_format": schema_format("s", {"type": "integer", "minimum": 5, "maximum": 1})},
            400,
            "response_format",
            "minimum",
        ),
        (
            {"response_format": schema_format("s", {"allOf": [{"type": "object"}, {"required": ["a"]}]})},
            400,
            "response_format",
            "allOf",
        ),
        ({"response_format": schema_format("s", {"type": "object", "if": {}})}, 400, "response_format", '"if"'),
        (
            {"response_format": {"type": "json_object", "schema": "{not json"}},
            400,
            "response_format.schema",
            "not valid JSON",
        ),
        (
            {"response_format": {"type": "grammar", "grammar": "root ::= missing"}},
            400,
            "response_format.grammar",
            "missing",
        ),
        ({"response_format": {"type": "regex", "regex": "(["}}, 400, "response_format.regex", "regex"),
        ({"response_format": {"type": "json_schema"}}, 422, "response_format", "needs the field 'json_schema'"),
        ({"response_format": {"type": "xml"}}, 422, "response_format", "'xml' is not supported"),
        ({"response_format": {"type": "text", "regex": "a"}}, 422, "response_format", "does not go with"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "not": {}}}}]},
            400,
            "tools[0].function.parameters",
            '"not"',
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]},
            400,
            "tools[0].function.parameters",
            "object schema",
        ),
        ({"tools": [WEATHER, WEATHER]}, 400, "tools", "appears twice"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "add"}}},
            400,
            "tool_choice",
            "'add'",
        ),
        ({"tool_choice": "required"}, 400, "tool_choice", "needs tools"),
        ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, 422, "tools", "pattern"),
        (
            {"tools": [WEATHER], "tool_choice": "required", "response_format": {"type": "json_object"}},
            400,
            "response_format",
            "send one of them",
        ),
        ({"functions": [{"name": "f"}]}, 400, "functions", "legacy function calling"),
        ({"messages": [{"role": "tool", "content": "x"}]}, 422, "messages", "tool_call_id"),
        ({"messages": [{"role": "function", "content": "x", "name": "f"}]}, 422, "messages", "role 'tool'"),
    ],
)
def test_bad_requests_name_the_problem(
    client: openai.OpenAI, extra: dict, status: int, param: str, needle: str
) -> None:
    body = {"model": CHAT_ID, "messages": MESSAGES, "max_tokens": 4, **extra}
    with pytest.raises(openai.APIStatusError) as e:
        client.post("/chat/completions", body=body, cast_to=object)
    err = e.value.body
    assert isinstance(err, dict) and e.value.status_code == status, (e.value.status_code, err)
    assert err["type"] == "invalid_request_error" and (err["param"] or "").startswith(param), err
    assert needle in err["message"], err


# -- the Hermes parser ("auto" reads the model's own <tool_call> blocks) -------------------------

NAMES = {"get_weather", "add"}
CALL = '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'
TEXTS = [
    ("Plain text, no tools.", "Plain text, no tools.", []),
    (CALL, None, [("add", '{"a": 1, "b": 2}')]),
    (
        "Let me look.\n" + CALL + "\n" + CALL.replace('"a": 1', '"a": 5') + "\n",
        "Let me look.",
        [("add", '{"a": 1, "b": 2}'), ("add", '{"a": 5, "b": 2}')],
    ),
    (
        '<tool_call>{"name":"get_weather","arguments":"{\\"city\\": \\"Oslo\\"}"}</tool_call>',
        None,
        [("get_weather", '{"city": "Oslo"}')],
    ),
    ('<tool_call>\n{"name": "delete_all", "arguments": {}}\n</tool_call>', None, []),  # no such tool: text
    ('<tool_call>\n{"name": "add", "argum', None, []),  # unfinished: text
    ("<tool_call>\nnot json\n</tool_call> then text", None, []),
    ("ends with <tool", None, []),
]


@pytest.mark.parametrize(("text", "content", "calls"), TEXTS)
def test_hermes_parser_whole_and_streamed(text: str, content: str | None, calls: list[tuple[str, str]]) -> None:
    got_content, got_calls = parse_tool_calls(text, NAMES)
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in got_calls] == calls
    assert got_content == (content if calls else text)
    rng = random.Random(0)
    for _ in range(20):  # any split of the text into pieces streams the same answer
        stream, deltas, at = ToolCallStream(NAMES), [], 0
        while at < len(text):
            n = rng.randint(1, 6)
            deltas += stream.feed(text[at : at + n])
            at += n
        deltas += stream.finish()
        streamed = "".join(d.get("content", "") for d in deltas)
        heads = [d["tool_calls"][0] for d in deltas if "tool_calls" in d and "id" in d["tool_calls"][0]]
        args = [
            d["tool_calls"][0]["function"]["arguments"]
            for d in deltas
            if "tool_calls" in d and "id" not in d["tool_calls"][0]
        ]
        assert (streamed or None) == got_content
        assert [(h["function"]["name"], a) for h, a in zip(heads, args)] == calls
        assert [h["index"] for h in heads] == list(range(len(calls)))


# -- tools on a template that renders none ------------------------------------------------------


def test_template_without_tools_gets_the_tool_prompt(client: openai.OpenAI) -> None:
    """The test model's template renders no tools (as SmolLM2's): the tools reach the prompt as Qwen2.5's
    tool prompt in the system message, as the SDK writes it (service/tool-prompt.ts); tool_choice "none"
    leaves them out."""
    question = [{"role": "user", "content": "What is the weather in Paris?"}]
    # One small tool: the trained model's window is 256 tokens.
    tools = [{"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}]

    def prompt_tokens(max_tokens: int = 1, **kw: object) -> int:
        r = client.chat.completions.create(
            model=CHAT_ID,
            messages=question,  # type: ignore[arg-type]
            max_tokens=max_tokens,
            temperature=0,
            **kw,  # type: ignore[arg-type]
        )
        assert r.usage is not None
        return r.usage.prompt_tokens

    bare = prompt_tokens()
    with_tools = prompt_tokens(tools=tools)
    assert with_tools - bare >= len(hermes_tool_prompt(tools).split())  # the instructions and the signature
    assert prompt_tokens(tools=tools, tool_choice="none") == bare
    # A forced call is written by its grammar: no tool prompt (it would not fit small windows).
    assert prompt_tokens(tools=tools, tool_choice="required", max_tokens=40) == bare


def test_template_input_places_the_tool_prompt_and_results() -> None:
    tools = [WEATHER]
    plain = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
    msgs, passed = template_input([{"role": "user", "content": "hi"}], tools, plain)
    assert passed is None and msgs[0]["role"] == "system" and msgs[0]["content"] == hermes_tool_prompt(tools)
    assert '"name":"get_weather"' in msgs[0]["content"]  # compact, as JSON.stringify writes it in the SDK
    msgs, _ = template_input(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}], tools, plain
    )
    assert msgs[0]["content"].startswith("Be brief.\n\n# Tools") and len(msgs) == 2
    msgs, _ = template_input([{"role": "tool", "tool_call_id": "call_1", "content": "21 C"}], None, plain)
    assert msgs[0]["content"] == "<tool_response>\n21 C\n</tool_response>"
    # A template that renders tools itself gets them, and the messages unchanged.
    knows = "{% if tools %}{{ tools | tojson }}{% endif %}{% for m in messages %}{{ m.tool_calls }}{% endfor %}"
    msgs, passed = template_input([{"role": "user", "content": "hi"}], tools, knows)
    assert passed == tools and msgs == [{"role": "user", "content": "hi"}]
