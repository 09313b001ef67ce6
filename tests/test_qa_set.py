"""The labelled document-QA set (scripts/make_qa_set.py, committed at bench/qa/data) and its scoring
(compile/hearth/eval/qa.py).

The facts are checked where the RAG index sees them: in the text the SDK's own extractors (pdf.js for
PDF, the Markdown and HTML extractors) produce, through bench/qa/extract.mjs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import make_qa_set  # noqa: E402
from hearth.eval import qa  # noqa: E402

SET = REPO / "bench" / "qa" / "data"


@pytest.fixture(scope="module")
def labels() -> dict[str, Any]:
    return make_qa_set.load(SET)


@pytest.fixture(scope="module")
def extracted() -> dict[str, Any]:
    if shutil.which("node") is None or not (REPO / "sdk" / "node_modules" / "pdfjs-dist").is_dir():
        pytest.fail("node and sdk/node_modules are needed (run `make setup`)")
    out = subprocess.run(
        ["node", "--import", "tsx", str(REPO / "bench" / "qa" / "extract.mjs"), str(SET)],
        cwd=REPO / "sdk",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_committed_set_is_what_the_generator_writes(tmp_path: Path) -> None:
    """Deterministic generation, and the committed copy is current (CI needs no generation step)."""
    a, b = tmp_path / "a", tmp_path / "b"
    make_qa_set.generate(a)
    make_qa_set.generate(b)
    assert make_qa_set._same_tree(a, b), "two generations with the same seed differ"
    assert make_qa_set._same_tree(a, SET), "bench/qa/data is stale: run `python scripts/make_qa_set.py`"
    assert make_qa_set.main(["--check", "--out", str(SET)]) == 0
    total = sum(p.stat().st_size for p in SET.rglob("*") if p.is_file())
    assert total < 200 * 1024, f"the committed set grew to {total} bytes"


def test_check_fails_on_an_edited_set(tmp_path: Path) -> None:
    out = tmp_path / "set"
    make_qa_set.generate(out)
    doc = next((out / "docs").glob("*.md"))
    doc.write_text(doc.read_text().replace("was", "is", 1))
    assert make_qa_set.main(["--check", "--out", str(out)]) == 1


def test_other_seed_gives_other_facts(tmp_path: Path) -> None:
    a = make_qa_set.generate(tmp_path / "a", seed=1)
    b = make_qa_set.generate(tmp_path / "b", seed=2)
    assert [q["answer"] for q in a["questions"]] != [q["answer"] for q in b["questions"]]


def test_labels_schema(labels: dict[str, Any]) -> None:
    qs, docs = labels["questions"], labels["documents"]
    assert len(qs) >= 60
    assert {d["format"] for d in docs} == {"pdf", "md", "html"}
    assert len({q["id"] for q in qs}) == len(qs)
    assert len({q["question"] for q in qs}) == len(qs), "two questions are the same"
    by_file = {d["file"]: d for d in docs}
    for q in qs:
        d = by_file[q["document"]]
        assert (SET / q["document"]).is_file()
        assert q["accepted"][0] == q["answer"]
        assert q["section"] in d["sections"]
        if d["format"] == "pdf":
            assert d["pages"] >= 2 and 1 <= q["page"] <= d["pages"]
        else:
            assert q["page"] is None
        assert qa.answer_correct(q["sentence"], q["accepted"]), f"{q['id']}: the answer is not in its sentence"


def _section_text(text: str, sections: list[str], section: str) -> str:
    """The extracted text from a section's heading line to the next section's."""
    lines = text.split("\n")
    start = lines.index(section)
    nxt = [i for i, line in enumerate(lines) if i > start and line in sections]
    return "\n".join(lines[start : nxt[0] if nxt else len(lines)])


def test_every_fact_once_on_its_page_or_section(labels: dict[str, Any], extracted: dict[str, Any]) -> None:
    sections = {d["file"]: d["sections"] for d in labels["documents"]}
    for d in labels["documents"]:
        e = extracted[d["file"]]
        assert e["mime"] == d["mime"]
        if d["format"] == "pdf":
            assert len(e["pages"]) == d["pages"], f"{d['file']}: pdf.js sees {len(e['pages'])} pages"
            assert e["title"] == d["title"], "the PDF's Info /Title"
    for q in labels["questions"]:
        holding = [
            f for f, e in extracted.items() for _ in range(qa._squash(e["text"]).count(qa._squash(q["sentence"])))
        ]
        assert holding == [q["document"]], f"{q['id']}: fact sentence found in {holding}"
        e = extracted[q["document"]]
        if q["page"] is not None:
            span = e["pages"][q["page"] - 1]
            assert span["page"] == q["page"]
            assert qa.sentence_in(e["text"][span["start"] : span["end"]], q["sentence"]), (
                f"{q['id']}: not on page {q['page']}"
            )
        assert qa.sentence_in(_section_text(e["text"], sections[q["document"]], q["section"]), q["sentence"]), (
            f"{q['id']}: not in section {q['section']!r}"
        )


def test_answers_unique_across_documents(labels: dict[str, Any], extracted: dict[str, Any]) -> None:
    """No two documents answer the same question: each accepted answer occurs in one document only."""
    for q in labels["questions"]:
        for a in q["accepted"]:
            docs = [f for f, e in extracted.items() if qa.answer_correct(e["text"], [a])]
            assert docs == [q["document"]], f"{q['id']}: {a!r} occurs in {docs}"


def test_answer_matching() -> None:
    assert qa.answer_correct("Marrhaven Optics employs 8568 people [2].", ["8,568"])
    assert qa.answer_correct("about 8,568", ["8568"])
    assert qa.answer_correct("The CEO is LINNEA ORSKSTROM.", ["Linnea Orskstrom", "Orskstrom"])
    assert qa.answer_correct("Ms. Orskstrom leads it", ["Linnea Orskstrom", "Orskstrom"])
    assert not qa.answer_correct("It was founded in 19360.", ["1936"])
    assert not qa.answer_correct("Orskstromer", ["Orskstrom"])
    assert not qa.answer_correct("I do not know.", ["1936"])
    assert not qa.answer_correct("anything", ["", "  "])


def test_citations() -> None:
    assert qa.parse_citations("A [1, 3] and [2]; again [3].") == [1, 3, 2]
    assert qa.parse_citations("no sources, [a] [ 4 ]") == [4]
    sources = [{"n": 1, "text": "Other text."}, {"n": 2, "text": "The chief executive officer of X is\nY Z. More."}]
    fact = "The chief executive officer of X is Y Z."
    assert qa.citation_correct("Y Z [2].", sources, fact)
    assert qa.citation_correct("Y Z [1, 2].", sources, fact)
    assert not qa.citation_correct("Y Z [1].", sources, fact)
    assert not qa.citation_correct("Y Z.", sources, fact), "no citation is not a correct citation"
    assert not qa.citation_correct("Y Z [7].", sources, fact), "a number that was not given"


def test_prompts_file_errors(tmp_path: Path) -> None:
    with pytest.raises(qa.QaError, match="does not exist.*retrieve.mjs"):
        qa.load_prompts(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(qa.QaError, match="not valid JSON"):
        qa.load_prompts(bad)
    bad.write_text(json.dumps({"format": "hearth-eval/1"}))
    with pytest.raises(qa.QaError, match="not a QA prompts file"):
        qa.load_prompts(bad)
    bad.write_text(json.dumps({"format": qa.PROMPTS_FORMAT, "prompts": [{"id": "q1"}]}))
    with pytest.raises(qa.QaError, match="prompt 0 lacks"):
        qa.load_prompts(bad)
    bad.write_text(json.dumps({"format": qa.PROMPTS_FORMAT, "prompts": []}))
    with pytest.raises(qa.QaError, match="no prompts"):
        qa.load_prompts(bad)


def test_eval_qa_cli_names_the_missing_prompts(tmp_path: Path) -> None:
    """`hearth eval --qa` with no prompts file: exit 2 and say how to write one (before loading any model)."""
    out = subprocess.run(
        [sys.executable, "-m", "hearth.cli", "eval", "--qa", str(tmp_path / "none.json"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    said = out.stdout + out.stderr
    assert "none.json does not exist" in said and "retrieve.mjs" in said
