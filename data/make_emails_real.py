"""Write `emails_it_real/emails.csv` from the hand-written, hand-annotated e-mails in `emails_it_real/written/`.

Every e-mail there is written out literally, one by one (no templates, no random fills). Each file holds
e-mails separated by a line `=== <topic>`; an entity is marked in place as `{LABEL words}` (for instance
`{PER Mario Rossi}`, `{MONEY € 1.250,00}`), so its character offsets come from where it was written and a
word that occurs twice is never confused with its other occurrence. This script only removes the marks,
checks them, and writes the wide CSV (`id`, `text`, `entities`: a JSON list of {word, entity_group, start,
end} in order of appearance). Ids are `real-001`, `real-002`, ... in the order of the files and of the
e-mails in them (new e-mails are added at the end, so ids stay stable).

Folds (for k-fold learning curves): the e-mail `real-NNN` is in fold `(NNN - 1) % 4` (see `fold_of`). The
source files follow topics in blocks, so round robin spreads every topic over the four folds.

    python data/make_emails_real.py            # writes emails_it_real/emails.csv and prints counts
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

HERE = Path(__file__).parent
FOLDER = HERE / "emails_it_real"
WRITTEN = FOLDER / "written"
OUT = FOLDER / "emails.csv"
LABELS = ("PER", "ORG", "LOC", "DATE", "MONEY", "EMAIL", "PHONE", "CODE")
FOLDS = 4
MARK = re.compile(r"\{(" + "|".join(LABELS) + r") ([^{}\n]+)\}")


def fold_of(example_id: str) -> int:
    """The fold of an e-mail by its id: `real-001` -> 0, `real-002` -> 1, ..., `real-005` -> 0."""
    return (int(example_id.rsplit("-", 1)[1]) - 1) % FOLDS


def unmark(marked: str, where: str) -> tuple[str, list[dict]]:
    """The plain text and its entities (in order) of a text with `{LABEL words}` marks."""
    pieces, entities, cursor, length = [], [], 0, 0
    for match in MARK.finditer(marked):
        before = marked[cursor : match.start()]
        pieces.append(before)
        length += len(before)
        label, word = match.groups()
        if word != word.strip():
            raise ValueError(f"{where}: entity {word!r} has spaces at its ends")
        entities.append({"word": word, "entity_group": label, "start": length, "end": length + len(word)})
        pieces.append(word)
        length += len(word)
        cursor = match.end()
    pieces.append(marked[cursor:])
    text = "".join(pieces)
    if "{" in text or "}" in text:
        raise ValueError(f"{where}: a brace is left after the marks are removed (a mistyped mark?): {text[:200]!r}")
    return text, entities


def read_written() -> list[tuple[str, str, list[dict]]]:
    """(topic, text, entities) of every hand-written e-mail, in id order."""
    emails = []
    for path in sorted(WRITTEN.glob("*.txt")):
        blocks = re.split(r"^=== (.+)\n", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
        if blocks[0].strip():
            raise ValueError(f"{path.name}: text before the first '=== topic' line")
        for topic, body in zip(blocks[1::2], blocks[2::2]):
            where = f"{path.name}, e-mail {len(emails) + 1} ({topic.strip()})"
            text, entities = unmark(body.strip("\n").rstrip(), where)
            emails.append((topic.strip(), text, entities))
    return emails


def main() -> None:
    emails = read_written()
    FOLDER.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "entities"])
        for k, (_, text, entities) in enumerate(emails, start=1):
            writer.writerow([f"real-{k:03d}", text, json.dumps(entities, ensure_ascii=False)])
    counts = Counter(e["entity_group"] for _, _, entities in emails for e in entities)
    print(f"{len(emails)} e-mails, {sum(counts.values())} entities")
    print(" | ".join(f"{label} {counts[label]}" for label in LABELS))
    print(dict(Counter(topic for topic, _, _ in emails)))


if __name__ == "__main__":
    main()
