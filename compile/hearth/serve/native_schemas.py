"""The request bodies of the native API (/v1/chat/completions, /v1/embeddings) as pydantic models,
and their JSON Schema for /openapi.json (so clients and fuzzers see what a valid body is).

What the `openai` client sends is accepted where the native engine can honour it (the same set the
SDK's engine takes: penalties, logprobs, logit_bias, seed, stop, the `developer` role, text content
parts, response_format and tools as structured.py / tool_calls.py enforce them); fields it cannot honour
(legacy functions, images, audio, token-id embedding inputs) are refused by name instead of being ignored.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

INT64_MIN, UINT64_MAX = -(1 << 63), (1 << 64) - 1
MAX_INT32 = (1 << 31) - 1


def _utf8(s: str) -> str:
    # JSON may spell lone UTF-16 surrogates ("\ud800"); they are not text and every tokenizer rejects them.
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(
            f"contains a lone UTF-16 surrogate (\\u{ord(s[e.start]):04x} at character {e.start}); "
            "send valid Unicode text"
        ) from None
    return s


Text = Annotated[str, AfterValidator(_utf8)]

# Fields of OpenAI's chat API that the native engine cannot honour: refused by name (code
# "unsupported_parameter") rather than dropped, so a client never believes they took effect.
UNSUPPORTED_CHAT = {
    "functions": "legacy function calling (use tools)",
    "function_call": "legacy function calling (use tool_choice)",
    "audio": "audio output",
    "modalities": "output modalities other than text",
    "prediction": "predicted outputs",
    "store": "stored completions",
    "metadata": "stored completions",
    "service_tier": "service tiers",
    "reasoning_effort": "reasoning models",
    "web_search_options": "web search",
    "best_of": "best_of",
    "suffix": "suffix (insertion)",
}


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: Text

    @field_validator("type", mode="before")
    @classmethod
    def _only_text(cls, v: object) -> object:
        if v != "text":
            raise ValueError(
                f"only text content parts are supported (got type {v!r}); "
                'send the text as {"type": "text", "text": ...}'
            )
        return v


FunctionName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]


class ToolCallFunction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: FunctionName
    arguments: Text


class ToolCall(BaseModel):
    """An assistant message's earlier call, echoed back (OpenAI's message.tool_calls[i])."""

    model_config = ConfigDict(extra="forbid")
    id: Text = Field(min_length=1, max_length=256)
    type: Literal["function"]
    function: ToolCallFunction


class Message(BaseModel):
    # Assistant messages echoed back from a response carry refusal/annotations/...: ignored when empty.
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    # null only for an assistant message that made tool calls (checked below).
    content: Text | Annotated[list[TextPart], Field(min_length=1)] | None = None
    name: Text | None = None
    tool_calls: Annotated[list[ToolCall], Field(min_length=1)] | None = None
    tool_call_id: Text | None = Field(default=None, min_length=1, max_length=256)

    @model_validator(mode="before")
    @classmethod
    def _no_legacy(cls, data: object) -> object:
        if isinstance(data, dict):
            for key in ("function_call", "audio"):
                if data.get(key):
                    what = "legacy function calls (send tool_calls)" if key == "function_call" else "audio"
                    raise ValueError(f"{key} in messages is not supported: the native API has no {what}")
        return data

    @field_validator("role", mode="before")
    @classmethod
    def _role(cls, v: object) -> object:
        if v == "function":
            raise ValueError("'function' messages are not supported (legacy function calling); send role 'tool'")
        return v

    @model_validator(mode="after")
    def _tool_fields(self) -> Message:
        if self.tool_calls is not None and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if self.role == "tool" and self.tool_call_id is None:
            raise ValueError("a 'tool' message needs tool_call_id (the id of the call it answers)")
        if self.content is None and self.tool_calls is None:
            raise ValueError("content is required (it may be null only in an assistant message with tool_calls)")
        return self

    def text(self) -> str:
        # Text parts join with a newline, as vLLM does for text-only content.
        if self.content is None:
            return ""
        return self.content if isinstance(self.content, str) else "\n".join(p.text for p in self.content)

    def template_message(self) -> dict[str, Any]:
        """The message as a chat template takes it (tool_calls.template_input finishes the tool parts)."""
        out: dict[str, Any] = {"role": self.template_role(), "content": self.text()}
        if self.tool_calls is not None:
            out["content"] = None if self.content is None else self.text()
            out["tool_calls"] = [c.model_dump() for c in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None and self.role == "tool":
            out["name"] = self.name
        return out

    def template_role(self) -> str:
        # `developer` is OpenAI's newer name for `system` instructions; chat templates know only `system`.
        return "system" if self.role == "developer" else self.role


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool | None = False


class JsonSchemaFormat(BaseModel):
    """OpenAI's response_format.json_schema."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: FunctionName
    description: Text | None = None
    # `schema` shadows a BaseModel attribute in pydantic: stored as schema_.
    schema_: dict[str, Any] | bool | None = Field(default=None, alias="schema")
    strict: bool | None = None


RESPONSE_FORMATS = ("text", "json_object", "json_schema", "grammar", "regex")


