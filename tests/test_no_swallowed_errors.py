"""No error is swallowed: every broad handler in the packages re-raises, logs the traceback, or
hands the exception object itself on (to the request, task or future that reports it).

Read from the source with ``ast``: ``contextlib.suppress(Exception)`` (or ``BaseException``)
fails outright; an ``except Exception`` / ``except BaseException`` / bare ``except`` whose body
neither raises, nor logs with the traceback (``log.exception(...)`` or any log call with
``exc_info=``), nor passes the caught exception on as a value (an argument, an assignment)
fails, so turning an error into a string and going on is caught. A module with such a handler
that handles the error itself (neither re-raises nor hands it on) has a module-level ``log = logging.getLogger(...)``. ``ALLOWED`` lists the genuine exceptions,
each with its reason.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agentcore", "tools", "memory", "planners", "apps")
# agentcore/tools -> ../tools (and the others) are symlinks: each file is read once
LINKED = {"tools", "memory", "planners", "apps"}
BROAD = {"Exception", "BaseException"}
LOG_METHODS = {"debug", "info", "warning", "error", "critical", "exception", "log"}
# calls that only look at the exception (its text, its type): they do not hand it on
LOOKS = {"str", "repr", "format", "type", "isinstance", "getattr", "hasattr", "len"}

# (file, enclosing function): why the handler may do neither
ALLOWED: dict[tuple[str, str], str] = {}


def source_files() -> Iterator[Path]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if rel.parts[0] == "agentcore" and len(rel.parts) > 2 and rel.parts[1] in LINKED:
                continue
            yield path


def _names(node: ast.expr | None) -> set[str]:
    if node is None:
        return {"<bare>"}
    if isinstance(node, ast.Tuple):
        return {name for element in node.elts for name in _names(element)}
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Attribute):
        return {node.attr}
    return set()


def _handed_on(body: list[ast.stmt], name: str | None) -> bool:
    """The caught exception is passed on whole: a call argument or an assigned value."""
    if name is None:
        return False
    for node in ast.walk(ast.Module(body=body, type_ignores=[])):
        values: list[ast.expr] = []
        if isinstance(node, ast.Call):
            looks = isinstance(node.func, ast.Name) and node.func.id in LOOKS
            if not looks:
                values = [*node.args, *(k.value for k in node.keywords)]
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            value = node.value
            values = list(value.elts) if isinstance(value, ast.Tuple) else [value]
        if any(isinstance(v, ast.Name) and v.id == name for v in values):
            return True
    return False


def _raises(handler: ast.ExceptHandler) -> bool:
    return any(isinstance(n, ast.Raise) for n in ast.walk(ast.Module(handler.body, [])))


def _reports(handler: ast.ExceptHandler) -> bool:
    for node in ast.walk(ast.Module(body=handler.body, type_ignores=[])):
        if isinstance(node, ast.Raise):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method = node.func.attr
            if method == "exception":
                return True
            if method in LOG_METHODS and any(k.arg == "exc_info" for k in node.keywords):
                return True
    return _handed_on(handler.body, handler.name)


def _is_broad_suppress(node: ast.expr) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return called == "suppress" and any(_names(arg) & BROAD for arg in node.args)


def _has_module_logger(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Attribute) and func.attr == "getLogger":
                return True
    return False


def findings() -> tuple[list[str], list[str], set[tuple[str, str]]]:
    """(swallowing handlers, modules with a broad handler but no logger, allow-list hits)."""
    swallowed: list[str] = []
    loggerless: list[str] = []
    used: set[tuple[str, str]] = set()
    for path in source_files():
        rel = str(path.relative_to(ROOT))
        tree = ast.parse(path.read_text(), filename=rel)
        broad = False
        for function, node in _walk_with_function(tree):
            if isinstance(node, ast.ExceptHandler) and _names(node.type) & (BROAD | {"<bare>"}):
                if not _raises(node) and not _handed_on(node.body, node.name):
                    broad = True  # handled here: the module needs a logger to report it
                if not _reports(node):
                    key = (rel, function)
                    if key in ALLOWED:
                        used.add(key)
                        continue
                    swallowed.append(
                        f"{rel}:{node.lineno} ({function}): a broad except that "
                        "neither raises, logs the traceback, nor hands it on"
                    )
            if isinstance(node, ast.With | ast.AsyncWith):
                for item in node.items:
                    if _is_broad_suppress(item.context_expr):
                        swallowed.append(f"{rel}:{node.lineno} ({function}): suppress(Exception)")
        if broad and not _has_module_logger(tree):
            loggerless.append(rel)
    return swallowed, loggerless, used


def _walk_with_function(tree: ast.Module) -> Iterator[tuple[str, ast.AST]]:
    def visit(node: ast.AST, function: str) -> Iterator[tuple[str, ast.AST]]:
        for child in ast.iter_child_nodes(node):
            name = function
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{function}.{child.name}" if function else child.name
            yield name, child
            yield from visit(child, name)

    yield from visit(tree, "")


def test_no_broad_handler_swallows_an_error() -> None:
    swallowed, _, _ = findings()
    assert not swallowed, "\n".join(swallowed)


def test_modules_with_broad_handlers_have_a_logger() -> None:
    _, loggerless, _ = findings()
    assert not loggerless, "add `log = logging.getLogger(__name__)` to: " + ", ".join(loggerless)


def test_the_allow_list_has_no_stale_entries() -> None:
    _, _, used = findings()
    assert set(ALLOWED) <= used, f"stale: {set(ALLOWED) - used}"


@pytest.mark.parametrize(
    ("code", "swallows"),
    [
        ("try:\n    f()\nexcept Exception:\n    pass\n", True),
        ("try:\n    f()\nexcept Exception as exc:\n    msg = f'{exc}'\n", True),
        ("try:\n    f()\nexcept Exception as exc:\n    show(str(exc))\n", True),
        ("try:\n    f()\nexcept Exception as exc:\n    show(f'{type(exc).__name__}')\n", True),
        ("try:\n    f()\nexcept BaseException:\n    x = 1\n", True),
        ("try:\n    f()\nexcept:\n    pass\n", True),
        ("try:\n    f()\nexcept Exception:\n    log.exception('f failed')\n", False),
        ("try:\n    f()\nexcept Exception:\n    log.warning('f', exc_info=True)\n", False),
        ("try:\n    f()\nexcept Exception:\n    cleanup()\n    raise\n", False),
        ("try:\n    f()\nexcept Exception as exc:\n    return failed(exc)\n", False),
        ("try:\n    f()\nexcept BaseException as exc:\n    r, e = None, exc\n", False),
        ("try:\n    f()\nexcept ValueError:\n    pass\n", False),  # narrow: allowed
    ],
)
def test_the_check_itself(code: str, swallows: bool) -> None:
    body = "def g():\n" + "".join(f"    {line}\n" for line in code.splitlines())
    tree = ast.parse(body)
    handlers = [n for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler)]
    broad = [h for h in handlers if _names(h.type) & (BROAD | {"<bare>"})]
    assert bool([h for h in broad if not _reports(h)]) is swallows


def test_suppress_exception_is_found() -> None:
    tree = ast.parse("with contextlib.suppress(Exception):\n    f()\n")
    (node,) = [n for n in ast.walk(tree) if isinstance(n, ast.With)]
    assert _is_broad_suppress(node.items[0].context_expr)
    tree = ast.parse("with contextlib.suppress(FileNotFoundError):\n    f()\n")
    (node,) = [n for n in ast.walk(tree) if isinstance(n, ast.With)]
    assert not _is_broad_suppress(node.items[0].context_expr)
