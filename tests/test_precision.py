"""resolve_precision: what `auto` means on each kind of hardware (capabilities mocked), the bf16 warning."""

import pytest

from instruct_ner.sft import models
from instruct_ner.sft.models import ModelError, resolve_precision


@pytest.fixture
def hardware(monkeypatch):
    """Set (cuda, cuda_bf16, cpuinfo flags, torch cpu capability) and clear the once-per-process memory."""
    import torch

    def set_hardware(cuda=False, cuda_bf16=True, flags="fpu sse avx2", capability="AVX2"):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: cuda_bf16)
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
        original = models.Path.read_text

        def read_text(self, *args, **kwargs):
            if str(self) == "/proc/cpuinfo":
                return f"processor\t: 0\nflags\t\t: {flags}\n"
            return original(self, *args, **kwargs)

        monkeypatch.setattr(models.Path, "read_text", read_text)
        monkeypatch.setattr(models, "_announced", set())

    return set_hardware


@pytest.mark.parametrize(
    ("cuda", "cuda_bf16", "flags", "capability", "purpose", "expected"),
    [
        (True, True, "avx2", "AVX2", "train", "8bit"),  # a model of unknown size (no folder): 8-bit, as before
        (True, True, "avx2", "AVX2", "generate", "bf16"),
        (True, False, "avx2", "AVX2", "generate", "fp32"),
        (False, True, "fpu avx2", "AVX2", "train", "fp32"),
        (False, True, "fpu avx2", "AVX2", "generate", "fp32"),
        (False, True, "avx2 avx512f avx512_bf16", "AVX512", "train", "bf16"),
        (False, True, "avx2 amx_bf16 amx_tile", "AVX512", "generate", "bf16"),
        (False, True, "avx2 avx512f avx512bw", "AVX512", "train", "fp32"),  # AVX-512 alone emulates bf16
        (False, True, "", "AMX", "train", "bf16"),  # no /proc/cpuinfo flags, torch knows
    ],
)
def test_auto_precision_by_hardware(hardware, capsys, cuda, cuda_bf16, flags, capability, purpose, expected):
    hardware(cuda=cuda, cuda_bf16=cuda_bf16, flags=flags, capability=capability)
    assert resolve_precision("auto", purpose) == expected
    err = capsys.readouterr().err
    assert f"precision auto -> {expected} to {purpose}" in err


def test_choice_is_announced_once(hardware, capsys):
    hardware()
    for _ in range(3):
        assert resolve_precision("auto", "train") == "fp32"
    assert capsys.readouterr().err.count("precision auto") == 1


def test_named_precision_is_kept(hardware, capsys):
    hardware(cuda=False)
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("8bit", "generate") == "8bit"
    assert capsys.readouterr().err == ""


def test_bf16_on_cpu_without_native_bf16_warns_with_measured_slowdown(hardware, capsys, monkeypatch):
    hardware(cuda=False, flags="avx2")
    monkeypatch.setattr(models, "bf16_slowdown", lambda: 131.0)
    assert resolve_precision("bf16") == "bf16"  # honoured, but the user is told what it costs
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(lines) == 1 and "131x slower than fp32" in lines[0] and lines[0].startswith("warning")


def test_bf16_with_native_bf16_does_not_warn(hardware, capsys):
    hardware(cuda=False, flags="avx2 avx512_bf16")
    assert resolve_precision("bf16") == "bf16"
    assert capsys.readouterr().err == ""


def test_unknown_precision_is_an_error():
    with pytest.raises(ModelError, match="precision must be one of"):
        resolve_precision("fp16")


def test_recipes_name_auto_or_a_gpu_precision():
    import yaml

    from conftest import ROOT

    for recipe in (ROOT / "sft" / "recipes").glob("*.yaml"):
        precision = yaml.safe_load(recipe.read_text()).get("precision")
        assert precision in (None, "auto", "8bit", "4bit"), f"{recipe.name}: precision {precision}"


@pytest.mark.parametrize(
    ("weight_bytes", "free_bytes", "bf16", "expected"),
    [
        (270_000_000, 80 * 10**9, True, "bf16"),  # the embedded 135M model on an H100: bf16 (8-bit was 2.5x slower)
        (270_000_000, 80 * 10**9, False, "fp32"),
        (16 * 10**9, 80 * 10**9, True, "bf16"),  # an 8B model on an 80 GB card: 20% of it
        (16 * 10**9, 24 * 10**9, True, "8bit"),  # the same on a 24 GB card: 67%
        (None, 80 * 10**9, True, "8bit"),  # a hub id: size unknown
    ],
)
def test_auto_on_cuda_trains_8bit_only_when_bf16_weights_crowd_the_gpu(weight_bytes, free_bytes, bf16, expected):
    assert models.cuda_train_precision(weight_bytes, free_bytes, bf16)[0] == expected


def test_auto_reads_the_models_size_and_the_free_memory(hardware, monkeypatch, tmp_path, capsys):
    import json

    import torch

    hardware(cuda=True)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"dtype": "float32"}), encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"\0" * 4_000_000)  # 1M fp32 parameters: 2 MB in bf16
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (10_000_000, 20_000_000))
    assert models.model_weight_bytes(str(folder)) == 2_000_000
    assert resolve_precision("auto", "train", str(folder)) == "bf16"  # 20% of the free memory
    monkeypatch.setattr(models, "_announced", set())
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (3_000_000, 20_000_000))
    assert resolve_precision("auto", "train", str(folder)) == "8bit"  # 67%
    assert "would take 67% of the free GPU memory" in capsys.readouterr().err
