"""Tag schemes at read time: detect the scheme of a source (IOB1, IO, BIOES/IOBES, BILOU) and convert it to IOB2,
then validate every sentence (`checked_tags`: conlleval's repair of an I- that opens an entity, or strict IOB2).

IOB1 and IO are decided over a whole source (`source_scheme`), BIOES/BILOU per sentence (`is_bioes`). Entity types
are checked here too (`check_label`: one word without `|`, `[` or `]`, as responses carry them).

This module reads no file. The span arithmetic every stage shares (`tags_to_spans`, `spans_to_tags`, `iob2_error`,
`iob1_to_iob2`, which is also the repair the tagger applies to its output) stays in `instruct_ner.examples`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from instruct_ner.examples import TAG_PATTERN, DataError, iob1_to_iob2, iob2_error
from instruct_ner.prompts.labels import LABEL_PATTERN, check_label  # noqa: F401  (re-exported)
from instruct_ner.prompts.readers.report import ReadReport

if TYPE_CHECKING:
    from instruct_ner.prompts.readers.options import ReaderOptions

SCHEMES = ("auto", "iob1", "iob2", "bioes", "io")
_PREFIXED = re.compile(r"^[BIESLU]-")


def is_iob1(tag_sequences: list[list[str]]) -> bool:
    """Whether sentences are in IOB1: I- opens entities and B- only splits two adjacent ones of one type.

    Example: is_iob1([["I-PER", "I-PER", "B-PER", "O"]]) -> True; is_iob1([["B-PER", "I-PER"]]) -> False
    """
    opens_with_inside = False
    for tags in tag_sequences:
        previous = "O"
        for tag in tags:
            if tag.startswith("I-") and previous[2:] != tag[2:]:
                opens_with_inside = True
            if tag.startswith("B-") and previous[2:] != tag[2:]:
                return False  # a B- that opens an entity after O or another type: IOB2 usage
            previous = tag
    return opens_with_inside


BIOES_PREFIX = re.compile(r"^[ESLU]-")  # the prefixes BIOES (S-, E-) and BILOU (U-, L-) add to B-/I-/O


def is_bioes(tags: list[str]) -> bool:
    """Whether tags use BIOES/IOBES (S- single, E- end) or BILOU (U- unit, L- last) prefixes, which IOB2 never does.

    Example: is_bioes(["S-PER", "O", "B-LOC", "E-LOC"]) -> True; is_bioes(["B-PER", "I-PER"]) -> False
    """
    return any(BIOES_PREFIX.match(tag) for tag in tags)


def bioes_to_iob2(tags: list[str]) -> list[str]:
    """Convert BIOES/IOBES or BILOU tags to IOB2: S-/U- (a one-word entity) become B-, E-/L- (its end) become I-.

    Example: bioes_to_iob2(["S-PER", "O", "B-LOC", "I-LOC", "E-LOC", "U-ORG"]) ->
    ["B-PER", "O", "B-LOC", "I-LOC", "I-LOC", "B-ORG"]
    """
    return [
        {"S": "B", "U": "B", "E": "I", "L": "I"}[tag[0]] + tag[1:] if BIOES_PREFIX.match(tag) else tag for tag in tags
    ]


def checked_tags(tags: list[str], where_of, options: ReaderOptions, report: ReadReport) -> list[str]:
    """IOB2 tags after the conlleval repair (I- opening an entity -> B-), or DataError at the first bad tag.

    `where_of(i)` names token i (file:line or row). BIOES/BILOU tags are converted first (scheme auto or
    bioes; counted per sentence as `converted_bioes`). With `options.labels` set, a type outside it is an error
    naming the first token that holds one (`unknown_label`). With `options.repair_tags` false an I- (or E-/L-) that
    opens an entity is an error (strict IOB2); otherwise each repair is counted and listed in the report.
    Example: checked_tags(["O", "I-PER"], str, ReaderOptions(), report) -> ["O", "B-PER"]
    """
    original = tags
    if options.scheme in ("auto", "bioes") and is_bioes(tags):
        tags = bioes_to_iob2(tags)
        report.notes["converted_bioes"] += 1
    for i, tag in enumerate(tags):
        if not TAG_PATTERN.match(tag):
            hint = " (BIOES/BILOU tags: --scheme auto or bioes)" if is_bioes([tag]) else ""
            expected = "O, B-TYPE or I-TYPE" if options.scheme != "bioes" else "O or a B-, I-, E-, S-, L- or U-TYPE"
            raise DataError(where_of(i), f"invalid tag {tag!r}; expected {expected}{hint}", "invalid_tag")
        if tag != "O":
            check_label(tag[2:], where_of(i))
    if options.labels is not None and (unknown := {tag[2:] for tag in tags if tag != "O"} - set(options.labels)):
        first = next(i for i, tag in enumerate(tags) if tag[2:] in unknown)
        message = f"label(s) {sorted(unknown)} not in the label set {options.labels}"
        raise DataError(where_of(first), message, "unknown_label")
    if not options.repair_tags:
        if (error := iob2_error(tags)) is not None:
            position, message = error
            if original[position] != tags[position]:
                message += f" (read from {original[position]})"
            raise DataError(where_of(position), message, "invalid_sequence")
        return tags
    repaired = iob1_to_iob2(tags)
    for i, (before, after) in enumerate(zip(tags, repaired)):
        if before != after:
            previous = original[i - 1] if i else None
            context = "starts an entity" if previous == "O" else f"follows {previous}"
            context = "starts the sentence" if i == 0 else context
            report.repair(where_of(i), f"{original[i]} {context}: read as {after}")
    return repaired


def source_scheme(tag_sequences: list[list[str]], scheme: str, report: ReadReport, plain_groups: bool = False) -> str:
    """The tag scheme of a whole file or dataset, counted in the report when it is converted as a whole.

    `scheme` unless it is "auto"; then "io" when no tag anywhere has a B-/I-/E-/S-/L-/U- prefix and some are `O`
    (Few-NERD; a column of POS tags has no `O` and stays an error), or with `plain_groups` (word/entity-group
    CSVs) whenever no tag has a prefix; "iob1" when I- opens entities and B- only splits them; else "iob2"
    (BIOES/BILOU sentences are converted one by one in `checked_tags`).
    Example: source_scheme([["O", "PER", "PER"]], "auto", report) -> "io"
    """
    if scheme == "auto":
        tags = {tag for sequence in tag_sequences for tag in sequence}
        if not any(_PREFIXED.match(tag) for tag in tags) and tags - {"O"} and (plain_groups or "O" in tags):
            scheme = "io"
        else:
            scheme = "iob1" if is_iob1(tag_sequences) else "iob2"
    if scheme in ("io", "iob1"):
        report.notes[f"converted_{scheme}"] += len(tag_sequences)
    return scheme


def scheme_to_iob2(tags: list[str], scheme: str) -> list[str]:
    """Tags of a source read in `scheme` as IOB2 (BIOES is left to `checked_tags`, which validates every tag).

    Example: scheme_to_iob2(["PER", "PER", "O"], "io") -> ["B-PER", "I-PER", "O"]
    """
    if scheme == "io":
        return _groups_to_iob2(tags)
    return iob1_to_iob2(tags) if scheme == "iob1" else tags


def _groups_to_iob2(groups: list[str]) -> list[str]:
    """Plain entity groups per word -> IOB2; consecutive words of one group form one entity.

    Example: _groups_to_iob2(["PER", "PER", "O", "ORG"]) -> ["B-PER", "I-PER", "O", "B-ORG"]
    """
    tags, previous = [], "O"
    for group in groups:
        if group == "O":
            tags.append("O")
        elif not LABEL_PATTERN.fullmatch(group):
            tags.append(group)  # left for checked_tags to report
        else:
            tags.append(("I-" if group == previous else "B-") + group)
        previous = group
    return tags
