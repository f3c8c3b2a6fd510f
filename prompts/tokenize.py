"""A deterministic word tokenizer that keeps character offsets, and a sentence splitter, for raw texts.

Used for CSV inputs, whose texts (often e-mails) arrive untokenised. The rules, tried in this order at
each position, are:

1. e-mail addresses (`mario.rossi@acme.it`) and URLs (`https://acme.it/x`) stay whole;
2. an elided article or preposition keeps its apostrophe and is split from the next word
   (`dell'Ufficio` -> `dell'`, `Ufficio`), as the KIND corpus does; English `'s`/`'t` are not elisions
   but tokens of their own;
3. dotted abbreviations stay whole (`U.S.`, `S.p.A.`);
4. numbers keep internal separators (`1.250,00`, `10:30`, `2024/0042`, `+39`);
5. a character of a script written without spaces between words (Han, Hiragana, Katakana: `CJK`) is a token of
   its own (`東京に` -> `東`, `京`, `に`), so an entity of such a text falls on token bounds, as in character-level
   Chinese and Japanese NER corpora;
6. words keep inner hyphens, slashes and dots followed by a word character (`INV-2024/0042`, `acme.it`); no word
   or e-mail address holds a `CJK` character (`連絡はmario@acme.it` -> ..., `は`, `mario@acme.it`);
7. any other non-space character is a token of its own.

It does not normalise text, lower-case, or split clitics other than elisions. Whitespace is never part
of a token, so `text[start:end] == token` for every token.
"""

from __future__ import annotations

import re

CJK = (
    "\u3005-\u3007\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\uff66-\uff9f\U00020000-\U0003134f"
)  # for a character class: Han (with 々 〆 〇), Hiragana, Katakana (with the half-width forms)
TOKEN_PATTERN = re.compile(
    r"""
    (?:[^\W<cjk>]|[.+-])+@[\w-]+(?:\.[\w-]+)+       # e-mail
  | https?://[^\s<>"']+[^\s<>"'.,;:!?)\]]          # URL, without trailing punctuation
  | [^\W\d_]{1,6}['’](?=[^\W\d_])(?![st]\b)       # elision: l' dell' quest' (not English 's 't)
  | (?:[^\W\d_]\.){2,}                            # abbreviation: U.S. S.p.A.
  | [+-]?\d+(?:[.,:/'’-]\d+)*                      # number: 1.250,00 10:30 +39
  | [<cjk>]                                       # a character of a script without spaces: 東 京 に
  | [^\W<cjk>]+(?:[-/.][^\W<cjk>]+)*               # word: INV-2024/0042 acme.it (none of those characters)
  | ['’][st]\b                                     # English clitic: 's 't
  | \S                                             # anything else, one character
    """.replace("<cjk>", CJK),
    re.VERBOSE,
)

ABBREVIATIONS = {
    "dott",
    "dr",
    "sig",
    "sigg",
    "ra",
    "ing",
    "avv",
    "prof",
    "geom",
    "rag",
    "spett",
    "egr",
    "gent",
    "mr",
    "mrs",
    "ms",
    "st",
    "jr",
    "vs",
    "ecc",
    "etc",
    "es",
    "n",
    "nr",
    "tel",
    "fax",
    "art",
    "pag",
    "cfr",
    "p",
    "ca",
    "no",
    "inc",
    "ltd",
    "co",
    "corp",
    "gen",
    "sen",
    "rep",
    "gov",
    "col",
    "capt",
    "lt",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
}
DOTTED_END = re.compile(r"(?<![\w.])(?:[^\W\d_]\.){2,}$")  # S.p.A. U.S. at the end of what precedes
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'«(]?[A-ZÀ-Ý0-9])|\s*\n\s*")


def tokenize_with_offsets(text: str) -> list[tuple[str, int, int]]:
    """Split text into (token, start, end) triples.

    Example: tokenize_with_offsets("dell'Ufficio: 1.250,00") ->
        [("dell'", 0, 5), ("Ufficio", 5, 12), (":", 12, 13), ("1.250,00", 14, 22)]
    """
    return [(m.group(), m.start(), m.end()) for m in TOKEN_PATTERN.finditer(text)]


LOOK_BACK = 64  # characters before a . ! ? that decide whether it ends a sentence (linear time in the text)


