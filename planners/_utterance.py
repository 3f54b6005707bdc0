"""Utterances: what each sentence of a user's message is, so that only requests are planned.

Owns :func:`utterances` (a message cut into sentences, each labelled ``statement``,
``question``, ``request``, ``small_talk`` or ``quoted``), :func:`task_text` (the message with
its statements, small talk and quoted text left out: what a planner may turn into tasks),
:func:`statements`, :func:`told_facts` (the personal facts a message tells),
:func:`is_personal_fact` (a statement about the user or their world, worth remembering) and
:func:`is_personal_question` (a question such a fact answers).

The rules are word patterns, no model: a sentence is a ``question`` when it ends with "?" or
opens with a question word (unless it is a polite request such as "Can you read notes.txt?");
a ``request`` when it opens with an imperative verb, "please", "let's", "I want you to" or
"can/could/would you"; ``small_talk`` for greetings, thanks and acknowledgements; and a
``statement`` when it is declarative with a subject of its own ("My sister lives in Lyon.",
"I am allergic to peanuts.", "The wifi password is orange42.", "He stood on the bank."); a
connective ("then", "and", or one word and a comma) before a subject is read past ("Then he
turned away." is a statement, "Then save it." a request). Anything else counts as a request,
so a sentence the rules do not know is planned as before, except in a passage's long
paragraph (below), where it is a statement. A paragraph whose lines are mostly labelled
("Location: cafe", "Your move: call one tool") is a form, never prose, however long.

Text the user quotes or pastes is material, not what they ask: a sentence that starts inside
quotation marks (a novel's dialogue, a quoted remark) is ``quoted``, unless every sentence of
the message is (a user who wraps their whole request in quotes). A message of more than
:data:`PASSAGE_SENTENCES` sentences is a passage (a chapter, an article, notes pasted in): only
its short paragraphs (a few sentences in the user's own voice, as people write when they tell
something) are read for personal facts, so a story's narration is never remembered as the
user's own world. Never plans, never calls a model and never stores anything.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Sequence, Sized
from typing import Literal

__all__ = [
    "PASSAGE_SENTENCES",
    "Utterance",
    "UtteranceKind",
    "is_passage",
    "is_personal_fact",
    "is_personal_question",
    "statements",
    "task_text",
    "told_facts",
    "utterances",
]

UtteranceKind = Literal["statement", "question", "request", "small_talk", "quoted"]

# sentence ends: ". " / "! " / "? " before a capital, a digit or a quote, and line breaks; a
# decimal point or a file name ("notes.txt") never ends a sentence
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'\u201c\u2018(A-Z0-9])|\n+")
_QUESTION_WORD = re.compile(
    r"^(?:what|what's|whats|where|where's|when|who|who's|whom|whose|which|why|how|how's|"
    r"do|does|did|is|isn't|are|aren't|was|were|can|could|would|will|should|shall|may|have|has|"
    r"had|am)\b",
    re.IGNORECASE,
)
_POLITE_REQUEST = re.compile(
    r"^(?:can|could|would|will)\s+you\s+(?:please\s+)?(?!remember\s+(?:what|where|when|who|"
    r"which|how|my|our|if|whether))[a-z]+",
    re.IGNORECASE,
)
_IMPERATIVE = (
    "add|answer|append|ask|book|bring|buy|calculate|call|cancel|change|check|choose|compare|"
    "compute|convert|copy|count|create|delete|describe|do|draft|evaluate|explain|fetch|find|fix|"
    "get|give|go|help|list|look|make|move|multiply|name|note|open|order|pick|plan|post|print|"
    "propose|put|read|recall|recommend|remember|remind|remove|rename|repeat|reply|report|run|"
    "save|say|schedule|search|send|set|show|sort|store|subtract|suggest|sum|summarise|summarize|"
    "tell|translate|try|update|use|write|memorise|memorize|keep|don't|do not|never|always|"
    "start|stop|turn|divide|draw|think|consider|imagine|share|play|sing"
)
_REQUEST_OPENING = re.compile(
    r"^(?:please\b|kindly\b|let's\b|let us\b|first\b|then\b|next\b|finally\b|and\b|"
    r"i(?:'d| would)? (?:want|need|like) you to\b|i'd like\b|i would like\b|"
    # "I need 120+80 worked out and ...", "I want the report sent to Ann": a thing to be done
    r"i (?:really )?(?:need|want) (?!to\b)(?:\S+\s+){1,6}?(?:\w+ed|done|put|sent|written|made|"
    r"set|read|found|fixed|worked out|looked up|taken care of)\b|"
    r"(?:" + _IMPERATIVE + r")\b)",
    re.IGNORECASE,
)
_SMALL_TALK = re.compile(
    r"^(?:hi|hello|hey|hiya|yo|good (?:morning|afternoon|evening|night|day)|thanks|thank you|"
    r"thx|cheers|ok|okay|cool|great|nice|perfect|awesome|sure|yes|yeah|yep|no|nope|fine|"
    r"alright|all right|bye|goodbye|see you|later|lol|haha|wow|sorry|no problem|"
    r"you're welcome|got it|sounds good|that's (?:great|nice|cool|fine|good|ok|okay)|"
    r"how are you|how's it going|how are things|what's up|i'm (?:fine|good|ok|okay|great|well)|"
    r"i am (?:fine|good|ok|okay|great|well)|not bad|me too|same here)\b",
    re.IGNORECASE,
)
# a declarative sentence: a subject of its own, then a finite verb
_SUBJECT = re.compile(
    r"^(?:i|i'm|i've|i'd|i'll|my|me|mine|we|we're|we've|our|ours|the|a|an|his|her|their|"
    r"its|this|these|those|that|there|it|it's|he|she|they|[A-Z][\w'-]*)\b",
)
_FINITE_VERB = re.compile(
    r"\b(?:is|are|was|were|am|'m|'re|'s|be|has|have|had|'ve|lives?|lived|works?|worked|"
    r"likes?|liked|loves?|loved|hates?|prefers?|owns?|drives?|wants?|needs?|plays?|studies|"
    r"study|speaks?|moved|got|gets|goes|go|went|uses?|used|called|named|born|turns?|costs?|"
    r"starts?|ends?|runs?|stays?|eats?|drinks?|keeps?|reads|writes|teaches|teach|visits?|"
    r"visited|can|can't|cannot|will|won't|would|should|must|do|don't|does|doesn't|did|didn't|"
    r"[a-z]+ed)\b",
    re.IGNORECASE,
)
# a subject no imperative opens with (a capitalised word may be a verb: "Send it")
_PRONOUN_SUBJECT = re.compile(
    r"^(?:he|she|they|we|it|there|his|her|their|its|the|a|an|this|these|those)\s+\S",
    re.IGNORECASE,
)
_FIRST_PERSON_SUBJECT = re.compile(
    r"^(?:i|i'm|i've|i'd|i'll|my|we|we're|we've|we'll|our)\b", re.IGNORECASE
)
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|my|me|mine|myself|we|we're|our|ours|us)\b", re.I)
# about the conversation itself, not the user's world: "That is wrong.", "It worked.", "Here
# is the next part:"
_DEICTIC = re.compile(r"^(?:that|this|it|it's|that's|there|here|here's)\b", re.IGNORECASE)
# how the user is right now, not a fact about them: "I'm stuck", "I am trying to ..."
_PASSING_STATE = re.compile(
    r"^(?:i'm|i am|we're|we are)\s+(?:just\s+|so\s+|really\s+|a bit\s+|still\s+)?"
    r"(?:stuck|tired|busy|confused|lost|bored|hungry|sorry|sure|not sure|back|here|done|ready|"
    r"trying|working on|looking|wondering|thinking|going to|about to|curious|glad|happy|sad|"
    r"annoyed|frustrated|worried|excited)\b",
    re.IGNORECASE,
)
_REMEMBER_PREFIX = re.compile(
    r"^(?:please\s+)?(?:remember|memori[sz]e|note|keep in mind|don't forget|do not forget)"
    r"(?:\s+that)?\s*[:,]?\s*",
    re.IGNORECASE,
)


_ABBREVIATION = re.compile(
    r"\b(?:st|mr|mrs|ms|dr|prof|jr|sr|mt|no|vs|etc|e\.g|i\.e|approx)\.$", re.I
)


# "Then he turned away.", "Indeed, he felt ...": a connective (or one word and a comma) before
# a subject of its own opens a statement, not a step; "Then save it." stays a request
_CONNECTIVE = re.compile(
    r"^(?:(?:then|and|first|next|finally|so|but)\b,?|[a-z]+,)\s+(?=(?:i|he|she|they|we|it|the|"
    r"his|her|their|my|our|there|this|that|these|those)\b)",
    re.IGNORECASE,
)
_PARAGRAPH = re.compile(r"\n[ \t]*\n")
# a labelled line of a form or status report ("Location: cafe", "Your move: call a tool"): a
# few words before a colon that starts the line
_LABELLED_LINE = re.compile(r"^\s*(?:[-*]\s+)?[A-Za-z][\w'-]*(?:[ \t]+[\w'-]+){0,3}:(?:\s|$)")
# the quotation marks that open and close a quote; a straight double quote does both
_OPENING_QUOTES = "\u201c\u2018\"'"
# a message longer than this is read as a pasted passage when it comes to facts (see told_facts)
PASSAGE_SENTENCES = 6
# a passage's paragraph that tells the agent something: short, in the user's own voice
_TOLD_PARAGRAPH_SENTENCES = 3
_ADDRESSED = re.compile(r"\b(?:i|i'm|i've|i'd|my|me|we|our|us|you|your|remember)\b", re.I)


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One sentence of a message, what it is, and which paragraph of the message holds it."""

    text: str
    kind: UtteranceKind
    paragraph: int = 0


