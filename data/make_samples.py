"""Write the small samples the project ships (used by the demo and the tests); all text is our own.

- `conll_en/{train,test}.txt`: English news-style sentences in CoNLL format (`token tag`, IOB2, PER, ORG,
  LOC, MISC). Names are invented or common place names.
- `emails_it/{train,test}.csv`: Italian business e-mails in the wide CSV layout (`id`, `text`, `entities`
  as a JSON list of {word, entity_group} in order of appearance) with PER, ORG, LOC, DATE, MONEY, EMAIL,
  PHONE, CODE. Companies, people, addresses and numbers are invented.

The test parts use fillers drawn with another seed and a few sentence shapes the training part never
has, so they are held out. Re-running this script rewrites the same files (fixed seeds).

    python data/make_samples.py
"""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

HERE = Path(__file__).parent

FIRST = [
    "Anna",
    "Peter",
    "Maria",
    "John",
    "Laura",
    "David",
    "Sofia",
    "Tom",
    "Elena",
    "Mark",
    "Julia",
    "Omar",
    "Claire",
    "Ivan",
    "Grace",
    "Luca",
    "Nina",
    "Samuel",
    "Hannah",
    "Victor",
]
LAST = [
    "Fischer",
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Tanaka",
    "Brennan",
    "Kowalski",
    "Haddad",
    "Silva",
    "Novak",
    "Andersen",
    "Rossi",
    "Keller",
    "Duarte",
    "Whitfield",
    "Petrov",
    "Mendes",
    "Larsen",
    "Ferrante",
    "Byrne",
]
ORG = [
    "Northwind Bank",
    "Helios Energy",
    "the United Nations",
    "Riverside United",
    "Apex Motors",
    "the World Bank",
    "Bluewater Airlines",
    "the Central Statistics Office",
    "Greenfield Foods",
    "Orion Telecom",
    "FC Porto",
    "the European Commission",
    "Meridian Capital",
    "Atlas Shipping",
    "Red Cross",
]
LOC = [
    "Paris",
    "Kenya",
    "Brazil",
    "Tokyo",
    "Lisbon",
    "Canada",
    "Cairo",
    "Norway",
    "Chicago",
    "Vietnam",
    "Madrid",
    "Poland",
    "Sydney",
    "Chile",
    "Istanbul",
    "Ireland",
    "Nairobi",
    "Finland",
]
NATIONALITY = ["French", "Brazilian", "Japanese", "Canadian", "Norwegian", "Irish", "Kenyan", "Chilean"]  # MISC
EVENT = ["World Cup", "Olympic Games", "Nobel Prize", "Euro 2024", "Tour de France", "Grand Prix"]  # MISC

EN_TRAIN = [
    "{PER} , chief executive of {ORG} , said the company would open an office in {LOC} .",
    "{ORG} shares rose 3 percent in {LOC} on Tuesday .",
    "{PER} won the {EVENT} title after beating {PER} in the final .",
    "The {NAT} government asked {ORG} for an emergency loan .",
    "Police in {LOC} arrested two men on Friday , a spokesman said .",
    "{PER} told reporters in {LOC} that talks with {ORG} had stalled .",
    "{ORG} beat {ORG} 2-1 in front of 40,000 fans .",
    "Exports from {LOC} to {LOC} fell sharply in the first quarter .",
    "{PER} will lead the {NAT} team at the {EVENT} .",
    "Analysts expect {ORG} to report higher profits next week .",
    "The {NAT} minister {PER} arrived in {LOC} for a two-day visit .",
    "Heavy rain caused flooding across {LOC} and parts of {LOC} .",
    "{PER} joined {ORG} in 2019 after ten years at {ORG} .",
    "Prices were little changed in quiet trading on Monday .",
    "{ORG} said it had signed a supply deal with {ORG} worth 40 million dollars .",
    "{PER} scored twice as {ORG} won in {LOC} .",
    "Tourists from {LOC} spent more than ever in {LOC} last summer .",
    "The {NAT} film opened to strong reviews in {LOC} .",
]
EN_TEST_ONLY = [
    "{PER} , who founded {ORG} , died in {LOC} at the age of 81 .",
    "Fans celebrated in {LOC} after the {NAT} victory at the {EVENT} .",
    "{ORG} and {ORG} agreed to merge , {PER} said .",
]

