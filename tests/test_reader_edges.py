"""Issue "Nothing overwritten, nothing mixed, no traceback", items 10 and 11: reader edge cases that lost or
mixed data silently (CoNLL separators and blank lines, duplicate CSV ids, case-insensitive entity search,
JSONL tokens against their text, entities inside a token) and errors naming the wrong line. Inputs inline."""

import json

import pytest

from instruct_ner.examples import DataError
from instruct_ner.prompts.readers import ReaderOptions, load_examples
from instruct_ner.prompts.tokenize import tokenize_with_offsets


def write(path, text):
    path.write_text(text, encoding="utf-8", newline="")
    return path


def load(path, **options):
    return load_examples(path, ReaderOptions(**options))


def write_wide(path, rows, header=("text", "entities")):
    lines = [",".join(header)]
    for row in rows:
        lines.append(",".join('"' + str(cell).replace('"', '""') + '"' for cell in row))
    return write(path, "\n".join(lines) + "\n")


# ------------------------------------------------------------------------------------------ CoNLL columns


def test_conll_token_keeps_a_non_breaking_space(tmp_path):
    path = write(tmp_path / "nbsp.txt", "New\u00a0York B-LOC\nis O\n\nthe\u2009end O\n")
    examples, _ = load(path)
    assert [e.tokens for e in examples] == [["New\u00a0York", "is"], ["the\u2009end"]]
    assert [e.tags for e in examples] == [["B-LOC", "O"], ["O"]]


def test_conll_token_of_only_other_whitespace_is_an_error(tmp_path):
    path = write(tmp_path / "nbsp.txt", "EU B-ORG\n\u00a0 O\n")
    with pytest.raises(DataError, match=rf"{path}:2: empty token"):
        load(path)


@pytest.mark.parametrize("line", ["EU \tB-ORG", "EU\t B-ORG", "EU \t  B-ORG", " EU \tB-ORG "])
def test_conll_space_and_tab_around_a_tab_are_one_separator(tmp_path, line):
    path = write(tmp_path / "mixed.tsv", f"{line}\nrejects\tO\n")
    (example,), _ = load(path)
    assert example.tokens == ["EU", "rejects"] and example.tags == ["B-ORG", "O"]


def test_conll_tab_separated_token_keeps_inner_spaces_and_empty_columns(tmp_path):
    # as before: a tab file's token may hold spaces, and two tabs make an empty column
    path = write(tmp_path / "kind.tsv", "New York\t_\tB-LOC\nis\t\tO\n")
    (example,), _ = load(path)
    assert example.tokens == ["New York", "is"] and example.tags == ["B-LOC", "O"]


def test_conll_whitespace_only_line_is_a_boundary_counted_and_listed(tmp_path):
    path = write(tmp_path / "ws.txt", "EU B-ORG\n \t \nrejects O\n\nPeter B-PER\n")
    examples, report = load(path)
    assert [e.tokens for e in examples] == [["EU"], ["rejects"], ["Peter"]]  # conlleval's reading of ^\s*$
    assert report.notes["whitespace_only_lines"] == 1
    assert report.notices == [f"{path}:2: a line of only whitespace, read as a sentence boundary"]
    assert f"{path}:2: a line of only whitespace" in report.summary()
    clean, report = load(write(tmp_path / "clean.txt", "EU B-ORG\n\nPeter B-PER\n"))
    assert len(clean) == 2 and not report.notes and not report.notices


def test_conll_unknown_label_names_the_line_holding_it(tmp_path):
    path = write(tmp_path / "a.txt", "Paris B-LOC\nis O\nfine I-XYZ\n")
    with pytest.raises(DataError, match=rf"^{path}:3: label\(s\) \['XYZ'\] not in the label set \['LOC'\]"):
        load(path, labels=["LOC"])
    examples, report = load(path, labels=["LOC"], on_error="skip")
    assert examples == [] and report.skipped == {"unknown_label": 1} and f"{path}:3:" in report.errors[0]


def test_long_csv_unknown_label_names_the_row_holding_it(tmp_path):
    path = write(tmp_path / "long.csv", "sentence_id,word,entity_group\n1,Paris,LOC\n1,is,O\n1,Acme,ORG\n")
    with pytest.raises(DataError, match=rf"^{path}:4 \(row 3\): label\(s\) \['ORG'\] not in the label set"):
        load(path, labels=["LOC"])


# ------------------------------------------------------------------------------------------ CSV ids


def test_wide_csv_duplicate_id_names_both_rows(tmp_path):
    path = write_wide(
        tmp_path / "dup.csv",
        [("r1", "Mario scrive", "[]"), ("r2", "Roma", "[]"), ("r1", "Luigi legge", "[]")],
        header=("id", "text", "entities"),
    )
    with pytest.raises(DataError, match=rf"^{path}:4 \(row 3\): id 'r1' is already the id of row 1 \(line 2\)"):
        load(path, id_column=["id"])
    examples, report = load(path, id_column=["id"], on_error="skip")
    assert [e.id for e in examples] == ["r1", "r2"] and report.skipped == {"duplicate_id": 1}


