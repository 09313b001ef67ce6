"""Write Hearth's labelled document-QA set: documents about fictional entities (PDF, Markdown, HTML) and
questions whose short answers each sit in exactly one sentence of exactly one document.

    .venv/bin/python scripts/make_qa_set.py [--out bench/qa/data] [--seed 14] [--check]

Output (the folder is replaced whole):
    <out>/questions.json   the labels (schema below)
    <out>/docs/<slug>.pdf  multi-page PDFs (one section per page), written here without a PDF library
    <out>/docs/<slug>.md   Markdown, one "##" section per part
    <out>/docs/<slug>.html HTML, one <h2> section per part

questions.json: {"version": 1, "seed", "generator", "documents": [{file, format, mime, title, entity, kind,
pages (PDF) | null, sections}], "questions": [{id, question, answer, accepted (answer first, then variants),
document, format, page (PDF, 1-based) | null, section, sentence, fact}]}.

Everything comes from one seeded random.Random, so the same seed gives byte-identical files (tested).
Facts are unique: every fact value (year, number, name) is drawn once for the whole set, and filler
sentences carry no digits and no names of other entities, so no two documents answer the same question.
Each fact sentence names its entity, so one retrieved passage is enough to answer it.
--check regenerates into a temporary folder and exits 1 if <out> differs (CI: the committed set is current).
"""

from __future__ import annotations

import argparse
import filecmp
import html
import json
import random
import re
import shutil
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench" / "qa" / "data"
DEFAULT_SEED = 14
VERSION = 1
KINDS = ("company", "person", "place", "product")
FORMATS = ("pdf", "md", "html")
MIMES = {"pdf": "application/pdf", "md": "text/markdown", "html": "text/html"}

# Syllables for names that should not belong to anything real; combinations are checked for repeats.
_PRE = [
    "Brack",
    "Quor",
    "Ell",
    "Marr",
    "Vant",
    "Holl",
    "Dunn",
    "Cael",
    "Orsk",
    "Penn",
    "Thal",
    "Wyn",
    "Rook",
    "Sel",
    "Ashen",
    "Fenn",
    "Galv",
    "Ister",
    "Lum",
    "Norv",
    "Tavel",
    "Corr",
    "Brin",
    "Elst",
    "Harl",
    "Kest",
    "Mord",
    "Quill",
]
_SUF = [
    "fold",
    "mere",
    "wick",
    "stead",
    "holm",
    "ridge",
    "thorpe",
    "combe",
    "ley",
    "haven",
    "moor",
    "bury",
    "dale",
    "gate",
]
_FIRST = [
    "Mara",
    "Tobias",
    "Ilse",
    "Corwin",
    "Anouk",
    "Bastian",
    "Liesel",
    "Oren",
    "Petra",
    "Ramon",
    "Saskia",
    "Tamsin",
    "Ulric",
    "Vesna",
    "Wendel",
    "Yara",
    "Edda",
    "Florin",
    "Greta",
    "Hollis",
    "Ingmar",
    "Jorun",
    "Kasimir",
    "Linnea",
    "Marek",
    "Nadia",
    "Osric",
    "Priya",
    "Quentin",
    "Rosalind",
]
_SURNAME_SUF = ["worth", "ington", "ford", "ers", "strom", "ard", "well", "mann", "ley", "holt"]
_INDUSTRY = ["Robotics", "Instruments", "Textiles", "Optics", "Ceramics", "Analytics", "Marine Systems", "Acoustics"]
_PRODUCT_NOUN = [
    "kettle",
    "bicycle lamp",
    "weather station",
    "drawing tablet",
    "water filter",
    "hiking stove",
    "sewing machine",
    "telescope",
]
_PRODUCT_MODEL = [
    "Aster",
    "Basalt",
    "Cinder",
    "Dune",
    "Ember",
    "Fjord",
    "Glacier",
    "Heron",
    "Juniper",
    "Kestrel",
    "Lantern",
    "Meridian",
    "Nimbus",
    "Orchid",
    "Pike",
    "Quartz",
]
_FIELD = [
    "marine biology",
    "structural engineering",
    "medieval history",
    "soil chemistry",
    "astronomy",
    "linguistics",
    "glass design",
    "orchestral composition",
]
_INSTRUMENT = ["cello", "oboe", "harp", "bassoon", "viola", "trombone", "clarinet", "accordion"]
_PRIZE = ["Lanterne", "Ostrava Circle", "Northlight", "Silver Quill", "Meridian", "Halvard", "Copperleaf", "Tidewater"]
_FESTIVAL = ["Lantern", "Herring", "Kite", "Cider", "Lamplight", "Driftwood", "Rowing", "Chestnut"]
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_BOOK_A = ["The Quiet", "A Map of the", "Notes on the", "Letters from the", "The Long", "Under the"]
_BOOK_B = ["Harbour", "Salt Marsh", "Lighthouse", "Orchard", "Glasshouse", "Observatory", "Tideline", "Ferry"]


