import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import needs_shared_data, shared_files
from instruct_ner.examples import DataError, iob1_to_iob2, iob2_error, tags_to_spans
from instruct_ner.prompts.readers import ReaderOptions, load_examples
from instruct_ner.prompts.readers.schemes import bioes_to_iob2, is_bioes, is_iob1


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def load(path, **options):
    return load_examples(path, ReaderOptions(**options))


# ------------------------------------------------------------------------------------------ CoNLL


def test_conll_space_separated_with_docstart(tmp_path):
    path = write(
        tmp_path / "a.txt", "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n"
    )
    examples, report = load(path)
    assert [e.tokens for e in examples] == [["EU", "rejects"], ["Peter"]]
    assert [e.tags for e in examples] == [["B-ORG", "O"], ["B-PER"]]
    assert examples[0].source == f"{path}:3" and report.read == 2


def test_conll_tab_separated_keeps_apostrophes(tmp_path):
    path = write(tmp_path / "kind.tsv", "l'\tO\nIstituto\tB-LOC\nLama\tI-LOC\n")
    (example,), _ = load(path)
    assert example.tokens == ["l'", "Istituto", "Lama"] and example.tags == ["O", "B-LOC", "I-LOC"]


def test_conll_iob1_is_detected_and_converted(tmp_path):
    path = write(
        tmp_path / "iob1.txt", "EU I-ORG\nrejects O\nGerman I-MISC\nBritish B-MISC\n\nPeter I-PER\nBlair I-PER\n"
    )
    examples, report = load(path)
    assert examples[0].tags == ["B-ORG", "O", "B-MISC", "B-MISC"]
    assert examples[1].tags == ["B-PER", "I-PER"]
    assert report.notes["converted_iob1"] == 2


def test_conll_bioes_and_bilou_are_detected_and_converted(tmp_path):
    path = write(tmp_path / "bioes.txt", "John S-PER\nlives O\nin O\nNew B-LOC\nYork E-LOC\n\nRome U-LOC\nFC L-ORG\n")
    examples, report = load(path)
    assert examples[0].tags == ["B-PER", "O", "O", "B-LOC", "I-LOC"]
    assert examples[1].tags == ["B-LOC", "B-ORG"]  # L-ORG opens nothing: repaired, and the repair names the tag read
    assert report.notes["converted_bioes"] == 2
    assert report.repairs == [f"{path}:8: L-ORG follows U-LOC: read as B-ORG"]


def test_conll_bioes_errors_name_the_tag_in_the_file(tmp_path):
    path = write(tmp_path / "bioes.txt", "a O\nYork E-LOC\n")
    with pytest.raises(DataError, match=rf"{path}:2: I-LOC starts an entity; expected B-LOC or O \(read from E-LOC\)"):
        load(path, repair_tags=False)
    with pytest.raises(DataError, match=rf"{path}:2: invalid tag 'E-LOC'; .* --scheme auto or bioes"):
        load(path, scheme="iob2")


def test_conll_comment_lines_before_a_sentence_are_skipped_and_counted(tmp_path):
    multiconer = "# id 0f6c domain=en\nanna _ _ B-PER\n# _ _ O\n\n# id 77a1 domain=en\nrome _ _ B-LOC\n"
    examples, report = load(write(tmp_path / "en_dev.conll", multiconer))
    assert [(e.tokens, e.tags) for e in examples] == [(["anna", "#"], ["B-PER", "O"]), (["rome"], ["B-LOC"])]
    assert report.notes["comment_lines"] == 2 and examples[1].source.endswith(":6")
    conllu = "# sent_id = 1\n# text = # Milano\n#\tO\nMilano\tB-LOC\n"  # the token "#" opens the sentence
    (example,), report = load(write(tmp_path / "u.tsv", conllu))
    assert example.tokens == ["#", "Milano"] and report.notes["comment_lines"] == 2


def test_conll_io_tags_are_detected_and_converted(tmp_path):
    fewnerd = (
        "London\tlocation-GPE\nBridge\tlocation-GPE\nby\tO\nJohn\tperson-artist/author\nRennie\tperson-artist/author\n"
    )
    (example,), report = load(write(tmp_path / "supervised.txt", fewnerd))
    assert example.tags == [
        "B-location-GPE",
        "I-location-GPE",
        "O",
        "B-person-artist/author",
        "I-person-artist/author",
    ]
    assert report.notes["converted_io"] == 1


def test_conll_column_without_tags_is_still_an_error(tmp_path):
    path = write(tmp_path / "pos.txt", "EU NNP\nrejects VBZ\n")  # no O anywhere: not IO, a file without NER tags
    with pytest.raises(DataError, match=rf"{path}:1: invalid tag 'NNP'"):
        load(path)


