"""``agentcore.testing``: each helper does what its docstring says.

The tiny engine generates and is the same model for the same seed; the re-exported
``FakeBackend`` is the backends' own; ``serve_in_thread`` answers real HTTP requests on loopback
and stops; the model-load switch refuses ``Engine.load`` and ``load_model`` (and this suite keeps
it on outside ``slow`` tests); ``block_network`` refuses remote hosts and puts ``socket`` back;
the package imports without torch and no library module imports it; and the examples of ``docs/testing.md`` pass as a suite.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from agentcore import backends, testing
from agentcore.core import loader
from agentcore.core.codec import ByteCodec
from agentcore.core.engine import Engine
from agentcore.core.params import SamplingParams
from tests.test_layers import PACKAGE, import_edges, unit_of

Send = Callable[[dict[str, Any]], Awaitable[None]]


class TestTinyModel:
    def test_the_tiny_engine_generates(self) -> None:
        engine = testing.tiny_engine()
        session = engine.new_session()
        session.append_text("hello")
        result = session.generate(SamplingParams.greedy(8, stop_token_ids=()))
        assert len(result.token_ids) == 8 and result.finish_reason == "length"
        assert engine.info().vocab == ByteCodec().vocab_size == 258
        assert engine.info().n_layers == testing.TINY_LLAMA_CONFIG["num_hidden_layers"]

    def test_one_seed_one_model(self) -> None:
        a, b, c = testing.tiny_llama(1), testing.tiny_llama(1), testing.tiny_llama(2)
        weight = "model.embed_tokens.weight"
        assert torch.equal(a.state_dict()[weight], b.state_dict()[weight])
        assert not torch.equal(a.state_dict()[weight], c.state_dict()[weight])

    def test_overrides_change_the_shape(self) -> None:
        engine = testing.tiny_engine(num_key_value_heads=4, num_hidden_layers=3)
        assert (engine.info().n_kv_heads, engine.info().n_layers) == (4, 3)

    def test_the_vocabulary_follows_the_codec(self) -> None:
        class WideCodec(ByteCodec):
            @property
            def vocab_size(self) -> int:
                return 300

        assert testing.tiny_engine(codec=WideCodec()).info().vocab == 300

    def test_a_given_model_is_wrapped_not_rebuilt(self) -> None:
        hf = testing.tiny_llama()
        engine = testing.tiny_engine(model=hf)
        ids = torch.tensor([[72, 105]])
        with torch.no_grad():
            expected = hf(ids).logits[0, -1]
        session = engine.new_session()
        session.append_tokens([72, 105])
        assert session.next_logits is not None
        torch.testing.assert_close(session.next_logits.float(), expected, atol=1e-4, rtol=1e-4)
        with pytest.raises(TypeError, match="no config overrides"):
            testing.tiny_engine(model=hf, hidden_size=32)


class TestFakeBackend:
    def test_it_is_the_backends_fake(self) -> None:
        assert testing.FakeBackend is backends.FakeBackend
        assert testing.Reply is backends.Reply

    def test_it_plays_its_script(self) -> None:
        fake = testing.FakeBackend(["one"])
        assert fake.chat([{"role": "user", "content": "hi"}]).text == "one"
        with pytest.raises(testing.ScriptExhaustedError):
            fake.chat([{"role": "user", "content": "again"}])


async def _hello_app(scope: dict[str, Any], receive: Any, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": f"hello {scope['path']}".encode()})


async def _broken_startup(scope: dict[str, Any], receive: Any, send: Send) -> None:
    assert scope["type"] == "lifespan"
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "no database"})


class TestServeInThread:
    def test_an_asgi_app_answers_over_http_then_stops(self) -> None:
        with testing.serve_in_thread(_hello_app) as url:
            assert url.startswith("http://127.0.0.1:")
            assert httpx.get(f"{url}/there").text == "hello /there"
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/there")

    def test_a_backend_is_served_as_the_openai_api(self) -> None:
        fake = testing.FakeBackend(["scripted answer"], name="fake-model")
        with testing.serve_in_thread(fake) as url:
            models = httpx.get(f"{url}/v1/models").json()
            reply = httpx.post(
                f"{url}/v1/chat/completions",
                json={"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]},
            )
        assert [m["id"] for m in models["data"]] == ["fake-model"]
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"] == "scripted answer"
        assert fake.requests[0].messages[-1]["content"] == "hi"

    def test_the_tiny_engine_is_served(self, tiny_engine: Engine, tmp_path: Path) -> None:
        backend = backends.LocalBackend(tiny_engine, sessions_dir=tmp_path)
        with testing.serve_in_thread(backend) as url:
            reply = httpx.post(
                f"{url}/v1/chat/completions",
                json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
                timeout=60,
            )
        assert reply.status_code == 200, reply.text
        assert reply.json()["usage"]["completion_tokens"] <= 4

    def test_a_failed_startup_is_an_error(self) -> None:
        with (
            pytest.raises(RuntimeError, match="failed to start"),
            testing.serve_in_thread(_broken_startup, timeout=10),
        ):
            pass  # pragma: no cover

    def test_config_is_for_backends(self) -> None:
        from agentcore.server import ServerConfig

        with (
            pytest.raises(TypeError, match="not an ASGI app"),
            testing.serve_in_thread(_hello_app, config=ServerConfig.small()),
        ):
            pass  # pragma: no cover


class TestModelLoadSwitch:
    def test_this_suite_forbids_loads_outside_slow_tests(self) -> None:
        assert not testing.model_loads_allowed()

    def test_engine_load_is_refused(self) -> None:
        with pytest.raises(testing.ModelLoadForbiddenError) as refused:
            Engine.load()
        message = str(refused.value)
        assert "Engine.load" in message and "the default model" in message
        assert "tiny_engine()" in message and "allow_model_loads" in message
        assert "marked `slow`" in message  # this suite's hint

    def test_load_model_is_refused_however_it_was_imported(self) -> None:
        from agentcore.core import load_model

        for load in (loader.load_model, load_model):
            with pytest.raises(testing.ModelLoadForbiddenError, match="'smollm2-135m'"):
                load("smollm2-135m")

    def test_a_local_backend_load_is_refused(self) -> None:
        with pytest.raises(testing.ModelLoadForbiddenError):
            backends.LocalBackend.load("smollm2-135m")

    def test_allow_model_loads_lets_a_load_through_and_restores(self, tmp_path: Path) -> None:
        missing = tmp_path / "missing.gguf"
        with testing.allow_model_loads():
            assert testing.model_loads_allowed()
            # past the switch: the loader itself answers (no such file), nothing is loaded
            with pytest.raises(loader.ModelNotFoundError):
                Engine.load(missing)
            with testing.allow_model_loads(False), pytest.raises(testing.ModelLoadForbiddenError):
                Engine.load(missing)
            assert testing.model_loads_allowed()
        assert not testing.model_loads_allowed()

    def test_the_guard_keeps_the_loaders_documented(self) -> None:
        assert Engine.load.__doc__ and "Llama-family" in Engine.load.__doc__
        assert loader.load_model.__name__ == "load_model"


class TestBlockNetwork:
    def test_remote_hosts_are_refused(self) -> None:
        with testing.block_network():
            with pytest.raises(testing.NetworkBlockedError, match=r"10\.255\.255\.1"):
                socket.create_connection(("10.255.255.1", 80), timeout=1)
            with pytest.raises(testing.NetworkBlockedError, match=r"example\.com"):
                socket.getaddrinfo("example.com", 443)
            with socket.socket() as sock:
                assert sock.connect_ex(("127.0.0.1", 9)) != 0  # loopback: refused by nobody

    def test_socket_is_put_back(self) -> None:
        before = (socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo)
        with testing.block_network():
            assert socket.getaddrinfo is not before[2]
        assert (socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo) == before


_WITHOUT_TORCH = """
import sys

