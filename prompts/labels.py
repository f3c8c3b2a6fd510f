"""Short label definitions shown in prompts, per language, overridable per data set with a YAML/JSON file.

A label with no definition is shown by its name alone. Definitions are deliberately short: the
instruction is encoded for every prompt (once per batch when its KV cache is shared), so every word costs.
"""

from __future__ import annotations

import json
from pathlib import Path

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


def load_definitions(path: str | Path | None) -> dict[str, str]:
    """Definitions from a YAML or JSON mapping {LABEL: description}; {} when no path is given."""
    if not path:
        return {}
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: label definitions file not found")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        value = json.loads(text)
    else:
        import yaml

        value = yaml.safe_load(text)
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError(f"{path}: expected a mapping of label -> description (strings)")
    return value


def label_entries(labels: list[str], language: str, overrides: dict[str, str] | None = None) -> list[dict]:
    """[{name, description}] for the prompt, overrides first, then the language's defaults.

    Example: label_entries(["PER"], "en") -> [{"name": "PER", "description": "people's names"}]
    """
    defaults = DEFINITIONS.get(language, DEFINITIONS["en"])
    overrides = overrides or {}
    return [{"name": label, "description": overrides.get(label, defaults.get(label, ""))} for label in labels]
