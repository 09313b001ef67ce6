"""A small labelled retrieval set for encoder evals: Python's own help topics + hand-written questions.

Passages: one per topic of `pydoc_data.topics` (the help texts that ship with CPython, e.g. 79
topics and 78 distinct openings in 3.11): the topic's first PASSAGE_WORDS words, whitespace-normalised. That opening
names the construct and defines it, so it is the passage a question about the construct should
retrieve; every other topic is a distractor.

Queries: QUESTIONS below, written for Hearth (not taken from any dataset), each labelled with the
ONE topic that answers it. They avoid copying the topic's heading where a paraphrase is natural
("How do I catch an error and run cleanup code?" -> "try"), so recall measures meaning, not only
word overlap. Deterministic; the passages follow the running Python's pydoc_data (recorded in the
result: the topic count and a hash of the passages).

Metrics (`recall_at_k`): the fraction of queries whose gold passage is among the k passages with
the highest cosine similarity; `mrr` the mean reciprocal rank of the gold passage.
"""

from __future__ import annotations

import hashlib

import numpy as np

PASSAGE_WORDS = 120
KS = (1, 3, 10)

# (question, gold pydoc topic)
QUESTIONS: list[tuple[str, str]] = [
    ("How do I check a condition while debugging and stop if it is false?", "assert"),
    ("How do I define a coroutine function?", "async"),
    ("How do I suspend a coroutine until an awaitable finishes?", "await"),
    ("How can I leave a loop early?", "break"),
    ("How do I skip to the next iteration of a loop?", "continue"),
    ("How do I define my own class of objects?", "class"),
    ("What object defines the runtime context for a with block?", "context-managers"),
    ("How do I delete a variable or remove an item?", "del"),
    ("How do I write a dictionary literal with keys and values in curly braces?", "dict"),
    ("What happens when an error interrupts the normal flow of a program?", "exceptions"),
    ("How do I iterate over the elements of a list?", "for"),
    ("What is the syntax of replacement fields for str.format?", "formatstrings"),
    ("How do I define a function with parameters?", "function"),
    ("How do I assign to a module-level variable from inside a function?", "global"),
    ("How do I run code only when a condition is true, with elif and else branches?", "if"),
    ("How do I load a module from another file?", "import"),
    ("How do I create a small anonymous function in one expression?", "lambda"),
    ("How can a nested function rebind a variable of the enclosing function?", "nonlocal"),
    ("Which statement does nothing and serves as a placeholder?", "pass"),
    ("How do I throw an exception myself?", "raise"),
    ("How does a function give back a value to its caller?", "return"),
    ("How do I catch an error and run cleanup code afterwards?", "try"),
    ("How do I repeat code as long as a condition holds?", "while"),
    ("How do I wrap a block so that resources are released automatically?", "with"),
    ("How does a generator produce values one at a time?", "yield"),
    ("Which methods do strings have, like split, strip and replace?", "string-methods"),
    ("Which operations modify a list in place, such as append and pop?", "typesseq-mutable"),
    ("What operations does a mapping object like dict support?", "typesmapping"),
    ("Which values count as false when tested in an if statement?", "truth"),
    ("How are floating point numbers written in source code?", "floating"),
    ("How do I write hexadecimal, octal and binary integer literals?", "integers"),
    ("How do I select a range of items from a sequence with start and stop?", "slicings"),
    ("How do comparison operators like < and == chain together?", "comparisons"),
    ("What does x += 1 do?", "augassign"),
    ("How do the and, or and not operators evaluate?", "booleans"),
    ("Which operators bind most tightly: what is the precedence order?", "operator-summary"),
    ("Which read-only attributes like __dict__ and __class__ do objects have?", "specialattrs"),
    ("How do I step through my program and set breakpoints?", "debugger"),
    ("How do I write a complex number with an imaginary part?", "imaginary"),
    ("How do bit shift operators move bits left and right?", "shifting"),
]


def _topic_texts() -> dict[str, str]:
    from pydoc_data.topics import topics

    return {k: " ".join(topics[k].split()[:PASSAGE_WORDS]) for k in sorted(topics)}


def passages() -> tuple[list[str], list[str]]:
    """(topic keys, passage texts) in sorted key order, one per distinct text. Topics whose opening is an
    earlier topic's word for word (3.11's "if" and another topic share theirs) are left out: as two
    passages, their similarities to a query tie exactly in float64 and differ in the last bit in float32,
    so which one ranked first was the noise's choice."""
    keys: list[str] = []
    texts: list[str] = []
    for k, t in _topic_texts().items():
        if t not in texts:
            keys.append(k)
            texts.append(t)
    return keys, texts


def labelled_set() -> tuple[list[str], list[str], list[int], str]:
    """(passages, queries, gold passage index per query, sha256 of the passages). A question's gold is the
    passage with its topic's text (passages())."""
    _, texts = passages()
    where = {t: i for i, t in enumerate(texts)}
    index = {k: where[t] for k, t in _topic_texts().items()}
    missing = sorted({t for _, t in QUESTIONS if t not in index})
    if missing:
        raise RuntimeError(f"pydoc_data.topics of this Python lacks topics {missing}; the retrieval set needs them")
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()
    return texts, [q for q, _ in QUESTIONS], [index[t] for _, t in QUESTIONS], digest


def retrieval_metrics(query_emb: np.ndarray, passage_emb: np.ndarray, gold: list[int]) -> dict[str, object]:
    """recall@k for KS, MRR and each query's gold rank (1-based), by cosine similarity."""
    q = query_emb / np.maximum(np.linalg.norm(query_emb, axis=1, keepdims=True), 1e-30)
    p = passage_emb / np.maximum(np.linalg.norm(passage_emb, axis=1, keepdims=True), 1e-30)
    sim = q @ p.T
    gold_arr = np.asarray(gold)
    gold_sim = sim[np.arange(len(gold)), gold_arr]
    ranks = 1 + (sim > gold_sim[:, None]).sum(axis=1)  # ties count in the gold passage's favour
    out: dict[str, object] = {f"recall_at_{k}": float((ranks <= k).mean()) for k in KS}
    out["mrr"] = float((1.0 / ranks).mean())
    out["ranks"] = [int(r) for r in ranks]
    out["top1"] = [int(i) for i in sim.argmax(axis=1)]
    return out
