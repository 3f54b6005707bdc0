"""``bench/recall_real.py`` says where each answer went: evicted or not, its block's rank."""

from __future__ import annotations

import random
from collections.abc import Callable
from types import ModuleType

import pytest

from agentcore.core.cache import StreamingConfig
from agentcore.core.engine import Engine
from agentcore.core.recall import RecallConfig
from agentcore.core.session import SessionConfig

STREAM = StreamingConfig(n_sink=4, window=200, chunk_size=30)
RECALL = RecallConfig(block_size=16, top_k=2, candidates=4, host_blocks=1000)


@pytest.fixture(scope="module")
def recall_real(bench_module: Callable[[str], ModuleType]) -> ModuleType:
    return bench_module("recall_real")


@pytest.fixture(scope="module")
def question(recall_real: ModuleType) -> Callable[..., object]:
    return lambda text, *answers: recall_real.Question(text, list(answers), 0)


def test_a_turn_of_several_questions_gets_a_reply_budget_for_each(recall_real: ModuleType) -> None:
    """Three questions asked at once get three answers' room (a 40-token reply cut the third
    answer off, with the facts in view or recalled alike); one question, one answer's room."""
    depths = [0.1, 0.4, 0.7]
    for family, asks in (("multiquestion", 3), ("single", 1), ("multivalue", 1)):
        case = recall_real.make_case(family, "test", random.Random(5), depths)
        for q in case.questions:
            assert q.asks == asks
            assert recall_real.reply_tokens(q) == recall_real.ANSWER_TOKENS * asks


def test_the_trace_finds_the_answer_block_and_its_rank(
    recall_real: ModuleType, question: Callable[..., object], tiny_engine: Engine
) -> None:
    """An answer told early leaves the window: the trace finds its block and ranks it among
    the question selection's candidates (or None); an answer still in the window, or never
    told, is not evicted; a session without recall has no trace."""
    s = tiny_engine.new_session(SessionConfig(streaming=STREAM, recall=RECALL))
    filler = "and so the day went on. " * 30
    s.append_text("The code of the blue door is QX7194. " + filler)
    reply, trace = recall_real.ask(s, question("What is the code of the blue door?", "QX7194"))
    assert isinstance(reply, str)
    assert trace["answer_evicted"] is True and isinstance(trace["recalled"], bool)
    run = s.fork()  # the same question again, the trace read against the selection itself
    run.append_messages([{"role": "user", "content": "What is the code of the blue door?"}])
    store = run.extensions["recall"]
    held = store.blocks_holding(tiny_engine.codec.encode(" QX7194"))
    assert held and max(held) < store.n_blocks
    ranks = [store.candidates.index(b) for b in held if b in store.candidates]
    assert recall_real.answer_trace(run, ["QX7194"])["answer_rank"] == (
        min(ranks) if ranks else None
    )
    run.close()
    s.append_text("The red door's code is RD5521. ")  # still in the window when asked
    _, recent = recall_real.ask(s, question("And the red door?", "RD5521"))
    assert recent["answer_evicted"] is False and recent["answer_rank"] is None
    _, never = recall_real.ask(s, question("And the green door?", "GR0000"))
    assert never["answer_evicted"] is False
    _, both = recall_real.ask(s, question("Both codes?", "QX7194", "RD5521"))  # one value per rank
    assert both["answer_evicted"] is True and len(both["answer_ranks"]) == 2
    assert both["answer_ranks"][1] is None  # the red door's code never left the window
    assert both["answer_rank"] == both["answer_ranks"][0]
    plain = tiny_engine.new_session(SessionConfig(streaming=STREAM))
    plain.append_text("The code is QX7194.")
    assert recall_real.ask(plain, question("The code?", "QX7194"))[1] == {}


def test_the_report_counts_ranks_gate_and_answers(recall_real: ModuleType) -> None:
    rows = [
        {"arm": "recall", "answer_evicted": True, "answer_rank": 0, "recalled": True, "score": 1.0},
        {"arm": "recall", "answer_evicted": True, "answer_rank": 3, "recalled": False, "score": 0},
        {
            "arm": "recall",
            "answer_evicted": True,
            "answer_rank": None,
            "recalled": True,
            "score": 0,
        },
        {
            "arm": "recall",
            "answer_evicted": False,
            "answer_rank": None,
            "recalled": True,
            "score": 1,
        },
        {"arm": "exact", "answer_evicted": True, "answer_rank": 9, "recalled": True, "score": 0.5},
        {"arm": "inside", "score": 1.0},
    ]
    text = recall_real.found_lines(rows, ["inside", "recall", "exact"], top_k=8)
    assert (
        "- recall: of 3 questions whose answer had left the window, its block ranked first for 1, in the best 4 for 2; recalled (the gate open) for 1, of which the model answered 1."
        in text
    )
    assert (
        "- exact: of 1 questions whose answer had left the window, its block ranked first for 0, in the best 4 for 0; recalled (the gate open) for 0, of which the model answered 0."
        in text
    )
    assert "inside" not in text
    assert recall_real.found_lines(rows[-1:], ["inside"], top_k=8) == ""


