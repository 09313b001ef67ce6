"""The token a chat template closes an assistant turn with, so generation stops there.

A chat model ends its reply with the token its template writes after an assistant message:
`<|im_end|>` (ChatML: Qwen2/3, SmolLM2), `<end_of_turn>` (Gemma), `<|end|>` (Phi-3), `<|eot_id|>`
(Llama 3). Hugging Face checkpoints usually list it in generation_config.json's `eos_token_id`, but
not always: a GGUF carries one eos id (Gemma 3's files say `<eos>`), and base-model configs often name
only `<|endoftext|>`. Rendering the template itself finds it for any family, with nothing
family-specific in the compiler or the SDK, which reads mlc-chat-config.json's `eos_token_id` list.
"""

from __future__ import annotations

from typing import Any

from .conv_template import render_jinja

# Text no tokenizer or template treats specially, so it can be found in the rendered prompt.
_MARK = "Hearth end-of-turn probe 7f3a"
_PROBE = [{"role": "user", "content": "Hello."}, {"role": "assistant", "content": _MARK}]


def _special_tokens(tokenizer_json: dict[str, Any] | None, tokenizer_config: dict[str, Any]) -> dict[str, int]:
    """Special added tokens (content -> id): those the tokenizer never splits and decodes away."""
    out: dict[str, int] = {}
    for added in (tokenizer_json or {}).get("added_tokens", []):
        if isinstance(added, dict) and added.get("special") and isinstance(added.get("content"), str):
            out[added["content"]] = int(added["id"])
    for key, added in tokenizer_config.get("added_tokens_decoder", {}).items():
        if isinstance(added, dict) and added.get("special") and isinstance(added.get("content"), str):
            out.setdefault(added["content"], int(key))
    return out


def end_of_turn_token_id(
    chat_template: str | None, tokenizer_config: dict[str, Any], tokenizer_json: dict[str, Any] | None
) -> int | None:
    """The special token the template writes right after an assistant message's text (whitespace
    between them skipped), or None: no template, a template that cannot render a user/assistant
    exchange, or plain text after the reply."""
    if not chat_template:
        return None
    specials = _special_tokens(tokenizer_json, tokenizer_config)
    if not specials:
        return None
    try:
        text = render_jinja(chat_template, _PROBE, tokenizer_config, add_generation_prompt=False)
    except Exception:  # noqa: BLE001 - a template that cannot render the probe has no end of turn to find
        return None
    at = text.find(_MARK)
    if at < 0:
        return None
    rest = text[at + len(_MARK) :].lstrip()
    # The longest match: "<|im_end|>" rather than a shorter special token that is its prefix.
    found = max((t for t in specials if t and rest.startswith(t)), key=len, default=None)
    return None if found is None else specials[found]


def stop_token_ids(eos: int | list[int] | None, end_of_turn: int | None) -> int | list[int] | None:
    """mlc-chat-config's `eos_token_id`: the checkpoint's own eos id(s), then the template's end of
    turn when it is not among them (kept as a single int when nothing is added, as the source wrote it)."""
    ids = [eos] if isinstance(eos, int) else list(eos or [])
    if end_of_turn is None or end_of_turn in ids:
        return eos
    return [*ids, end_of_turn]


__all__ = ["end_of_turn_token_id", "stop_token_ids"]
