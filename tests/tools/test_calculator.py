"""The calculator: arithmetic right, everything else refused, no way to run code."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentcore.tools.builtin import CalculatorError, calculator_tool, evaluate


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("2 * (3 + 4) ** 2 / sqrt(16)", 24.5),
        ("-2 ** 2", -4),
        ("2 ^ 10", 1024),
        ("7 // 2 + 7 % 2", 4),
        ("round(pi, 3)", 3.142),
        ("max(1, 5, 3) - min(4, 2)", 3),
        ("factorial(5)", 120),
        ("log(e ** 2)", 2.0),
        ("hypot(3, 4)", 5.0),
        ("1e3 + .5", 1000.5),
    ],
)
def test_arithmetic(expression: str, expected: float) -> None:
    assert evaluate(expression) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os')", "unknown function '__import__'"),
        ("__import__('os').system('echo hi')", "Call is not allowed"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("(1).__class__", "Attribute is not allowed"),
        ("[1, 2][0]", "Subscript is not allowed"),
        ("[1, 2]", "List is not allowed"),
        ("lambda: 1", "Lambda is not allowed"),
        ("x + 1", "unknown name 'x'"),
        ("'a' * 3", "only numbers are allowed"),
        ("True + 1", "only numbers are allowed"),
        ("1 if 2 else 3", "IfExp is not allowed"),
        ("1 < 2", "Compare is not allowed"),
        ("sqrt(x=4)", "unknown function 'sqrt'"),
        ("1 / 0", "division by zero"),
        ("sqrt(-1)", "math domain error"),
        ("(-8) ** 0.5", "is not a real number"),
        ("2 ** 100000", "too large"),
        ("9 ** 9 ** 9", "too large"),
        ("10 ** 1000 * 10 ** 1000 * 10 ** 1000 * 10 ** 1000", "too large"),
        ("factorial(100000)", "factorial needs an integer between 0 and 1000"),
        ("exp(1000)", "math range error"),
        ("1 +", "not a valid expression"),
        ("1" * 600, "longer than 500 characters"),
        ("+".join(["1"] * 150), "more than 200 parts"),
    ],
)
def test_refusals_say_why(expression: str, message: str) -> None:
    with pytest.raises(CalculatorError, match=message):
        evaluate(expression)


def test_the_tool() -> None:
    calculate = calculator_tool()
    assert calculate.name == "calculate"
    assert calculate.run_sync({"expression": "6 * 7"}).value == 42
    failed = calculate.run_sync({"expression": "import os"})
    assert not failed.ok and failed.error_kind == "execution"
    assert failed.content.startswith("Error: tool 'calculate' failed: not a valid expression")


_ints = st.integers(min_value=-1000, max_value=1000)


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> tuple[str, int]:
    """An integer expression as text, with its value computed from the tree (not by eval)."""
    if depth > 3 or draw(st.booleans()):
        value = draw(_ints)
        return (f"({value})", value)
    left_text, left = draw(expressions(depth + 1))
    right_text, right = draw(expressions(depth + 1))
    op = draw(st.sampled_from(["+", "-", "*"]))
    value = left + right if op == "+" else left - right if op == "-" else left * right
    return (f"({left_text} {op} {right_text})", value)


@settings(max_examples=200, deadline=None)
@given(expressions())
def test_integer_arithmetic_matches_the_tree(case: tuple[str, int]) -> None:
    text, value = case
    assert evaluate(text) == value


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=-1e6, max_value=1e6), st.floats(min_value=0.5, max_value=1e3))
def test_division_and_functions(a: float, b: float) -> None:
    assert evaluate(f"({a!r}) / ({b!r})") == pytest.approx(a / b)
    assert evaluate(f"sqrt({b!r})") == pytest.approx(math.sqrt(b))
