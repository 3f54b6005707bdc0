"""Arithmetic for the agent: evaluate an expression safely, without ``eval``.

Owns :func:`evaluate` (parse with :mod:`ast`, walk a whitelist of nodes: numbers, + - * / //
% **, unary +/-, parentheses, named constants and a fixed set of math functions) and the
``calculate`` tool. Guards against expressions that would take forever or eat memory (huge
powers, huge integers, huge rounding digits, deep nesting). Never executes names, attributes, subscripts, lambdas or
anything else that is not arithmetic.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field

from agentcore.tools._errors import ToolExecutionError
from agentcore.tools._meta import SideEffect, ToolLimits
from agentcore.tools._tool import Tool

__all__ = ["CalculatorError", "calculator_tool", "evaluate"]

MAX_EXPRESSION_CHARS = 500
MAX_NODES = 200
MAX_INT_BITS = 4_096  # results beyond ~1e1233 are refused
MAX_EXPONENT = 10_000
MAX_FACTORIAL = 1_000

Number = int | float


class CalculatorError(ToolExecutionError):
    """The expression is not arithmetic this calculator accepts, or cannot be computed."""

    def __init__(self, message: str) -> None:
        super().__init__("calculate", message)


_CONSTANTS: dict[str, Number] = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf}


def _factorial(x: Number) -> int:
    if not float(x).is_integer() or x < 0 or x > MAX_FACTORIAL:
        raise CalculatorError(f"factorial needs an integer between 0 and {MAX_FACTORIAL}, got {x}")
    return math.factorial(int(x))


MAX_ROUND_DIGITS = 400


def _round(x: Number, ndigits: Number | None = None) -> Number:
    if ndigits is None:
        return round(x)
    if not isinstance(ndigits, int) or abs(ndigits) > MAX_ROUND_DIGITS:
        raise CalculatorError(
            f"round: ndigits must be an integer between -{MAX_ROUND_DIGITS} and "
            f"{MAX_ROUND_DIGITS}, got {ndigits}"
        )
    return round(x, ndigits)


_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "abs": abs,
    "round": _round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log2": math.log2,
    "log10": math.log10,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "atan2": math.atan2,
    "sinh": math.sinh,
    "cosh": math.cosh,
    "tanh": math.tanh,
    "degrees": math.degrees,
    "radians": math.radians,
    "floor": math.floor,
    "ceil": math.ceil,
    "hypot": math.hypot,
    "factorial": _factorial,
    "gcd": math.gcd,
}

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def _check_size(value: Number) -> Number:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculatorError(f"the result is too large (more than {MAX_INT_BITS} bits)")
    return value


def _check_product(left: int, right: int) -> None:
    if left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
        raise CalculatorError(f"the result is too large (more than {MAX_INT_BITS} bits)")


def _power(base: Number, exponent: Number) -> Number:
    if abs(exponent) > MAX_EXPONENT:
        raise CalculatorError(f"exponent {exponent} is too large (limit {MAX_EXPONENT})")
    exact = isinstance(base, int) and isinstance(exponent, int) and exponent > 0
    if exact and max(int(base).bit_length(), 1) * exponent > MAX_INT_BITS * 2:
        raise CalculatorError(f"{base} ** {exponent} is too large to compute")
    result = operator.pow(base, exponent)
    if isinstance(result, complex):
        raise CalculatorError(f"{base} ** {exponent} is not a real number")
    return result


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise CalculatorError(f"only numbers are allowed, got {node.value!r}")
        return node.value
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        known = ", ".join(_CONSTANTS)
        raise CalculatorError(f"unknown name {node.id!r}; known constants: {known}")
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            return _check_size(_power(left, right))
        if isinstance(node.op, ast.Mult) and isinstance(left, int) and isinstance(right, int):
            _check_product(left, right)
        try:
            return _check_size(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise CalculatorError("division by zero") from None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        if name not in _FUNCTIONS or node.keywords:
            known = ", ".join(_FUNCTIONS)
            raise CalculatorError(f"unknown function {name!r}; known functions: {known}")
        args = [_eval(a) for a in node.args]
        try:
            return _check_size(_FUNCTIONS[name](*args))
        except (ValueError, TypeError, OverflowError) as exc:
            raise CalculatorError(f"{name}{tuple(args)}: {exc}") from None
    raise CalculatorError(
        f"{type(node).__name__} is not allowed; use numbers, + - * / // % **, parentheses, "
        "constants and math functions"
    )


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression such as ``"2 * (3 + 4) ** 2 / sqrt(16)"``."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip().replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"not a valid expression: {exc.msg} (column {exc.offset})") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise CalculatorError(f"the expression has more than {MAX_NODES} parts")
    try:
        return _eval(tree)
    except OverflowError:
        raise CalculatorError("the result overflows a floating-point number") from None
    except RecursionError:
        raise CalculatorError("the expression is nested too deeply") from None


def calculator_tool(*, limits: ToolLimits = ToolLimits.FAST) -> Tool:
    """The ``calculate`` tool (pure: side effects ``none``)."""

    def calculate(
        expression: Annotated[
            str,
            Field(
                min_length=1,
                max_length=MAX_EXPRESSION_CHARS,
                description="Arithmetic such as 2 * (3 + 4) ** 2 / sqrt(16). Supports + - * / "
                "// % ** ^, parentheses, pi, e and functions like sqrt, log, sin, round.",
            ),
        ],
    ) -> Number:
        """Evaluate an arithmetic expression and return the number."""
        return evaluate(expression)

    return Tool.from_function(calculate, side_effects=SideEffect.NONE, limits=limits)
