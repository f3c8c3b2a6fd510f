"""The package's floor plan, enforced: a module imports from its own layer or lower ones only.

Layers, lowest first: core (`instruct_ner/` types, errors, config, files; `data/`) <- `prompts/` (data in, prompts,
response formats) <- `sft/` (training and selection; the model definitions that prediction shares) <- `inference/`
(prediction, scoring, comparison) <- API and CLI (`instruct_ner/` api, cli, demo, training). Every import counts,
including the ones inside functions (lazy imports are still dependencies).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"instruct_ner": "instruct_ner", "prompts": "instruct_ner.prompts", "sft": "instruct_ner.sft"}
FOLDERS |= {"inference": "instruct_ner.inference", "data": "instruct_ner.data"}
TOP = {"api", "cli", "demo", "training", "__init__"}  # the modules of instruct_ner/ that sit above every stage
LAYERS = {"core": 0, "prompts": 1, "sft": 2, "inference": 3, "top": 4}


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name of this package, None for anything else.

    Example: layer_of("instruct_ner.sft.models") -> "sft"; layer_of("instruct_ner.errors") -> "core"
    """
    parts = module.split(".")
    if parts[0] != "instruct_ner":
        return None
    if len(parts) == 1:
        return "top"
    if parts[1] in ("prompts", "sft", "inference"):
        return parts[1]
    if parts[1] == "data":
        return "core"
    return "top" if parts[1] in TOP else "core"


def package_modules() -> dict[str, Path]:
    modules = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT / folder).with_suffix("")
            name = ".".join([package, *relative.parts])
            modules[name.removesuffix(".__init__")] = path
    return modules


def imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in a file, relative imports resolved."""
    found = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            found.append((node.lineno, base))
            # `from instruct_ner.prompts import readers` imports a module of that layer too
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
    return found


def test_layer_of_reads_the_floor_plan():
    assert layer_of("instruct_ner.errors") == "core"
    assert layer_of("instruct_ner.prompts.readers") == "prompts"
    assert layer_of("instruct_ner.api") == "top"
    assert layer_of("torch") is None


def test_no_module_imports_from_a_higher_layer():
    modules = package_modules()
    assert len(modules) > 30  # the walk found the package
    violations = []
    for module, path in modules.items():
        own = LAYERS[layer_of(module)]
        for line, target in imports_of(path, module):
            target_layer = layer_of(target)
            if target_layer is not None and LAYERS[target_layer] > own:
                violations.append(f"{path.relative_to(ROOT)}:{line}: {module} ({layer_of(module)}) imports {target}")
    assert not violations, "imports from a higher layer:\n" + "\n".join(violations)


def test_the_check_catches_an_upward_import(tmp_path):
    fake = tmp_path / "bad.py"
    fake.write_text("def f():\n    from instruct_ner.inference.score import score_tags\n", encoding="utf-8")
    imports = imports_of(fake, "instruct_ner.sft.bad")
    assert any(LAYERS[layer_of(t)] > LAYERS["sft"] for _, t in imports if layer_of(t))
