from hypothesis import given
from hypothesis import strategies as st

from instruct_ner.prompts.tokenize import sentence_bounds, tokenize_with_offsets


def tokens(text):
    return [token for token, _, _ in tokenize_with_offsets(text)]


def test_italian_business_text():
    text = (
        "Gentile dott. Rossi, l'ufficio dell'ACME S.p.A. attende 1.250,00 € entro il 15/03/2024 "
        "(fattura INV-2024/0042)."
    )
    assert tokens(text) == [
        "Gentile",
        "dott",
        ".",
        "Rossi",
        ",",
        "l'",
        "ufficio",
        "dell'",
        "ACME",
        "S.p.A.",
        "attende",
        "1.250,00",
        "€",
        "entro",
        "il",
        "15/03/2024",
        "(",
        "fattura",
        "INV-2024/0042",
        ")",
        ".",
    ]


def test_contacts_stay_whole():
    assert tokens("Scrivete a mario.rossi@acme.it o chiamate +39 02 1234567, https://acme.it/ordini.") == [
        "Scrivete",
        "a",
        "mario.rossi@acme.it",
        "o",
        "chiamate",
        "+39",
        "02",
        "1234567",
        ",",
        "https://acme.it/ordini",
        ".",
    ]


def test_english_clitics_are_not_elisions():
    assert tokens("Rossi's car isn't here") == ["Rossi", "'s", "car", "isn", "'t", "here"]


@given(st.text(max_size=60))
def test_offsets_always_point_at_tokens_and_skip_only_whitespace(text):
    previous_end = 0
    for token, start, end in tokenize_with_offsets(text):
        assert text[start:end] == token and token.strip() == token and token
        assert text[previous_end:start].strip() == ""
        previous_end = end
    assert text[previous_end:].strip() == ""


def test_sentence_bounds_split_lines_and_sentences():
    text = "Buongiorno,\nvi scrivo per l'ordine. Grazie! A presto"
    assert [text[s:e] for s, e in sentence_bounds(text)] == [
        "Buongiorno,",
        "vi scrivo per l'ordine.",
        "Grazie!",
        "A presto",
    ]