class ResponseFormat(BaseModel):
    """text, json_object (with WebLLM's optional `schema`), json_schema (OpenAI), and Hearth's grammar
    (EBNF) and regex extensions. Which field goes with which type is checked below."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    type: Literal["text", "json_object", "json_schema", "grammar", "regex"]
    json_schema: JsonSchemaFormat | None = None
    schema_: dict[str, Any] | bool | Text | None = Field(default=None, alias="schema")
    grammar: Text | None = Field(default=None, min_length=1)
    regex: Text | None = Field(default=None, min_length=1)

    @field_validator("type", mode="before")
    @classmethod
    def _known(cls, v: object) -> object:
        if v not in RESPONSE_FORMATS:
            raise ValueError(f"response_format type {v!r} is not supported; use one of {', '.join(RESPONSE_FORMATS)}")
        return v

    @model_validator(mode="after")
    def _fields_match_type(self) -> ResponseFormat:
        needs = {"json_schema": "json_schema", "grammar": "grammar", "regex": "regex"}
        given = {
            "json_schema": self.json_schema is not None,
            "schema": self.schema_ is not None,
            "grammar": self.grammar is not None,
            "regex": self.regex is not None,
        }
        wanted = needs.get(self.type)
        if wanted is not None and not given[wanted]:
            raise ValueError(f"type {self.type!r} needs the field {wanted!r}")
        allowed = {wanted} if wanted else ({"schema"} if self.type == "json_object" else set())
        extra = [k for k, v in given.items() if v and k not in allowed]
        if extra:
            raise ValueError(f"{', '.join(extra)} does not go with type {self.type!r}")
        return self

    def spec(self) -> dict[str, Any]:
        """As structured.response_format_spec reads it."""
        out: dict[str, Any] = {"type": self.type}
        if self.json_schema is not None:
            out["json_schema"] = {"name": self.json_schema.name, "schema": self.json_schema.schema_}
        if self.schema_ is not None:
            out["schema"] = self.schema_
        if self.grammar is not None:
            out["grammar"] = self.grammar
        if self.regex is not None:
            out["regex"] = self.regex
        return out


class FunctionDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: FunctionName
    description: Text | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: FunctionName


class NamedToolChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["function"]
    function: NamedFunction


# Not chat_template_kwargs: what a request sets through its own fields, and transformers'
# apply_chat_template parameters (they would not reach the template). The SDK refuses the same.
RESERVED_TEMPLATE_VARIABLES = frozenset(
    {
        "messages",
        "conversation",
        "tools",
        "documents",
        "chat_template",
        "add_generation_prompt",
        "continue_final_message",
        "tokenize",
        "sanitize_control_tokens",
        "padding",
        "truncation",
        "max_length",
        "return_tensors",
        "return_dict",
        "return_assistant_tokens_mask",
        "tokenizer_kwargs",
    }
)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: Text = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_INT32)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_INT32)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    logit_bias: (
        dict[Annotated[str, Field(pattern=r"^[0-9]{1,10}$")], Annotated[float, Field(ge=-100.0, le=100.0)]] | None
    ) = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    # OpenAI documents an int64 seed; negative ones are valid there (folded into numpy's unsigned range).
    seed: int | None = Field(default=None, ge=INT64_MIN, le=UINT64_MAX)
    stop: Text | Annotated[list[Text], Field(max_length=4)] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None
    tools: Annotated[list[Tool], Field(max_length=128)] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    # One call per answer is what the grammar enforces for required / named; auto parses every block.
    parallel_tool_calls: bool | None = None
    n: Literal[1] | None = 1
    user: Text | None = None
    # More chat-template variables (vLLM's extension; the SDK takes the same): e.g. {"enable_thinking": false}.
    chat_template_kwargs: dict[str, Any] | None = None

    @field_validator("chat_template_kwargs")
    @classmethod
    def _template_kwargs(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        for key in v or {}:
            if key in RESERVED_TEMPLATE_VARIABLES:
                raise ValueError(
                    f"{key} is not a template variable a request may set (a request field or an "
                    "apply_chat_template option); pass it as the request's own field where there is one"
                )
        return v

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> list[str]:
        stops = [v] if isinstance(v, str) else (v or [])
        if len(stops) > 4:
            raise ValueError("at most 4 stop sequences")
        if any(s == "" for s in stops):
            raise ValueError("a stop sequence must not be empty")
        return stops

    @field_validator("top_logprobs")
    @classmethod
    def _top_logprobs_needs_logprobs(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v and not info.data.get("logprobs"):
            raise ValueError("top_logprobs needs logprobs: true")
        return v


def _refuse_token_ids(v: object) -> object:
    if (
        isinstance(v, list)
        and v
        and all(isinstance(x, int) or (isinstance(x, list) and all(isinstance(y, int) for y in x)) for x in v)
    ):
        raise ValueError(
            "token-id inputs are not supported: ids of another tokenizer mean nothing to this encoder, which tokenizes "
            "with its own package's tokenizer; send the text (a string or a list of strings)"
        )
    return v


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: Text = Field(min_length=1)
    input: Text | Annotated[list[Text], Field(min_length=1)]
    encoding_format: Literal["float", "base64"] | None = "float"
    dimensions: int | None = Field(default=None, ge=1, le=MAX_INT32)
    user: Text | None = None
    # The SDK's extension: "truncate" (default; reported in `truncated`) or "error" (400 naming the input).
    truncation: Literal["truncate", "error"] | None = None

    @field_validator("input", mode="before")
    @classmethod
    def _no_token_ids(cls, v: object) -> object:
        return _refuse_token_ids(v)


# -- JSON Schema for /openapi.json -------------------------------------------------------------


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(copy.deepcopy(defs[ref[len("#/$defs/") :]]), defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def request_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON Schema with every $ref inlined: an OpenAPI document resolves "#/..." against
    itself, where pydantic's "#/$defs/..." would not exist (none of these models is recursive)."""
    schema = model.model_json_schema()
    return _inline(schema, schema.get("$defs", {}))


def openapi_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route that reads `model` from its JSON body itself."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": request_schema(model)}}}}