@dataclass
class Fact:
    key: str  # what the fact is about, e.g. "founded" (for tests and reports)
    sentence: str
    question: str
    answer: str
    variants: list[str] = field(default_factory=list)


@dataclass
class Section:
    title: str
    paragraphs: list[list[str]]  # sentences; facts are placed among filler sentences
    facts: list[Fact]


@dataclass
class Document:
    slug: str
    kind: str
    fmt: str
    title: str
    entity: str
    sections: list[Section]


class Draw:
    """Values drawn without replacement across the whole set, so each fact value occurs once."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def unique(self, make: Callable[[], str]) -> str:
        for _ in range(10_000):
            v = make()
            key = v.replace(",", "").lower()  # "2,023" and "2023" are the same fact value
            if key not in self.used:
                self.used.add(key)
                return v
        raise RuntimeError("the name pools are too small for this many documents")

    def pick(self, pool: list[str]) -> str:
        return self.unique(lambda: self.rng.choice(pool))

    def _name(self, make: Callable[[], str]) -> str:
        # No letter three times in a row ("Quillley"): hard to read and odd for a tokenizer.
        return self.unique(lambda: next(n for n in iter(make, None) if not re.search(r"(.)\1\1", n.lower())))

    def word(self) -> str:
        return self._name(lambda: self.rng.choice(_PRE) + self.rng.choice(_SUF))

    def person(self) -> str:
        """First name and surname each used once in the set, so a surname alone names one person."""
        first = self.unique(lambda: self.rng.choice(_FIRST))
        return f"{first} {self.word_from(_PRE, _SURNAME_SUF)}"

    def word_from(self, a: list[str], b: list[str]) -> str:
        return self._name(lambda: self.rng.choice(a) + self.rng.choice(b))

    def year(self, lo: int = 1902, hi: int = 1998) -> str:
        return self.unique(lambda: str(self.rng.randint(lo, hi)))

    def number(self, lo: int, hi: int) -> str:
        return self.unique(lambda: f"{self.rng.randint(lo, hi):,}")


def _number_variants(n: str) -> list[str]:
    return [n.replace(",", "")] if "," in n else []


# Facts per kind: (section index, builder). Each builder returns a Fact naming the entity `e`.
def _company(e: str, d: Draw) -> list[tuple[int, Fact]]:
    year, ceo, city, staff = d.year(1902, 1990), d.person(), d.word(), d.number(1200, 9800)
    product = f"{d.pick(_PRODUCT_MODEL)} {d.word()}"
    revenue, rev_year = d.number(120, 990), d.year(int(year) + 10, 2024)
    return [
        (
            0,
            Fact(
                "founded",
                f"{e} was founded in {year} by a group of former railway engineers.",
                f"In what year was {e} founded?",
                year,
            ),
        ),
        (
            0,
            Fact(
                "headquarters",
                f"{e} has its headquarters in the city of {city}.",
                f"In which city is {e} headquartered?",
                city,
            ),
        ),
        (
            1,
            Fact(
                "ceo",
                f"The chief executive officer of {e} is {ceo}.",
                f"Who is the CEO of {e}?",
                ceo,
                [ceo.split()[-1]],
            ),
        ),
        (
            2,
            Fact(
                "employees",
                f"{e} employs {staff} people across its offices and workshops.",
                f"How many people does {e} employ?",
                staff,
                _number_variants(staff),
            ),
        ),
        (
            2,
            Fact(
                "product",
                f"The best-selling product of {e} is the {product}.",
                f"What is the best-selling product of {e}?",
                product,
            ),
        ),
        (
            3,
            Fact(
                "revenue",
                f"In {rev_year}, {e} reported annual revenue of {revenue} million euros.",
                f"What annual revenue did {e} report in {rev_year}?",
                f"{revenue} million euros",
                [f"{revenue} million", *(f"{v} million" for v in _number_variants(revenue))],
            ),
        ),
    ]


def _person(e: str, d: Draw) -> list[tuple[int, Fact]]:
    year, village, uni = d.year(1902, 1975), d.word(), d.word()
    subject = d.pick(_FIELD)
    book = d.unique(lambda: f"{d.rng.choice(_BOOK_A)} {d.rng.choice(_BOOK_B)}")
    prize, prize_year, instrument = d.pick(_PRIZE), d.year(int(year) + 28, int(year) + 70), d.pick(_INSTRUMENT)
    return [
        (0, Fact("born", f"{e} was born in {year}.", f"In what year was {e} born?", year)),
        (
            0,
            Fact("village", f"{e} grew up in the village of {village}.", f"In which village did {e} grow up?", village),
        ),
        (
            1,
            Fact(
                "university",
                f"{e} studied {subject} at the University of {uni}.",
                f"At which university did {e} study {subject}?",
                f"University of {uni}",
                [uni],
            ),
        ),
        (2, Fact("book", f"{e} wrote a book titled {book}.", f"What is the title of the book written by {e}?", book)),
        (
            2,
            Fact(
                "prize",
                f"In {prize_year}, {e} received the {prize} Prize.",
                f"Which prize did {e} receive in {prize_year}?",
                f"{prize} Prize",
                [prize],
            ),
        ),
        (
            3,
            Fact(
                "instrument",
                f"{e} plays the {instrument} in a local orchestra.",
                f"Which instrument does {e} play?",
                instrument,
            ),
        ),
    ]


def _place(e: str, d: Draw) -> list[tuple[int, Fact]]:
    population, river, mayor, charter = d.number(2100, 48000), d.word(), d.person(), d.year()
    festival, month, height = d.pick(_FESTIVAL), d.pick(_MONTHS), d.number(130, 940)
    return [
        (
            0,
            Fact(
                "charter",
                f"{e} was granted its town charter in {charter}.",
                f"In what year was {e} granted its town charter?",
                charter,
            ),
        ),
        (
            0,
            Fact(
                "river",
                f"{e} lies on the banks of the {river} River.",
                f"On which river does {e} lie?",
                f"{river} River",
                [river],
            ),
        ),
        (
            1,
            Fact(
                "population",
                f"The town of {e} has a population of {population}.",
                f"What is the population of {e}?",
                population,
                _number_variants(population),
            ),
        ),
        (2, Fact("mayor", f"The mayor of {e} is {mayor}.", f"Who is the mayor of {e}?", mayor, [mayor.split()[-1]])),
        (
            3,
            Fact(
                "festival",
                f"Every {month}, {e} hosts the {festival} Festival.",
                f"In which month does {e} host the {festival} Festival?",
                month,
            ),
        ),
        (
            3,
            Fact(
                "elevation",
                f"The town hall of {e} stands {height} metres above sea level.",
                f"How many metres above sea level is the town hall of {e}?",
                height,
                _number_variants(height),
            ),
        ),
    ]


def _product(e: str, d: Draw) -> list[tuple[int, Fact]]:
    maker = f"{d.word()} {d.pick(_INDUSTRY)}"
    year, price, weight, hours, designer = (
        d.year(),
        d.number(40, 990),
        d.number(1050, 4800),
        d.number(11, 96),
        d.person(),
    )
    return [
        (0, Fact("maker", f"The {e} is made by {maker}.", f"Which company makes the {e}?", maker, [maker.split()[0]])),
        (
            0,
            Fact(
                "released", f"The {e} was first released in {year}.", f"In what year was the {e} first released?", year
            ),
        ),
        (
            1,
            Fact(
                "designer",
                f"The {e} was designed by {designer}.",
                f"Who designed the {e}?",
                designer,
                [designer.split()[-1]],
            ),
        ),
        (
            2,
            Fact(
                "price",
                f"The {e} sells for {price} euros.",
                f"How much does the {e} cost?",
                f"{price} euros",
                [*(f"{v} euros" for v in _number_variants(price))],
            ),
        ),
        (
            2,
            Fact(
                "weight",
                f"The {e} weighs {weight} grams.",
                f"How much does the {e} weigh?",
                f"{weight} grams",
                [*(f"{v} grams" for v in _number_variants(weight))],
            ),
        ),
        (
            3,
            Fact(
                "battery",
                f"The battery of the {e} lasts {hours} hours on a single charge.",
                f"How many hours does the battery of the {e} last on a single charge?",
                hours,
            ),
        ),
    ]


FACTS = {"company": _company, "person": _person, "place": _place, "product": _product}
SECTION_TITLES = {
    "company": ["History", "Leadership", "Operations", "Finances"],
    "person": ["Early life", "Education", "Work", "Personal life"],
    "place": ["History", "People", "Government", "Culture"],
    "product": ["Overview", "Design", "Specifications", "Battery and care"],
}
# Filler: no digits, no proper names but the entity's own ({e}), so it never answers another question.
FILLER = {
    "company": [
        "{e} started out repairing signal equipment before it built anything of its own.",
        "Its first workshop was a rented shed next to a timber yard.",
        "The founders believed that careful maintenance mattered more than quick sales.",
        "Customers often mention the company's patient support staff.",
        "The board meets four times a year to review long-term plans.",
        "Most managers at {e} began their careers on the workshop floor.",
        "The leadership team publishes a short letter to employees every spring.",
        "Decisions about new products are made by a committee of engineers and designers.",
        "The company trains apprentices in a programme that lasts several years.",
        "Its factories run on electricity bought from local wind farms.",
        "Spare parts are kept in stock for many years after a product is discontinued.",
        "Orders are shipped by rail wherever a rail connection exists.",
        "{e} sells most of its products through small independent shops.",
        "The workshops close for two weeks every summer.",
        "An internal library lends technical books to anyone at the company.",
        "Profits are largely reinvested in research and new tools.",
        "The company has never paid for television advertising.",
        "Auditors have described its accounts as conservative and clear.",
        "{e} keeps a reserve fund for difficult years.",
        "Salaries are reviewed once a year by a joint committee.",
    ],
    "person": [
        "{e} spent long summers outdoors, collecting stones and drawing maps.",
        "As a child, {e} was known for asking questions that teachers could not answer.",
        "The family lived in a narrow house with a garden full of fruit trees.",
        "Weekends were spent walking along the coast with a notebook.",
        "{e} later described the lecture halls as cold but inspiring.",
        "A patient tutor encouraged the habit of writing every idea down.",
        "Fellow students remember long debates in the library cafe.",
        "The final thesis was praised for its clear writing.",
        "Colleagues describe {e} as generous with time and credit.",
        "Most working days began before sunrise with an hour of reading.",
        "Several younger researchers say the advice they received changed their careers.",
        "{e} has given public lectures in town halls and schools.",
        "The work is known for careful observation rather than bold claims.",
        "{e} prefers trains to aeroplanes and writes letters by hand.",
        "Friends describe a quiet sense of humour.",
        "The garden at home is a small experiment in growing herbs.",
        "Evenings are often spent rehearsing with friends.",
        "{e} rarely gives interviews and never uses social media.",
    ],
    "place": [
        "{e} grew up around a market where farmers traded wool and grain.",
        "Old stone bridges still carry the main roads across the water.",
        "The oldest houses stand along a crooked street near the square.",
        "A flood once destroyed the lower part of town, which was rebuilt on higher ground.",
        "Many families have lived in {e} for generations.",
        "The local school is known for its choir.",
        "Residents take pride in keeping the streets free of litter.",
        "Newcomers are welcomed with a small gift of bread and salt.",
        "The town council meets in the old grain exchange.",
        "Public meetings are held on the first Monday of each month.",
        "Council decisions are posted on a board outside the library.",
        "Local elections are known for high turnout.",
        "Street musicians play in the square on summer evenings.",
        "The town museum displays tools, maps and old photographs.",
        "A walking trail connects {e} with the surrounding villages.",
        "The bakery on the square is famous for its rye bread.",
        "The covered market is busiest on Saturday mornings.",
        "Visitors often stay in small guest houses near the station.",
    ],
    "product": [
        "The {e} is aimed at people who want something simple that lasts.",
        "Reviewers praise its sturdy build and quiet operation.",
        "The packaging is made from recycled cardboard without plastic.",
        "Every unit is tested by hand before it leaves the factory.",
        "The casing is made of brushed aluminium with rounded edges.",
        "Buttons are large enough to use while wearing gloves.",
        "The designers removed every part that did not serve a clear purpose.",
        "Early prototypes were tested by volunteers for a whole winter.",
        "The {e} comes with a printed manual in several languages.",
        "A protective sleeve is included in the box.",
        "Replacement parts can be ordered directly from the maker.",
        "The finish resists scratches from everyday use.",
        "Charging uses a standard cable that most households already own.",
        "The battery can be replaced at home with a small screwdriver.",
        "Storing the device in a dry place extends its life.",
        "A light indicates when the battery is nearly empty.",
        "Cleaning with a soft damp cloth is enough for most dirt.",
        "The {e} should not be left in direct sunlight for long periods.",
    ],
}
# Which entity name a kind gets.
_NAMES: dict[str, Callable[[Draw], str]] = {
    "company": lambda d: f"{d.word()} {d.pick(_INDUSTRY)}",
    "person": lambda d: d.person(),
    "place": lambda d: d.word(),
    "product": lambda d: f"{d.pick(_PRODUCT_MODEL)} {d.pick(_PRODUCT_NOUN)}".title(),
}
_TITLES = {
    "company": "{e}: company profile",
    "person": "{e}: a short biography",
    "place": "{e}: a guide to the town",
    "product": "{e}: product sheet",
}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def build_documents(seed: int = DEFAULT_SEED) -> list[Document]:
    """Three formats x four kinds = 12 documents, 6 facts each (72 questions)."""
    rng = random.Random(seed)
    draw = Draw(rng)
    docs: list[Document] = []
    for fmt in FORMATS:
        for kind in KINDS:
            entity = _NAMES[kind](draw)
            facts = FACTS[kind](entity, draw)
            filler = [s.format(e=entity) for s in FILLER[kind]]
            rng.shuffle(filler)
            per_section = len(filler) // 4
            sections: list[Section] = []
            for i, title in enumerate(SECTION_TITLES[kind]):
                own = [f for j, f in facts if j == i]
                sentences = filler[i * per_section : (i + 1) * per_section]
                for f in own:  # facts at random places among the filler
                    sentences.insert(rng.randint(0, len(sentences)), f.sentence)
                half = (len(sentences) + 1) // 2
                sections.append(Section(title, [sentences[:half], sentences[half:]], own))
            docs.append(Document(_slug(entity), kind, fmt, _TITLES[kind].format(e=entity), entity, sections))
    return docs


# -- writers --------------------------------------------------------------------------------------

PDF_WRAP = 84  # characters per line: Helvetica 11 pt on a 468 pt wide text block


def _pdf_string(s: str) -> str:
    return "(" + s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def write_pdf(pages: list[list[str]], title: str) -> bytes:
    """A minimal valid PDF 1.4: one page per list of lines, Helvetica (WinAnsi), an Info /Title (the title
    the RAG index shows for the document), an exact xref table.
    An empty line is a paragraph gap. Text is latin-1 (WinAnsi agrees with it for every character used)."""
    objects: list[str] = ["", "", "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"]
    kids: list[int] = []
    for lines in pages:
        ops = ["BT", "/F1 11 Tf", "15 TL", "72 730 Td"]
        for i, line in enumerate(lines):
            if i > 0:
                ops.append("T*")
            if line:
                ops.append(f"{_pdf_string(line)} Tj")
        ops.append("ET")
        content = "\n".join(ops)
        objects.append(f"<< /Length {len(content.encode('latin-1'))} >>\nstream\n{content}\nendstream")
        stream_id = len(objects)
        objects.append(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {stream_id} 0 R >>"
        )
        kids.append(len(objects))
    objects[0] = "<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>"
    objects.append(f"<< /Title {_pdf_string(title)} /Producer (Hearth make_qa_set.py) >>")
    info = len(objects)
    out = bytearray(b"%PDF-1.4\n")
    offsets: list[int] = []
    for i, body in enumerate(objects):
        offsets.append(len(out))
        out += f"{i + 1} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {info} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def render_pdf(doc: Document) -> bytes:
    pages: list[list[str]] = []
    for n, s in enumerate(doc.sections):
        lines = [doc.title, ""] if n == 0 else []
        lines += [s.title, ""]
        for p in s.paragraphs:
            lines += textwrap.wrap(" ".join(p), PDF_WRAP) + [""]
        pages.append(lines)
    return write_pdf(pages, doc.title)


def render_md(doc: Document) -> bytes:
    parts = [f"# {doc.title}", ""]
    for s in doc.sections:
        parts += [f"## {s.title}", ""]
        for p in s.paragraphs:
            parts += [" ".join(p), ""]
    return "\n".join(parts).encode()


def render_html(doc: Document) -> bytes:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{e(doc.title)}</title>",
        "</head>",
        "<body>",
        f"<h1>{e(doc.title)}</h1>",
    ]
    for s in doc.sections:
        parts += (
            ["<section>", f"<h2>{e(s.title)}</h2>"]
            + [f"<p>{e(' '.join(p))}</p>" for p in s.paragraphs]
            + ["</section>"]
        )
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts).encode()


RENDER = {"pdf": render_pdf, "md": render_md, "html": render_html}


def _questions(docs: list[Document]) -> Iterator[dict[str, object]]:
    n = 0
    for doc in docs:
        for page, s in enumerate(doc.sections, start=1):
            for f in s.facts:
                n += 1
                yield {
                    "id": f"q{n:03d}",
                    "question": f.question,
                    "answer": f.answer,
                    "accepted": [f.answer, *f.variants],
                    "document": f"docs/{doc.slug}.{doc.fmt}",
                    "format": doc.fmt,
                    "page": page if doc.fmt == "pdf" else None,
                    "section": s.title,
                    "sentence": f.sentence,
                    "fact": f"{doc.kind}.{f.key}",
                }


def generate(out: Path, seed: int = DEFAULT_SEED) -> dict[str, object]:
    """Write the set into `out` (replaced whole) and return the questions.json document."""
    docs = build_documents(seed)
    tmp = Path(tempfile.mkdtemp(prefix=".qa-", dir=out.parent if out.parent.exists() else None))
    try:
        (tmp / "docs").mkdir()
        for doc in docs:
            (tmp / "docs" / f"{doc.slug}.{doc.fmt}").write_bytes(RENDER[doc.fmt](doc))
        labels: dict[str, object] = {
            "version": VERSION,
            "seed": seed,
            "generator": "scripts/make_qa_set.py",
            "documents": [
                {
                    "file": f"docs/{d.slug}.{d.fmt}",
                    "format": d.fmt,
                    "mime": MIMES[d.fmt],
                    "title": d.title,
                    "entity": d.entity,
                    "kind": d.kind,
                    "pages": len(d.sections) if d.fmt == "pdf" else None,
                    "sections": [s.title for s in d.sections],
                }
                for d in docs
            ],
            "questions": list(_questions(docs)),
        }
        (tmp / "questions.json").write_text(json.dumps(labels, indent=1, ensure_ascii=False) + "\n")
        # Replace the folder only once everything is written: no half-written set.
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return labels


def load(folder: Path = DEFAULT_OUT) -> dict[str, object]:
    """The questions.json of a generated set, with a clear error when it is missing."""
    path = folder / "questions.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: generate the QA set with `python scripts/make_qa_set.py --out {folder}`"
        )
    return json.loads(path.read_text())


def _same_tree(a: Path, b: Path) -> bool:
    fa = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    fb = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return fa == fb and all(filecmp.cmp(a / p, b / p, shallow=False) for p in fa)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT.relative_to(REPO)})"
    )
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--check", action="store_true", help="exit 1 if --out differs from a fresh generation")
    args = ap.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / "set"
            generate(fresh, args.seed)
            if not args.out.is_dir() or not _same_tree(fresh, args.out):
                print(
                    f"{args.out} is not what make_qa_set.py --seed {args.seed} writes: regenerate it", file=sys.stderr
                )
                return 1
        print(f"{args.out}: up to date")
        return 0
    labels = generate(args.out, args.seed)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(
        f"{args.out}: {len(labels['documents'])} documents, {len(labels['questions'])} questions, {size / 1024:.1f} KiB"
    )  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
