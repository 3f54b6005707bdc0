"""The import graph: layers you can read off the imports, no cycles, no cycle-dodging.

Every module of the installed ``agentcore`` tree (``tools/``, ``memory/``, ``planners/`` and
``apps/`` included, through their links) is parsed with :mod:`ast`, never imported. Each import
of an ``agentcore`` module is an edge, of one of three kinds:

- ``top``: runs when the module is imported (module level, class bodies, ``try`` blocks);
- ``typing``: under ``if TYPE_CHECKING:`` (never runs, but still a dependency of the API);
- ``lazy``: inside a function (runs on the first call), including ``importlib.import_module``
  with a literal ``"agentcore..."`` name.

Importing ``a.b.c`` also runs ``a.b``'s ``__init__``: those implied edges are added too.

The rules (the layer order is written down in ``docs/architecture.md``):

1. no cycle among the modules over ``top`` and ``lazy`` edges: a function-level import that
   closes a cycle is still a cycle;
2. no cycle over all three kinds either, except the ones listed in ``TYPE_ONLY_CYCLES``;
3. every edge points down ``LAYERS`` or stays inside one unit (a package, or a module of the
   foundation); two units of one layer do not import each other;
4. every ``lazy`` edge is listed in ``ALLOWED_LAZY`` with its reason, and every entry there
   still exists.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "agentcore"

# Lowest first. A module belongs to the unit of its longest matching prefix; a unit may import
# any unit of a lower layer, and itself; nothing else.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # stdlib/httpx only: versions, atomic files, data paths, extras hints, the HTTP client, the
    # compute thread (torch loads inside it, on first model work)
    (
        "foundation",
        (
            "agentcore._version",
            "agentcore._atomic",
            "agentcore._compute",
            "agentcore._extras",
            "agentcore.paths",
            "agentcore.client",
        ),
    ),
    # OpenTelemetry spans (opentelemetry-api) that every layer above may emit
    ("tracing", ("agentcore._tracing",)),
    # three peers that know nothing of each other: the model core (torch), task graphs
    # (networkx), long-term and working memory (chromadb)
    ("core, planners, memory", ("agentcore.core", "agentcore.planners", "agentcore.memory")),
    # tool definitions, schemas, call formats, built-in tools (the plan tool uses planners)
    ("tools", ("agentcore.tools",)),
    # the model backend protocol and its local, HTTP and fake implementations
    ("backends", ("agentcore.backends",)),
    ("agent", ("agentcore.agent",)),
    # building an Engine from command-line flags (the server and the CLI share it)
    ("model arguments", ("agentcore._model_args",)),
    # programs on the layers below: the model server, memory-adapter training
    ("services", ("agentcore.server", "agentcore.train")),
    # helpers for tests, benchmarks and users' suites: fakes, a tiny model, an in-thread
    # server; no library code imports it (tests/test_testing.py checks)
    ("testing", ("agentcore.testing",)),
    # ``from agentcore import Agent``: the package facade
    ("facade", ("agentcore",)),
    # programs for people: the terminal assistant, the simulation runner, the line chat
    (
        "apps",
        ("agentcore.apps", "agentcore.apps.assistant", "agentcore.apps.sim", "agentcore.chat_cli"),
    ),
    # the ``agentcore`` command: the composition root above every program; nothing imports it
    ("cli", ("agentcore.cli",)),
)

_TORCH = "torch: the model core loads only when a local model is used"
_TORCH_FREE = "torch: keeps the torch-free parts (HTTP backend, remote agent) free of it"
_EXTRA = "an optional extra: the subcommand's packages load only when it runs"

# Function-level imports that stay, and why. Never to dodge a cycle: rule 1 fails on those.
ALLOWED_LAZY: dict[tuple[str, str], str] = {
    # facades that resolve names on first use (their TYPE_CHECKING imports name the same edges)
    ("agentcore", "agentcore.agent"): "the facade: `import agentcore.x` must not load the agent",
    ("agentcore.backends", "agentcore.backends._local"): _TORCH_FREE + " (LocalBackend)",
    # the local model and what only it needs
    ("agentcore.agent._agent", "agentcore.backends"): _TORCH_FREE + " (model='agent')",
    ("agentcore.backends._summarizer", "agentcore.backends._local"): _TORCH_FREE
    + " (the default summariser)",
    ("agentcore.backends._local", "agentcore.memory"): (
        "chromadb and the embedding model load on the first tool selection, not with the backend"
    ),
    ("agentcore._model_args", "agentcore.core.engine"): _TORCH + " (flags parse without it)",
    ("agentcore.train", "agentcore.train._memory"): _TORCH_FREE + " (`agentcore --help`)",
    ("agentcore.train._cli", "agentcore.core.engine"): _TORCH + " (training runs)",
    ("agentcore.train._cli", "agentcore.core.loader"): _TORCH + " (training runs)",
    ("agentcore.train._cli", "agentcore.train._memory"): _TORCH + " (training runs)",
    # the server loads its model and FastAPI app when it starts, not when its flags are built
    ("agentcore.server._main", "agentcore.backends._local"): _TORCH + " (the server starts)",
    ("agentcore.server._main", "agentcore.core.cache"): _TORCH + " (the server starts)",
    ("agentcore.server._main", "agentcore.core.loader"): _TORCH + " (the server starts)",
    ("agentcore.server._main", "agentcore.server._app"): "FastAPI ([server] extra) loads "
    "when the server starts",
    # the CLI runs each program when its subcommand is chosen
    ("agentcore.cli", "agentcore.apps.assistant"): _EXTRA + " (Textual, [tui])",
    ("agentcore.cli", "agentcore.apps.sim"): _EXTRA + " (PyYAML, [sim])",
    ("agentcore.cli", "agentcore.server"): _EXTRA + " (FastAPI, uvicorn, [server])",
    ("agentcore.cli", "agentcore.train._cli"): (
        "as found: agentcore.train loads its torch names on first use, so `train`'s options "
        "could be built at module level (cli.py is being changed by the tracing work)"
    ),
    ("agentcore.cli", "agentcore.chat_cli"): _TORCH + " (the line chat runs the core)",
    # the model-load switch wraps the loaders when it is first set: importing agentcore.testing
    # (FakeBackend, serve_in_thread) stays torch-free
    ("agentcore.testing._loads", "agentcore.core.engine"): _TORCH_FREE + " (the load switch)",
    ("agentcore.testing._loads", "agentcore.core.loader"): _TORCH_FREE + " (the load switch)",
    # the apps: a scripted or remote run never loads torch or Ray
    ("agentcore.apps.sim._backend", "agentcore.backends"): _TORCH_FREE + " (scripted, http)",
    ("agentcore.apps.sim._backend", "agentcore.core.cache"): _TORCH_FREE + " (scripted, http)",
    ("agentcore.apps.sim._backend", "agentcore.core.engine"): _TORCH_FREE + " (scripted, http)",
    ("agentcore.apps.sim._runner", "agentcore.apps.sim._ray"): "Ray, the [ray] extra, only "
    "with --ray",
}

# Cycles that exist only under ``if TYPE_CHECKING:``; each names why it is still here. None
# today: a new one is fixed with a small shared module or a Protocol, not listed.
TYPE_ONLY_CYCLES: dict[frozenset[str], str] = {}


# -- the graph --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    kind: str  # top | typing | lazy
    line: int
    implied: bool = False  # a parent package's __init__, run before the module named

    def __str__(self) -> str:
        how = "implied by" if self.implied else self.kind
        return f"{self.src}:{self.line} -> {self.dst} ({how})"


def modules(root: Path, name: str = "agentcore") -> dict[str, Path]:
    """Every module under ``root`` (links followed), by dotted name."""
    found: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        rel = Path(folder).relative_to(root).parts
        for f in sorted(files):
            if not f.endswith(".py"):
                continue
            parts = [name, *rel] + ([] if f == "__init__.py" else [f[:-3]])
            found[".".join(parts)] = Path(folder) / f
    return found


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, known: set[str], top: str) -> None:
        self.module, self.is_package, self.known, self.top = module, is_package, known, top
        self.in_function = 0
        self.in_typing = 0
        self.found: list[tuple[str, str, int]] = []

    def _kind(self) -> str:
        return "typing" if self.in_typing else "lazy" if self.in_function else "top"

    def _resolve(self, name: str) -> str | None:
        while name and name not in self.known:
            name = name.rpartition(".")[0]
        return name or None

    def _add(self, name: str, line: int) -> None:
        target = self._resolve(name)
        found = (target, self._kind(), line)
        if target is not None and target != self.module and found not in self.found:
            self.found.append(found)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self.in_function += 1
        self.generic_visit(node)
        self.in_function -= 1

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_Lambda = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        typing_only = (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        )
        if not typing_only:
            self.generic_visit(node)
            return
        self.in_typing += 1
        for child in node.body:
            self.visit(child)
        self.in_typing -= 1
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] == self.top:
                self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.module.split(".")
            if not self.is_package:
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            full = ".".join([*base, *([node.module] if node.module else [])])
        else:
            full = node.module or ""
        if full.split(".")[0] != self.top:
            return
        for alias in node.names:
            sub = f"{full}.{alias.name}"
            self._add(sub if sub in self.known else full, node.lineno)

    def visit_Call(self, node: ast.Call) -> None:
        # importlib.import_module("agentcore.x") / __import__("agentcore.x"): an import too
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ("import_module", "__import__") and node.args:
            arg = node.args[0]
            literal = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            if literal and arg.value.split(".")[0] == self.top:
                self._add(arg.value, node.lineno)
        self.generic_visit(node)


def import_edges(root: Path, name: str = "agentcore") -> tuple[set[str], list[Edge]]:
    """The modules under ``root`` and every import between them (see the module docstring)."""
    mods = modules(root, name)
    known = set(mods)
    edges: list[Edge] = []
    for mod, path in mods.items():
        visitor = _Imports(mod, path.name == "__init__.py", known, name)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        own_packages = {mod.rsplit(".", i)[0] for i in range(mod.count(".") + 1)}
        for target, kind, line in visitor.found:
            edges.append(Edge(mod, target, kind, line))
            # importing a.b.c runs a.b first (the root package, every module's, excepted)
            parent = target.rpartition(".")[0]
            while parent.count("."):
                implied = Edge(mod, parent, kind, line, implied=True)
                if parent not in own_packages and parent in known and implied not in edges:
                    edges.append(implied)
                parent = parent.rpartition(".")[0]
    return known, edges


def cycles(edges: Iterable[Edge], kinds: set[str]) -> list[set[str]]:
    graph = nx.DiGraph()
    graph.add_edges_from((e.src, e.dst) for e in edges if e.kind in kinds)
    return [c for c in nx.strongly_connected_components(graph) if len(c) > 1]


def unit_of(module: str, layers: tuple[tuple[str, tuple[str, ...]], ...] = LAYERS) -> str:
    best = ""
    for _, prefixes in layers:
        for p in prefixes:
            # the root package is the facade alone: a new top-level module needs its own entry
            inside = module == p or ("." in p and module.startswith(p + "."))
            if inside and len(p) > len(best):
                best = p
    if not best:
        raise LookupError(f"{module} is in no layer: add its package to LAYERS")
    return best


def layer_of(module: str, layers: tuple[tuple[str, tuple[str, ...]], ...] = LAYERS) -> int:
    unit = unit_of(module, layers)
    return next(i for i, (_, prefixes) in enumerate(layers) if unit in prefixes)


def upward(
    edges: Iterable[Edge], layers: tuple[tuple[str, tuple[str, ...]], ...] = LAYERS
) -> Iterator[str]:
    """Every edge that does not point down the layers, explained."""
    for e in edges:
        a, b = unit_of(e.src, layers), unit_of(e.dst, layers)
        if a == b:
            continue
        la, lb = layer_of(e.src, layers), layer_of(e.dst, layers)
        if la < lb:
            yield f"{e}: {layers[la][0]} imports the higher layer {layers[lb][0]}"
        elif la == lb:
            yield f"{e}: {a} and {b} are peers in {layers[la][0]}"


def _cycle_text(cycle: set[str], edges: list[Edge]) -> str:
    inside = sorted(str(e) for e in edges if e.src in cycle and e.dst in cycle)
    return "  " + " <-> ".join(sorted(cycle)) + "\n" + "".join(f"      {e}\n" for e in inside)


@pytest.fixture(scope="module")
def graph() -> tuple[set[str], list[Edge]]:
    return import_edges(PACKAGE)


# -- the rules on the tree --------------------------------------------------------------------


def test_the_walk_sees_every_top_level_folder(graph: tuple[set[str], list[Edge]]) -> None:
    mods, _ = graph
    for package in ("core", "backends", "agent", "server", "tools", "memory", "planners"):
        assert f"agentcore.{package}" in mods
    assert "agentcore.apps.assistant" in mods and "agentcore.apps.sim" in mods
    assert len(mods) > 150


def test_no_import_cycle_at_runtime(graph: tuple[set[str], list[Edge]]) -> None:
    _, edges = graph
    found = cycles(edges, {"top", "lazy"})
    assert not found, "import cycles (function-level imports count):\n" + "".join(
        _cycle_text(c, edges) for c in found
    )


def test_no_import_cycle_in_the_types(graph: tuple[set[str], list[Edge]]) -> None:
    _, edges = graph
    found = cycles(edges, {"top", "lazy", "typing"})
    unexpected = [c for c in found if frozenset(c) not in TYPE_ONLY_CYCLES]
    assert not unexpected, "cycles through TYPE_CHECKING imports:\n" + "".join(
        _cycle_text(c, edges) for c in unexpected
    )
    gone = set(TYPE_ONLY_CYCLES) - {frozenset(c) for c in found}
    assert not gone, f"these cycles are gone: remove them from TYPE_ONLY_CYCLES: {gone}"


def test_every_module_has_a_layer(graph: tuple[set[str], list[Edge]]) -> None:
    mods, _ = graph
    missing = []
    for m in sorted(mods):
        try:
            unit_of(m)
        except LookupError as e:
            missing.append(str(e))
    assert not missing, "\n".join(missing)


def test_imports_point_down_the_layers(graph: tuple[set[str], list[Edge]]) -> None:
    _, edges = graph
    wrong = sorted(set(upward(edges)))
    assert not wrong, "imports against the layer order (LAYERS):\n" + "\n".join(wrong)


def test_every_lazy_import_has_a_reason(graph: tuple[set[str], list[Edge]]) -> None:
    _, edges = graph
    lazy = {(e.src, e.dst): e for e in edges if e.kind == "lazy" and not e.implied}
    unlisted = sorted(str(e) for key, e in lazy.items() if key not in ALLOWED_LAZY)
    assert not unlisted, (
        "function-level imports without a reason: import at module level, or add them to "
        "ALLOWED_LAZY saying why (an optional or heavy dependency; never a cycle):\n"
        + "\n".join(unlisted)
    )
    stale = sorted(f"{a} -> {b}" for a, b in set(ALLOWED_LAZY) - set(lazy))
    assert not stale, "ALLOWED_LAZY lists imports that are gone:\n" + "\n".join(stale)
    assert all(len(reason) > 20 for reason in ALLOWED_LAZY.values())


_BACKEND_CLASSES = {"LocalBackend", "HttpBackend", "FakeBackend"}


def test_the_server_asks_backends_for_capabilities_not_classes() -> None:
    found = []
    for path in sorted((PACKAGE / "server").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: set[str] = set()
            if isinstance(node, ast.ImportFrom):
                names = {a.name for a in node.names}
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "isinstance":
                names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
            for name in sorted(names & _BACKEND_CLASSES):
                found.append(f"{path.name}:{node.lineno} uses {name}")
    # the one place that names a class: `agentcore serve` (_main) builds the local backend
    assert found and all(f.startswith("_main.py:") for f in found), found


def test_the_backends_declare_their_capabilities(tiny_engine: Any, tmp_path: Path) -> None:
    from agentcore.backends import (
        Described,
        FakeBackend,
        HttpBackend,
        LocalBackend,
        Scorer,
        SessionLister,
        SessionStore,
    )

    capabilities = (SessionStore, Scorer, SessionLister, Described)
    local = LocalBackend(tiny_engine, sessions_dir=tmp_path)
    assert all(isinstance(local, c) for c in capabilities)
    for remote in (FakeBackend(["hi"]), HttpBackend("http://127.0.0.1:9")):
        assert [isinstance(remote, c) for c in capabilities] == [False, False, True, False]
    assert local.model_details()["layers"] == tiny_engine.info().n_layers
    assert local.codec is tiny_engine.codec


def test_the_architecture_doc_lists_the_same_layers() -> None:
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = doc.split("## The order, lowest first", 1)[1].split("\n\n", 2)[1]
    rows = [line.split("|")[1].strip() for line in table.splitlines()[2:]]
    assert rows == [name for name, _ in LAYERS]


# -- the checker itself, on a made-up tree -----------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root / "pkg"


def test_the_checker_finds_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "low/__init__.py": "",
            "low/a.py": "from pkg.low.b import B\n",
            "low/b.py": "def f():\n    from pkg.low import a\n",
            "low/c.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.low.d import D\n"
            ),
            "low/d.py": "import pkg.low.c\n",
        },
    )
    _, edges = import_edges(root, "pkg")
    assert cycles(edges, {"top"}) == []
    assert cycles(edges, {"top", "lazy"}) == [{"pkg.low.a", "pkg.low.b"}]
    assert {"pkg.low.c", "pkg.low.d"} in cycles(edges, {"top", "lazy", "typing"})


def test_the_checker_finds_upward_and_peer_imports(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "low/__init__.py": "",
            "low/x.py": "def f():\n    import importlib\n    importlib.import_module('pkg.high.y')\n",
            "mid/__init__.py": "from . import z\n",
            "mid/z.py": "from ..other import w\n",
            "other/__init__.py": "",
            "other/w.py": "from pkg.low.x import f\n",
            "high/__init__.py": "",
            "high/y.py": "from pkg.mid.z import *\n",
        },
    )
    layers = (("low", ("pkg.low",)), ("mid", ("pkg.mid", "pkg.other")), ("high", ("pkg.high",)))
    _, edges = import_edges(root, "pkg")
    wrong = sorted(upward(edges, layers))
    assert wrong == [
        "pkg.low.x:3 -> pkg.high (implied by): low imports the higher layer high",
        "pkg.low.x:3 -> pkg.high.y (lazy): low imports the higher layer high",
        "pkg.mid.z:1 -> pkg.other (implied by): pkg.mid and pkg.other are peers in mid",
        "pkg.mid.z:1 -> pkg.other.w (top): pkg.mid and pkg.other are peers in mid",
    ]
    # pkg.high.y names pkg.mid.z: pkg.mid's __init__ runs first, an implied edge
    assert any(e.dst == "pkg.mid" and e.implied for e in edges if e.src == "pkg.high.y")


# -- the torch-free parts ---------------------------------------------------------------------

# Heavy dependencies that the HTTP backend, the protocol types and an Agent over a remote model
# must not need.
_BLOCKED = ("torch", "transformers", "gguf", "accelerate", "safetensors", "sentence_transformers")

_WITHOUT_TORCH = f"""
import sys
from pathlib import Path

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {_BLOCKED!r}:
            raise ImportError(f"{{name}} is blocked in this test")
        return None

