"""mlc-chat-config.json's WebLLM fields (hearth.tasks.conv_template): an MLC conv_template only when
WebLLM would render the same prompts as the Jinja chat template, and MLC's tokenizer_info.

The real WebLLM renders the emitted template in sdk/test/webllm-interop.test.ts; here the port of its
prompt assembly is checked on templates that must and must not get one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hearth.tasks.conv_template import mlc_conv_template, render_jinja, render_like_webllm, tokenizer_info

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from make_test_models import ensure_test_model  # noqa: E402

QWEN2_STYLE = (
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if not (message.role == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
# SmolLM2-135M-Instruct's template, verbatim.
SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Plain ChatML without a default system message: WebLLM would add an empty system block.
CHATML_NO_DEFAULT = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
LLAMA2 = (
    "{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + ' ' + eos_token }}{% endif %}{% endfor %}"
)
TOKENIZER_JSON = {
    "added_tokens": [{"id": 7, "content": "<|im_end|>"}, {"id": 8, "content": "<|im_start|>"}],
    "model": {"vocab": {}},
}


def test_chatml_with_default_system_gets_a_template_that_renders_like_jinja() -> None:
    for template, default in [
        (QWEN2_STYLE, "You are a helpful assistant."),
        (SMOLLM2, "You are a helpful AI assistant named SmolLM, trained by Hugging Face"),
    ]:
        conv = mlc_conv_template(template, {}, TOKENIZER_JSON, [2])
        assert conv is not None
        assert conv["system_message"] == default
        assert conv["stop_token_ids"] == [2, 7] and conv["stop_str"] == ["<|im_end|>"]
        long_chat = [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
            {"role": "assistant", "content": "d"},
            {"role": "user", "content": "e"},
        ]
        for chat in (long_chat, long_chat[1:]):
            assert render_like_webllm(conv, chat) == render_jinja(template, chat, {})


def test_stop_ids_are_not_repeated_when_im_end_is_the_eos() -> None:
    conv = mlc_conv_template(QWEN2_STYLE, {}, TOKENIZER_JSON, [7, 2])
    assert conv is not None and conv["stop_token_ids"] == [7, 2]


def test_templates_webllm_cannot_reproduce_get_none() -> None:
    assert mlc_conv_template(CHATML_NO_DEFAULT, {}, TOKENIZER_JSON, [2]) is None
    assert mlc_conv_template(LLAMA2, {"bos_token": "<s>", "eos_token": "</s>"}, None, [2]) is None
    assert mlc_conv_template(None, {}, None, [2]) is None
    # ChatML-looking, but the assistant's turns are dropped from history: WebLLM would keep them.
    drops_history = QWEN2_STYLE.replace("if not (message.role == 'system' and loop.first)", "if message.role == 'user'")
    assert mlc_conv_template(drops_history, {}, TOKENIZER_JSON, [2]) is None
    # A template that raises on the probe conversation.
    assert mlc_conv_template("<|im_start|>{{ raise_exception('no') }}", {}, None, [2]) is None


def test_the_qwen2_test_model_gets_one() -> None:
    src = ensure_test_model("tiny-qwen2-bpe")
    tok_cfg = json.loads((src / "tokenizer_config.json").read_text())
    tok_json = json.loads((src / "tokenizer.json").read_text())
    conv = mlc_conv_template(tok_cfg["chat_template"], tok_cfg, tok_json, [1023, 1021])
    assert conv is not None and 1023 in conv["stop_token_ids"]


def test_tokenizer_info_follows_mlc_detection() -> None:
    assert tokenizer_info(None) is None
    byte_level = {"decoder": {"type": "ByteLevel"}, "normalizer": None}
    assert tokenizer_info(byte_level) == {
        "token_postproc_method": "byte_level",
        "prepend_space_in_encode": False,
        "strip_space_in_decode": False,
    }
    sentencepiece = {
        "normalizer": {
            "type": "Sequence",
            "normalizers": [{"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace"}],
        },
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace"},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ],
        },
    }
    assert tokenizer_info(sentencepiece) == {
        "token_postproc_method": "byte_fallback",
        "prepend_space_in_encode": True,
        "strip_space_in_decode": True,
    }
    assert (
        tokenizer_info({"decoder": {"type": "WordPiece"}})["token_postproc_method"] == "byte_fallback"
    )  # MLC's default