IT_FIRST = [
    "Giulia",
    "Marco",
    "Francesca",
    "Alessandro",
    "Chiara",
    "Matteo",
    "Sara",
    "Davide",
    "Elisa",
    "Roberto",
    "Valentina",
    "Stefano",
    "Martina",
    "Paolo",
    "Federica",
    "Giorgio",
]
IT_LAST = [
    "Bianchi",
    "Colombo",
    "Ricci",
    "Marino",
    "Greco",
    "Bruno",
    "Gallo",
    "Conti",
    "De Luca",
    "Costa",
    "Mancini",
    "Lombardi",
    "Barbieri",
    "Fontana",
    "Moretti",
    "Esposito",
]
IT_ORG = [
    "Ferramenta Alpina S.r.l.",
    "Tessuti Lariani S.p.A.",
    "Studio Legale Ricci & Associati",
    "Logistica Padana S.r.l.",
    "Caseificio Val Bormida",
    "Banca Popolare del Tirreno",
    "Officine Meccaniche Sarde",
    "Vetreria Murano Arte",
    "Agenzia Viaggi Sole Blu",
    "Consorzio Agrario Emiliano",
    "Ufficio Acquisti",
    "Tipografia Moderna S.n.c.",
]
IT_LOC = [
    "Milano",
    "Torino",
    "Bologna",
    "Napoli",
    "Verona",
    "Bari",
    "Firenze",
    "Genova",
    "Padova",
    "Cagliari",
    "via Garibaldi 12, Brescia",
    "corso Italia 45, Pisa",
    "piazza Duomo 3, Trento",
    "Lecce",
]
IT_MONTHS = [
    "gennaio",
    "febbraio",
    "marzo",
    "aprile",
    "maggio",
    "giugno",
    "luglio",
    "settembre",
    "ottobre",
    "novembre",
]

IT_TRAIN = [
    "Gentile {PER},\nle confermo che l'ordine {CODE} di {ORG} è stato spedito il {DATE} al magazzino di {LOC}.\n"
    "Cordiali saluti,\n{PER}",
    "Buongiorno,\nin allegato la fattura {CODE} di {MONEY} con scadenza {DATE}.\n"
    "Per chiarimenti scriva a {EMAIL} o chiami il {PHONE}.\n{PER}\n{ORG}",
    "Spett.le {ORG},\nsollecitiamo il pagamento di {MONEY} relativo al contratto {CODE}, scaduto il {DATE}.\n"
    "Distinti saluti,\n{PER}",
    "Ciao {PER},\nla riunione con {ORG} è spostata al {DATE} nella sede di {LOC}.\nA presto,\n{PER}",
    "Gentile cliente,\nil suo reso {CODE} è stato ricevuto a {LOC} e le rimborseremo {MONEY} entro il {DATE}.\n"
    "Servizio clienti {ORG}",
    "Egregio dott. {PER},\nle inviamo il preventivo {CODE} per {MONEY}, valido fino al {DATE}.\n"
    "Resto a disposizione al {PHONE}.\n{PER}, {ORG}",
    "Buonasera,\nvi segnalo il nuovo indirizzo di consegna: {LOC}.\nReferente: {PER}, {EMAIL}.\nGrazie,\n{PER}",
    "Salve,\nconfermo la prenotazione {CODE} per il {DATE} presso {ORG} a {LOC}.\nSaluti,\n{PER}",
    "Gentile {PER},\nabbiamo accreditato {MONEY} sul conto indicato in data {DATE}.\n{ORG} - Amministrazione",
]
IT_TEST_ONLY = [
    "Buongiorno {PER},\nil corriere ritirerà la merce dell'ordine {CODE} a {LOC} il {DATE}.\n"
    "Per urgenze: {PHONE}.\n{ORG}",
    "Gentili colleghi,\nvi ricordo che il saldo di {MONEY} a favore di {ORG} va versato entro il {DATE}.\n{PER}",
]


