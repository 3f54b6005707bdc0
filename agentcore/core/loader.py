"""Find and load a Llama-family model: the default GGUF, a local directory or a hub id.

Owns model resolution (what does ``--model X`` mean), the one-time GGUF -> safetensors
conversion cache, and the automatic choice of device and dtype. Never generates text: the
returned :class:`LoadedModel` is handed to the model core (:mod:`agentcore.core.llama`).

Resolution order for a model reference:

1. ``None`` / ``"default"`` or an alias of the registry (:mod:`agentcore.core.models`:
   ``smollm2-135m``, ``qwen2.5-coder-0.5b``): the GGUF file its packages carry (assembled and
   hash-checked once when split). The first load dequantizes it and caches an ordinary
   safetensors directory under the user cache folder; later loads read that directory.
2. A path to a ``.gguf`` file: converted and cached the same way.
3. A local directory holding ``config.json``: loaded as is.
4. ``owner/name`` is taken as a Hugging Face hub id (needs network the first time); any
   other bare word is an unknown alias, and the error lists the known ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from agentcore.core.models import MODELS, ModelCard, ModelNotInstalledError, find_card, gguf_path
from agentcore.core.native import status as native_status
from agentcore.core.quant import (
    int4_available,
    int8_available,
    int8_float32_available,
    packed_float_available,
)
from agentcore.paths import cache_root

__all__ = [
    "DEFAULT_MODEL",
    "LoadedModel",
    "ModelNotFoundError",
    "ModelSource",
    "cache_root",
    "choose_device",
    "choose_dtype",
    "choose_weights",
    "core_cache_path",
    "hf_cache_kwargs",
    "load_model",
    "load_tokenizer",
    "resolve_model",
    "source_directory",
]

DEFAULT_MODEL = "default"
_SUPPORTED_TYPES = {"llama", "mistral", "qwen2", "qwen3", "smollm3"}


class ModelNotFoundError(RuntimeError):
    """The requested model is not installed or not reachable; the message says how to fix it."""


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """Where a model comes from, after resolution."""

    kind: str  # "gguf" | "dir" | "hub"
    location: str  # file path, directory or hub id
    name: str  # short display name
    card: ModelCard | None = None  # the registry entry, when named by an alias


@dataclasses.dataclass
class LoadedModel:
    """A loaded Hugging Face causal LM with its tokenizer and where it lives."""

    hf_model: Any  # transformers PreTrainedModel (LlamaForCausalLM and friends)
    tokenizer: Any  # transformers PreTrainedTokenizerBase
    source: ModelSource
    device: torch.device
    dtype: torch.dtype
    load_seconds: float
    directory: Path | None  # the safetensors directory it was read from, when local


def resolve_model(ref: str | os.PathLike[str] | None) -> ModelSource:
    """Turn a user's model reference into a :class:`ModelSource` (see the module docstring)."""
    text = None if ref is None else str(ref)
    card = find_card(text)
    if card is not None:
        try:
            path = gguf_path(card)
        except ModelNotInstalledError as exc:
            raise ModelNotFoundError(str(exc)) from exc
        return ModelSource("gguf", str(path), card.title, card)
    assert text is not None
    path = Path(text).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"GGUF file {path} does not exist.")
        return ModelSource("gguf", str(path.resolve()), path.stem)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"{path} is a directory without config.json; pass a Hugging Face model directory, "
                "a .gguf file, a hub id, or a model alias (`agentcore models` lists them)."
            )
        return ModelSource("dir", str(path.resolve()), path.name)
    if text.startswith((".", "/", "~")) or (os.sep in text and text.count("/") > 1):
        raise ModelNotFoundError(f"Model path {text} does not exist.")
    if "/" not in text:
        aliases = ", ".join(card.alias for card in MODELS)
        raise ModelNotFoundError(
            f"unknown model {text!r}: use an alias ({aliases}, or 'default'), a .gguf file, a "
            "model directory or a hub id such as Qwen/Qwen2.5-Coder-0.5B-Instruct."
        )
    return ModelSource("hub", text, text.split("/")[-1])