def test_conll_wrong_column_count_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.txt", "EU NNP B-ORG\nrejects O\n")
    with pytest.raises(DataError, match=rf"{path}:2: expected 3 columns as on line 1, found 2"):
        load(path)


def test_conll_single_column_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.txt", "EU B-ORG\n\nrejects\n")
    with pytest.raises(DataError, match=rf"{path}:3: expected at least 2 columns"):
        load(path)


def test_conll_invalid_tag_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.txt", "EU B-ORG\nrejects PERSON\n")
    with pytest.raises(DataError, match=rf"{path}:2: invalid tag 'PERSON'"):
        load(path)


def test_conll_inside_tag_of_another_type_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.txt", "a O\n\nNew B-LOC\nYork I-ORG\n")
    with pytest.raises(DataError, match=rf"{path}:4: I-ORG follows B-LOC"):
        load(path, scheme="iob2", repair_tags=False)


def test_conll_skip_counts_and_reports(tmp_path):
    path = write(tmp_path / "mixed.txt", "EU B-ORG\n\nNew B-LOC\nYork I-ORG\n\nx\n\nPeter B-PER\n")
    examples, report = load(path, on_error="skip", scheme="iob2", repair_tags=False)
    assert [e.tokens for e in examples] == [["EU"], ["Peter"]]
    assert report.read == 2 and report.n_skipped == 2
    assert report.skipped == {"invalid_sequence": 1, "column_count": 1}
    assert f"{path}:4" in report.summary() and f"{path}:6" in report.summary()


def test_labels_that_disagree_with_the_data_name_the_record(tmp_path):
    path = write(tmp_path / "a.txt", "EU B-ORG\n\nPeter B-PER\n")
    with pytest.raises(DataError, match=rf"{path}:3: label\(s\) \['PER'\] not in the label set \['ORG'\]"):
        load(path, labels=["ORG"])


@needs_shared_data
@pytest.mark.parametrize("path", shared_files(), ids=lambda p: p.name)
def test_every_shared_corpus_loads(path):
    examples, report = load(path)
    assert examples and report.n_skipped == 0


# --------------------------------------------------------------------------------- Hugging Face


def test_hf_dataset_folder_with_classlabel_tags(tmp_path):
    import datasets

    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
        }
    )
    rows = {"id": ["0", "1"], "tokens": [["EU", "rejects"], ["Peter", "Blair"]], "ner_tags": [[3, 0], [1, 2]]}
    dataset = datasets.DatasetDict({"validation": datasets.Dataset.from_dict(rows, features=features)})
    dataset.save_to_disk(str(tmp_path / "conll"))
    examples, _ = load(tmp_path / "conll", split="validation")
    assert [e.tags for e in examples] == [["B-ORG", "O"], ["B-PER", "I-PER"]]
    with pytest.raises(DataError, match="no split 'train'; splits are \\['validation'\\]"):
        load(tmp_path / "conll")


def test_hf_dataset_with_io_and_bioes_tag_names(tmp_path):
    import datasets

    def saved(name, names, ner_tags):
        features = datasets.Features(
            {
                "tokens": datasets.Sequence(datasets.Value("string")),
                "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
            }
        )
        rows = {"tokens": [["Rome", "FC", "won"], ["Totti"]], "ner_tags": ner_tags}
        datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / name))
        return tmp_path / name

    io_examples, report = load(saved("fewnerd", ["O", "organization", "person"], [[1, 1, 0], [2]]))  # Few-NERD style
    assert [e.tags for e in io_examples] == [["B-organization", "I-organization", "O"], ["B-person"]]
    assert report.notes["converted_io"] == 2
    bioes = ["O", "B-ORG", "E-ORG", "S-PER"]
    bioes_examples, report = load(saved("bioes", bioes, [[1, 2, 0], [3]]))
    assert [e.tags for e in bioes_examples] == [["B-ORG", "I-ORG", "O"], ["B-PER"]] and report.notes[
        "converted_bioes"
    ] == 2


# ------------------------------------------------------------------------------------------- CSV

WIDE = [
    {
        "id": "mail-1",
        "text": "Gentile dott. Rossi,\nle confermo l'ordine dell'Ufficio Acquisti di Bianchi S.r.l. per 1.250,00 €.\n"
        "Per domande scriva a anna.verdi@bianchi.it o chiami lo 02 1234567.",
        "entities": [
            {"word": "Rossi", "entity_group": "PER"},
            {"word": "Ufficio Acquisti", "entity_group": "ORG"},
            {"word": "Bianchi S.r.l.", "entity_group": "ORG"},
            {"word": "1.250,00 €", "entity_group": "MONEY"},
            {"word": "anna.verdi@bianchi.it", "entity_group": "EMAIL"},
            {"word": "02 1234567", "entity_group": "PHONE"},
        ],
    },
    {"id": "mail-2", "text": "Grazie, a presto.", "entities": []},
]


