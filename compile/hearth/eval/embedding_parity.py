"""Embedding parity: a compiled encoder package, run natively, against sentence-transformers.

    python -m hearth.eval.embedding_parity <checkpoint folder> --quant q0f32 --quant q8f16_1 \\
        [--out DIR] [--target llvm] [--json report.json]

For each quantization the checkpoint is compiled (or taken from the build-key cache) for a
native target, every text of `parity_texts()` is embedded through the package's bucket
functions (`hearth.native.encoder`), and compared by cosine similarity with the
reference: sentence-transformers when the checkpoint has a modules.json, else transformers +
the same pooling Hearth recorded (its default: mean + L2 normalisation).

Texts (deterministic, >= 200): short phrases, sentences and paragraphs from Python's own help
texts (pydoc_data.topics), texts long enough to be truncated at max_seq_length, unicode
(accents, CJK, RTL, Indic, combining marks, zero-width joiners), emoji, code, numbers,
the empty string and whitespace-only strings. Truncation is reported per text (tokens before
and after), never silent. Empty / whitespace-only strings tokenize to [CLS] [SEP] in both
implementations and are compared like any other text.

Token ids are checked too: the package's tokenizer.json (HF `tokenizers`, truncation at
max_seq_length) must give the same ids as sentence-transformers' tokenizer for every text.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import cache_root
from ..tasks import EMBEDDING

# ----------------------------------------------------------------------------------------------
# Texts

_SHORT = [
    "hello",
    "Hello, world!",
    "a",
    "I",
    "ok",
    "The cat sat on the mat.",
    "machine learning",
    "How do I reset my password?",
    "What is the capital of France?",
    "Paris is the capital of France.",
    "best pizza near me",
    "WebGPU in the browser",
    "private on-device AI",
    "Nope.",
    "yes!!!",
    "¿Dónde está la biblioteca?",
    "C'est la vie",
    "ein kleiner Test",
    "to be or not to be",
    "red",
    "The quick brown fox jumps over the lazy dog.",
    "THE QUICK BROWN FOX",
    "tHe QuIcK bRoWn FoX",
]
_UNICODE = [
    "naïve café résumé façade coöperate",
    "Ünïcödé téxt wïth dïäcrïtïcs",
    "Straße, Größe, Maß",
    "東京は日本の首都です。",
    "我喜欢学习中文和机器学习。",
    "한국어 문장도 테스트합니다.",
    "これはテストです",
    "Привет, как дела? Это тест.",
    "Γειά σου Κόσμε",
    "مرحبا بالعالم، هذا اختبار",
    "שלום עולם",
    "नमस्ते दुनिया, यह एक परीक्षण है",
    "สวัสดีชาวโลก",
    "Xin chào thế giới",
    "Ελληνικά και English mixed",
    "e\u0301 combining acute, a\u0308 combining diaeresis",
    "zero\u200bwidth\u200bspace",
    "ﬁ ligature ﬂ",
    "ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ",
    "math: ∀x∈ℝ, ∃y: x² + y² ≥ 0 ∑∫√∞",
    "arrows ← → ↑ ↓ ⇒ ⇔",
    "«quotes» „German“ ‘single’",
    "control\x00chars\x07in\x1btext",
    "tab\tseparated\tvalues",
    "line one\nline two\r\nline three",
]
_EMOJI = [
    "😀",
    "I love this! ❤️🔥",
    "👍🏽 thumbs up with skin tone",
    "👨‍👩‍👧‍👦 family ZWJ sequence",
    "🇫🇷🇯🇵🇺🇸 flags",
    "🚀🌕✨ to the moon",
    "emoji only: 🙂🙃😉😊😇",
    "weather ☀️🌧️⛈️❄️",
    "🐍 Python and 🦀 Rust",
    "keycap 1️⃣2️⃣3️⃣ and #️⃣",
]
_CODE = [
    "def add(a, b):\n    return a + b",
    "for (let i = 0; i < n; i++) { sum += arr[i]; }",
    "SELECT name, COUNT(*) FROM users WHERE age > 30 GROUP BY name ORDER BY 2 DESC;",
    '#include <stdio.h>\nint main(void) { printf("hi\\n"); return 0; }',
    "git commit -m 'fix: handle empty input' && git push origin main",
    "import numpy as np\nx = np.zeros((3, 4), dtype=np.float32)\nprint(x.shape)",
    '<div class="card"><p>Hello &amp; welcome</p></div>',
    '{"model_type": "bert", "hidden_size": 384, "layers": [1, 2, 3]}',
    "fn main() { let v: Vec<i32> = (0..10).map(|x| x * x).collect(); }",
    "https://example.com/path/to/page?query=1&lang=en#section-2",
    "user.name+tag@example.co.uk",
    "lambda x: x if x > 0 else -x",
    "$ curl -sSL https://example.org | sh -s -- --yes",
    "a[i] = b[j] << 3 | c & 0xFF ^ ~d",
]
_NUMBERS = [
    "0",
    "42",
    "3.14159265358979",
    "-273.15",
    "1e-12",
    "6.022e23",
    "0xDEADBEEF",
    "1,234,567.89",
    "$19.99",
    "€1.000,00",
    "2026-11-21T11:25:26Z",
    "12/31/1999 23:59",
    "+1 (555) 123-4567",
    "ISBN 978-3-16-148410-0",
    "v0.27.0.post1",
    "1st 2nd 3rd 4th",
    "100% of 50 is 50",
    "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
    "π ≈ 3.14, e ≈ 2.718",
]
_EDGE = [
    "",
    " ",
    "  ",
    "\n",
    "\t",
    " \t\n \r\n ",
    "\u3000",
    "\u00a0\u00a0",
    ".",
    "?!",
    "...",
    "-----",
    "[CLS]",
    "[SEP] [PAD] [MASK]",
    "[UNK]",
    "a" * 300,
    "ab " * 200,
    "!" * 50,
    "supercalifragilisticexpialidocious",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
]


def _pydoc_words() -> list[str]:
    from pydoc_data.topics import topics

    return " ".join(topics[k] for k in sorted(topics)).split()


def _pydoc_sentences() -> list[str]:
    from pydoc_data.topics import topics

    out = []
    for key in sorted(topics):
        for s in topics[key].replace("\n", " ").split(". "):
            s = " ".join(s.split())
            if 20 <= len(s) <= 300 and not s.startswith(("*", "=", "-")):
                out.append(s + ".")
    return out


def parity_texts(seed: int = 0) -> list[tuple[str, str]]:
    """Deterministic (category, text) pairs, >= 200 of them (see the module docstring)."""
    rng = random.Random(seed)
    words = _pydoc_words()
    sentences = _pydoc_sentences()
    texts: list[tuple[str, str]] = []
    texts += [("short", t) for t in _SHORT]
    texts += [("unicode", t) for t in _UNICODE]
    texts += [("emoji", t) for t in _EMOJI]
    texts += [("code", t) for t in _CODE]
    texts += [("numbers", t) for t in _NUMBERS]
    texts += [("edge", t) for t in _EDGE]
    texts += [("sentence", s) for s in rng.sample(sentences, 60)]

    def span(n: int) -> str:
        start = rng.randrange(0, len(words) - n)
        return " ".join(words[start : start + n])

    texts += [("paragraph", span(rng.randint(30, 180))) for _ in range(30)]
    # Long enough to be truncated at 256 or 512 tokens (~1.3 tokens per word here).
    texts += [("long", span(rng.randint(300, 1500))) for _ in range(20)]
    # Mixtures: sentence + unicode/emoji/code, so unusual tokens also appear mid-text.
    extras = _UNICODE + _EMOJI + _CODE + _NUMBERS
    texts += [("mixed", f"{rng.choice(sentences)} {rng.choice(extras)} {rng.choice(sentences)}") for _ in range(20)]
    return texts


# ----------------------------------------------------------------------------------------------
# Reference


def reference_embeddings(
    source_dir: Path, texts: list[str], max_seq_length: int, pooling: Any
) -> tuple[np.ndarray, list[list[int]]]:
    """(embeddings float32 [n, hidden], token ids) from sentence-transformers, or transformers +
    `pooling` (a hearth PoolingConfig) when the checkpoint has no modules.json."""
    import torch

    if (Path(source_dir) / "modules.json").is_file():
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(source_dir), device="cpu")
        st.max_seq_length = max_seq_length
        emb = st.encode(texts, batch_size=32, convert_to_numpy=True, show_progress_bar=False)
        ids = st.tokenizer(texts, truncation=True, max_length=max_seq_length)["input_ids"]
        return np.asarray(emb, np.float32), [list(map(int, t)) for t in ids]

    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(source_dir))
    model = AutoModel.from_pretrained(str(source_dir)).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), 32):
            batch = tok(
                texts[i : i + 32], truncation=True, max_length=max_seq_length, padding=True, return_tensors="pt"
            )
            h = model(**batch).last_hidden_state.float()
            m = batch["attention_mask"].unsqueeze(-1).float()
            if pooling.mode == "cls":
                v = h[:, 0]
            elif pooling.mode == "max":
                v = h.masked_fill(m == 0, float("-inf")).max(dim=1).values
            else:
                count = m.sum(1).clamp(min=1e-9)
                v = (h * m).sum(1) / (count if pooling.mode == "mean" else count.sqrt())
            if pooling.normalize:
                v = torch.nn.functional.normalize(v, p=2, dim=-1)
            out.append(v.numpy())
    ids = tok(texts, truncation=True, max_length=max_seq_length)["input_ids"]
    return np.concatenate(out).astype(np.float32), [list(map(int, t)) for t in ids]


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    return (a * b).sum(1) / np.maximum(na * nb, 1e-30)


# ----------------------------------------------------------------------------------------------
# Harness


@dataclass
class QuantResult:
    quant: str
    min_cosine: float
    mean_cosine: float
    p1_cosine: float  # 1st percentile
    worst: list[dict[str, Any]]  # the 5 lowest: index, category, cosine, text (first 60 chars)
    package_dir: str
    package_bytes: int
    weights_bytes: int
    lib_bytes: int
    bits_per_param: float
    cached: bool
    compile_seconds: dict[str, float]
    embed_seconds: float
    calls: dict[str, int]


@dataclass
class ParityReport:
    model: str
    target: str
    n_texts: int
    categories: dict[str, int]
    max_seq_length: int
    pooling: str
    normalize: bool
    buckets: list[str]
    truncated: list[dict[str, Any]]  # index, category, tokens before, tokens after
    token_mismatches: list[int]  # indices where the package tokenizer differs from the reference
    results: dict[str, QuantResult] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_parity(
    model: str | Path,
    quants: list[str],
    out_root: Path,
    *,
    target: str = "llvm",
    model_id: str | None = None,
    texts: list[tuple[str, str]] | None = None,
    embed_batch_sizes: list[int] | None = None,
    embed_seq_lens: list[int] | None = None,
    log=print,
) -> ParityReport:
    """Compile (cached) each quantization for `target`, embed every text, compare to the reference."""
    # build/ and the native encoder import TVM: loaded when a parity run starts, not with hearth eval.
    from tokenizers import Tokenizer

    from ..build.package import compile_package

    texts = texts if texts is not None else parity_texts()
    strings = [t for _, t in texts]
    report: ParityReport | None = None
    ref: np.ndarray | None = None
    for quant in quants:
        t0 = time.perf_counter()
        res = compile_package(
            str(model),
            quant,
            [target],
            Path(out_root),
            model_id=model_id,
            embed_batch_sizes=embed_batch_sizes,
            embed_seq_lens=embed_seq_lens,
        )
        log(
            f"{quant}: package {res.package_dir} "
            f"({'cached' if res.cached else f'built in {time.perf_counter() - t0:.1f} s'})"
        )
        enc = EMBEDDING.open_native(res.package_dir, target)
        cfg = json.loads((res.package_dir / "mlc-chat-config.json").read_text())
        meta = cfg["embedding_metadata"]
        if report is None:
            from ..models.encoder import PoolingConfig  # TVM, lazily (as above)

            pooling = PoolingConfig(meta["pooling"], meta["normalize"], meta["pooling_source"])
            ref, ref_ids = reference_embeddings(Path(model), strings, meta["max_seq_length"], pooling)
            full = Tokenizer.from_file(str(res.package_dir / "tokenizer.json"))
            full.no_padding()
            full.no_truncation()
            full_lengths = [len(e.ids) for e in full.encode_batch(strings)]
            ids, truncated = enc.tokenize(strings)
            report = ParityReport(
                model=str(model),
                target=target,
                n_texts=len(texts),
                categories=dict(Counter(c for c, _ in texts)),
                max_seq_length=meta["max_seq_length"],
                pooling=meta["pooling"],
                normalize=meta["normalize"],
                buckets=[k["function"] for k in meta["buckets"]],
                truncated=[
                    {"index": i, "category": texts[i][0], "tokens": full_lengths[i], "kept": len(ids[i])}
                    for i in truncated
                ],
                token_mismatches=[i for i in range(len(texts)) if ids[i] != ref_ids[i]],
            )
            log(
                f"{len(truncated)} of {len(texts)} texts truncated to {meta['max_seq_length']} tokens; "
                f"{len(report.token_mismatches)} token-id mismatches vs the reference tokenizer"
            )
        t1 = time.perf_counter()
        out = enc.embed(strings)
        embed_seconds = time.perf_counter() - t1
        cos = cosine(out.embeddings, ref)
        if not np.all(np.isfinite(cos)):
            bad = [int(i) for i in np.flatnonzero(~np.isfinite(cos))]
            raise RuntimeError(f"{quant}: non-finite embeddings for texts {bad[:10]}")
        worst = [
            {"index": int(i), "category": texts[i][0], "cosine": float(cos[i]), "text": strings[i][:60]}
            for i in np.argsort(cos)[:5]
        ]
        files = res.manifest["files"]
        report.results[quant] = QuantResult(
            quant=quant,
            min_cosine=float(cos.min()),
            mean_cosine=float(cos.mean()),
            p1_cosine=float(np.percentile(cos, 1)),
            worst=worst,
            package_dir=str(res.package_dir),
            package_bytes=sum(f["bytes"] for f in files),
            weights_bytes=sum(f["bytes"] for f in files if f["path"].startswith("params_shard_")),
            lib_bytes=sum(f["bytes"] for f in files if f["path"] in res.manifest["targets"].values()),
            bits_per_param=res.manifest["bits_per_param"],
            cached=res.cached,
            compile_seconds=res.manifest.get("compile_seconds", {}),
            embed_seconds=embed_seconds,
            calls=dict(out.calls),
        )
        log(
            f"{quant}: min cosine {cos.min():.6f}, mean {cos.mean():.6f} "
            f"({embed_seconds:.1f} s, {sum(out.calls.values())} calls)"
        )
    assert report is not None
    return report


def format_table(report: ParityReport) -> str:
    lines = [
        f"{report.model} on {report.target}: {report.n_texts} texts, {len(report.truncated)} truncated at "
        f"{report.max_seq_length} tokens, pooling {report.pooling}{' + L2' if report.normalize else ''}, "
        f"{len(report.token_mismatches)} token mismatches",
        "| quant | min cos | mean cos | p1 cos | bits/param | weights MiB | lib MiB | embed s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report.results.values():
        lines.append(
            f"| {r.quant} | {r.min_cosine:.6f} | {r.mean_cosine:.6f} | {r.p1_cosine:.6f} | {r.bits_per_param} | "
            f"{r.weights_bytes / 2**20:.1f} | {r.lib_bytes / 2**20:.1f} | {r.embed_seconds:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hearth.eval.embedding_parity", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("model", help="encoder checkpoint folder (config.json + safetensors + tokenizer)")
    parser.add_argument("--quant", action="append", help="repeatable (default: q0f32)")
    parser.add_argument("--target", default="llvm", choices=["llvm", "cuda"])
    parser.add_argument("--out", default=None, help="package root (default: the hearth cache)")
    parser.add_argument("--model-id", default=None, help="package name under --out (default: the folder name)")
    parser.add_argument("--batch-sizes", default=None, help="bucket batch sizes, e.g. 1,8,32")
    parser.add_argument("--seq-lens", default=None, help="bucket sequence lengths, e.g. 32,64,128,256")
    parser.add_argument("--json", default=None, help="write the full report here")
    args = parser.parse_args(argv)

    def ints(s: str | None) -> list[int] | None:
        return [int(x) for x in s.split(",")] if s else None

    out = Path(args.out) if args.out else cache_root() / "encoder-packages"
    report = run_parity(
        args.model,
        args.quant or ["q0f32"],
        out,
        target=args.target,
        model_id=args.model_id,
        embed_batch_sizes=ints(args.batch_sizes),
        embed_seq_lens=ints(args.seq_lens),
        log=lambda s: print(s, file=sys.stderr),
    )
    print(format_table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
