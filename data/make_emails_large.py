"""Write `emails_it_large/{train,dev,test}.csv`: realistic multi-paragraph Italian business e-mails (our own).

Larger and more varied than `emails_it/` (the demo sample, made by `make_samples.py`, whose name, company
and place lists this script imports and extends): 50-200 words each, six topics (order, invoice, shipping,
complaint, appointment, payment reminder), four writers' styles (formal, cordial, terse, chatty) with their
own greetings and closings, signatures with role, company, address, phone and e-mail, and in-text dates,
amounts (`1.250,00 €`, `€ 480,00`, `EUR 1.250,00`), phones, e-mail addresses and codes (orders, invoices,
IBAN-like codes, VAT numbers, tracking numbers).

Labels: PER, ORG, LOC, DATE, MONEY, EMAIL, PHONE, CODE. Wide CSV layout: `id`, `text`, `entities` (a JSON
list of {word, entity_group, start, end} in order of appearance; `start`/`end` are character offsets into
`text`). Read with `--format csv --id_column id`.

Held out: dev and test draw with other seeds; test also uses body paragraphs and a topic (`payment
reminder`) that train and dev never have, and no test text repeats a training one. It does not call a
model or the network. Re-running rewrites the same files (fixed seeds).

    python data/make_emails_large.py
"""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

from instruct_ner.data.make_samples import IT_FIRST, IT_LAST, IT_LOC, IT_MONTHS, IT_ORG

HERE = Path(__file__).parent
OUT = HERE / "emails_it_large"
SIZES = {"train": 240, "dev": 60, "test": 80}
SEEDS = {"train": 2026, "dev": 11, "test": 29}
MIN_WORDS, MAX_WORDS = 50, 200

FIRST = IT_FIRST + ["Luisa", "Antonio", "Beatrice", "Nicola", "Ilaria", "Simone", "Teresa", "Gianluca", "Alessia"]
LAST = IT_LAST + ["Rinaldi", "Ferri", "Caruso", "Villa", "Sartori", "Pellegrini", "Orlando", "D'Amico", "Galli"]
ORGS = [o for o in IT_ORG if o != "Ufficio Acquisti"] + [
    "Arredamenti Brianza S.r.l.",
    "Oleificio Colline Salentine",
    "Trasporti Adriatica S.p.A.",
    "Farmacia San Marco",
    "Cantina Sociale Valpolicella",
    "Elettroforniture Nord S.r.l.",
    "Corriere Veloce Italia",
    "Assicurazioni Laguna",
    "Studio Commerciale Ferri",
    "Poliambulatorio Santa Chiara",
]
COURIERS = ["Corriere Veloce Italia", "Trasporti Adriatica S.p.A.", "Logistica Padana S.r.l."]
CITIES = [c for c in IT_LOC if "," not in c] + ["Parma", "Bergamo", "Trieste", "Perugia", "Ancona", "Rimini"]
STREETS = ["via Roma", "via Mazzini", "corso Vittorio Emanuele", "viale Europa", "via dei Mille", "piazza Cavour"]
PROVINCE = {"Milano": "MI", "Torino": "TO", "Bologna": "BO", "Napoli": "NA", "Verona": "VR", "Bari": "BA"}
WEEKDAYS = ["lunedì", "martedì", "mercoledì", "giovedì", "venerdì"]
MONTHS = IT_MONTHS + ["agosto", "dicembre"]
DOMAINS = ["alpina.it", "lariani.com", "padana.it", "brianza-arredi.it", "studioferri.it", "pec.it", "gmail.com"]
PRODUCTS = [
    "pallet di piastrelle in gres",
    "confezioni di olio extravergine",
    "rotoli di tessuto di lino",
    "sedie da ufficio ergonomiche",
    "cartoni di bottiglie di Valpolicella",
    "quadri elettrici da parete",
    "risme di carta riciclata",
]


