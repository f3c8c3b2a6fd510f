"""Dataclass configs from a flat YAML recipe plus command-line overrides, in the manner of TRL's `TrlParser`.

Every field of a config dataclass becomes a `--field_name` flag (dashes accepted too), with its
`metadata["help"]` as help text. `--config recipe.yaml` loads a flat mapping whose keys are field names;
flags given on the command line override it. Unknown keys and flags are errors that list the known
ones. A field with `metadata={"positional": True}` may also be given as a positional argument, a
shorthand for its flag (`instruct-ner score FILE` = `instruct-ner score --data FILE`).

A config remembers which fields were given: in the recipe or on the command line (`parse_config`,
`make_config`), or as arguments when it is built in Python (a class deriving from `Config`):
`fields_set(config)`. The one rule "an option given explicitly wins over a value found elsewhere" (a
prepared JSONL's template, an adapter's saved model and precision) is `explicit_or_saved`, used by the
CLI and the Python API alike; it never compares with defaults, so an explicit `--precision auto` or
`GenerateConfig(precision="auto")` counts even though `auto` is the default.

We do not use `HfArgumentParser` itself because it imports transformers (and torch), which would add
seconds to `parse` and `score`, stages that need neither. Types understood: str, int, float, bool,
list[str], and `X | None` of those.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from instruct_ner.errors import ConfigError  # noqa: F401  (re-exported)


def _base_type(annotation) -> tuple[type, bool]:
    """(element type, is_list) for an annotation such as `int | None` or `list[str] | None`."""
    if isinstance(annotation, str):
        annotation = eval(annotation, vars(typing) | {"list": list})  # annotations are strings under __future__
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        origin = typing.get_origin(annotation)
    if origin is list:
        return typing.get_args(annotation)[0], True
    return annotation, False


def _parse_bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {value!r}")


# `--help` headings, by the options dataclass that declares a field (the class is found by walking the config's MRO;
# names, not imports: this module sits below every stage). A field's `metadata["group"]` wins (the CSV-only reader
# options). A field the config class declares itself stays under argparse's "options", first, beside --config.
HEADINGS = {
    "ReaderOptions": "data",
    "PromptOptions": "prompt",
    "ModelOptions": "model",
    "PrecisionOption": "model",
    "LoopOptions": "training loop",
    "LoraOptions": "LoRA",
    "DevF1Options": "dev-F1 selection",
}
METAVARS = {int: "INT", float: "FLOAT", str: "TEXT", bool: "BOOL"}


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Each option once: `--max_steps INT`, not also `--max-steps MAX_STEPS` (the dashed spelling works the same)."""

    def __init__(self, prog: str, max_help_position: int = 28, **kwargs):
        super().__init__(prog, max_help_position=max_help_position, **kwargs)  # `--limit INT` and its help: one line

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        first, *others = action.option_strings
        shown = [first, *(f for f in others if f.lstrip("-").replace("-", "_") != first.lstrip("-"))]
        return ", ".join(shown) + " " + self._format_args(action, self._get_default_metavar_for_optional(action))


def _heading(config_class, spec: dataclasses.Field) -> tuple[str | None, int]:
    """The `--help` heading of a field (None: the config's own options) and the heading's rank in `HEADINGS`.

    The field belongs to the most basic class of the MRO that declares it (a config that only changes a default
    of `PromptOptions.template` leaves it under "prompt"); `metadata["group"]` wins, ranked as that class.
    Example: _heading(TrainConfig, <field lora_r>) -> ("LoRA", 5)
    """
    declaring = next(c for c in reversed(config_class.__mro__) if spec.name in vars(c).get("__annotations__", {}))
    rank = list(HEADINGS).index(declaring.__name__) if declaring.__name__ in HEADINGS else len(HEADINGS)
    if "group" in spec.metadata:
        return spec.metadata["group"], rank
    if declaring is config_class:
        return None, -1
    return HEADINGS.get(declaring.__name__, declaring.__name__), rank


def _shown_default(spec: dataclasses.Field):
    """The default as a user types it (`true`, `all-linear`), or None when there is none to show."""
    default = None if spec.default is dataclasses.MISSING else spec.default
    if spec.default_factory is not dataclasses.MISSING:
        default = spec.default_factory()
    if default in (None, [], ""):
        return None
    if isinstance(default, bool):
        return str(default).lower()
    return " ".join(map(str, default)) if isinstance(default, list) else default


