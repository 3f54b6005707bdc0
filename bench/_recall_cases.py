"""Cases of the real-text long-memory benchmark: needles worded like facts in prose, questions
worded differently from their needles, placed in book text.

Owns the wordings, the value generators and the assembly of one case (document text with
needles at given depths, the questions, the accepted answers). Never runs a model: see
``recall_real.py``. Everything is seeded, so a case is the same on every machine.

Splits: the **dev** split uses wordings 0-6 in *Emma*; the **test** split uses wordings 7-13 in
*The Man Who Was Thursday* (and its own owners and values); the two never share a wording, a
book or an owner name, so tuning on dev cannot learn the test set.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable, Sequence

# ---------------------------------------------------------------------------- values


def _digits(n: int) -> Callable[[random.Random], str]:
    return lambda rng: str(rng.randint(10 ** (n - 1), 10**n - 1))


def _code(rng: random.Random) -> str:
    letters = "".join(rng.choice("BCDFGHJKLMNPRSTVWXZ") for _ in range(2))
    return f"{letters}-{rng.randint(100, 9999)}"


_TOWNS = [
    "Wexmoor",
    "Caldbridge",
    "Ashcombe",
    "Thornleigh",
    "Marrowby",
    "Kestlewick",
    "Fennock",
    "Dunmarsh",
    "Holloway",
    "Brackenfield",
    "Osterley",
    "Pellworth",
    "Quenby",
    "Ravelston",
    "Saltcote",
    "Tidewell",
    "Ulverdale",
    "Varnham",
    "Whitlow",
    "Yarrowick",
]
_GIVEN = [
    "Ambrose",
    "Beatrix",
    "Cornelius",
    "Delphine",
    "Everard",
    "Florentia",
    "Gideon",
    "Henrietta",
    "Ignatius",
    "Josephine",
    "Leopold",
    "Millicent",
    "Nathaniel",
    "Ottoline",
    "Peregrine",
    "Rosalind",
    "Septimus",
    "Theodora",
    "Valentine",
    "Wilhelmina",
]
_SHIPS = [
    "Albatross",
    "Bellerophon",
    "Cormorant",
    "Dauntless",
    "Endeavour",
    "Fairwind",
    "Gannet",
    "Halcyon",
    "Intrepid",
    "Jessamine",
    "Kittiwake",
    "Lodestar",
    "Merlin",
    "Nightjar",
    "Osprey",
    "Petrel",
]
_STREETS = [
    "Harrowgate",
    "Larkspur",
    "Millbank",
    "Nettlebed",
    "Orchard",
    "Pimlico",
    "Quayside",
    "Rookery",
    "Sandpiper",
    "Tanners",
    "Underhill",
    "Vicarage",
    "Wharfside",
    "Yewtree",
]
_WORDS = [
    "amber",
    "cobalt",
    "falcon",
    "juniper",
    "lantern",
    "meadow",
    "quartz",
    "saffron",
    "thistle",
    "walnut",
]


def _town(rng: random.Random) -> str:
    return rng.choice(_TOWNS)


def _given(rng: random.Random) -> str:
    return rng.choice(_GIVEN)


def _ship(rng: random.Random) -> str:
    return rng.choice(_SHIPS)


def _street(rng: random.Random) -> str:
    return rng.choice(_STREETS)


def _password(rng: random.Random) -> str:
    return f"{rng.choice(_WORDS)}{rng.randint(10, 99)}"


def _year(rng: random.Random) -> str:
    return str(rng.randint(1512, 1788))


# ---------------------------------------------------------------------------- wordings


@dataclasses.dataclass(frozen=True)
class Wording:
    """One kind of fact: how the text states it, how a user asks for it, and its values."""

    kind: str  # number / code / place / name
    needle: str  # "{owner}" and "{value}" are filled in
    question: str  # "{owner}" is filled in; worded differently from the needle
    value: Callable[[random.Random], str]
    # multi-value family: a needle stating one of several values, and a question for all
    several: str = ""
    several_question: str = ""


WORDINGS: tuple[Wording, ...] = (
    # ---- dev (0-6)
    Wording(
        "number",
        "The combination of the old iron safe in {owner}'s study was {value}.",
        "What numbers open the safe in {owner}'s study?",
        _digits(5),
        "One of the numbers chalked on {owner}'s cellar door was {value}.",
        "Which numbers were chalked on {owner}'s cellar door? List every one.",
    ),
    Wording(
        "place",
        "Few people knew that {owner} had been born in {value}, a village on the northern moors.",
        "Where was {owner} born? Name the village.",
        _town,
    ),
    Wording(
        "code",
        "The parcel addressed to {owner} carried the shipping mark {value} on its lid.",
        "Which mark was written on the lid of {owner}'s parcel?",
        _code,
        "A crate sent to {owner} was stamped with the mark {value}.",
        "Which marks were stamped on the crates sent to {owner}? Give them all.",
    ),
    Wording(
        "name",
        "{owner}'s youngest godchild, a cheerful little girl, was christened {value}.",
        "What is the name of {owner}'s youngest godchild?",
        _given,
    ),
    Wording(
        "number",
        "At the Michaelmas fair {owner} paid {value} shillings for a grey mare.",
        "How much did {owner} pay for the mare at the fair, in shillings?",
        _digits(3),
    ),
    Wording(
        "name",
        "The packet boat that took {owner} across to Lisbon was called the {value}.",
        "On which boat did {owner} sail to Lisbon?",
        _ship,
    ),
    Wording(
        "code",
        "To open the glass cabinet in the library, {owner} used the word {value}.",
        "What word did {owner} use to open the library's glass cabinet?",
        _password,
    ),
    # ---- test (7-13)
    Wording(
        "number",
        "The lock on {owner}'s strongbox opened only to the figures {value}.",
        "Which figures did {owner}'s strongbox lock open to?",
        _digits(5),
        "Among the figures scratched on {owner}'s pocket watch was {value}.",
        "What figures were scratched on {owner}'s pocket watch? Name all of them.",
    ),
    Wording(
        "place",
        "In the end {owner} settled in {value}, a market town beside a slow brown river.",
        "Which town did {owner} finally settle in?",
        _town,
    ),
    Wording(
        "code",
        "Scotland Yard filed the report on {owner} under reference {value}.",
        "What is the reference number of the report filed about {owner}?",
        _code,
        "One of the telegrams from {owner} bore the office code {value}.",
        "What office codes did the telegrams from {owner} bear? List each one.",
    ),
    Wording(
        "name",
        "{owner} kept a rough little terrier whose name was {value}.",
        "What was {owner}'s dog called?",
        _given,
    ),
    Wording(
        "number",
        "{owner} always took room {value} when staying at the Crown and Anchor.",
        "Which room at the Crown and Anchor did {owner} usually stay in?",
        _digits(3),
    ),
    Wording(
        "place",
        "The letters of {owner} were hidden in a house on {value} Lane.",
        "On what lane was the house where {owner}'s letters were hidden?",
        _street,
    ),
    Wording(
        "number",
        "The little chapel that {owner} restored had first been built in {value}.",
        "In what year was the chapel {owner} restored originally built?",
        _year,
    ),
)
DEV_WORDINGS = tuple(range(7))
TEST_WORDINGS = tuple(range(7, 14))

_OWNERS = {
    "dev": (
        "Mr. Thaddeus Quill",
        "Miss Harriet Penrose",
        "Captain Alder",
        "Mrs. Oakhurst",
        "Dr. Fenwick",
        "Lady Carrow",
        "Mr. Bellamy",
        "Miss Tremayne",
    ),
    "test": (
        "Professor Lambeth",
        "Colonel Dray",
        "Mrs. Wetherby",
        "Mr. Ansel Crooke",
        "Miss Verity Hale",
        "Father Blount",
        "Sir Roderick Vane",
        "Madame Orsolya",
    ),
}
BOOKS = {"dev": "austen-emma.txt", "test": "chesterton-thursday.txt"}
FAMILIES = ("single", "multikey", "multivalue", "multiquestion")


# ---------------------------------------------------------------------------- cases


@dataclasses.dataclass
class Needle:
    text: str
    depth: float  # where it sits in the document, as a fraction of the document's tokens


@dataclasses.dataclass
class Question:
    text: str
    answers: list[str]  # every one must appear in the reply (case-insensitive)
    wording: int
    distractors: list[str] = dataclasses.field(default_factory=list)  # must not appear
    asks: int = 1  # questions the turn asks (the multiquestion family's turn asks three)


@dataclasses.dataclass
class Case:
    """One document's needles and the questions asked about it (each asked on its own fork)."""

    family: str
    split: str
    needles: list[Needle]
    questions: list[Question]