def choose_device(requested: str | None = None) -> torch.device:
    """CUDA when present (or the device the user asked for), else CPU."""
    if requested and requested != "auto":
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def choose_dtype(device: torch.device, requested: str | torch.dtype | None = None) -> torch.dtype:
    """bf16 on CUDA; on a CPU bf16 when it has bf16 dot products, else float32.

    Measured in docs/benchmarks/dtype.md: a CPU decode step is bound by memory bandwidth, bf16
    halves the bytes read per token (about 1.9x faster decoding here) at unchanged perplexity.
    """
    if isinstance(requested, torch.dtype):
        return requested
    if requested and requested != "auto":
        try:
            return _DTYPES[requested]
        except KeyError:
            raise ValueError(
                f"dtype {requested!r} is not one of {sorted(_DTYPES)} or 'auto'"
            ) from None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_bf16() else torch.float32


WEIGHTS = ("auto", "float", "packed", "int8", "int4")


def choose_weights(
    device: torch.device,
    dtype: torch.dtype,
    requested: str | None = None,
) -> str:
    """``"int4"``, ``"int8"``, ``"packed"`` or ``"float"``: how the model's projections are held.

    Decoding on a CPU is bound by memory bandwidth (docs/benchmarks/dtype.md). Auto picks int8
    on a CPU running bf16, and on a CPU running float32 (one without bf16 dot products) where
    agentcore's native int8 kernel runs (x86 with AVX2 and FMA and a C++ compiler,
    :mod:`agentcore.core.native`; a scale per group of 32 inputs there): 1.45-1.55x packed
    float32's decode speed, perplexity within 0.2% (``docs/benchmarks/dtype-avx2-native/``).
    Other float32 CPUs get packed (float32 in oneDNN's blocked layout,
    :class:`~agentcore.core.quant.PackedWeight`) where oneDNN runs it, else float; GPUs keep
    float weights. int4 is asked for by name: it
    reads the fewest bytes and keeps perplexity within 1% of float32 where the model's
    projections are already 4-bit (``int4_exact``: a GGUF with Q4_0/Q4_1 projections, such as
    SmolLM2's; see :meth:`~agentcore.core.llama.CoreModel.int4_exact`), but it changes greedy
    replies of the real models (bf16 activations in its kernel), so auto will pick it there only
    once the real-model tests have been re-checked on it.
    """
    choice = requested or "auto"
    if choice not in WEIGHTS:
        raise ValueError(f"weights '{requested}' is not one of {', '.join(WEIGHTS)}")
    int8_fp32 = device.type == "cpu" and dtype == torch.float32 and int8_float32_available()
    if choice == "int8" and not ((device.type == "cpu" and dtype == torch.bfloat16) or int8_fp32):
        raise ValueError(
            f"weights 'int8' need the CPU and dtype bfloat16, or float32 with agentcore's "
            f"native int8 kernel (native kernel: {native_status()}), not {device.type} and "
            f"{dtype}"
        )
    int4_ok = device.type == "cpu" and dtype in (torch.bfloat16, torch.float32)
    if choice == "int4":
        if not int4_ok:
            raise ValueError(
                f"weights 'int4' need the CPU and dtype bfloat16 or float32, not {device.type} "
                f"and {dtype}"
            )
        if not int4_available():
            raise ValueError(
                "weights 'int4' need PyTorch's CPU int4 matmul (_weight_int4pack_mm_for_cpu), "
                f"which torch {torch.__version__} lacks: use weights 'int8' or 'float'"
            )
    packed_ok = device.type == "cpu" and dtype == torch.float32 and packed_float_available()
    if choice == "packed" and not packed_ok:
        raise ValueError(
            f"weights 'packed' need the CPU, dtype float32 and oneDNN's packed linear, not "
            f"{device.type} and {dtype}"
            + ("" if packed_float_available() else " (this PyTorch build lacks it)")
        )
    if choice == "auto":
        if device.type == "cpu" and dtype == torch.bfloat16 and int8_available():
            return "int8"
        if int8_fp32:
            return "int8"
        return "packed" if packed_ok else "float"
    return choice


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 dot products (x86 AVX512-BF16 / AMX, Arm BF16)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:  # not Linux: ask oneDNN
        check = getattr(torch.backends.mkldnn, "is_bf16_supported", None)
        return bool(check()) if check is not None else False
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def _gguf_cache_dir(gguf: Path) -> Path:
    stat = gguf.stat()
    key = hashlib.sha256(
        f"{gguf.resolve()}|{stat.st_size}|{int(stat.st_mtime)}".encode()
    ).hexdigest()
    return cache_root() / "models" / f"{gguf.stem}-{key[:12]}"


