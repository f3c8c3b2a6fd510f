"""Short label definitions shown in prompts, per language, overridable per data set with a YAML/JSON file.

A label with no definition is shown by its name alone. Definitions are deliberately short: the
instruction is encoded for every prompt (once per batch when its KV cache is shared), so every word costs.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from instruct_ner.examples import DataError
from instruct_ner.textio import read_text

# A label is one word without whitespace, `|`, `[` or `]` (the response formats' markup), and not `O` (the tag).
LABEL_PATTERN = re.compile(r"^[^\s|\[\]]+$")
# Characters the parser strips around a written label (`(LOC)`, `*PER*`); a label may not begin or end with one,
# or it would not read back as itself.
LABEL_WRAPPERS = "[]()<>*`'\""


def check_label(label, where: str) -> str:
    """An entity type as both response formats carry it and the parser reads it back exactly.

    Example: check_label("LOC", "f.csv:2") -> "LOC"; check_label("LOC X", "f.csv:2") raises DataError
    """
    if (
        not isinstance(label, str)
        or not LABEL_PATTERN.fullmatch(label)
        or label == "O"
        or label.strip(LABEL_WRAPPERS) != label
    ):
        raise DataError(
            where,
            f"invalid entity type {label!r}; expected one word without spaces, '|', '[' or ']', not O, "
            f"neither starting nor ending with any of {LABEL_WRAPPERS}",
            "invalid_tag",
        )
    return label


def check_labels(labels, where: str) -> list[str]:
    """A label set: a list of valid labels (see `check_label`), no two the same but for case.

    The one check of a label set, used by the readers (`--labels` and labels found in data), an adapter's saved
    description, the CLI and the API. Example: check_labels(["PER", "per"], "--labels") raises DataError
    """
    if isinstance(labels, str) or not isinstance(labels, list | tuple):
        raise DataError(where, f"labels must be a list of names, not {labels!r}", "invalid_labels")
    seen: dict[str, str] = {}
    for label in labels:
        check_label(label, where)
        if label.upper() in seen:
            raise DataError(
                where,
                f"labels {seen[label.upper()]!r} and {label!r} differ only by case; responses cannot tell them apart",
                "invalid_labels",
            )
        seen[label.upper()] = label
    return list(labels)


DEFINITIONS = {
    "en": {
        "PER": "people's names",
        "ORG": "companies, institutions, agencies, teams, parties",
        "LOC": "countries, cities, regions, geographic places, addresses",
        "MISC": "other names: nationalities, events, languages, works, products",
        "DATE": "dates and periods",
        "TIME": "times of day",
        "MONEY": "amounts of money",
        "PERCENT": "percentages",
        "EMAIL": "e-mail addresses",
        "PHONE": "telephone and fax numbers",
        "CODE": "identifiers: invoice, order, contract, VAT, IBAN or tracking codes",
        "ADDRESS": "postal addresses",
        "PRODUCT": "products and services",
    },
    "it": {
        "PER": "nomi di persona",
        "ORG": "aziende, istituzioni, enti, squadre, partiti",
        "LOC": "paesi, città, regioni, luoghi geografici, indirizzi",
        "MISC": "altri nomi: nazionalità, eventi, lingue, opere, prodotti",
        "DATE": "date e periodi",
        "TIME": "orari",
        "MONEY": "importi di denaro",
        "PERCENT": "percentuali",
        "EMAIL": "indirizzi e-mail",
        "PHONE": "numeri di telefono e fax",
        "CODE": "codici: fattura, ordine, contratto, partita IVA, IBAN, spedizione",
        "ADDRESS": "indirizzi postali",
        "PRODUCT": "prodotti e servizi",
    },
}


def load_definitions(path: str | Path | None, labels: list[str] | None = None) -> dict[str, str]:
    """Definitions from a YAML or JSON mapping {LABEL: description}; {} when no path is given.

    A file that is not UTF-8, not valid YAML/JSON, empty, or not a mapping of strings is a DataError naming
    the file (and the line where the parser says). Labels not in `labels` are ignored with a warning.
    Example: load_definitions("defs.yaml", ["PER"]) -> {"PER": "nomi di persona"}
    """
    if not path:
        return {}
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: label definitions file not found")
    text = read_text(path, "label definitions file")
    expected = "expected a mapping of LABEL: short description (strings), e.g. 'PER: people's names'"
    try:
        if path.suffix == ".json":
            value = json.loads(text) if text.strip() else None
        else:
            import yaml

            value = yaml.safe_load(text)
    except json.JSONDecodeError as error:
        raise DataError(
            f"{path}:{error.lineno}", f"not valid JSON ({error.msg}); {expected}", "bad_definitions"
        ) from None
    except Exception as error:  # yaml.YAMLError and its subclasses
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(error, "problem", None) or type(error).__name__
        raise DataError(where, f"not valid YAML ({problem}); {expected}", "bad_definitions") from None
    if value is None:
        raise DataError(str(path), f"empty file; {expected}", "bad_definitions")
    if not isinstance(value, dict):
        raise DataError(str(path), f"found a {type(value).__name__}; {expected}", "bad_definitions")
    for key, description in value.items():
        if not isinstance(key, str) or not isinstance(description, str):
            raise DataError(str(path), f"entry {key!r}: {description!r}; {expected}", "bad_definitions")
    if labels is not None and (unknown := sorted(set(value) - set(labels))):
        print(f"warning: {path}: definitions for {unknown} ignored; the labels are {labels}", file=sys.stderr)
        value = {key: description for key, description in value.items() if key in labels}
    return value


def label_entries(labels: list[str], language: str, overrides: dict[str, str] | None = None) -> list[dict]:
    """[{name, description}] for the prompt, overrides first, then the language's defaults.

    Example: label_entries(["PER"], "en") -> [{"name": "PER", "description": "people's names"}]
    """
    defaults = DEFINITIONS.get(language, DEFINITIONS["en"])
    overrides = overrides or {}
    return [{"name": label, "description": overrides.get(label, defaults.get(label, ""))} for label in labels]