def _sentences(message: str) -> list[str]:
    parts: list[str] = []
    for piece in _SENTENCE_END.split(message.strip()):
        if parts and _ABBREVIATION.search(parts[-1]):
            parts[-1] += " " + piece.strip()  # "St. Mary", "Dr. Lee": one sentence
        else:
            parts.append(piece.strip())
    return [p for p in parts if any(c.isalnum() for c in p)]


def _quote_starts(sentences: list[str]) -> list[bool]:
    """Per sentence of one paragraph: does it start inside quotation marks? Double quotes are
    followed across the paragraph (a quote may run over several sentences); a single quote
    only where it opens a sentence, since the same mark is an apostrophe inside words."""
    starts: list[bool] = []
    inside = False
    for sentence in sentences:
        starts.append(inside or sentence[:1] in _OPENING_QUOTES)
        for ch in sentence:
            if ch == "\u201c":
                inside = True
            elif ch == "\u201d":
                inside = False
            elif ch == '"':
                inside = not inside
    return starts


def _classify(sentence: str, unknown: UtteranceKind = "request") -> UtteranceKind:
    text = sentence.strip().strip("\"'\u201c\u201d\u2018\u2019").strip()
    bare = text.rstrip(".!?").strip()
    if _SMALL_TALK.match(bare) and len(bare.split()) <= 6:
        return "small_talk"  # "Thanks, that was helpful!"
    connective = _CONNECTIVE.match(text)
    if connective:
        text = text[connective.end() :]
        bare = text.rstrip(".!?").strip()
    words = bare.split()
    if _POLITE_REQUEST.match(text):
        return "request"
    if text.endswith("?"):
        return "question"
    if _REQUEST_OPENING.match(text):
        return "request"
    if _QUESTION_WORD.match(text):
        return "question"
    if len(words) >= 3 and _FIRST_PERSON_SUBJECT.match(text):
        return "statement"  # "My flight leaves at 6.30.", "I just moved to Berlin."
    if len(words) >= 3 and _SUBJECT.match(text) and _FINITE_VERB.search(" ".join(words[1:])):
        return "statement"
    if len(words) >= 3 and _PRONOUN_SUBJECT.match(text):
        return "statement"  # "He stood on the bank.": no imperative opens with a pronoun
    if connective and len(words) >= 2:
        return "statement"  # "And he left.": a connective and a subject, then whatever verb
    return unknown