def source_directory(source: ModelSource) -> Path:
    """The local safetensors directory of a source (the conversion cache for GGUF files)."""
    if source.kind == "gguf":
        return _gguf_cache_dir(Path(source.location))
    return Path(source.location)


def load_tokenizer(folder: Path) -> Any:
    """The tokenizer of a local model directory (the fast class directly when it can be)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if (folder / "tokenizer.json").is_file():
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast.from_pretrained(str(folder))
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def core_cache_path(source: ModelSource) -> Path | None:
    """Where the model core's re-laid weights are cached (None for hub ids: nothing local yet)."""
    if source.kind == "hub":
        return None
    folder = source_directory(source)
    if source.kind == "gguf":
        if not (folder / "config.json").is_file():
            _convert_gguf(Path(source.location), folder)
        return folder / "agentcore-core.safetensors"
    stamp = "|".join(
        f"{p.name}:{p.stat().st_size}:{int(p.stat().st_mtime)}"
        for p in sorted(folder.glob("*.safetensors"))
    )
    key = hashlib.sha256(f"{folder.resolve()}|{stamp}".encode()).hexdigest()[:16]
    return cache_root() / "cores" / f"{folder.name}-{key}.safetensors"


def hf_cache_kwargs(hf_model: Any, cache: Any) -> dict[str, Any]:
    """Keyword arguments that hand ``cache`` to a transformers model's ``forward``.

    transformers 5.x renamed the keyword from ``past_key_values`` to ``cache`` (the old name
    still works but warns); the name is read off the forward signature, so callers work on
    every transformers release the project allows without a deprecation warning.
    """
    import inspect

    params = inspect.signature(hf_model.forward).parameters
    name = "cache" if "cache" in params else "past_key_values"
    return {name: cache, "use_cache": True}


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantize a GGUF file into a safetensors model directory, atomically."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(
        f"agentcore: first load of {gguf.name}: converting to a safetensors cache in {target} "
        "(once; later loads take a second or two)",
        file=sys.stderr,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        # The weights are plain float tensors after dequantization; drop the GGUF marker so
        # the model saves as an ordinary checkpoint.
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        setattr(model, "hf_quantizer", None)  # noqa: B010 - transformers' typing forbids the plain form
        setattr(model, "is_quantized", False)  # noqa: B010
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / "agentcore-source.txt").write_text(f"{gguf}\n")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if target.exists():  # another process won the race
            shutil.rmtree(tmp)
            return
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_family(config: Any, source: ModelSource) -> None:
    model_type = getattr(config, "model_type", None)
    if model_type not in _SUPPORTED_TYPES:
        raise ModelNotFoundError(
            f"{source.location} is a {model_type!r} model; agentcore's long-memory core supports the "
            f"Llama family ({', '.join(sorted(_SUPPORTED_TYPES))})."
        )


def load_model(
    ref: str | os.PathLike[str] | None = None,
    *,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
) -> LoadedModel:
    """Load a model and tokenizer; convert and cache a GGUF file on first use."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    start = time.perf_counter()
    source = resolve_model(ref)
    dev = choose_device(device)
    dt = choose_dtype(dev, dtype)
    directory: Path | None
    if source.kind == "gguf":
        directory = _gguf_cache_dir(Path(source.location))
        if not (directory / "config.json").is_file():
            _convert_gguf(Path(source.location), directory)
        location = str(directory)
    elif source.kind == "dir":
        directory = Path(source.location)
        location = source.location
    else:
        directory = None
        location = source.location
    try:
        config = AutoConfig.from_pretrained(location)
    except OSError as exc:
        raise ModelNotFoundError(
            f"Could not load model {source.location!r}: {exc}. Pass a local model directory, a .gguf "
            "file or 'default', or connect to the Hugging Face hub to download a hub id."
        ) from exc
    _check_family(config, source)
    tokenizer = AutoTokenizer.from_pretrained(location)
    hf_logging.disable_progress_bar()  # reading a local cache is quick; conversion shows progress
    try:
        hf_model: Any = AutoModelForCausalLM.from_pretrained(location, dtype=dt)
    finally:
        hf_logging.enable_progress_bar()
    hf_model.to(dev)
    hf_model.eval()
    return LoadedModel(
        hf_model=hf_model,
        tokenizer=tokenizer,
        source=source,
        device=dev,
        dtype=dt,
        load_seconds=time.perf_counter() - start,
        directory=directory,
    )