def write_wide(path, rows, delimiter=",", literal=False):
    import csv

    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(["id", "text", "entities"])
        for row in rows:
            entities = repr(row["entities"]) if literal else json.dumps(row["entities"], ensure_ascii=False)
            writer.writerow([row["id"], row["text"], entities])
    return path


@pytest.mark.parametrize(("delimiter", "literal"), [(",", False), (";", True), ("\t", False)])
def test_csv_wide_business_email(tmp_path, delimiter, literal):
    path = write_wide(tmp_path / "mails.csv", WIDE, delimiter, literal)
    examples, _ = load(path, id_column="id")
    assert [e.id for e in examples] == ["mail-1", "mail-2"]
    found = [(e.text, e.label) for e in examples[0].entities]
    assert found == [(d["word"], d["entity_group"]) for d in WIDE[0]["entities"]]
    assert "\n" in examples[0].text  # the e-mail is kept whole
    assert examples[1].tags == ["O"] * 5


def test_csv_wide_split_into_sentences(tmp_path):
    path = write_wide(tmp_path / "mails.csv", WIDE)
    examples, _ = load(path, id_column="id", split_sentences=True)
    assert [e.id for e in examples] == ["mail-1-0", "mail-1-1", "mail-1-2", "mail-2-0"]
    assert examples[0].text == "Gentile dott. Rossi,"
    assert sum(len(e.entities) for e in examples) == 6


def test_csv_wide_uses_start_and_end_when_given(tmp_path):
    rows = [
        {
            "id": "1",
            "text": "Rossi e Rossi",
            "entities": [{"word": "Rossi", "entity_group": "PER", "start": 8, "end": 13}],
        }
    ]
    (example,), _ = load(write_wide(tmp_path / "a.csv", rows), id_column="id")
    assert example.tags == ["O", "O", "B-PER"]


def test_csv_wide_entity_not_in_text_names_file_and_row(tmp_path):
    rows = [WIDE[1], {"id": "x", "text": "Ciao Mario", "entities": [{"word": "Luigi", "entity_group": "PER"}]}]
    path = write_wide(tmp_path / "a.csv", rows)
    with pytest.raises(DataError, match=rf"{path}:3 \(row 2\): entity word 'Luigi' \(PER\) not found in the text"):
        load(path)
    examples, report = load(path, on_error="skip")
    assert len(examples) == 1 and report.skipped == {"entity_not_in_text": 1}


def test_csv_wide_missing_column_names_file_and_header(tmp_path):
    path = write(tmp_path / "a.csv", "testo,entities\nCiao,[]\n")
    with pytest.raises(DataError, match=rf"{path}:1: missing column 'text'; the header has \['testo', 'entities'\]"):
        load(path)


def test_csv_wide_bad_entities_cell_names_the_row(tmp_path):
    path = write(tmp_path / "a.csv", 'text,entities\nCiao,[]\nCiao Mario,"[{word: Mario}"\n')
    with pytest.raises(DataError, match=rf"{path}:3 \(row 2\): entities cell is neither JSON nor a Python literal"):
        load(path)


def test_csv_wrong_field_count_names_line_and_row(tmp_path):
    path = write(tmp_path / "a.csv", "text,entities\nCiao,[],extra\n")
    with pytest.raises(DataError, match=rf"{path}:2 \(row 1\): expected 2 fields"):
        load(path)


def test_csv_long_plain_groups(tmp_path):
    path = write(
        tmp_path / "long.csv",
        "sentence_id,word,entity_group\n1,Mario,PER\n1,Rossi,PER\n1,di,O\n1,Milano,LOC\n2,Grazie,\n",
    )
    examples, _ = load(path)
    assert [(e.id, e.tags) for e in examples] == [("1", ["B-PER", "I-PER", "O", "B-LOC"]), ("2", ["O"])]


def test_csv_long_bio_tags_and_custom_columns(tmp_path):
    path = write(tmp_path / "long.csv", "doc;token;tag\na;Banca;B-ORG\na;Intesa;I-ORG\na;paga;O\na;300;B-MONEY\n")
    (example,), _ = load(path, id_column="doc", word_column="token", tag_column="tag")
    assert example.tags == ["B-ORG", "I-ORG", "O", "B-MONEY"] and example.text == "Banca Intesa paga 300"