# ------------------------------------------------------------------------------------------ values


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def date(rng: random.Random) -> str:
    day, month, year = rng.randint(1, 28), rng.randint(1, 12), rng.choice([2025, 2026])
    return rng.choice(
        [
            f"{day} {MONTHS[(month - 1) % len(MONTHS)]} {year}",
            f"{day} {MONTHS[(month - 1) % len(MONTHS)]}",
            f"{day:02d}/{month:02d}/{year}",
            f"{rng.choice(WEEKDAYS)} {day} {MONTHS[(month - 1) % len(MONTHS)]}",
        ]
    )


def money(rng: random.Random) -> str:
    euros = rng.choice([rng.randint(20, 999), rng.randint(1000, 48000)])
    amount = f"{euros:,}".replace(",", ".") + f",{rng.choice(['00', '00', '50', '90', '75'])}"
    return rng.choice([f"{amount} €", f"€ {amount}", f"EUR {amount}", f"{amount} euro"])


def phone(rng: random.Random) -> str:
    return rng.choice(
        [
            f"+39 0{rng.randint(2, 99)} {rng.randint(1000, 9999)} {rng.randint(100, 9999)}",
            f"3{rng.randint(20, 49)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
            f"0{rng.randint(2, 99)}-{rng.randint(100000, 9999999)}",
            f"0{rng.randint(2, 99)} {rng.randint(100000, 9999999)}",
        ]
    )


def email(rng: random.Random, name: str | None = None) -> str:
    if name and rng.random() < 0.7:
        first, last = name.lower().replace("'", "").split(" ", 1)
        user = rng.choice([f"{first}.{last}", f"{first[0]}.{last}", f"{first}{last[:3]}"]).replace(" ", "")
    else:
        user = rng.choice(["ordini", "amministrazione", "info", "assistenza", "spedizioni", "segreteria"])
    return f"{user}@{rng.choice(DOMAINS)}"


def code(rng: random.Random, kind: str | None = None) -> str:
    kind = kind or rng.choice(["order", "invoice", "iban", "vat", "tracking", "ticket"])
    year = rng.choice([2025, 2026])
    if kind == "order":
        return rng.choice([f"ORD-{year}/{rng.randint(1, 9999):04d}", f"PO{rng.randint(100000, 999999)}"])
    if kind == "invoice":
        return rng.choice([f"FT {year}/{rng.randint(1, 999)}", f"{rng.randint(1, 999)}/{year}/A"])
    if kind == "iban":
        digits = "".join(str(rng.randint(0, 9)) for _ in range(22))
        return f"IT{rng.randint(10, 99)} {rng.choice('ABCXYZ')}{digits[:3]} " + " ".join(
            digits[i : i + 4] for i in range(3, 19, 4)
        )
    if kind == "vat":
        return f"IT{rng.randint(10**10, 10**11 - 1)}"
    if kind == "tracking":
        return f"{rng.choice(['BRT', 'SDA', 'TRK'])}{rng.randint(10**9, 10**10 - 1)}"
    return f"TCK-{rng.randint(10000, 99999)}"


def address(rng: random.Random) -> str:
    city = rng.choice(CITIES)
    cap = f"{rng.randint(10, 98)}{rng.randint(100, 999)}"
    tail = f" ({PROVINCE[city]})" if city in PROVINCE and rng.random() < 0.5 else ""
    return f"{rng.choice(STREETS)} {rng.randint(1, 180)}, {cap} {city}{tail}"