def fill_english(template: str, rng: random.Random) -> list[tuple[str, str]]:
    """(token, tag) pairs for one sentence template."""
    pairs = []
    for piece in template.split():
        slot = re.fullmatch(r"\{(\w+)\}", piece)
        if not slot:
            pairs.append((piece, "O"))
            continue
        slot_name = slot.group(1)
        value = {
            "PER": lambda: f"{rng.choice(FIRST)} {rng.choice(LAST)}",
            "ORG": lambda: rng.choice(ORG),
            "LOC": lambda: rng.choice(LOC),
            "NAT": lambda: rng.choice(NATIONALITY),
            "EVENT": lambda: rng.choice(EVENT),
        }[slot_name]()
        label = {"NAT": "MISC", "EVENT": "MISC"}.get(slot_name, slot_name)
        words = value.split()
        if words[0] == "the":  # "the United Nations": the article stays outside the entity, as in CoNLL
            pairs.append(("the", "O"))
            words = words[1:]
        pairs += [(word, ("B-" if i == 0 else "I-") + label) for i, word in enumerate(words)]
    return pairs


def italian_value(label: str, rng: random.Random) -> str:
    if label == "PER":
        return f"{rng.choice(IT_FIRST)} {rng.choice(IT_LAST)}"
    if label == "ORG":
        return rng.choice(IT_ORG)
    if label == "LOC":
        return rng.choice(IT_LOC)
    if label == "DATE":
        return f"{rng.randint(1, 28)} {rng.choice(IT_MONTHS)} {rng.choice([2024, 2025, 2026])}"
    if label == "MONEY":
        return f"{rng.randint(1, 48)}.{rng.randint(0, 999):03d},{rng.choice(['00', '50', '90'])} €"
    if label == "EMAIL":
        user = f"{rng.choice(IT_FIRST).lower()}.{rng.choice(IT_LAST).lower().replace(' ', '')}"
        return f"{user}@{rng.choice(['alpina', 'lariani', 'padana', 'soleblu'])}.it"
    if label == "PHONE":
        return f"{rng.choice(['02', '011', '051', '081', '+39 06'])} {rng.randint(100000, 9999999)}"
    return f"{rng.choice(['ORD', 'FT', 'CTR', 'PRV', 'RES'])}-{rng.randint(2024, 2026)}/{rng.randint(1, 999):04d}"


def fill_italian(template: str, rng: random.Random) -> tuple[str, list[dict]]:
    entities, pieces, cursor = [], [], 0
    for match in re.finditer(r"\{(\w+)\}", template):
        pieces.append(template[cursor : match.start()])
        value = italian_value(match.group(1), rng)
        pieces.append(value)
        entities.append({"word": value, "entity_group": match.group(1)})
        cursor = match.end()
    pieces.append(template[cursor:])
    return "".join(pieces), entities


def write_conll(path: Path, sentences: list[list[tuple[str, str]]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    blocks = ["\n".join(f"{token} {tag}" for token, tag in sentence) for sentence in sentences]
    path.write_text("-DOCSTART- O\n\n" + "\n\n".join(blocks) + "\n", encoding="utf-8")


def write_emails(path: Path, prefix: str, emails: list[tuple[str, list[dict]]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "entities"])
        for k, (text, entities) in enumerate(emails, start=1):
            writer.writerow([f"{prefix}-{k:03d}", text, json.dumps(entities, ensure_ascii=False)])


def held_out(make, count: int, seen: set[str], key) -> list:
    """`count` items from `make()` whose text is not in `seen` (the training part) nor repeated."""
    items = []
    while len(items) < count:
        item = make()
        if key(item) not in seen:
            seen.add(key(item))
            items.append(item)
    return items


def main() -> None:
    rng = random.Random(2026)
    train = [fill_english(rng.choice(EN_TRAIN), rng) for _ in range(160)]
    write_conll(HERE / "conll_en" / "train.txt", train)
    rng = random.Random(7)
    test_templates = EN_TRAIN + EN_TEST_ONLY * 3
    seen = {" ".join(token for token, _ in sentence) for sentence in train}
    test = held_out(
        lambda: fill_english(rng.choice(test_templates), rng),
        48,
        seen,
        lambda sentence: " ".join(token for token, _ in sentence),
    )
    write_conll(HERE / "conll_en" / "test.txt", test)
    rng = random.Random(2026)
    emails = [fill_italian(rng.choice(IT_TRAIN), rng) for _ in range(60)]
    write_emails(HERE / "emails_it" / "train.csv", "mail", emails)
    rng = random.Random(7)
    test_templates = IT_TRAIN + IT_TEST_ONLY * 3
    seen = {text for text, _ in emails}
    test = held_out(lambda: fill_italian(rng.choice(test_templates), rng), 20, seen, lambda email: email[0])
    write_emails(HERE / "emails_it" / "test.csv", "test", test)


if __name__ == "__main__":
    main()
