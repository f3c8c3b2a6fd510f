r"""Response formats: each type renders an example's entities as response text (`to_str`) and reads such
text back into mentions (`from_str`), so the format a model is trained on and the parser cannot drift.

Two formats:

- `entity_list` (compact, the default): one entity per line in order of appearance, every occurrence
  listed, `text | LABEL`; `none` alone when there is no entity. A newline inside an entity becomes a
  space. When an entity's text also occurs as whole tokens, but not as that entity, between the previous
  entity and it, its line gets the occurrence number among those occurrences from the previous entity
  on (`Stato | ORG | 2`), so the list always maps back to the exact tokens. This is rare (once in all of
  CoNLL-2003 and KIND), so the model almost always sees plain `text | LABEL` lines.
      EU | ORG
      German | MISC
      British | MISC
- `inline`: the input text rewritten with each entity bracketed in place:
      [EU | ORG] rejects [German | MISC] call to boycott [British | MISC] lamb .
  A backslash escapes what would otherwise be read as markup: inside an entity every `\`, `[`, `]` and
  `|` is written `\\`, `\[`, `\]`, `\|`; outside entities every `[` is written `\[`, and a `\` that
  precedes one of those four characters (or ends a stretch of plain text) is doubled. Texts without
  those characters (almost all) are copied unchanged, and the round trip is exact for every text.

`from_str` only splits the response into mentions and counts what it could not read: a line (or an
entity bracket) it cannot read is `malformed`, unless it is the last one and generation stopped at its
token limit (`hit_limit=True`), when it is `truncated`. Finding mentions in the input text, snapping them
to tokens and resolving overlaps is the parser's job (`inference.grounding`). Labels are returned as written.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from instruct_ner.examples import DataError, Example

FORMAT_NAMES = ("entity_list", "inline")


@dataclass(frozen=True)
class Mention:
    """An entity as the response states it. `start`/`end` pin it in the input text when the format can."""

    text: str
    label: str
    line: int
    occurrence: int | None = None
    start: int | None = None
    end: int | None = None


@dataclass
class ReadMentions:
    mentions: list[Mention] = field(default_factory=list)
    malformed: int = 0
    truncated: int = 0
    no_entity_marker: bool = False  # the response says there is no entity (`none`; inline: the bare text)
    lines: int = 0


class EntityListFormat:
    """`text | LABEL` lines in order of appearance; `none` for no entity."""

    name = "entity_list"
    separator = " | "
    none_marker = "none"
    description = "one entity per line as `text | LABEL`, in order of appearance; `none` if there is none"

    def to_str(self, example: Example) -> str:
        """Example: an example "EU rejects German call" tagged B-ORG O B-MISC O -> "EU | ORG\\nGerman | MISC" """
        lines, cursor = [], 0
        for entity in example.entities:
            text = " ".join(entity.text.split())
            line = f"{text}{self.separator}{entity.label}"
            starts = [start for start, _ in aligned_occurrences(example.text, example.offsets, entity.text, cursor)]
            occurrence = starts.index(entity.start) + 1
            if occurrence > 1:
                line += f"{self.separator}{occurrence}"
            lines.append(line)
            cursor = entity.end
        return "\n".join(lines) if lines else self.none_marker

    def from_str(self, response: str, text: str | None = None, hit_limit: bool = False) -> ReadMentions:
        """Mentions in order. The label is what follows the last `|` (an entity text may contain `|`).

        Example: from_str("EU | ORG\\nGerman | MISC").mentions
        -> [Mention("EU", "ORG", 1), Mention("German", "MISC", 2)]
        """
        read = ReadMentions()
        lines = [(n, line.strip()) for n, line in enumerate(response.split("\n"), start=1) if line.strip()]
        read.lines = len(lines)
        for position, (number, line) in enumerate(lines):
            last = position == len(lines) - 1
            if line.lower().strip(" .") in (self.none_marker, "nessuna", "nessuno", "no entities"):
                read.no_entity_marker = True
                continue
            head, _, label = line.rpartition("|")
            occurrence = None
            before, _, label_before = head.rpartition("|")
            if label.strip().isdigit() and before.strip() and label_before.strip():
                occurrence, head, label = int(label.strip()), before, label_before
            entity, label = head.strip(), label.strip()
            if not entity or not label or any(c.isspace() for c in label):
                if last and hit_limit:
                    read.truncated += 1
                else:
                    read.malformed += 1
                continue
            read.mentions.append(Mention(entity, label, number, occurrence))
        return read


SPECIAL = "\\[]|"
# an entity at a `[`: escaped or plain characters (no newline), ` | `, a label, `]`
INLINE_ENTITY = re.compile(r"\[((?:\\[\\\[\]|]|[^\\\[\]|\n])+?) \| ([^\[\]|\n]+?)\]")
UNESCAPE = re.compile(r"\\([\\\[\]|])")


def escapable(text: str) -> int:
    """How many characters of a text the inline format may escape. Example: escapable("AT|T [x]") -> 3"""
    return sum(c in SPECIAL for c in text)


def escape_entity(text: str) -> str:
    """Entity text as the inline format writes it. Example: escape_entity("AT|T [x]") -> "AT\\|T \\[x\\]" """
    return "".join("\\" + c if c in SPECIAL else c for c in text)


def escape_plain(text: str) -> str:
    """Text outside entities as the inline format writes it: `[` escaped, a `\\` doubled where it would escape.

    Example: escape_plain("a [b] c") -> "a \\[b] c"
    """
    out = []
    for i, c in enumerate(text):
        if c == "[" or (c == "\\" and (i + 1 == len(text) or text[i + 1] in SPECIAL)):
            out.append("\\")
        out.append(c)
    return "".join(out)


class InlineFormat:
    """The input text with each entity written in place as `[text | LABEL]`."""

    name = "inline"
    description = "the input text rewritten with each entity marked in place as `[text | LABEL]`"

    def to_str(self, example: Example) -> str:
        """Example: "EU rejects German call" (B-ORG O B-MISC O) -> "[EU | ORG] rejects [German | MISC] call" """
        pieces, cursor = [], 0
        for entity in example.entities:
            pieces.append(escape_plain(example.text[cursor : entity.start]))
            pieces.append(f"[{escape_entity(entity.text)} | {entity.label}]")
            cursor = entity.end
        pieces.append(escape_plain(example.text[cursor:]))
        return "".join(pieces)

    def from_str(self, response: str, text: str | None = None, hit_limit: bool = False) -> ReadMentions:
        """Mentions in order; pinned to offsets in `text` when the response reproduces the text (spacing aside).

        The response is scanned left to right: `\\` + a special character is that character, a `[` that
        opens `[text | LABEL]` is an entity, anything else is plain text.
        """
        read = ReadMentions(lines=len(response.split("\n")) if response.strip() else 0)
        plain_parts: list[str] = []
        found: list[tuple[re.Match, int, int, str]] = []  # (match, plain start, plain end, entity text)
        plain_length, i, unclosed, stray = 0, 0, False, 0
        while i < len(response):
            c = response[i]
            if c == "\\" and i + 1 < len(response) and response[i + 1] in SPECIAL:
                plain_parts.append(response[i + 1])
                plain_length, i = plain_length + 1, i + 2
                continue
            if c == "[":
                if (match := INLINE_ENTITY.match(response, i)) is not None:
                    inner = UNESCAPE.sub(r"\1", match.group(1))
                    found.append((match, plain_length, plain_length + len(inner), inner))
                    plain_parts.append(inner)
                    plain_length, i = plain_length + len(inner), match.end()
                    continue
                closing = response.find("]", i)
                if closing < 0:
                    unclosed = True  # a bracket never closed: cut by the token limit, or malformed
                elif "\n" not in response[i:closing]:
                    stray += 1
            plain_parts.append(c)
            plain_length, i = plain_length + 1, i + 1
        plain = "".join(plain_parts)
        if unclosed:
            if hit_limit:
                read.truncated += 1
            else:
                read.malformed += 1
        if text is None or "[" not in text:
            read.malformed += stray  # a bracketed stretch that is not `[text | LABEL]`
        pin = _plain_to_text_map(plain, text) if text is not None else None
        # the text copied back without a bracket is this format's way of saying "no entity"
        read.no_entity_marker = not found and not unclosed and not stray and pin is not None
        line_starts = [m.start() for m in re.finditer(r"^", response, flags=re.MULTILINE)]
        for match, start, end, inner in found:
            line = bisect.bisect_right(line_starts, match.start())
            mention = Mention(inner.strip(), match.group(2).strip(), line)
            if pin is not None:
                lead = len(inner) - len(inner.lstrip())
                trail = len(inner) - len(inner.rstrip())
                pinned_start, pinned_end = pin(start + lead), pin(end - 1 - trail)
                if pinned_start is not None and pinned_end is not None:
                    mention = Mention(mention.text, mention.label, line, None, pinned_start, pinned_end + 1)
            read.mentions.append(mention)
        return read


def _plain_to_text_map(plain: str, text: str):
    """A function from positions in `plain` to positions in `text` if both have the same non-space characters."""
    plain_positions = [i for i, c in enumerate(plain) if not c.isspace()]
    text_positions = [i for i, c in enumerate(text) if not c.isspace()]
    if len(plain_positions) != len(text_positions):
        return None
    if any(plain[p] != text[t] for p, t in zip(plain_positions, text_positions)):
        return None
    index = {p: t for p, t in zip(plain_positions, text_positions)}
    return index.get


def aligned_occurrences(text: str, offsets: list[tuple[int, int]], needle: str, cursor: int) -> list[tuple[int, int]]:
    """Character spans where `needle` occurs in `text` from `cursor` on, starting and ending on token bounds.

    Example: aligned_occurrences("USA and US", [(0, 3), (4, 7), (8, 10)], "US", 0) -> [(8, 10)]
    """
    if not needle:
        return []
    starts, ends = {s for s, _ in offsets}, {e for _, e in offsets}
    found, position = [], text.find(needle, cursor)
    while position >= 0:
        if position in starts and position + len(needle) in ends:
            found.append((position, position + len(needle)))
        position = text.find(needle, position + 1)
    return found


FORMATS = {"entity_list": EntityListFormat(), "inline": InlineFormat()}


def get_format(name: str):
    if name not in FORMATS:
        raise DataError("response_format", f"unknown response format {name!r}; expected one of {', '.join(FORMATS)}")
    return FORMATS[name]
