import pytest
from hypothesis import given
from hypothesis import strategies as st

from instruct_ner.prompts.tokenize import message_headers, sentence_bounds, tokenize_with_offsets


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


@pytest.mark.parametrize(
    "text",
    [
        "10. Troy Benson ( U.S. ) 22.56",  # CoNLL-2003 results tables: a list item's number
        "B. Young c Moin Khan b Waqar 5",  # an initial
        "MIAMI 1996-12-06 The meeting was moved to Jan. 5 in Miami .",
        "Consegna prevista per il 3 mar. 2025 presso la sede.",
    ],
)
def test_list_numbers_initials_and_month_abbreviations_do_not_end_a_sentence(text):
    """Each of these is one sentence; the splitter once cut 252 of CoNLL-2003 test's 3,453 sentences after `1.`,
    `B.` or `Jan.`, so a document read one sentence per window lost the context of their entities."""
    assert sentence_bounds(text) == [(0, len(text))]


def test_a_numbered_list_is_one_sentence_per_item_and_a_number_ending_a_sentence_ends_it():
    text = "Gentile cliente,\n1. Consegna entro il 3. Poi il resto.\n2. Pagamento nel 2024. Grazie"
    assert [text[s:e] for s, e in sentence_bounds(text)] == [
        "Gentile cliente,",
        "1. Consegna entro il 3.",
        "Poi il resto.",
        "2. Pagamento nel 2024.",
        "Grazie",
    ]


@pytest.mark.parametrize(
    "text, header",
    [
        (
            "Va bene.\n\nIl giorno 3 marzo 2025, Mario Rossi <m.rossi@acme.it> ha scritto:\n> Ciao",
            "Il giorno 3 marzo 2025, Mario Rossi <m.rossi@acme.it> ha scritto:",
        ),
        (
            "Ok.\n\nIl giorno lun 3 mar 2025 alle ore 10:07 Mario Rossi <\nm.rossi@acme.it> ha scritto:\n",
            "Il giorno lun 3 mar 2025 alle ore 10:07 Mario Rossi <\nm.rossi@acme.it> ha scritto:",
        ),
        (
            "Thanks.\n\nOn Mon, Mar 3, 2025 at 10:07 AM Anna Bell <a@b.com> wrote:\n> Hi",
            "On Mon, Mar 3, 2025 at 10:07 AM Anna Bell <a@b.com> wrote:",
        ),
        (
            "Vedi.\n\n-----Messaggio originale-----\nDa: Lucia Neri\nInviato: lunedì\nA: Ufficio\n\nSalve",
            "-----Messaggio originale-----\nDa: Lucia Neri\nInviato: lunedì\nA: Ufficio",
        ),
        (
            "FYI\n\n---------- Forwarded message ---------\nFrom: Bob <b@c.com>\nDate: Mon\n\nHello",
            "---------- Forwarded message ---------\nFrom: Bob <b@c.com>\nDate: Mon",
        ),
        (
            "Inoltro.\nDa: Lucia Neri [mailto:l.neri@x.it]\nInviato: lunedì 3 marzo 2025\nA: Ufficio\nOggetto: ordine",
            "Da: Lucia Neri [mailto:l.neri@x.it]\nInviato: lunedì 3 marzo 2025\nA: Ufficio\nOggetto: ordine",
        ),
        ("Saluti\n> > Il giorno 2 marzo Anna ha scritto:\n> > > Ciao", "Il giorno 2 marzo Anna ha scritto:"),
    ],
)
def test_a_quoted_or_forwarded_message_opens_with_its_whole_header(text, header):
    """Reply attributions (Gmail, Apple Mail, Italian and English), forward and Outlook header blocks with every
    field line, quoted too: one header each, its span the whole block and nothing of the message after it."""
    headers = message_headers(text)
    assert len(headers) == 1 and text[headers[0][0] : headers[0][1]] == header


@pytest.mark.parametrize(
    "text",
    [
        "Da domani il prezzo cambia.\nA presto, Mario",  # "Da" opening a sentence, no header block
        "Il giorno 3 marzo ci vediamo in sede.\nSaluti",  # a date, not an attribution
        "Il giorno 3 marzo Mario ha scritto:\n> Ciao",  # a header at the very start: one message
        "Ciao,\nil preventivo è allegato.\nGrazie",
    ],
)
def test_a_text_of_one_message_has_no_message_header(text):
    assert message_headers(text) == []