def test_csv_long_bioes_tags(tmp_path):
    path = write(
        tmp_path / "long.csv", "sentence_id,word,entity_group\n1,Mario,S-PER\n1,a,O\n1,Banca,B-ORG\n1,Sella,E-ORG\n"
    )
    (example,), report = load(path)
    assert example.tags == ["B-PER", "O", "B-ORG", "I-ORG"] and report.notes["converted_bioes"] == 1


def test_csv_long_invalid_sequence_names_the_row(tmp_path):
    path = write(tmp_path / "long.csv", "sentence_id,word,entity_group\n1,Banca,B-ORG\n1,Intesa,I-PER\n")
    with pytest.raises(DataError, match=rf"{path}:3 \(row 2\): I-PER follows B-ORG"):
        load(path, scheme="iob2", repair_tags=False)


def test_csv_long_non_consecutive_id_names_the_row(tmp_path):
    path = write(tmp_path / "long.csv", "sentence_id,word,entity_group\n1,a,O\n2,b,O\n1,c,O\n")
    with pytest.raises(DataError, match=rf"{path}:4 \(row 3\): sentence_id '1' appears again"):
        load(path)


def test_jsonl_bad_line_names_file_and_line(tmp_path):
    path = write(tmp_path / "a.jsonl", '{"id": "1", "tokens": ["a"], "tags": ["O"]}\n{"id": 2,\n')
    with pytest.raises(DataError, match=rf"{path}:2: not valid JSON"):
        load(path)


# ---------------------------------------------------------------------------------------- schemes


def test_iob1_detection_and_conversion():
    iob1 = [["I-ORG", "O", "I-PER", "I-PER", "B-PER"], ["O", "I-LOC"]]
    assert is_iob1(iob1)
    assert iob1_to_iob2(iob1[0]) == ["B-ORG", "O", "B-PER", "I-PER", "B-PER"]
    assert not is_iob1([["B-ORG", "O", "B-PER", "I-PER"]])
    assert not is_iob1([["O", "O"]])


def test_bioes_and_bilou_detection_and_conversion():
    assert bioes_to_iob2(["S-PER", "O", "B-LOC", "I-LOC", "E-LOC", "U-ORG", "B-X", "L-X"]) == [
        "B-PER", "O", "B-LOC", "I-LOC", "I-LOC", "B-ORG", "B-X", "I-X"
    ]  # fmt: skip
    assert is_bioes(["O", "E-LOC"]) and not is_bioes(["B-PER", "I-PER", "O"])
    assert not is_iob1([["S-PER", "O", "U-LOC"]])  # never mistaken for IOB1


def _bioes_sequences(scheme: str):
    """Random well-formed tag sequences in BIOES (or BILOU) with at most 3 types; consecutive entities allowed."""
    single, last = ("S", "E") if scheme == "IOBES" else ("U", "L")

    def render(parts):
        tags = []
        for label, length in parts:
            if label is None:
                tags += ["O"] * length
            elif length == 1:
                tags.append(f"{single}-{label}")
            else:
                tags += [f"B-{label}"] + [f"I-{label}"] * (length - 2) + [f"{last}-{label}"]
        return tags

    part = st.tuples(st.sampled_from([None, "PER", "LOC", "MISC"]), st.integers(1, 4))
    return st.lists(part, max_size=8).map(render)


@pytest.mark.parametrize("scheme", ["IOBES", "BILOU"])
def test_bioes_conversion_keeps_the_entities_seqeval_reads(scheme):
    """Checked against seqeval's own strict IOBES/BILOU reader, an independent implementation."""
    import seqeval.scheme

    reference = getattr(seqeval.scheme, scheme)

    @given(_bioes_sequences(scheme))
    def check(tags):
        expected = [entity.to_tuple()[1:] for entity in seqeval.scheme.Entities([tags], reference).entities[0]]
        converted = bioes_to_iob2(tags)
        assert iob2_error(converted) is None
        assert tags_to_spans(converted) == expected

    check()


def test_the_package_keeps_every_name_the_single_module_had():
    """`prompts/readers.py` became a package; what callers imported from it is still importable from it."""
    import instruct_ner.prompts.readers as readers

    names = """CONLL_SUFFIXES DATA_FORMATS DOCUMENT_ID_COLUMNS LABEL_PATTERN MAX_CSV_CELL MAX_LISTED_REPAIRS
    MAX_REPORTED_ERRORS SCHEMES SENTENCE_ID_COLUMNS ReadReport ReaderOptions check_label checked_tags detect_format
    example_from_text is_comment_line load_examples locate_entities long_id_columns parse_entity_list read_conll
    read_csv read_hf read_jsonl scheme_to_iob2 source_scheme split_into_sentences""".split()
    assert [name for name in names if not hasattr(readers, name)] == []
    assert set(names) <= set(readers.__all__)