BLOCKED = ("torch", "transformers", "fastapi")

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, Blocked())
from agentcore import testing

assert testing.FakeBackend(["hi"]).chat([{"role": "user", "content": "x"}]).text == "hi"
with testing.block_network():
    pass
loaded = sorted({n.partition(".")[0] for n in sys.modules} & set(BLOCKED))
assert not loaded, loaded
print("testing torch-free")
"""


def test_the_package_imports_without_torch_or_fastapi() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_TORCH],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0 and "testing torch-free" in done.stdout, done.stderr[-4000:]


def test_no_library_module_imports_it() -> None:
    _, edges = import_edges(PACKAGE)
    inside = "agentcore.testing"
    found = sorted(str(e) for e in edges if unit_of(e.dst) == inside != unit_of(e.src))
    assert not found, "agentcore.testing is for tests, benchmarks and users:\n" + "\n".join(found)


DOC = Path(__file__).resolve().parents[1] / "docs" / "testing.md"


def test_the_docs_examples_pass_as_a_suite(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    conftest = [b for b in blocks if "def _no_network" in b]
    tests = [b for b in blocks if "def test_" in b]
    assert len(conftest) == 1 and len(tests) == 3
    (tmp_path / "conftest.py").write_text(conftest[0])
    for i, block in enumerate(tests):
        (tmp_path / f"test_doc_{i}.py").write_text(block)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert done.returncode == 0 and "3 passed" in done.stdout, done.stdout[-4000:]