sys.meta_path.insert(0, Blocked())
for name in list(sys.modules):
    assert name.partition(".")[0] not in {_BLOCKED!r}, name

import agentcore.backends, agentcore.agent
from agentcore.agent import Agent
from agentcore.backends import Completion, HttpBackend, ModelBackend
from agentcore.core import SamplingParams

backend = HttpBackend("http://127.0.0.1:9", model="remote")
assert isinstance(backend, ModelBackend)
from agentcore.memory import HashEmbeddingFunction, LongTermMemory

home = Path(sys.argv[1])
memory = LongTermMemory(home / "memory", embedder=HashEmbeddingFunction())
agent = Agent(backend, name="remote-test", home=home, memory=memory, tools=[])
assert agent.backend is backend
assert SamplingParams(temperature=0.0).temperature == 0.0
assert Completion(text="hi").content == "hi"
try:
    from agentcore.backends import LocalBackend
except ImportError as e:
    assert "torch" in str(e), e
else:
    raise AssertionError("LocalBackend imported with torch blocked")
loaded = sorted({{n.partition(".")[0] for n in sys.modules}} & set({_BLOCKED!r}))
assert not loaded, loaded
print("torch-free")
"""


def test_the_torch_free_parts_import_without_torch(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_TORCH, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0 and "torch-free" in done.stdout, done.stderr[-4000:]


# The commands that only print: no model runs, so torch and its kin never load.
_CLI_WITHOUT_TORCH = f"""
import contextlib, io, sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {_BLOCKED!r}:
            raise ImportError(f"{{name}} is blocked in this test")
        return None

sys.meta_path.insert(0, Blocked())
from agentcore.cli import main

for argv, expected in (
    (["--help"], "subcommands:"),
    (["serve", "--help"], "--max-sessions"),
    (["train", "--help"], "--preset"),
    (["models"], "smollm2-135m"),
    (["bench", "list"], "streaming"),
):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse's --help
            rc = e.code
    assert rc == 0 and expected in out.getvalue(), (argv, rc, out.getvalue()[-2000:])
loaded = sorted({{n.partition(".")[0] for n in sys.modules}} & set({_BLOCKED!r}))
assert not loaded, loaded
print("cli torch-free")
"""


def test_the_cli_prints_help_without_torch() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _CLI_WITHOUT_TORCH],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0 and "cli torch-free" in done.stdout, done.stderr[-4000:]