def sentence_bounds(text: str) -> list[tuple[int, int]]:
    """Character spans of sentences: split at line breaks and after . ! ? before a capital or digit, but not after
    a known abbreviation (dott., sig., Mr., ecc., n., Jan.), a dotted one (S.p.A., U.S.), an initial (J. Smith) or
    the number that opens a list item (`1. Consegna`, `10. Troy Benson`).

    Example: sentence_bounds("Ciao Mario.\\nGrazie. A presto") -> [(0, 11), (12, 19), (20, 28)]
    Example: sentence_bounds("1. J. Smith ( U.S. ) 25.76") -> [(0, 26)]
    """
    bounds, start = [], 0
    for match in SENTENCE_END.finditer(text):
        if "\n" not in match.group() and not ends_sentence(text[max(0, match.start() - LOOK_BACK) : match.start()]):
            continue  # "dott. Rossi", "Mr. Smith", "Acme S.p.A. Milano", "J. Smith", "1. Consegna": not an end
        if match.start() > start:
            bounds.append((start, match.start()))
        start = match.end()
    if start < len(text) and text[start:].strip():
        bounds.append((start, len(text.rstrip())))
    return bounds


def ends_sentence(before: str) -> bool:
    """Whether the . ! ? that `before` ends with (followed by a space and a capital or digit) ends a sentence: not
    after a known or dotted abbreviation, a one-letter initial, or a list item's number alone on its line so far.

    Example: [ends_sentence(x) for x in ["in 1996.", "Sig.", "B.", "1.", "Item 1."]] -> [True, False, False, False,
        True]
    """
    word = re.search(r"(?:^|[^\w.])(\w+)\.$", before)
    if DOTTED_END.search(before) or (word and word.group(1).lower() in ABBREVIATIONS):
        return False
    if word and len(word.group(1)) == 1 and word.group(1).isupper():
        return False  # an initial: "J. Smith", "B. Young c Moin Khan"
    whole_line = "\n" in before or len(before) < LOOK_BACK  # the look back reaches the start of the line
    return not (whole_line and re.fullmatch(r"[ \t]*\d{1,3}\.", before.rsplit("\n", 1)[-1]))  # "10. Troy Benson"


# The first line of a quoted or forwarded message inside an e-mail (a reply's attribution line, a forward's or
# Outlook's header block), in Italian and English as mail clients write them. Each pattern matches at a line start.
MESSAGE_HEADER = re.compile(
    r"""^[ \t>]*(?:
        (?:Il\ giorno|In\ data|On|Am|Le)\b[^\n]{0,200}?(?:\n[^\n]{0,120}?)?
            \b(?:ha\ scritto|hanno\ scritto|wrote|schrieb|a\ écrit)\s*:[ \t]*$      # Il giorno ... ha scritto:
      | -{2,}\s*(?:Messaggio\ originale|Original\ Message|Messaggio\ inoltrato|Forwarded\ message)\s*-{2,}
      | (?:Inizio\ messaggio\ inoltrato|Begin\ forwarded\ message)\s*:
      | (?:Da|From)\s*:[^\n]*\n(?:[ \t>]*[^\n]*\n){0,2}?[ \t>]*(?:Inviato|Data|Sent|Date|A|To)\s*:  # Da: / Inviato:
    )""",
    re.VERBOSE | re.MULTILINE | re.IGNORECASE,
)


HEADER_FIELD = re.compile(
    r"[ \t>]*(?:Da|From|Inviato|Data|Sent|Date|A|To|Cc|Ccn|Bcc|Oggetto|Subject|Priorità|Importance)[ \t]*:[^\n]*",
    re.IGNORECASE,
)


def message_headers(text: str) -> list[tuple[int, int]]:
    """Character spans of the header blocks that open a quoted or forwarded message inside a text (an attribution
    line, a forward's separator, an Outlook block with its `A:`/`Oggetto:` lines), in text order; none for a text
    of one message (a header at the very start opens the text itself). A long e-mail is windowed message by message
    (`inference.windows`): a reply and the mail it quotes are separate texts to their writers.

    Example: message_headers("Va bene.\\n\\nIl giorno 3 marzo Mario ha scritto:\\n> Ciao") -> [(10, 46)]
    """
    headers: list[tuple[int, int]] = []
    for match in MESSAGE_HEADER.finditer(text):
        first = match.start() + len(match.group()) - len(match.group().lstrip(" \t>"))
        line_end = text.find("\n", match.end())
        end = len(text) if line_end < 0 else line_end
        while end < len(text) and (field := HEADER_FIELD.match(text, end + 1)):  # the block's other field lines
            end = field.end()
        if headers and text.count("\n", headers[-1][1], first) <= 1:  # the same header block, continued
            headers[-1] = (headers[-1][0], max(headers[-1][1], end))
        elif first > 0 and text[:first].strip():
            headers.append((first, end))
    return headers
