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
        (True, True, "avx2", "AVX2", "train", "8bit"),
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