def make_case(family: str, split: str, rng: random.Random, depths: Sequence[float]) -> Case:
    """A case of ``family`` with needles at ``depths`` (one needle per depth; the multi-value
    family states ``len(depths)`` values of one key; the others ask one question per needle,
    except the multi-question family, which asks about all needles at once)."""
    ids = DEV_WORDINGS if split == "dev" else TEST_WORDINGS
    owners = list(_OWNERS[split])
    rng.shuffle(owners)
    if family == "multivalue":
        w = rng.choice([i for i in ids if WORDINGS[i].several])
        owner = owners[0]
        values = _distinct(WORDINGS[w].value, rng, len(depths))
        needles = [
            Needle(WORDINGS[w].several.format(owner=owner, value=v), d)
            for v, d in zip(values, depths, strict=True)
        ]
        q = Question(WORDINGS[w].several_question.format(owner=owner), values, w)
        return Case(family, split, needles, [q])
    if family == "multikey":  # one wording, different owners: distractors of the same kind
        w = rng.choice(ids)
        chosen = [w] * len(depths)
    else:  # single / multiquestion: different wordings
        chosen = rng.sample(list(ids), len(depths))
    needles, questions = [], []
    values = _distinct(WORDINGS[chosen[0]].value, rng, len(depths)) if family == "multikey" else []
    for i, (w, d) in enumerate(zip(chosen, depths, strict=True)):
        wording = WORDINGS[w]
        value = values[i] if values else wording.value(rng)
        needles.append(Needle(wording.needle.format(owner=owners[i], value=value), d))
        questions.append(Question(wording.question.format(owner=owners[i]), [value], w))
    if family == "multikey":  # naming another person's value is wrong, not a lucky guess
        for q in questions:
            q.distractors = [v for v in values if v not in q.answers]
    if family == "multiquestion":
        text = " ".join(f"({i + 1}) {q.text}" for i, q in enumerate(questions))
        answers = [a for q in questions for a in q.answers]
        questions = [
            Question("Please answer three questions. " + text, answers, -1, asks=len(questions))
        ]
    return Case(family, split, needles, questions)