VALUES = {
    "PER": person,
    "ORG": lambda rng: rng.choice(ORGS),
    "COURIER": lambda rng: rng.choice(COURIERS),
    "CITY": lambda rng: rng.choice(CITIES),
    "ADDRESS": address,
    "DATE": date,
    "MONEY": money,
    "PHONE": phone,
    "EMAIL": email,
    "CODE": code,
    "ORDER": lambda rng: code(rng, "order"),
    "INVOICE": lambda rng: code(rng, "invoice"),
    "IBAN": lambda rng: code(rng, "iban"),
    "VAT": lambda rng: code(rng, "vat"),
    "TRACKING": lambda rng: code(rng, "tracking"),
    "TICKET": lambda rng: code(rng, "ticket"),
    "PRODUCT": lambda rng: rng.choice(PRODUCTS),
    "N": lambda rng: str(rng.randint(2, 60)),
}
LABEL = {"COURIER": "ORG", "CITY": "LOC", "ADDRESS": "LOC", "ORDER": "CODE", "INVOICE": "CODE", "IBAN": "CODE"}
LABEL |= {"VAT": "CODE", "TRACKING": "CODE", "TICKET": "CODE", "PRODUCT": None, "N": None}

# ------------------------------------------------------------------------------------------ pieces
# {SLOT} is filled from VALUES; {SENDER} / {RECIPIENT} / {SENDER_ORG} / {RECIPIENT_ORG} are the e-mail's own people.

BODY = {
    "order": [
        "vi inviamo l'ordine {ORDER} per {N} {PRODUCT}, con consegna richiesta entro il {DATE} presso il nostro "
        "magazzino di {ADDRESS}.",
        "come anticipato al telefono, confermo l'ordine {ORDER} del {DATE} per un importo complessivo di {MONEY} "
        "IVA esclusa.",
        "vorremmo ordinare altre {N} unità dello stesso articolo dell'ordine {ORDER}; potete confermarci il prezzo "
        "di {MONEY} a unità?",
        "il nostro referente per la merce in arrivo è {PER}, che potete contattare al {PHONE} o scrivendo a {EMAIL}.",
        "Vi preghiamo di indicare sul documento di trasporto il nostro codice fornitore {CODE}.",
    ],
    "invoice": [
        "in allegato trovate la fattura {INVOICE} di {MONEY}, relativa all'ordine {ORDER}, con scadenza {DATE}.",
        "il pagamento può essere effettuato con bonifico sul conto IBAN {IBAN} intestato a {SENDER_ORG}.",
        "vi ricordo che la nostra partita IVA è {VAT} e che la fattura elettronica va inviata a {EMAIL}.",
        "abbiamo ricevuto la vostra fattura {INVOICE}, ma l'importo di {MONEY} non corrisponde al preventivo "
        "concordato il {DATE}.",
        "per qualsiasi chiarimento sull'estratto conto potete rivolgervi a {PER} del nostro ufficio contabilità.",
    ],
    "shipping": [
        "la merce relativa all'ordine {ORDER} è stata affidata a {COURIER} il {DATE}; il numero di tracciamento è "
        "{TRACKING}.",
        "la consegna è prevista per il {DATE} all'indirizzo {ADDRESS}, in orario di apertura del magazzino.",
        "il corriere ci segnala che il destinatario a {CITY} risultava assente; il pacco è in giacenza presso il "
        "deposito di {CITY}.",
        "per concordare una nuova data di consegna chiamate il {PHONE} indicando il codice {TRACKING}.",
        "le spese di spedizione, pari a {MONEY}, saranno addebitate nella prossima fattura.",
    ],
    "complaint": [
        "vi scrivo perché l'ordine {ORDER}, consegnato il {DATE}, è arrivato con {N} colli danneggiati.",
        "nonostante i solleciti del {DATE} e del {DATE}, non abbiamo ancora ricevuto il rimborso di {MONEY}.",
        "ho aperto la segnalazione {TICKET} con il vostro servizio clienti, ma nessuno mi ha ancora ricontattato.",
        "chiedo pertanto la sostituzione della merce oppure l'emissione di una nota di credito di {MONEY}.",
        "in mancanza di una risposta entro il {DATE} mi vedrò costretto a rivolgermi a {ORG}.",
    ],
    "appointment": [
        "le confermo l'appuntamento in data {DATE} alle ore 10:30 presso la nostra sede di {ADDRESS}.",
        "all'incontro parteciperanno anche {PER} e {PER} di {ORG}, per la parte tecnica.",
        "se la data non fosse più comoda, può spostarla chiamando la segreteria al {PHONE}.",
        "la visita di controllo con il dottor {PER} è fissata per il {DATE}; si presenti con la tessera sanitaria.",
        "le ricordo che la riunione di avanzamento del progetto si terrà a {CITY} il {DATE}.",
    ],
}
TEST_ONLY_BODY = {
    "reminder": [
        "dai nostri controlli risulta ancora aperta la fattura {INVOICE} di {MONEY}, scaduta il {DATE}.",
        "vi invitiamo a regolarizzare la posizione con bonifico sul conto {IBAN} entro il {DATE}.",
        "qualora il pagamento fosse già stato disposto, vi preghiamo di inviarne copia a {EMAIL}.",
        "in caso di ulteriore ritardo la pratica passerà a {PER} di {ORG} per il recupero del credito.",
    ],
    "shipping": ["il ritiro presso la sede di {SENDER_ORG} a {CITY} è confermato per il {DATE} tra le 9 e le 12."],
    "order": ["potete emettere la conferma d'ordine a nome di {RECIPIENT_ORG}, partita IVA {VAT}?"],
}

