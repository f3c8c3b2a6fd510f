"""Dataclass configs from a flat YAML recipe plus command-line overrides, in the manner of TRL's `TrlParser`.

Every field of a config dataclass becomes a `--field_name` flag (dashes accepted too), with its
`metadata["help"]` as help text. `--config recipe.yaml` loads a flat mapping whose keys are field names;
flags given on the command line override it. Unknown keys and flags are errors that list the known
ones. A field with `metadata={"positional": True}` is a positional argument.

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
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """A config that cannot be used; raised before any data or model is loaded."""


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


def build_parser(config_class, prog: str, description: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", help="flat YAML recipe whose keys are the field names below")
    for spec in dataclasses.fields(config_class):
        kind, is_list = _base_type(spec.type)
        help_text = spec.metadata.get("help", "")
        default = None if spec.default is dataclasses.MISSING else spec.default
        if spec.default_factory is not dataclasses.MISSING:
            default = spec.default_factory()
        if default not in (None, [], ""):
            help_text += f" (default: {default})"
        converter = _parse_bool if kind is bool else kind
        options: dict = {"help": help_text, "default": argparse.SUPPRESS}
        if is_list:
            options["nargs"] = "+"
            options["type"] = converter
        elif kind is bool:
            options.update(nargs="?", const=True, type=_parse_bool)
        else:
            options["type"] = converter
        if "choices" in spec.metadata:
            options["choices"] = spec.metadata["choices"]
        if spec.metadata.get("positional"):
            options.pop("default")
            options["nargs"] = "?" if not is_list else "*"
            parser.add_argument(spec.name, **options)
            continue
        flags = [f"--{spec.name}"]
        if "_" in spec.name:
            flags.append(f"--{spec.name.replace('_', '-')}")
        flags += spec.metadata.get("aliases", [])
        parser.add_argument(*flags, dest=spec.name, **options)
    return parser


def parse_config(config_class, argv: list[str] | None = None, prog: str = "instruct-ner", description=None):
    """Build a `config_class` from `--config FILE.yaml` and command-line flags (flags win)."""
    parser = build_parser(config_class, prog, description)
    argv = _bool_flags_before_values(parser, sys.argv[1:] if argv is None else argv)
    arguments = vars(parser.parse_args(argv))
    values = load_recipe(arguments.pop("config", None), config_class)
    values.update({k: v for k, v in arguments.items() if v is not None or k not in values})
    return make_config(config_class, values)


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
    if not Path(path).exists():
        raise ConfigError(f"config file {path} not found")
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
        return config_class(**values)
    except TypeError as error:
        raise ConfigError(str(error)) from error


def config_to_dict(config) -> dict:
    return dataclasses.asdict(config)
