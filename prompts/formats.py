"""Response formats: each type renders an example's entities as response text (`to_str`) and reads such
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

`from_str` only splits the response into mentions and counts what it could not read (malformed or
truncated lines); finding mentions in the input text, snapping them to tokens and resolving overlaps is
the parser's job (`inference.parser`). Labels are returned as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from instruct_ner.prompts.examples import Example

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
    no_entity_marker: bool = False
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

    def from_str(self, response: str, text: str | None = None) -> ReadMentions:
        """Example: from_str("EU | ORG\\nGerman | MISC").mentions
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
            parts = [part.strip() for part in line.split("|")]
            occurrence = None
            if len(parts) >= 3 and parts[-1].isdigit():
                occurrence = int(parts.pop())
            if len(parts) < 2 or not parts[-1] or not "|".join(parts[:-1]).strip():
                if last:
                    read.truncated += 1
                else:
                    read.malformed += 1
                continue
            read.mentions.append(Mention(" | ".join(parts[:-1]), parts[-1], number, occurrence))
        return read


INLINE_ENTITY = re.compile(r"\[([^\[\]|\n]+?) \| ([^\[\]|\n]+?)\]")


class InlineFormat:
    """The input text with each entity written in place as `[text | LABEL]`."""

    name = "inline"
    description = "the input text rewritten with each entity marked in place as `[text | LABEL]`"

    def to_str(self, example: Example) -> str:
        """Example: "EU rejects German call" (B-ORG O B-MISC O) -> "[EU | ORG] rejects [German | MISC] call" """
        pieces, cursor = [], 0
        for entity in example.entities:
            pieces.append(example.text[cursor : entity.start])
            pieces.append(f"[{entity.text} | {entity.label}]")
            cursor = entity.end
        pieces.append(example.text[cursor:])
        return "".join(pieces)

    def from_str(self, response: str, text: str | None = None) -> ReadMentions:
        """Mentions in order; pinned to offsets in `text` when the response reproduces the text (spacing aside)."""
        read = ReadMentions(lines=len(response.splitlines()))
        matches = list(INLINE_ENTITY.finditer(response))
        plain_parts, positions, cursor, plain_length = [], [], 0, 0
        for match in matches:
            before = response[cursor : match.start()]
            plain_parts.append(before)
            plain_length += len(before)
            positions.append((plain_length, plain_length + len(match.group(1))))
            plain_parts.append(match.group(1))
            plain_length += len(match.group(1))
            cursor = match.end()
        tail = response[cursor:]
        plain_parts.append(tail)
        plain = "".join(plain_parts)
        if re.search(r"\[[^\]]*$", tail):
            read.truncated += 1  # an opened bracket never closed: generation stopped inside an entity
        read.malformed += len(re.findall(r"\[[^\[\]|]*\]", plain)) if text is None or "[" not in text else 0
        pin = _plain_to_text_map(plain, text) if text is not None else None
        line_starts = [m.start() for m in re.finditer(r"^", response, flags=re.MULTILINE)]
        for match, (start, end) in zip(matches, positions):
            line = sum(1 for s in line_starts if s <= match.start())
            mention = Mention(match.group(1).strip(), match.group(2).strip(), line)
            if pin is not None:
                inner = match.group(1)
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
        raise ValueError(f"unknown response format {name!r}; expected one of {', '.join(FORMATS)}")
    return FORMATS[name]