STYLES = {
    "formal": {
        "greeting": ["Spett.le {RECIPIENT_ORG},", "Gentile dott. {RECIPIENT},", "Egregia dott.ssa {RECIPIENT},"],
        "opening": [
            "Con la presente",
            "Facendo seguito alla nostra conversazione,",
            "In riferimento a quanto in oggetto,",
        ],
        "closing": [
            "Distinti saluti,",
            "Cordiali saluti,",
            "In attesa di un vostro cortese riscontro, porgo distinti saluti.",
        ],
    },
    "cordial": {
        "greeting": ["Gentile {RECIPIENT},", "Buongiorno {RECIPIENT},", "Buongiorno,"],
        "opening": ["Spero tutto bene.", "Grazie per la rapida risposta.", "Come d'accordo,"],
        "closing": [
            "Un cordiale saluto,",
            "Grazie e buona giornata,",
            "Resto a disposizione per ogni chiarimento.\nSaluti,",
        ],
    },
    "terse": {
        "greeting": ["Buongiorno,", "Salve,", "{RECIPIENT},"],
        "opening": [""],
        "closing": ["Saluti", "Grazie", "Cordialmente"],
    },
    "chatty": {
        "greeting": ["Ciao {RECIPIENT_FIRST},", "Ehi {RECIPIENT_FIRST},", "Carissimo {RECIPIENT_FIRST},"],
        "opening": ["ti scrivo al volo prima della riunione.", "scusa se ti rispondo solo ora, settimana pazzesca!"],
        "closing": ["A presto,", "Un abbraccio e grazie mille,", "Fammi sapere!\nCiao,"],
    },
}
SIGNATURES = [
    "{SENDER}",
    "{SENDER}\n{SENDER_ORG}",
    "{SENDER}\nUfficio acquisti - {SENDER_ORG}\n{ADDRESS}\nTel. {PHONE}",
    "{SENDER}\nResponsabile amministrativo\n{SENDER_ORG}\n{ADDRESS}\nTel. {PHONE} - {SENDER_EMAIL}\nP. IVA {VAT}",
    "--\n{SENDER} | {SENDER_ORG}\nCell. {PHONE}\n{SENDER_EMAIL}",
    "{SENDER_FIRST}",
]


# ------------------------------------------------------------------------------------------ assembly


