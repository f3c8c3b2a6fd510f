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
    "AugmentOptions": "data augmentation",
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
    """The flat mapping of a YAML recipe, checked against the config's field names and types.

    Every problem is one ConfigError naming the recipe and, where it has one, the key and the line: malformed YAML,
    a tag that would build a Python object (`!!python/object`), a key that is no field, a value of the wrong type.
    """
    if not path:
        return {}
    path = resolve_recipe(path)
    from instruct_ner.textio import read_text

    try:
        values = yaml.safe_load(read_text(path, "recipe")) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"config file {path}{line}: not a YAML mapping of field: value ({problem})") from None
    except ValueError as error:  # DataError from read_text: not UTF-8, names the line
        raise ConfigError(f"config file {error}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path}: expected a flat mapping of field: value")
    known = {spec.name: spec for spec in dataclasses.fields(config_class)}
    if unknown := sorted(str(key) for key in values if key not in known):
        raise ConfigError(f"config file {path}: unknown field(s) {unknown}; known fields: {sorted(known)}")
    return {name: checked_value(known[name], value, f"config file {path}: ") for name, value in values.items()}


_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def checked_value(spec: dataclasses.Field, value, where: str = ""):
    """`value` converted to the field's type, or ConfigError naming the field and the type it expected.

    Example: checked_value(<field limit: int | None>, "7") -> 7; checked_value(<it>, [1, 2]) raises ConfigError
    """
    import math

    kind, is_list = _base_type(spec.type)
    expected = _KIND_NAMES.get(kind, getattr(kind, "__name__", str(kind)))

    def refuse(shown=value):
        what = f"a list of {expected.removeprefix('a ').removeprefix('an ')}s" if is_list else expected
        raise ConfigError(f"{where}field {spec.name!r}: expected {what}, got {shown!r}")

    def scalar(item):
        if kind is bool:
            if isinstance(item, bool):
                return item
            if isinstance(item, str | int) and str(item).lower() in BOOL_WORDS:
                return _parse_bool(str(item))
            refuse(item)
        if kind in (int, float):
            if isinstance(item, bool) or not isinstance(item, int | float | str):
                refuse(item)
            try:
                number = float(item) if kind is float or isinstance(item, float) else int(item)
            except ValueError:
                try:
                    number = float(item)
                except ValueError:
                    refuse(item)
            if isinstance(number, float) and not math.isfinite(number):
                refuse(item)
            if kind is int:
                if number != int(number):
                    refuse(item)
                return int(number)
            return float(number)
        if kind is str:
            if not isinstance(item, str):
                refuse(item)
            return item
        return item

    if value is None:
        return None
    if is_list:
        if isinstance(value, str):
            value = value.split(",")
        elif not isinstance(value, list):
            value = [value]
        if any(isinstance(item, list | dict) for item in value):
            refuse()
        value = [scalar(item) for item in value]
    else:
        value = scalar(value)
    choices = spec.metadata.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{where}field {spec.name!r}: expected one of {choices}, got {value!r}")
    return value


def make_config(config_class, values: dict):
    """Instantiate a config, turning type problems into ConfigError messages that name the field."""
    known = {spec.name: spec for spec in dataclasses.fields(config_class)}
    values = dict(values)  # the caller's mapping is not changed
    if unknown := sorted(str(key) for key in values if key not in known):
        raise ConfigError(f"unknown field(s) {unknown}; known fields: {sorted(known)}")
    values = {name: checked_value(known[name], value) for name, value in values.items()}
    try:
        config = config_class(**values)
    except TypeError as error:
        raise ConfigError(str(error)) from error
    object.__setattr__(config, _FIELDS_SET, frozenset(values))
    return config
