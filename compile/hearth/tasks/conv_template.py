"""The MLC fields of mlc-chat-config.json that WebLLM needs and Hearth's SDK does not.

- `conv_template`: WebLLM builds prompts from an MLC conversation template (system template,
  role prefixes, separators, stop tokens), not from the checkpoint's Jinja `chat_template`, which
  Hearth's SDK renders itself. `mlc_conv_template` derives one for ChatML checkpoints (Qwen2,
  SmolLM2, ...) and keeps it only if WebLLM's way of assembling a prompt (`render_like_webllm`, a
  port of web-llm's `Conversation.getPromptArray`) reproduces the Jinja template's output
  exactly on probe conversations (with and without a system message, one and two turns).
  Anything else gets None: a WebLLM app must then pass `overrides.conv_template` itself.
- `tokenizer_info`: how MLC post-processes the token table (WebLLM uses it for JSON mode), detected
  from tokenizer.json as MLC's own tokenizer loader does.
"""

from __future__ import annotations

import re
from typing import Any

_SYSTEM = "{system_message}"
# Distinct texts, so that a template that drops or reorders a message cannot match by accident.
_S, _U1, _A1, _U2 = "You answer in one word.", "Name a colour.", "Blue.", "Another one?"
_PROBES: list[list[dict[str, str]]] = [
    [{"role": "user", "content": _U1}],
    [{"role": "system", "content": _S}, {"role": "user", "content": _U1}],
    [{"role": "user", "content": _U1}, {"role": "assistant", "content": _A1}, {"role": "user", "content": _U2}],
    [
        {"role": "system", "content": _S},
        {"role": "user", "content": _U1},
        {"role": "assistant", "content": _A1},
        {"role": "user", "content": _U2},
    ],
]
_CHATML_SYSTEM = re.compile(r"^<\|im_start\|>system\n(.*?)<\|im_end\|>\n", re.S)


def _special_tokens(tokenizer_config: dict[str, Any]) -> dict[str, str]:
    """bos_token, eos_token, ... as the template sees them (strings, as transformers passes them)."""
    out = {}
    for key, value in tokenizer_config.items():
        if key.endswith("_token"):
            text = value.get("content") if isinstance(value, dict) else value
            if isinstance(text, str):
                out[key] = text
    return out


def render_jinja(
    chat_template: str,
    messages: list[dict[str, str]],
    tokenizer_config: dict[str, Any],
    add_generation_prompt: bool = True,
) -> str:
    """The prompt transformers' `apply_chat_template(..., add_generation_prompt=...)` renders."""
    from transformers.utils.chat_template_utils import render_jinja_template

    rendered, _ = render_jinja_template(
        conversations=[messages],
        chat_template=chat_template,
        add_generation_prompt=add_generation_prompt,
        **_special_tokens(tokenizer_config),
    )
    return rendered[0]


def render_like_webllm(conv: dict[str, Any], messages: list[dict[str, str]]) -> str:
    """The prompt web-llm (0.2.86, src/conversation.ts) builds from `conv` for a chat completion:
    a request's system message replaces the default one; then each message as role + content_sep +
    text + seps[i % len]; then the reply header, role + empty_sep."""
    system = conv["system_message"]
    turns = messages
    if messages and messages[0]["role"] == "system":
        system, turns = messages[0]["content"], messages[1:]
    out = [conv["system_template"].replace(_SYSTEM, system)]
    for i, m in enumerate(turns):
        template = conv.get("role_templates", {}).get(m["role"], f"{{{m['role']}_message}}")
        text = template.replace(f"{{{m['role']}_message}}", m["content"])
        out.append(conv["roles"][m["role"]] + conv["role_content_sep"] + text + conv["seps"][i % len(conv["seps"])])
    out.append(conv["roles"]["assistant"] + conv["role_empty_sep"])
    return "".join(out)