def utterances(message: str) -> list[Utterance]:
    """The message's sentences in order, each with its kind and paragraph (see the module
    docstring)."""
    said: list[Utterance] = []
    texts = _PARAGRAPH.split(message.strip())
    paragraphs = [_sentences(p) for p in texts]
    passage = is_passage([s for p in paragraphs for s in p])
    for number, (text, sentences) in enumerate(zip(texts, paragraphs, strict=True)):
        # a long paragraph of a passage is prose: what the rules do not know there is told,
        # not asked (a request in a pasted text still opens with its verb or "please"); a
        # form of labelled lines (a status report with "Your move: ...") is not prose
        prose = passage and len(sentences) > _TOLD_PARAGRAPH_SENTENCES and not _is_form(text)
        unknown: UtteranceKind = "statement" if prose else "request"
        for sentence, quoted in zip(sentences, _quote_starts(sentences), strict=True):
            kind: UtteranceKind = "quoted" if quoted else _classify(sentence, unknown)
            said.append(Utterance(sentence, kind, number))
    if said and all(u.kind == "quoted" for u in said):
        # the whole message in quotes: that is how this user writes, not a quotation
        said = [dataclasses.replace(u, kind=_classify(u.text)) for u in said]
    return said


def _is_form(paragraph: str) -> bool:
    """Whether most lines of a paragraph are labelled lines (``Label: value``)."""
    lines = [line for line in paragraph.splitlines() if line.strip()]
    return 2 * sum(1 for line in lines if _LABELLED_LINE.match(line)) > len(lines)