@pytest.mark.parametrize(
    ("argv", "got"), [(["--first", "-1"], "got -1 and 2"), (["--cases", "0"], "got 0 and 0")]
)
def test_a_document_range_that_cannot_exist_is_refused_before_any_model_loads(
    recall_real: ModuleType, argv: list[str], got: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        recall_real.main(argv)
    assert exit_.value.code == 2
    assert f"--first must be >= 0 and --cases >= 1, {got}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (
            ["--window", "2048", "--layout-window", "1024"],
            "--layout-window must be at least the sessions' sinks + window (2048), got 1024",
        ),
        (["--layout-window", "0"], "--layout-window must be a number of tokens >= 1, got 0"),
    ],
)
def test_documents_laid_out_for_a_smaller_window_are_refused(
    recall_real: ModuleType, argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--layout-window`` lets runs with different windows read the same documents; one
    smaller than the sessions' window could leave a needle in view, so it is refused (before
    any model loads)."""
    with pytest.raises(SystemExit) as exit_:
        recall_real.main(argv)
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err


def test_a_larger_layout_window_puts_every_needle_beyond_it(recall_real: ModuleType) -> None:
    """Documents laid out for 2,048 tokens hold every needle more than 2,048 tokens back, so a
    session with a 1,024-token window reads the same documents with the needles evicted."""
    words = [f"Paragraph {i} " + "word " * 60 for i in range(400)]
    count = lambda text: len(text.split())  # noqa: E731
    for family in ("single", "multikey"):
        _, small, _, _ = recall_real.build(family, "test", 8192, 1, 1024, count, words)
        case, large, _, _ = recall_real.build(family, "test", 8192, 1, 2048, count, words)
        assert small != large
        total = count(large)
        for needle in case.needles:
            assert total - count(large[: large.index(needle.text)]) > 2048, family


def _row(arm: str, case: int, question: str, score: float, family: str = "single") -> dict:
    return {
        "arm": arm,
        "length": 8192,
        "family": family,
        "case": case,
        "question": question,
        "score": score,
    }


def _run(tmp_path, name: str, rows: list[dict], model: str | None = None) -> object:
    import json

    folder = tmp_path / name
    folder.mkdir()
    raw = {"args": {"model": model, "split": "test"}, "recall": "RecallConfig(top_k=8)"}
    (folder / "recall_real.json").write_text(json.dumps({**raw, "rows": rows}))
    return folder


def test_recall_and_inside_are_compared_question_by_question(recall_real: ModuleType) -> None:
    """Counts of questions each arm answered better, and an interval from resampling whole
    documents: as wide as the documents disagree, a point where every document agrees."""
    rows = [
        _row("inside", 0, "a", 1.0),
        _row("recall", 0, "a", 0.0),
        _row("inside", 0, "b", 1.0),
        _row("recall", 0, "b", 1.0),
        _row("inside", 1, "a", 0.0),
        _row("recall", 1, "a", 1.0),
        _row("inside", 1, "b", 1.0),
        _row("recall", 1, "b", 1.0),
        _row("inside", 2, "a", 0.5),
        _row("recall", 2, "a", 0.5),
    ]
    text = recall_real.paired_lines(rows, [8192])
    assert (
        "8K: 5 questions in 3 documents; recall answered 1 better than inside, 1 worse, 3 the same"
        in text
    )
    low, high = (float(x) for x in text.split("resamples: ")[1].rstrip(".\n").split("-"))
    assert low < 1.0 < high  # documents 0 (0.5) and 1 (2.0) pull the ratio either way
    assert text == recall_real.paired_lines(rows, [8192])  # seeded
    same = [r for r in rows if r["case"] == 2] + [
        _row("recall", 2, "b", 1),
        _row("inside", 2, "b", 1),
    ]
    assert "resamples: 1.00-1.00." in recall_real.paired_lines(same, [8192])
    assert recall_real.paired_lines([r for r in rows if r["arm"] == "recall"], [8192]) == ""


def test_runs_are_pooled_into_one_report_without_a_model(
    recall_real: ModuleType, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _run(tmp_path, "a", [_row("inside", 0, "q", 1.0), _row("recall", 0, "q", 0.0)])
    b = _run(tmp_path, "b", [_row("inside", 1, "q", 1.0), _row("recall", 1, "q", 1.0)])
    out = tmp_path / "out"
    assert recall_real.main(["--pool", str(a), str(b / "recall_real.json"), "--out", str(out)]) == 0
    md = (out / "recall_real.md").read_text()
    assert "| 8K | all | 100% (2) | 50% (2) | 0.50 |" in md
    assert "2 questions in 2 documents; recall answered 0 better than inside, 1 worse" in md
    assert f"- `{a / 'recall_real.json'}`: document 0, 2 rows" in md
    # the pooled output pools again, and still counts a document once
    again = tmp_path / "again"
    c = _run(tmp_path, "c", [_row("inside", 2, "q", 0.0), _row("recall", 2, "q", 1.0)])
    assert recall_real.main(["--pool", str(out), str(c), "--out", str(again)]) == 0
    assert "| 8K | all | 67% (3) | 67% (3) | 1.00 |" in (again / "recall_real.md").read_text()
    capsys.readouterr()


@pytest.mark.parametrize(
    ("second", "message"),
    [
        (
            "same",
            "both hold single document 0 at 8192 tokens, arm inside (a document counted twice)",
        ),
        ("model", "model 'qwen2.5-coder-0.5b' differs from"),
        ("broken", "not a saved recall_real run"),
        ("row", "row 0 lacks question, score"),
    ],
)
def test_runs_that_are_not_one_sample_are_refused_naming_why(
    recall_real: ModuleType,
    tmp_path,
    capsys: pytest.CaptureFixture[str],
    second: str,
    message: str,
) -> None:
    first = _run(tmp_path, "first", [_row("inside", 0, "q", 1.0)])
    if second == "same":
        other = _run(tmp_path, "other", [_row("inside", 0, "q", 0.0)])
    elif second == "model":
        other = _run(tmp_path, "other", [_row("inside", 1, "q", 1.0)], "qwen2.5-coder-0.5b")
    elif second == "row":
        other = _run(
            tmp_path, "other", [{"arm": "inside", "length": 8192, "family": "single", "case": 3}]
        )
    else:
        other = tmp_path / "other.json"
        other.write_text("{not json")
    with pytest.raises(SystemExit) as exit_:
        recall_real.main(["--pool", str(first), str(other), "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written


def _without(doc: str, texts: list[str]) -> str:
    for text in texts:
        doc = doc.replace(text, "")
    return doc


def test_the_near_document_is_the_long_one_with_its_facts_inside_the_window(
    recall_real: ModuleType,
) -> None:
    """Same paragraphs and facts as the long document; every fact within the last
    ``window - 512`` words, where the window still holds it when the questions come."""
    words = [f"Paragraph {i} " + "word " * 60 for i in range(400)]
    count = lambda text: len(text.split())  # noqa: E731
    window = 1024
    for family in ("single", "multikey", "multivalue"):
        case, long_doc, _, near = recall_real.build(family, "test", 8192, 3, window, count, words)
        assert near != long_doc
        texts = [" " + n.text for n in case.needles]
        assert _without(near, texts) == _without(long_doc, texts)  # the same haystack
        total = count(near)
        for needle in case.needles:
            assert near.count(needle.text) == 1 and long_doc.count(needle.text) == 1
            before_near = count(near[: near.index(needle.text)])
            before_long = count(long_doc[: long_doc.index(needle.text)])
            assert total - before_near <= window - 384, family  # inside the window
            assert total - before_long > window, family  # outside it in the long document


def test_read_heads_are_parsed_or_refused_naming_the_form(recall_real: ModuleType) -> None:
    assert recall_real.read_heads("17.3,18.6, 23.2") == ((17, 3), (18, 6), (23, 2))
    assert recall_real.read_heads("all") == ()
    for bad in ("17", "17.x", "a.3", "17.3,", "-1.2"):
        with pytest.raises(ValueError, match=r"--read-heads takes layer\.head pairs"):
            recall_real.read_heads(bad)