class Writer:
    """Accumulates text and the character spans of the entities put into it."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.entities: list[dict] = []

    def add(self, piece: str) -> None:
        self.parts.append(piece)
        self.length += len(piece)

    def fill(self, template: str, rng: random.Random, people: dict[str, str]) -> None:
        cursor = 0
        for match in re.finditer(r"\{(\w+)\}", template):
            self.add(template[cursor : match.start()])
            slot = match.group(1)
            if slot in people:
                value, label = people[slot], ("ORG" if "ORG" in slot else "EMAIL" if "EMAIL" in slot else "PER")
            else:
                value, label = VALUES[slot](rng), LABEL.get(slot, slot)
            if label is not None:
                self.entities.append(
                    {"word": value, "entity_group": label, "start": self.length, "end": self.length + len(value)}
                )
            self.add(value)
            cursor = match.end()
        self.add(template[cursor:])

    @property
    def text(self) -> str:
        return "".join(self.parts)


def capitalise(sentence: str) -> str:
    return sentence[0].upper() + sentence[1:] if sentence and not sentence.startswith("{") else sentence


def compose(rng: random.Random, bodies: dict[str, list[str]]) -> tuple[str, list[dict]]:
    """One e-mail: greeting, 2-4 paragraphs on one topic (sentences drawn without repeats), closing, signature."""
    sender, recipient = person(rng), person(rng)
    sender_org, recipient_org = rng.sample(ORGS, 2)
    people = {
        "SENDER": sender,
        "SENDER_FIRST": sender.split()[0],
        "RECIPIENT": recipient,
        "RECIPIENT_FIRST": recipient.split()[0],
        "SENDER_ORG": sender_org,
        "RECIPIENT_ORG": recipient_org,
        "SENDER_EMAIL": email(rng, sender),
    }
    style = STYLES[rng.choice(list(STYLES))]
    topic = rng.choice(list(bodies))
    sentences = rng.sample(bodies[topic], min(len(bodies[topic]), rng.randint(3, 5)))
    if rng.random() < 0.4:  # a second topic, as real e-mails mix them
        other = rng.choice([t for t in bodies if t != topic])
        sentences.append(rng.choice(bodies[other]))
    writer = Writer()
    writer.fill(rng.choice(style["greeting"]), rng, people)
    writer.add("\n\n")
    opening = rng.choice(style["opening"])
    lower_after_opening = bool(opening) and not opening.endswith((".", "!"))
    paragraphs, current = [], []
    for k, sentence in enumerate(sentences):
        current.append(sentence)
        if len(current) >= rng.randint(1, 3) or k == len(sentences) - 1:
            paragraphs.append(current)
            current = []
    for p, paragraph in enumerate(paragraphs):
        for s, sentence in enumerate(paragraph):
            first = p == 0 and s == 0
            if first and opening:
                writer.add(opening + " ")
            writer.fill(sentence if first and lower_after_opening else capitalise(sentence), rng, people)
            writer.add(" " if s < len(paragraph) - 1 else "")
        writer.add("\n\n")
    writer.add(rng.choice(style["closing"]) + "\n")
    writer.fill(rng.choice(SIGNATURES), rng, people)
    return writer.text, writer.entities


def word_count(text: str) -> int:
    return len(text.split())


def draw_emails(count: int, seed: int, bodies: dict[str, list[str]], seen: set[str]) -> list[tuple[str, list]]:
    rng = random.Random(seed)
    emails = []
    while len(emails) < count:
        text, entities = compose(rng, bodies)
        if MIN_WORDS <= word_count(text) <= MAX_WORDS and text not in seen:
            seen.add(text)
            emails.append((text, entities))
    return emails


def write_csv(path: Path, prefix: str, emails: list[tuple[str, list]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "entities"])
        for k, (text, entities) in enumerate(emails, start=1):
            writer.writerow([f"{prefix}-{k:04d}", text, json.dumps(entities, ensure_ascii=False)])


def main() -> None:
    seen: set[str] = set()
    test_bodies = {topic: BODY.get(topic, []) + TEST_ONLY_BODY.get(topic, []) for topic in {*BODY, *TEST_ONLY_BODY}}
    for split in ("train", "dev", "test"):
        bodies = test_bodies if split == "test" else BODY
        emails = draw_emails(SIZES[split], SEEDS[split], dict(sorted(bodies.items())), seen)
        write_csv(OUT / f"{split}.csv", f"{split}", emails)


if __name__ == "__main__":
    main()