def statements(message: str) -> list[str]:
    """The statements a message makes, as written."""
    return [u.text for u in utterances(message) if u.kind == "statement"]


def task_text(message: str) -> str:
    """The message without its statements, small talk and quoted text: the part a planner may
    turn into tasks ("" when the message only states things, chats or quotes)."""
    return " ".join(u.text for u in utterances(message) if u.kind in ("request", "question"))


def is_passage(sentences: Sized) -> bool:
    """Whether a message (its sentences or utterances) is long enough to be a pasted passage
    rather than something the user says in their own words."""
    return len(sentences) > PASSAGE_SENTENCES


def told_facts(message: str | Sequence[Utterance]) -> list[str]:
    """The personal facts (:func:`is_personal_fact`) a message tells, as written. From a short
    message, every one; from a passage (:func:`is_passage`: a chapter, an article, notes pasted
    in), only those in its short paragraphs in the user's own voice ("By the way, remember
    that my locker code is 4417."), so that a story's narration ("The inspector was tired.")
    is not taken for the user's world. Quoted sentences never count. ``message`` may be its
    :func:`utterances` already."""
    said = utterances(message) if isinstance(message, str) else message
    passage = is_passage(said)
    facts: list[str] = []
    for _, group in itertools.groupby(said, key=lambda u: u.paragraph):
        paragraph = list(group)
        if passage and (
            len(paragraph) > _TOLD_PARAGRAPH_SENTENCES
            or not any(_ADDRESSED.search(u.text) for u in paragraph)
        ):
            continue
        facts += [u.text for u in paragraph if u.kind != "quoted" and is_personal_fact(u.text)]
    return facts


def is_personal_fact(sentence: str) -> bool:
    """A statement about the user or their world ("My sister lives in Lyon.", "I am allergic
    to peanuts.", "Our meeting room is B-17.", "The wifi password is orange42."), not one
    about the conversation ("That is wrong.", "It worked.") nor how they are right now ("I'm
    stuck", "I am trying to ..."). "Remember that X" counts as X."""
    text = _REMEMBER_PREFIX.sub("", sentence.strip()) if _REMEMBER_PREFIX.match(sentence) else ""
    text = text or sentence.strip()
    if not text or _classify(text) != "statement":
        return False
    if _DEICTIC.match(text) or _PASSING_STATE.match(text):
        return False
    return bool(_FIRST_PERSON.search(text)) or bool(
        re.search(r"\b(?:is|are|was|were)\b", text, re.IGNORECASE)
    )


_EXPRESSION = re.compile(r"\d[\d\s.]*(?:[-+*/^%]|\*\*)\s*[\d(]")
_FILE_NAME = re.compile(r"[\w-]+\.[a-z0-9]{1,6}\b")


def is_personal_question(sentence: str) -> bool:
    """A question about the user or their world ("Where does my sister live?", "What is my
    favourite colour?"): a question with a first-person word and nothing to compute or open
    (no arithmetic expression, no file name). What the user told answers it, not a tool."""
    text = sentence.strip()
    if _classify(text) != "question" or not _FIRST_PERSON.search(text):
        return False
    return not (_EXPRESSION.search(text) or _FILE_NAME.search(text))