def build_parser(config_class, prog: str, description: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser with one `--field_name` flag per field of `config_class`, grouped under headings.

    Flags keep every spelling (`--max_steps`, `--max-steps`, metadata aliases); help shows each option once, with
    its type (`INT`, `TEXT`, ...) and its default unless the help text already names one. Headings: `HEADINGS`.
    Example: build_parser(ScoreConfig, "instruct-ner score").parse_args(["--data", "p.jsonl"]).data -> "p.jsonl"
    """
    specs = dataclasses.fields(config_class)
    positionals = [spec.name.upper() for spec in specs if spec.metadata.get("positional")]
    usage = " ".join([prog, "[-h] [--config RECIPE] [--OPTION VALUE ...]", *(f"[{name}]" for name in positionals)])
    parser = argparse.ArgumentParser(prog=prog, description=description, usage=usage, formatter_class=_HelpFormatter)
    parser.add_argument(
        "--config",
        metavar="RECIPE",
        help="flat YAML recipe (a file, or a shipped recipe's name) whose keys are the option names below; "
        "flags override it. Every --option_name may also be spelt --option-name",
    )
    headings = {spec.name: _heading(config_class, spec) for spec in specs}
    groups = {}
    for title, _ in sorted(set(headings.values()) - {(None, -1)}, key=lambda item: (item[1], _first(item, headings))):
        groups[title] = parser.add_argument_group(title)
    for spec in specs:
        kind, is_list = _base_type(spec.type)
        help_text = spec.metadata.get("help", "")
        default = _shown_default(spec)
        if default is not None and "default" not in help_text.lower():
            help_text += f" (default: {default})"
        converter = _parse_bool if kind is bool else kind
        options: dict = {"help": help_text, "default": argparse.SUPPRESS, "metavar": METAVARS.get(kind, "VALUE")}
        if is_list:
            options["nargs"] = "+"
            options["type"] = converter
        elif kind is bool:
            options.update(nargs="?", const=True, type=_parse_bool)
        else:
            options["type"] = converter
        if "choices" in spec.metadata:
            options["choices"] = spec.metadata["choices"]
            del options["metavar"]  # argparse shows the choices: {raise,skip}
        if spec.metadata.get("positional"):
            parser.add_argument(
                spec.name + _SHORTHAND,
                metavar=spec.name.upper(),
                nargs="*" if is_list else "?",
                type=options["type"],
                default=None,
                help=f"shorthand for --{spec.name}",
            )
        flags = [f"--{spec.name}"]
        if "_" in spec.name:
            flags.append(f"--{spec.name.replace('_', '-')}")
        flags += spec.metadata.get("aliases", [])
        title = headings[spec.name][0]
        (parser if title is None else groups[title]).add_argument(*flags, dest=spec.name, **options)
    return parser


def _first(heading: tuple[str | None, int], headings: dict) -> int:
    """The position of the first field under a heading (headings of one rank keep the fields' order)."""
    return list(headings.values()).index(heading)


def parse_config(config_class, argv: list[str] | None = None, prog: str = "instruct-ner", description=None):
    """Build a `config_class` from `--config FILE.yaml` and command-line flags (flags win)."""
    parser = build_parser(config_class, prog, description)
    argv = _bool_flags_before_values(parser, sys.argv[1:] if argv is None else argv)
    arguments = vars(parser.parse_args(argv))
    values = load_recipe(arguments.pop("config", None), config_class)
    for name in [k for k in arguments if k.endswith(_SHORTHAND)]:
        given, field_name = arguments.pop(name), name.removesuffix(_SHORTHAND)
        if given not in (None, []):
            if field_name in arguments:
                raise ConfigError(f"{field_name} given twice: as --{field_name} and as a positional argument")
            arguments[field_name] = given
    values.update(arguments)  # absent flags are not in `arguments` (SUPPRESS)
    return make_config(config_class, values)


_FIELDS_SET = "_fields_set"
_SHORTHAND = "__positional"


class Config:
    """Base of the config dataclasses: a config built in Python records the fields passed to `__init__`.

    `GenerateConfig(data=..., out=..., precision="auto")` thus gives the same `fields_set` as
    `--data ... --out ... --precision auto`. Copy a config with `replace_config`, not
    `dataclasses.replace` (which passes every field again, so every field would count as given).
    """

    def __new__(cls, *args, **kwargs):
        config = super().__new__(cls)
        names = [spec.name for spec in dataclasses.fields(cls) if spec.init]
        object.__setattr__(config, _FIELDS_SET, frozenset(names[: len(args)]) | frozenset(kwargs))
        return config


def fields_set(config) -> frozenset[str]:
    """The fields given explicitly: by `parse_config` / `make_config`, or to `__init__` of a `Config`.

    A config of a class that does not derive from `Config`, built directly, recorded nothing; then the
    fields whose value differs from the default count as set.
    Example: fields_set(make_config(C, {"a": 1})) -> {"a"}
    """
    recorded = getattr(config, _FIELDS_SET, None)
    if recorded is not None:
        return recorded
    changed = set()
    for spec in dataclasses.fields(config):
        if spec.default is not dataclasses.MISSING:
            default = spec.default
        elif spec.default_factory is not dataclasses.MISSING:
            default = spec.default_factory()
        else:
            changed.add(spec.name)
            continue
        if getattr(config, spec.name) != default:
            changed.add(spec.name)
    return frozenset(changed)


def explicit_or_saved(given, saved: Mapping[str, Any]) -> dict[str, Any]:
    """The one rule: an option given explicitly wins over the value saved elsewhere.

    `given` is a config (its `fields_set` are the explicit options) or a mapping of the explicit
    options (the Python API's keyword arguments that are not None). For each name in `saved`: the
    explicit value when given, else the saved one; a name neither given nor saved (None) is left out,
    so that the caller's own default applies.
    Example: explicit_or_saved({"precision": "auto"}, {"precision": "fp32", "model": "m"})
        -> {"precision": "auto", "model": "m"}
    """
    if dataclasses.is_dataclass(given):
        given = {name: getattr(given, name) for name in fields_set(given)}
    chosen = {}
    for name, value in saved.items():
        if name in given:
            chosen[name] = given[name]
        elif value is not None:
            chosen[name] = value
    return chosen


def replace_config(config, **changes):
    """A copy of `config` with `changes` applied (validated again); its set fields include the changed ones."""
    copy = dataclasses.replace(config, **changes)
    object.__setattr__(copy, _FIELDS_SET, fields_set(config) | set(changes))
    return copy


def shipped_recipes() -> dict[str, Path]:
    """The recipes installed with the package (`sft/recipes/*.yaml`), by name without `.yaml`."""
    from importlib.resources import files

    folder = Path(str(files("instruct_ner.sft") / "recipes"))
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def resolve_recipe(path: str) -> Path:
    """A recipe file, or a shipped recipe by name or by its path in a checkout (works from any directory).

    Example: resolve_recipe("smollm2-conll2003-cpu").name -> "smollm2-conll2003-cpu.yaml"
    """
    if Path(path).exists():
        return Path(path)
    shipped = shipped_recipes()
    name = Path(path).name.removesuffix(".yaml")
    if name in shipped and (Path(path).parent.as_posix() in (".", "sft/recipes")):
        return shipped[name]
    raise ConfigError(f"config file {path} not found; shipped recipes: {', '.join(shipped)}")


BOOL_WORDS = {"1", "true", "yes", "on", "0", "false", "no", "off"}


def _bool_flags_before_values(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`--strict FILE` -> `--strict=true FILE`: a bool flag takes the next word only when it is true/false.

    Example: ["--strict", "p.jsonl"] -> ["--strict=true", "p.jsonl"]; ["--strict", "false"] stays as it is
    """
    flags = {
        flag
        for action in parser._actions
        if action.type is _parse_bool and action.nargs == "?"
        for flag in action.option_strings
    }
    expanded = list(argv)
    for i, word in enumerate(argv):
        if word in flags and (i + 1 == len(argv) or argv[i + 1].lower() not in BOOL_WORDS):
            expanded[i] = f"{word}=true"
    return expanded


def load_recipe(path: str | None, config_class) -> dict:
    """The flat mapping of a YAML recipe, checked against the config's field names."""
    if not path:
        return {}
    path = resolve_recipe(path)
    values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path}: expected a flat mapping of field: value")
    known = {spec.name for spec in dataclasses.fields(config_class)}
    if unknown := sorted(set(values) - known):
        raise ConfigError(f"config file {path}: unknown field(s) {unknown}; known fields: {sorted(known)}")
    return values


def make_config(config_class, values: dict):
    """Instantiate a config, turning type problems into ConfigError messages that name the field."""
    known = {spec.name: spec for spec in dataclasses.fields(config_class)}
    values = dict(values)  # the caller's mapping is not changed
    if unknown := sorted(set(values) - set(known)):
        raise ConfigError(f"unknown field(s) {unknown}; known fields: {sorted(known)}")
    for name, value in values.items():
        kind, is_list = _base_type(known[name].type)
        if value is None:
            continue
        if is_list and not isinstance(value, list):
            values[name] = [value] if not isinstance(value, str) else value.split(",")
        elif kind in (int, float) and not isinstance(value, bool) and isinstance(value, (int, float, str)):
            try:
                values[name] = kind(value)
            except ValueError as error:
                raise ConfigError(f"field {name!r}: expected {kind.__name__}, got {value!r}") from error
        elif kind is bool and not isinstance(value, bool):
            values[name] = _parse_bool(str(value))
        choices = known[name].metadata.get("choices")
        if choices and values[name] not in choices:
            raise ConfigError(f"field {name!r}: expected one of {choices}, got {values[name]!r}")
    try:
        config = config_class(**values)
    except TypeError as error:
        raise ConfigError(str(error)) from error
    object.__setattr__(config, _FIELDS_SET, frozenset(values))
    return config
