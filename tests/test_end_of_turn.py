"""hearth.tasks.end_of_turn: the token a chat template closes an assistant turn with, found by rendering
the template (the real Gemma 3 / Qwen3 templates are in tests/test_chat_templates_real.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hearth.tasks.chat import read_chat_template
from hearth.tasks.end_of_turn import end_of_turn_token_id, stop_token_ids

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from make_test_models import ensure_test_model  # noqa: E402

ADDED = {
    "added_tokens": [
        {"id": 0, "content": "<s>", "special": True},
        {"id": 1, "content": "</s>", "special": True},
        {"id": 5, "content": "<|end|>", "special": True},
        {"id": 6, "content": "<|end", "special": True},  # a prefix of <|end|>: the longer one wins
        {"id": 7, "content": "<|user|>", "special": True},
        {"id": 8, "content": "<|assistant|>", "special": True},
        {"id": 9, "content": "<tag>", "special": False},
    ]
}
# Phi-3-style turns, and a template whose reply is followed by plain text.
PHI3_STYLE = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
PLAIN = "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\\n---\\n' }}{% endfor %}"
NOT_SPECIAL = "{% for message in messages %}{{ message['content'] + '<tag>' }}{% endfor %}"


def test_test_models_end_their_turns_with_their_eos() -> None:
    """The three test models: ChatML's <|im_end|> (tiny-qwen2-bpe, tiny-llama-trained) and Llama-2's
    ' </s>' (whitespace skipped)."""
    from transformers import AutoTokenizer

    for name, want in [
        ("tiny-qwen2-bpe", "<|im_end|>"),
        ("tiny-llama-sp", "</s>"),
        ("tiny-llama-trained", "<|im_end|>"),
    ]:
        src = ensure_test_model(name)
        cfg = json.loads((src / "tokenizer_config.json").read_text())
        tok_json = json.loads((src / "tokenizer.json").read_text())
        want_id = AutoTokenizer.from_pretrained(src).convert_tokens_to_ids(want)
        assert end_of_turn_token_id(read_chat_template(src, cfg), cfg, tok_json) == want_id, name


def test_longest_special_token_after_the_reply() -> None:
    assert end_of_turn_token_id(PHI3_STYLE, {}, ADDED) == 5


def test_no_end_of_turn_when_none_is_there() -> None:
    assert end_of_turn_token_id(None, {}, ADDED) is None
    assert end_of_turn_token_id(PLAIN, {}, ADDED) is None  # plain text after the reply
    assert end_of_turn_token_id(NOT_SPECIAL, {}, ADDED) is None  # an added token that is not special
    assert end_of_turn_token_id(PHI3_STYLE, {}, None) is None  # no tokenizer.json
    raises = "{{ raise_exception('no') }}"
    assert end_of_turn_token_id(raises, {}, ADDED) is None


def test_stop_token_ids_keep_the_source_form_unless_one_is_added() -> None:
    assert stop_token_ids(2, 2) == 2
    assert stop_token_ids(2, None) == 2
    assert stop_token_ids(1, 106) == [1, 106]
    assert stop_token_ids([151645, 151643], 151645) == [151645, 151643]
    assert stop_token_ids(None, 7) == [7]
    assert stop_token_ids(None, None) is None