def _token_id(token: str, tokenizer_json: dict[str, Any] | None, tokenizer_config: dict[str, Any]) -> int | None:
    for added in (tokenizer_json or {}).get("added_tokens", []):
        if added.get("content") == token:
            return int(added["id"])
    for key, added in tokenizer_config.get("added_tokens_decoder", {}).items():
        if isinstance(added, dict) and added.get("content") == token:
            return int(key)
    vocab = ((tokenizer_json or {}).get("model") or {}).get("vocab")
    return int(vocab[token]) if isinstance(vocab, dict) and token in vocab else None


def mlc_conv_template(
    chat_template: str | None,
    tokenizer_config: dict[str, Any],
    tokenizer_json: dict[str, Any] | None,
    eos_token_ids: list[int],
) -> dict[str, Any] | None:
    """An MLC conv_template equivalent to the Jinja `chat_template`, or None if there is none that
    WebLLM would render identically (see the module docstring)."""
    if not chat_template or "<|im_start|>" not in chat_template:
        return None
    try:
        no_system = render_jinja(chat_template, _PROBES[0], tokenizer_config)
    except Exception:  # noqa: BLE001 - a template that cannot render the probe has no MLC twin
        return None
    # A template that adds a default system message when the conversation has none (Qwen2,
    # SmolLM2) tells us that message; WebLLM always renders a system block, so one is required.
    default = _CHATML_SYSTEM.match(no_system)
    if default is None:
        return None
    im_end = _token_id("<|im_end|>", tokenizer_json, tokenizer_config)
    stop_ids = list(dict.fromkeys([*eos_token_ids, *([im_end] if im_end is not None else [])]))
    conv = {
        "name": "chatml",
        "system_template": f"<|im_start|>system\n{_SYSTEM}<|im_end|>\n",
        "system_message": default.group(1),
        "system_prefix_token_ids": None,
        "add_role_after_system_message": True,
        "roles": {"user": "<|im_start|>user", "assistant": "<|im_start|>assistant"},
        "role_templates": {"user": "{user_message}", "assistant": "{assistant_message}", "tool": "{tool_message}"},
        "messages": [],
        "seps": ["<|im_end|>\n"],
        "role_content_sep": "\n",
        "role_empty_sep": "\n",
        "stop_str": ["<|im_end|>"],
        "stop_token_ids": stop_ids,
        "function_string": "",
        "use_function_calling": False,
    }
    for probe in _PROBES:
        try:
            if render_jinja(chat_template, probe, tokenizer_config) != render_like_webllm(conv, probe):
                return None
        except Exception:  # noqa: BLE001 - see above
            return None
    return conv


def tokenizer_info(tokenizer_json: dict[str, Any] | None) -> dict[str, Any] | None:
    """MLC's `tokenizer_info` (cpp/tokenizers/tokenizers.cc, DetectTokenizerInfo): byte_level or
    byte_fallback from the decoder, prepend_space_in_encode from a Prepend("▁") normalizer,
    strip_space_in_decode from a Strip(" ", start) decoder."""
    if tokenizer_json is None:
        return None

    def parts(node: Any, key: str) -> list[dict[str, Any]]:
        if not isinstance(node, dict):
            return []
        return [p for p in node.get(key, []) if isinstance(p, dict)] if node.get("type") == "Sequence" else [node]

    decoders = parts(tokenizer_json.get("decoder"), "decoders")
    types = [d.get("type") for d in decoders]
    method = "byte_level" if "ByteLevel" in types else "byte_fallback"
    normalizers = parts(tokenizer_json.get("normalizer"), "normalizers")
    prepend = any(n.get("type") == "Prepend" and n.get("prepend") == "\u2581" for n in normalizers)
    strip = any(d.get("type") == "Strip" and d.get("content") == " " and int(d.get("start", 0)) > 0 for d in decoders)
    return {"token_postproc_method": method, "prepend_space_in_encode": prepend, "strip_space_in_decode": strip}


__all__ = ["mlc_conv_template", "render_jinja", "render_like_webllm", "tokenizer_info"]