def _distinct(gen: Callable[[random.Random], str], rng: random.Random, n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        v = gen(rng)
        if v not in out:
            out.append(v)
    return out


def score(reply: str, answers: Sequence[str], distractors: Sequence[str] = ()) -> float:
    """Fraction of the accepted answers that appear in the reply (whole words, any case); 0 when
    the reply also names a distractor (a value stated for someone else)."""
    norm = reply.lower()

    def has(value: str) -> bool:
        return bool(re.search(r"(?<![\w-])" + re.escape(value.lower()) + r"(?![\w-])", norm))

    if any(has(d) for d in distractors):
        return 0.0
    return sum(has(a) for a in answers) / len(answers)


# ---------------------------------------------------------------------------- documents


def paragraphs(book_text: str) -> list[str]:
    """The book's paragraphs, line breaks inside a paragraph folded to spaces."""
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", book_text)]
    return [p for p in paras if len(p) > 40]


def haystack(
    paras: Sequence[str],
    n_tokens: int,
    count: Callable[[str], int],
    rng: random.Random,
) -> list[str]:
    """Consecutive paragraphs from a random start (wrapping around) worth ``n_tokens``."""
    start = rng.randrange(len(paras))
    out: list[str] = []
    total = 0
    i = start
    while total < n_tokens:
        p = paras[i % len(paras)]
        out.append(p)
        total += count(p) + 1
        i += 1
    return out


def place_needles(
    hay: Sequence[str], needles: Sequence[Needle], count: Callable[[str], int]
) -> str:
    """The document: each needle appended to the paragraph where its depth falls."""
    sizes = [count(p) + 1 for p in hay]
    total = sum(sizes)
    cum, acc = [], 0
    for s in sizes:
        acc += s
        cum.append(acc)
    extra: dict[int, list[str]] = {}
    for n in needles:
        at = next(i for i, c in enumerate(cum) if c >= n.depth * total)
        extra.setdefault(at, []).append(n.text)
    return "\n\n".join(
        p + ("".join(" " + t for t in extra[i]) if i in extra else "") for i, p in enumerate(hay)
    )