def test_long_csv_keys_that_join_to_one_id_are_an_error(tmp_path):
    rows = "doc_id,sentence_id,word,entity_group\na-b,c,x,O\na,b-c,y,O\n"
    path = write(tmp_path / "long.csv", rows)
    with pytest.raises(DataError, match=rf"^{path}:3 \(row 2\): id 'a-b-c' is already the id of row 1 \(line 2\)"):
        load(path)


def test_long_csv_key_that_comes_back_is_still_an_error(tmp_path):
    path = write(tmp_path / "long.csv", "sentence_id,word,entity_group\n1,a,O\n2,b,O\n1,c,O\n")
    with pytest.raises(DataError, match=r"\(row 3\): sentence_id '1' appears again after other texts"):
        load(path)


# ------------------------------------------------------------------------------------------ CSV entity search


@pytest.mark.parametrize(
    ("text", "words", "found"),
    [
        ("İstanbul e Roma .", ["istanbul", "Roma"], ["İstanbul", "Roma"]),  # İ lower-cases to two characters
        ("Die Straße in Roma .", ["STRAẞE", "roma"], ["Straße", "Roma"]),
        ("Vado a ROMA e a Milano .", ["roma", "milano"], ["ROMA", "Milano"]),
    ],
)
def test_case_insensitive_entity_search_keeps_offsets_of_the_text(tmp_path, text, words, found):
    entities = json.dumps([{"word": word, "entity_group": "LOC"} for word in words])
    (example,), _ = load(write_wide(tmp_path / "w.csv", [(text, entities)]))
    assert [(e.text, e.label) for e in example.entities] == [(word, "LOC") for word in found]
    assert [example.tokens[i] for i, tag in enumerate(example.tags) if tag != "O"] == found


# ------------------------------------------------------------------------------------------ JSONL


def test_jsonl_tokens_that_disagree_with_the_text_are_refused(tmp_path):
    good = {"id": 1, "text": "EU rejects", "tokens": ["EU", "rejects"], "offsets": [[0, 2], [3, 10]]}
    good["tags"] = ["O", "O"]
    bad = {**good, "id": 2, "tokens": ["EU", "accepts"]}
    path = write(tmp_path / "r.jsonl", json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    message = rf"^{path}:2: token 1 'accepts' is not the text at its offsets \[3, 10\], 'rejects'"
    with pytest.raises(DataError, match=message):
        load(path)
    examples, report = load(path, on_error="skip")
    assert [e.id for e in examples] == ["1"] and report.skipped == {"offsets_mismatch": 1}


# ------------------------------------------------------------------------------------------ entities inside a token


def test_cjk_entities_fall_on_tokens_of_one_character(tmp_path):
    entities = json.dumps([{"word": "東京", "entity_group": "LOC"}, {"word": "田中", "entity_group": "PER"}])
    (example,), report = load(write_wide(tmp_path / "ja.csv", [("東京に行った。田中さん", entities)]))
    assert example.tokens == ["東", "京", "に", "行", "っ", "た", "。", "田", "中", "さ", "ん"]
    assert [(e.text, e.label) for e in example.entities] == [("東京", "LOC"), ("田中", "PER")]
    assert not report.notes


def test_entity_covering_part_of_a_token_is_an_error_naming_the_row(tmp_path):
    entities = json.dumps([{"word": "Acme", "entity_group": "ORG"}])
    path = write_wide(tmp_path / "w.csv", [("Scrivete a Acme.it oggi", entities)])
    message = rf"^{path}:2 \(row 1\): entity 'Acme' \(ORG\) covers part of the token 'Acme.it'"
    with pytest.raises(DataError, match=message):
        load(path)
    examples, report = load(path, on_error="skip")
    assert examples == [] and report.skipped == {"partial_token": 1}


def test_cjk_characters_never_join_a_word_or_an_address():
    tokens = [token for token, _, _ in tokenize_with_offsets("連絡はmario@acme.it abc東京 2024年")]
    assert tokens == ["連", "絡", "は", "mario@acme.it", "abc", "東", "京", "2024", "年"]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"tokens": ["New\nYork", "is"], "tags": ["B-LOC", "O"]}, "expected a non-empty token without a line break"),
        ({"tokens": ["", "x"], "tags": ["B-LOC", "O"]}, "expected a non-empty token without a line break"),
        (
            {
                "text": "Roma vive a Mario .",
                "tokens": ["Mario", "vive", "a", "Roma", "."],
                "offsets": [[12, 17], [5, 9], [10, 11], [0, 4], [18, 19]],
                "tags": ["B-PER", "O", "O", "B-LOC", "O"],
            },
            "expected tokens in text order, not overlapping",
        ),
    ],
)
def test_records_that_break_the_response_round_trip_are_refused(tmp_path, record, message):
    """Issue 43, item 10: tokens out of text order, with a line break or empty rendered `[Mario | PER][Roma | LOC]`
    or failed with `ValueError: 0 is not in list`; now the JSONL line is named."""
    import json

    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"id": "r1", **record}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message) as error:
        load_examples(path)
    assert str(path) in str(error.value)
