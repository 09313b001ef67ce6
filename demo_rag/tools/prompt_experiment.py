"""Which RAG prompt makes SmolLM2-135M-Instruct answer from the passages and cite them by number?

Runs the fp32 reference (transformers, the GGUF converted by `hearth compile`; the compiled q0f32
package gives identical tokens) on prompts rendered exactly as sdk/src/rag/prompt.ts renders them,
for a few prompt variants, on a small fictional document (or on the QA set's questions when given
--qa <json>). Scores: the answer contains the expected fact (case-insensitive), and the cited numbers
include the source that holds it. Greedy unless --sample.

    .venv/bin/python demo_rag/tools/prompt_experiment.py [--model DIR] [--variants v0,v2] [--sample]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

DEFAULT_MODEL = Path.home() / ".cache/hearth/gguf/b179c9523d0e6a0f"
TITLE = "quillmere-annual-report.pdf"


@dataclass
class Passage:
    page: int
    text: str


# A fictional company report, one chunk per page (the demo's chunks are up to 200 encoder tokens).
PASSAGES = [
    Passage(
        1,
        "Quillmere Robotics was founded in 2011 in the harbour town of Wexcombe. The company designs small "
        "autonomous boats that measure water quality in lakes and rivers. In its first year it sold eleven "
        "boats, mostly to universities.",
    ),
    Passage(
        2,
        "Leadership. The chief executive officer of Quillmere Robotics is Marisol Thornbury, who joined the "
        "company in 2016 after ten years at a shipyard. The chief engineer, Dariusz Okafor, leads a team of "
        "forty engineers in Wexcombe.",
    ),
    Passage(
        3,
        "Products. The flagship boat, the Heron 4, is 1.8 metres long and runs for nine hours on one "
        "charge. In 2023 the company sold 3,400 boats. Its newest model, the Kestrel, can dive to a depth of "
        "twelve metres.",
    ),
    Passage(
        4,
        "Offices. Besides the headquarters in Wexcombe, Quillmere Robotics has a sales office in Lisbon and "
        "a repair workshop in Tromso. The company employs 260 people. Its annual revenue in 2023 was 48 "
        "million euros.",
    ),
    Passage(
        5,
        "Community. Every summer the company runs a free sailing school for children in Wexcombe. In 2022 "
        "it donated twenty boats to the Lake Ossery conservation trust, which uses them to count fish.",
    ),
]

QUESTIONS = [
    ("Who is the CEO of Quillmere Robotics?", "Marisol Thornbury", 2),
    ("When was Quillmere Robotics founded?", "2011", 1),
    ("How many boats did the company sell in 2023?", "3,400", 3),
    ("Where is the repair workshop?", "Tromso", 4),
    ("How long does the Heron 4 run on one charge?", "nine hours", 3),
    ("Who leads the engineering team?", "Dariusz Okafor", 2),
    ("How many people does Quillmere Robotics employ?", "260", 4),
    ("Which trust received twenty boats?", "Lake Ossery", 5),
]

CURRENT_SYSTEM = (
    "You answer questions using only the numbered sources provided. Cite every claim with the number of its "
    "source in square brackets, like [1] or [1, 3]. If the sources do not contain the answer, say that you "
    "do not know. Do not invent sources."
)
SHORT_SYSTEM = "Answer the question using the numbered sources. Cite the source number in square brackets, like [1]."
EXAMPLE_SYSTEM = (
    "Answer the question in one short sentence using the numbered sources, and cite the source number in "
    'square brackets. Example: "The museum opened in 1998 [2]."'
)


def where(p: Passage) -> str:
    return f", page {p.page}"


def src_default(n: int, p: Passage) -> str:
    return f"[{n}] {TITLE}{where(p)}\n{p.text}"


def src_labelled(n: int, p: Passage) -> str:
    return f"Source [{n}] ({TITLE}{where(p)}):\n{p.text}"


def render(variant: str, question: str, passages: list[Passage]) -> list[dict[str, str]]:
    """The variants. v0 is what prompt.ts rendered before this experiment."""
    if variant == "v0":
        srcs = "\n\n".join(src_default(i + 1, p) for i, p in enumerate(passages))
        return [
            {"role": "system", "content": CURRENT_SYSTEM},
            {"role": "user", "content": f"Sources:\n\n{srcs}\n\nQuestion: {question}"},
        ]
    if variant == "v1":  # shorter instructions
        srcs = "\n\n".join(src_default(i + 1, p) for i, p in enumerate(passages))
        return [
            {"role": "system", "content": SHORT_SYSTEM},
            {"role": "user", "content": f"Sources:\n\n{srcs}\n\nQuestion: {question}"},
        ]
    if variant == "v2":  # instruction repeated after the question (recency helps small models)
        srcs = "\n\n".join(src_default(i + 1, p) for i, p in enumerate(passages))
        tail = "Answer in one sentence and cite the source number in square brackets, like [1]."
        return [
            {"role": "system", "content": SHORT_SYSTEM},
            {"role": "user", "content": f"Sources:\n\n{srcs}\n\nQuestion: {question}\n{tail}"},
        ]
    if variant == "v3":  # labelled sources
        srcs = "\n\n".join(src_labelled(i + 1, p) for i, p in enumerate(passages))
        tail = "Answer in one sentence and cite the source number in square brackets, like [1]."
        return [
            {"role": "system", "content": SHORT_SYSTEM},
            {"role": "user", "content": f"{srcs}\n\nQuestion: {question}\n{tail}"},
        ]
    if variant == "v4":  # example answer in the system prompt
        srcs = "\n\n".join(src_default(i + 1, p) for i, p in enumerate(passages))
        return [
            {"role": "system", "content": EXAMPLE_SYSTEM},
            {"role": "user", "content": f"Sources:\n\n{srcs}\n\nQuestion: {question}"},
        ]
    if variant == "v5":  # example + the instruction after the question
        srcs = "\n\n".join(src_default(i + 1, p) for i, p in enumerate(passages))
        tail = "Answer in one sentence and cite the source number in square brackets, like [1]."
        return [
            {"role": "system", "content": EXAMPLE_SYSTEM},
            {"role": "user", "content": f"Sources:\n\n{srcs}\n\nQuestion: {question}\n{tail}"},
        ]
    if variant == "v7":  # no system message (the template then adds SmolLM's own), all instructions in the user turn
        srcs = "\n\n".join(src_default(i + 1, p) for i, p in enumerate(passages))
        tail = (
            "Answer the question in one sentence using the sources, "
            "and cite the source number in square brackets, like [1]."
        )
        return [{"role": "user", "content": f"Sources:\n\n{srcs}\n\nQuestion: {question}\n{tail}"}]
    if variant == "v8":  # plain "[n] text" sources (no title/page line), example system, instruction after
        srcs = "\n\n".join(f"[{i + 1}] {p.text}" for i, p in enumerate(passages))
        tail = "Answer in one sentence and cite the source number in square brackets, like [1]."
        return [
            {"role": "system", "content": EXAMPLE_SYSTEM},
            {"role": "user", "content": f"Sources:\n\n{srcs}\n\nQuestion: {question}\n{tail}"},
        ]
    if variant == "v9":  # v5 with the example phrased after the question
        srcs = "\n\n".join(src_default(i + 1, p) for i, p in enumerate(passages))
        tail = (
            "Answer in one short sentence that copies the answer from the source and ends with its number, "
            "like: The museum opened in 1998 [2]."
        )
        return [
            {"role": "system", "content": SHORT_SYSTEM},
            {"role": "user", "content": f"Sources:\n\n{srcs}\n\nQuestion: {question}\n{tail}"},
        ]
    if variant == "v10":  # the citation first: "[2] The museum opened in 1998."
        srcs = "\n\n".join(src_default(i + 1, p) for i, p in enumerate(passages))
        tail = (
            "Start your answer with the number of the source you use in square brackets, "
            "like: [2] The museum opened in 1998."
        )
        return [
            {"role": "system", "content": SHORT_SYSTEM},
            {"role": "user", "content": f"Sources:\n\n{srcs}\n\nQuestion: {question}\n{tail}"},
        ]
    if variant in (
        "v11",
        "v12",
    ):  # one worked example as an earlier turn (v12: with v2's instruction after the question)
        ex_srcs = (
            "[1] museum-guide.pdf, page 3\nThe gift shop sells postcards and maps.\n\n"
            "[2] museum-guide.pdf, page 1\nThe Harbour Museum opened in 1998. Its director is Ines Dahl."
        )
        tail = (
            "\nAnswer in one sentence and cite the source number in square brackets, like [1]."
            if variant == "v12"
            else ""
        )
        srcs = "\n\n".join(src_default(i + 1, p) for i, p in enumerate(passages))
        return [
            {"role": "system", "content": SHORT_SYSTEM},
            {"role": "user", "content": f"Sources:\n\n{ex_srcs}\n\nQuestion: When did the Harbour Museum open?{tail}"},
            {"role": "assistant", "content": "The Harbour Museum opened in 1998 [2]."},
            {"role": "user", "content": f"Sources:\n\n{srcs}\n\nQuestion: {question}{tail}"},
        ]
    if variant in (
        "v13",
        "v14",
    ):  # a worked example whose answer is in source [1] (v14: no instruction after the question)
        ex_srcs = (
            "[1] museum-guide.pdf, page 1\nThe Harbour Museum opened in 1998. Its director is Ines Dahl.\n\n"
            "[2] museum-guide.pdf, page 3\nThe gift shop sells postcards and maps."
        )
        tail = (
            "\nAnswer in one sentence and cite the source number in square brackets, like [1]."
            if variant == "v13"
            else ""
        )
        srcs = "\n\n".join(src_default(i + 1, p) for i, p in enumerate(passages))
        return [
            {"role": "system", "content": SHORT_SYSTEM},
            {
                "role": "user",
                "content": f"Sources:\n\n{ex_srcs}\n\nQuestion: Who is the director of the Harbour Museum?{tail}",
            },
            {"role": "assistant", "content": "The director of the Harbour Museum is Ines Dahl [1]."},
            {"role": "user", "content": f"Sources:\n\n{srcs}\n\nQuestion: {question}{tail}"},
        ]
    if variant in ("v15", "v16"):  # v13 with bare "[n] text" sources (no title/page line); v16: "Source [n]:" label

        def bare(n: int, text: str) -> str:
            return f"[{n}] {text}" if variant == "v15" else f"Source [{n}]: {text}"

        ex_srcs = (
            bare(1, "The Harbour Museum opened in 1998. Its director is Ines Dahl.")
            + "\n\n"
            + bare(2, "The gift shop sells postcards and maps.")
        )
        tail = "\nAnswer in one sentence and cite the source number in square brackets, like [1]."
        srcs = "\n\n".join(bare(i + 1, p.text) for i, p in enumerate(passages))
        return [
            {"role": "system", "content": SHORT_SYSTEM},
            {
                "role": "user",
                "content": f"Sources:\n\n{ex_srcs}\n\nQuestion: Who is the director of the Harbour Museum?{tail}",
            },
            {"role": "assistant", "content": "The director of the Harbour Museum is Ines Dahl [1]."},
            {"role": "user", "content": f"Sources:\n\n{srcs}\n\nQuestion: {question}{tail}"},
        ]
    if (
        variant == "v18"
    ):  # two worked examples, both citing [1] (the best-ranked source, where retrieval puts the answer most often)
        tail = "\nAnswer in one sentence and cite the source number in square brackets, like [1]."
        ex1 = (
            "[1] museum-guide.pdf, page 1\nThe Harbour Museum opened in 1998.\n\n"
            "[2] museum-guide.pdf, page 3\nThe gift shop sells postcards and maps."
        )
        ex2 = (
            "[1] museum-guide.pdf, page 2\nThe director of the museum is Ines Dahl.\n\n"
            "[2] museum-guide.pdf, page 3\nThe gift shop sells postcards and maps."
        )
        srcs = "\n\n".join(src_default(i + 1, p) for i, p in enumerate(passages))
        return [
            {"role": "system", "content": SHORT_SYSTEM},
            {"role": "user", "content": f"Sources:\n\n{ex1}\n\nQuestion: When did the Harbour Museum open?{tail}"},
            {"role": "assistant", "content": "The Harbour Museum opened in 1998 [1]."},
            {"role": "user", "content": f"Sources:\n\n{ex2}\n\nQuestion: Who is the director of the museum?{tail}"},
            {"role": "assistant", "content": "The director of the museum is Ines Dahl [1]."},
            {"role": "user", "content": f"Sources:\n\n{srcs}\n\nQuestion: {question}{tail}"},
        ]
    if variant == "v17":  # two worked examples whose answers cite different sources ([2], then [1])
        tail = "\nAnswer in one sentence and cite the source number in square brackets, like [1]."
        ex1 = (
            "[1] museum-guide.pdf, page 3\nThe gift shop sells postcards and maps.\n\n"
            "[2] museum-guide.pdf, page 1\nThe Harbour Museum opened in 1998."
        )
        ex2 = (
            "[1] museum-guide.pdf, page 2\nThe director of the museum is Ines Dahl.\n\n"
            "[2] museum-guide.pdf, page 3\nThe gift shop sells postcards and maps."
        )
        srcs = "\n\n".join(src_default(i + 1, p) for i, p in enumerate(passages))
        return [
            {"role": "system", "content": SHORT_SYSTEM},
            {"role": "user", "content": f"Sources:\n\n{ex1}\n\nQuestion: When did the Harbour Museum open?{tail}"},
            {"role": "assistant", "content": "The Harbour Museum opened in 1998 [2]."},
            {"role": "user", "content": f"Sources:\n\n{ex2}\n\nQuestion: Who is the director of the museum?{tail}"},
            {"role": "assistant", "content": "The director of the museum is Ines Dahl [1]."},
            {"role": "user", "content": f"Sources:\n\n{srcs}\n\nQuestion: {question}{tail}"},
        ]
    if variant == "v6":  # question first, then sources, then the instruction
        srcs = "\n\n".join(src_default(i + 1, p) for i, p in enumerate(passages))
        tail = "Answer the question in one sentence and cite the source number in square brackets, like [1]."
        return [
            {"role": "system", "content": SHORT_SYSTEM},
            {"role": "user", "content": f"Question: {question}\n\nSources:\n\n{srcs}\n\n{tail}"},
        ]
    raise ValueError(variant)


def load_qa_set(questions_json: str, extracted_json: str) -> None:
    """Replace QUESTIONS/PASSAGES with the QA set's PDF questions; each page of a PDF is one passage (page
    numbers made unique across documents: doc index * 100 + page)."""
    qs = json.loads(Path(questions_json).read_text())
    text = json.loads(Path(extracted_json).read_text())
    PASSAGES.clear()
    QUESTIONS.clear()
    pdfs = [d["file"] for d in qs["documents"] if d["format"] == "pdf"]
    for i, f in enumerate(pdfs):
        doc = text[f]
        for p in doc["pages"]:
            PASSAGES.append(Passage(i * 100 + p["page"], doc["text"][p["start"] : p["end"]].strip()))
    for q in qs["questions"]:
        if q["document"] in pdfs:
            QUESTIONS.append((q["question"], q["answer"], pdfs.index(q["document"]) * 100 + q["page"]))


def cited_numbers(text: str) -> set[int]:
    out: set[int] = set()
    for m in re.finditer(r"\[(\d+(?:\s*,\s*\d+)*)\]", text):
        out.update(int(x) for x in m.group(1).split(","))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument(
        "--gguf", help="load the weights from this GGUF file (in --model's folder) instead of model.safetensors"
    )
    ap.add_argument("--variants", default="v0,v1,v2,v3,v4,v5,v6")
    ap.add_argument("--sample", action="store_true", help="temperature 0.2, top_p 0.9 (seeded) instead of greedy")
    ap.add_argument("--repetition-penalty", type=float, default=1.0)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--positions", default="first,middle", help="where the right passage sits: first, middle")
    ap.add_argument(
        "--passages", type=int, default=4, help="passages in the prompt (the right one and distractors), 1-5"
    )
    ap.add_argument("--json", help="write every answer here")
    ap.add_argument(
        "--qa",
        help="the QA set's PDF questions instead of the built-in report: questions.json of bench/qa/data, "
        "with --qa-text the SDK's extraction of its documents "
        "(cd sdk && node --import tsx ../bench/qa/extract.mjs ../bench/qa/data)",
    )
    ap.add_argument("--qa-text")
    args = ap.parse_args()
    if args.qa:
        load_qa_set(args.qa, args.qa_text)

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    if dev == "cpu":
        torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(args.model)
    extra = {} if args.gguf is None else {"gguf_file": args.gguf}
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, **extra).to(dev).eval()
    rows = []
    for variant in args.variants.split(","):
        hits = cites = both = n = 0
        t0 = time.time()
        for q, fact, page in QUESTIONS:
            right = next(p for p in PASSAGES if p.page == page)
            # Distractors: the same document's other pages first (what retrieval brings), then the rest.
            others = sorted(
                (p for p in PASSAGES if p.page != page), key=lambda p: (p.page // 100 != page // 100, p.page)
            )
            for pos in args.positions.split(","):
                # Retrieval usually ranks the right passage first; "middle" checks the model reads past [1].
                k = args.passages
                order = (
                    [right, *others[: k - 1]]
                    if pos == "first"
                    else [*others[: (k - 1) // 2 + (k - 1) % 2], right, *others[(k - 1) // 2 + (k - 1) % 2 : k - 1]]
                )
                msgs = render(variant, q, order)
                ids = tok.apply_chat_template(
                    msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True
                ).to(dev)
                gen = dict(
                    max_new_tokens=args.max_new_tokens,
                    repetition_penalty=args.repetition_penalty,
                    pad_token_id=tok.eos_token_id,
                )
                if args.sample:
                    torch.manual_seed(n)
                    gen.update(do_sample=True, temperature=0.2, top_p=0.9)
                else:
                    gen.update(do_sample=False)
                with torch.no_grad():
                    out = model.generate(**ids, **gen)
                text = tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
                want_n = order.index(right) + 1
                hit = fact.lower().replace(",", "") in text.lower().replace(",", "")
                cite = want_n in cited_numbers(text)
                hits += hit
                cites += cite
                both += hit and cite
                n += 1
                rows.append(
                    {
                        "variant": variant,
                        "question": q,
                        "position": pos,
                        "want": want_n,
                        "answer": text,
                        "fact": hit,
                        "cite": cite,
                        "prompt_tokens": int(ids["input_ids"].shape[1]),
                        "sources": [p.text for p in order],
                    }
                )
                print(f"{variant} {pos:6} fact={int(hit)} cite={int(cite)} [{want_n}] {text[:140]!r}", flush=True)
        print(
            f"== {variant}: fact {hits}/{n}, cites right source {cites}/{n}, both {both}/{n} "
            f"({time.time() - t0:.0f} s)",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
