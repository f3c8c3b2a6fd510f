"""Issue 14, items 2 and 4: Unicode variants of the input text are found (and counted), and diagnostics say
whether a response was cut by the token limit or is simply not in the response format. Texts inline."""

import json
import unicodedata

from instruct_ner.cli import main
from instruct_ner.examples import Example
from instruct_ner.inference.grounding import parse_response
from instruct_ner.prompts.tokenize import tokenize_with_offsets

LABELS = ["LOC", "MONEY", "ORG", "PER"]


def example(text: str) -> Example:
    tokenized = tokenize_with_offsets(text)
    tokens = [token for token, _, _ in tokenized]
    return Example("t", tokens, ["O"] * len(tokens), text, [(s, e) for _, s, e in tokenized])


def entities(response: str, text: str, fmt: str = "entity_list"):
    result = parse_response(response, example(text), LABELS, fmt)
    found = [(e.text, e.label, e.start, e.end) for e in result.entities]
    return found, result.diagnostics


def test_curly_apostrophe_in_the_text_straight_in_the_response():
    text = "Scrivo all’Ufficio Tributi di Roma"
    found, d = entities("all'Ufficio Tributi | ORG\nRoma | LOC", text)
    # offsets point into the ORIGINAL text, whose apostrophe is the curly one
    assert found == [("all’Ufficio Tributi", "ORG", 7, 26), ("Roma", "LOC", 30, 34)]
    assert d.normalised == 1 and d.hallucinated == 0


def test_straight_apostrophe_in_the_text_curly_in_the_response():
    text = "Il direttore dell'Ufficio firma"
    found, d = entities("dell’Ufficio | ORG", text)
    assert found == [("dell'Ufficio", "ORG", 13, 25)] and d.normalised == 1 and d.hallucinated == 0


def test_nfd_text_nfc_response():
    text = unicodedata.normalize("NFD", "Vivo in città da anni")  # "a" + combining grave accent
    assert len(text) == 22
    found, d = entities("città | LOC", text)
    assert found == [(text[8:14], "LOC", 8, 14)] and d.normalised == 1 and d.hallucinated == 0


def test_nfc_text_nfd_response():
    text = "Vivo in città da anni"
    found, d = entities(unicodedata.normalize("NFD", "città") + " | LOC", text)
    assert found == [("città", "LOC", 8, 13)] and d.normalised == 1


def test_non_breaking_space_in_the_text_plain_space_in_the_response():
    text = "Importo di 1\u00a0250 euro dovuto"
    found, d = entities("1 250 euro | MONEY", text)
    assert found == [("1\u00a0250 euro", "MONEY", 11, 21)] and d.normalised == 1


def test_typographic_double_quotes():
    text = "La società “Alfa Beta” paga"
    found, d = entities('"Alfa Beta" | ORG', text)
    assert found == [("“Alfa Beta”", "ORG", 11, 22)] and d.normalised == 1


def test_inline_response_with_a_straight_apostrophe_is_found_in_a_curly_text():
    text = "Scrivo all’Ufficio oggi"
    found, d = entities("Scrivo [all'Ufficio | ORG] oggi", text, fmt="inline")
    assert found == [("all’Ufficio", "ORG", 7, 18)] and d.normalised == 1 and d.hallucinated == 0


def test_an_exact_match_is_not_counted_as_normalised():
    found, d = entities("all’Ufficio | ORG", "Scrivo all’Ufficio")
    assert found == [("all’Ufficio", "ORG", 7, 18)] and d.normalised == 0


def test_a_text_that_differs_by_more_than_normalisation_is_still_hallucinated():
    found, d = entities("dell’Agenzia | ORG", "Il direttore dell'Ufficio")
    assert found == [] and d.hallucinated == 1 and d.normalised == 0


# --------------------------------------------------------------------------------- 14.4 diagnostics

PROSE = (
    "The United Arab Emirates is a sovereign state in Western Asia at the eastern end of the Arabian "
    "Peninsula.\nIts capital is Abu Dhabi."
)


def test_zero_shot_prose_ending_normally_is_malformed_not_truncated():
    text = "UAE president visits Abu Dhabi"
    d = parse_response(PROSE, example(text), LABELS).diagnostics
    assert (d.malformed, d.truncated, d.entities) == (2, 0, 0)


def test_prose_cut_by_the_token_limit_counts_its_last_line_as_truncated():
    text = "UAE president visits Abu Dhabi"
    d = parse_response(PROSE, example(text), LABELS, hit_limit=True).diagnostics
    assert (d.malformed, d.truncated) == (1, 1)


def test_parse_reads_hit_max_new_tokens_from_generate_records(tmp_path, capsys):
    text = "UAE president visits Abu Dhabi"
    ex = example(text)
    base = {**ex.to_record(), "labels": LABELS, "response_format": "entity_list", "generation": PROSE}
    records = [{**base, "id": "a", "parse": {"hit_max_new_tokens": False}}, {**base, "id": "b", "parse": {}}]
    records.append({**base, "id": "c", "parse": {"hit_max_new_tokens": True}})
    path, out = tmp_path / "gen.jsonl", tmp_path / "reparsed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert main(["parse", "--data", str(path), "--out", str(out)]) == 0
    parsed = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(p["parse"]["malformed"], p["parse"]["truncated"]) for p in parsed] == [(2, 0), (2, 0), (1, 1)]
    assert parsed[2]["parse"]["hit_max_new_tokens"] is True


def test_score_makes_pure_prose_visible(tmp_path, capsys):
    ex = example("UAE president visits Abu Dhabi")
    result = parse_response(PROSE, ex, LABELS)
    record = {**ex.to_record(), "labels": LABELS, "pred_tags": result.pred_tags, "parse": result.diagnostics.to_dict()}
    path = tmp_path / "prose.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert main(["score", str(path)]) == 0
    out = capsys.readouterr().out
    assert "malformed 2, truncated 0" in out
    assert (
        "parse: 1 of 1 responses had text but no readable entity line (prose instead of the response format?)" in out
    )
