"""Decoding: our greedy loop against `model.generate`, batch compaction, and constrained decoding (the automaton
on the real SmolLM2 tokenizer's tokenisations, and a property test on a tiny random model)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SHARED_DATA, needs_shared_data
from instruct_ner.examples import Example, join_tokens
from instruct_ner.inference.constrained import ConstraintFactory
from instruct_ner.inference.decoding import DecodeOptions, HFGenerator
from instruct_ner.inference.grounding import parse_response
from instruct_ner.prompts.formats import escapable, get_format
from instruct_ner.prompts.templates import PromptBuilder, load_template

LABELS = ["LOC", "MISC", "ORG", "PER"]
SENTENCES = [
    "Peter Blackburn of the EU met Peter in Paris .",
    "Japan beat Syria 2-1 .",
    "Nothing happened .",
    "The United Arab Emirates and the U.S. signed dell’Ufficio accords on Monday in Abu Dhabi .",
    "EU rejects German call to boycott British lamb .",
]


def example(text: str, tags=None) -> Example:
    tokens = text.split()
    return Example("x", tokens, tags or ["O"] * len(tokens))


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_llama).eval(), AutoTokenizer.from_pretrained(tiny_llama)


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def prompts_for(examples, style, response_format="entity_list"):
    name = "ner-list.en" if response_format == "entity_list" else "ner-inline.en"
    builder = PromptBuilder(load_template(name), LABELS, style=style)
    return [p.get("prompt", p.get("messages")) for p in map(builder.build, examples)]


# --- the loop -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["instruction", "chat"])
def test_our_loop_equals_model_generate(model_and_tokenizer, style):
    """Greedy decoding of a left-padded batch, compared with transformers' own generate on the same inputs."""
    import torch

    model, tokenizer = model_and_tokenizer
    generator = HFGenerator(model, tokenizer, style, share_prefix=False, options=DecodeOptions(stop_runaway=False))
    prompts = prompts_for([example(s) for s in SENTENCES], style)
    ours = generator.generate(prompts, [20] * len(prompts))
    inputs = tokenizer(
        [generator.prompt_text(p) for p in prompts], return_tensors="pt", padding=True, padding_side="left"
    )
    with torch.inference_mode():
        reference = model.generate(
            **inputs,
            max_new_tokens=20,
            do_sample=False,
            eos_token_id=generator.eos_ids,
            pad_token_id=tokenizer.pad_token_id,
            stop_strings=generator.stop_strings,
            tokenizer=tokenizer,
        )
    width = inputs["input_ids"].shape[1]
    for row, generated in enumerate(ours):
        new = reference[row, width:].tolist()
        ended = next((k for k, t in enumerate(new) if t in generator.eos_ids), len(new))
        text = tokenizer.decode(new[:ended], skip_special_tokens=True)
        text = text[: text.index("\n###")] if "\n###" in text else text
        assert generated.text == text.strip()


@pytest.mark.parametrize("constrain", [False, True])
def test_finished_rows_leaving_the_batch_change_no_output(model_and_tokenizer, constrain):
    """Compacted decoding (finished rows dropped from the KV cache) equals decoding the full batch to the end."""
    model, tokenizer = model_and_tokenizer
    examples = [example(s) for s in SENTENCES]
    prompts = prompts_for(examples, "chat")
    limits = [5, 30, 12, 40, 8]  # rows finish at different steps
    options = DecodeOptions("entity_list", LABELS, constrain=constrain)
    compact = HFGenerator(model, tokenizer, "chat", share_prefix=True, options=options, compact=True)
    full = HFGenerator(model, tokenizer, "chat", share_prefix=True, options=options, compact=False)
    for generator in (compact, full):
        generator.prepare(prompts)
    a, b = compact.generate(prompts, limits, examples), full.generate(prompts, limits, examples)
    assert [(g.text, g.new_tokens, g.hit_limit) for g in a] == [(g.text, g.new_tokens, g.hit_limit) for g in b]
    assert compact.stats["row_steps"] < full.stats["row_steps"]  # rows did leave


# --- the automaton on real tokenisations ----------------------------------------------------------------------


def walk(tokenizer, constraint, response: str, budget: int = 1000):
    """Feed the response's tokens (as the tokenizer splits it) to the constraint; the first rejected token or None."""
    for token in tokenizer(response, add_special_tokens=False)["input_ids"]:
        if constraint.allows(token, budget) is None:
            return tokenizer.convert_ids_to_tokens([token])[0]
        constraint.advance(token)
    return None


@pytest.mark.parametrize(
    "response",
    [
        "Peter Blackburn | PER",  # `Peter` `ĠBlack` `burn` `Ġ|` `ĠPER`: the space before `|` could continue the span
        " Peter Blackburn | PER",  # the model's leading-space variant
        "Peter Blackburn | PER\nEU | ORG\nPeter | PER\nParis | LOC",
        "Blackburn of the EU | ORG",
        "none",
        " none",
    ],
)
def test_the_automaton_accepts_what_the_format_allows(tokenizer, response):
    factory = ConstraintFactory(tokenizer, "entity_list", LABELS, [tokenizer.eos_token_id])
    constraint = factory.row(example(SENTENCES[0]))
    assert walk(tokenizer, constraint, response) is None and constraint.accepting()


@pytest.mark.parametrize(
    "response, rejected",
    [
        ("Paris | LOC\nEU | ORG", "EU"),  # out of order: EU comes before Paris
        ("Peter | PER\nPeter | PER\nPeter | PER", "Peter"),  # listed more often than it occurs
        ("Pete | PER", "Ġ|"),  # not on a word boundary
        ("Bolton | LOC", "Bol"),  # not in the text
        ("Peter | PERSON", "ERS"),  # not a label of the set
        ("Peter Blackburn | PER\n\n", "ĊĊ"),  # an empty line
    ],
)
def test_the_automaton_rejects_what_the_format_does_not_allow(tokenizer, response, rejected):
    factory = ConstraintFactory(tokenizer, "entity_list", LABELS, [tokenizer.eos_token_id])
    assert walk(tokenizer, factory.row(example(SENTENCES[0])), response) == rejected


def test_end_only_after_a_complete_line(tokenizer):
    factory = ConstraintFactory(tokenizer, "entity_list", LABELS, [tokenizer.eos_token_id])
    constraint = factory.row(example(SENTENCES[0]))
    eos = tokenizer.eos_token_id
    assert constraint.allows(eos, 100) is None
    walk(tokenizer, constraint, "Peter Blackburn | PER\n")
    assert constraint.allows(eos, 100) is None and eos not in constraint.allowed(100)
    walk(tokenizer, constraint, "EU | ORG")
    assert constraint.allows(eos, 100) is not None and eos in constraint.allowed(100)


def test_the_mask_is_every_token_that_spells_an_allowed_string(tokenizer):
    """Brute force over the whole vocabulary: the trie walk finds exactly the tokens `allows` accepts."""
    factory = ConstraintFactory(tokenizer, "entity_list", LABELS, [tokenizer.eos_token_id])
    constraint = factory.row(example("Japan beat Syria 2-1 ."))
    walk(tokenizer, constraint, "Japan | LOC\nSy")
    brute = {t for t in range(len(tokenizer)) if constraint.allows(t, 1000) is not None}
    assert set(constraint.allowed(1000)) == brute and {"ria", "r"} <= set(
        tokenizer.convert_ids_to_tokens(sorted(brute))
    )


def test_inline_copies_the_text_and_inserts_markers_at_word_bounds(tokenizer):
    factory = ConstraintFactory(tokenizer, "inline", LABELS, [tokenizer.eos_token_id])
    text = SENTENCES[0]
    good = "[Peter Blackburn | PER] of the [EU | ORG] met [Peter | PER] in [Paris | LOC] ."
    assert walk(tokenizer, (c := factory.row(example(text))), good) is None and c.accepting()
    assert walk(tokenizer, (c := factory.row(example(text))), " " + text) is None and c.accepting()
    assert walk(tokenizer, factory.row(example(text)), "[Pete | PER]") == "Ġ|"
    assert walk(tokenizer, factory.row(example(text)), "Peter Blackburn from") == "Ġfrom"
    assert walk(tokenizer, factory.row(example(text)), "[Peter | PERSON]") == "ERS"


def test_inline_writes_the_format_escapes(tokenizer):
    """An e-mail signature `Mario Rossi | ACME S.r.l.` (11 of our 80 test e-mails have one) and the other characters
    the format escapes: the constraint accepts `InlineFormat.render`'s escaped response, which reads back to
    the text, and rejects the unescaped characters that the reader would take as markup."""
    from instruct_ner.prompts.formats import InlineFormat

    factory = ConstraintFactory(tokenizer, "inline", LABELS, [tokenizer.eos_token_id])
    words = ["Mario", "Rossi", "|", "AT|T", "[x]", "a\\b", "."]
    gold = example(" ".join(words), ["B-PER", "I-PER", "O", "B-ORG", "O", "B-MISC", "O"])
    response = InlineFormat().render(gold)
    assert response == "[Mario Rossi | PER] | [AT\\|T | ORG] \\[x] [a\\\\b | MISC] ."
    assert walk(tokenizer, (c := factory.row(gold)), response) is None and c.accepting()
    assert parse_response(response, gold, LABELS, "inline").pred_tags == gold.tags
    plain = "Mario Rossi | AT|T \\[x] a\\\\b ."  # no entity: the text with `[` and `\\` escaped
    assert walk(tokenizer, (c := factory.row(gold)), plain) is None and c.accepting()
    assert walk(tokenizer, factory.row(gold), "Mario Rossi | AT|T [x]") is not None  # a `[` that is text, unescaped
    assert walk(tokenizer, factory.row(gold), "Mario Rossi | [AT|") is not None  # a `|` inside an entity, unescaped
    assert walk(tokenizer, factory.row(gold), "Mario Rossi | AT|T \\[x] a\\b") is not None  # `\\` not doubled


def test_multibyte_characters_split_across_byte_tokens(tokenizer):
    """`’` is three bytes; the tokenizer spells `dell’Ufficio` with a token that is that character alone."""
    factory = ConstraintFactory(tokenizer, "entity_list", ["ORG"], [tokenizer.eos_token_id])
    text = "Lettera dell’Ufficio tecnico"
    assert walk(tokenizer, (c := factory.row(example(text))), "dell’Ufficio | ORG") is None and c.accepting()
    assert walk(tokenizer, factory.row(example(text)), "dell'Ufficio | ORG") == "'"


# --- the property test ------------------------------------------------------------------------------------------

WORDS = st.text(alphabet="abcXYZéà’'.,-:0123456789", min_size=1, max_size=7)
LABEL_SETS = st.lists(
    st.sampled_from(["PER", "LOC", "ORG", "MISC", "DATE", "EMAIL", "X", "PRODUCT"]),
    min_size=1,
    max_size=4,
    unique=True,
)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    texts=st.lists(st.lists(WORDS, min_size=1, max_size=12), min_size=1, max_size=3),
    labels=LABEL_SETS,
    response_format=st.sampled_from(["entity_list", "inline"]),
    style=st.sampled_from(["instruction", "chat"]),
    spacing=st.sampled_from([" ", " ", "  ", "\n"]),
    tight=st.booleans(),
    specials=st.booleans(),
)
def test_constrained_output_always_parses_and_ends_before_its_bound(
    model_and_tokenizer, texts, labels, response_format, style, spacing, tight, specials
):
    model, tokenizer = model_and_tokenizer
    examples = []
    for words in texts:
        if specials and response_format == "inline":  # the characters the inline format escapes
            words = [w.replace("X", "|").replace("Y", "[").replace("Z", "]").replace("c", "\\") for w in words]
        text, offsets = join_tokens(words)
        if spacing != " ":
            text = spacing.join(words)
            offsets, position = [], 0
            for word in words:
                offsets.append((position, position + len(word)))
                position += len(word) + len(spacing)
        examples.append(Example("x", words, ["O"] * len(words), text, offsets))
    if style == "instruction":
        prompts = [f"Find {', '.join(labels)}.\n### Input:\n{e.text}\n### Response:\n" for e in examples]
    else:
        prompts = [[{"role": "user", "content": f"Find {', '.join(labels)} in: {e.text}"}] for e in examples]
    generator = HFGenerator(
        model, tokenizer, style, share_prefix=False, options=DecodeOptions(response_format, labels, constrain=True)
    )
    limits = [
        (8 if tight else get_format(response_format).new_token_bound(e.text, generator.text_length(e.text)))
        for e in examples
    ]
    if response_format == "inline":  # the bound must allow copying the text (and its escapes) at all
        limits = [
            max(limit, generator.text_length(e.text) + 2 * escapable(e.text) + 2) for limit, e in zip(limits, examples)
        ]
    for generated, e, limit in zip(generator.generate(prompts, limits, examples), examples, limits):
        diagnostics = parse_response(generated.text, e, labels, response_format).diagnostics
        assert diagnostics.hallucinated == diagnostics.malformed == diagnostics.unknown_label == 0, generated.text
        assert diagnostics.truncated == diagnostics.out_of_order == diagnostics.overlaps_removed == 0, generated.text
        assert generated.new_tokens < limit and not generated.hit_limit, (generated, limit)


@needs_shared_data
def test_every_gold_response_fits_its_bound(tokenizer):
    """The bound is derived from the format: no gold CoNLL-2003 test response (either format) exceeds it."""
    from instruct_ner.prompts.readers import load_examples

    examples, _ = load_examples(SHARED_DATA / "conll2003" / "test.txt")

    def tokens(text):
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    label_tokens = max(tokens(" " + label) for label in LABELS)
    for response_format in ("entity_list", "inline"):
        over = [
            e.text
            for e in examples
            if tokens(get_format(response_format).render(e)) + 1
            > get_format(response_format).new_token_bound(e.text, tokens(e.text), len(e.tokens), label_tokens)
        ]
        assert not over, (response_format, over[:3])


def test_the_instruction_style_may_end_with_a_new_section(tokenizer):
    """`\\n###` after a complete line ends a row of the instruction style; elsewhere `#` is not allowed."""
    factory = ConstraintFactory(tokenizer, "entity_list", LABELS, [tokenizer.eos_token_id], "\n###")
    constraint = factory.row(example(SENTENCES[0]))
    assert walk(tokenizer, constraint, "EU | ORG\n###") is None and constraint.done
    assert walk(tokenizer, factory.row(example(SENTENCES[0])), "EU | ORG ###") == "Ġ###"


def test_a_constrained_row_finishes_its_line_when_the_budget_runs_out(tokenizer):
    """Near the bound only the tokens that still reach the end in time are allowed (costs count bytes: after
    ` |`, a space and a 3-byte label remain, 4; after ` United`, ` | ` and a label, 6)."""
    factory = ConstraintFactory(tokenizer, "entity_list", LABELS, [tokenizer.eos_token_id])
    constraint = factory.row(example("The United Arab Emirates beat Syria ."))
    walk(tokenizer, constraint, "The")
    allowed = set(tokenizer.convert_ids_to_tokens(constraint.allowed(4)))
    assert "Ġ|" in allowed and "ĠUnited" not in allowed
    assert "ĠUnited" in set(tokenizer.convert_ids_to_tokens(constraint.allowed(100)))


@needs_shared_data
@pytest.mark.parametrize("response_format", ["entity_list", "inline"])
def test_every_gold_response_is_allowed(tokenizer, response_format):
    """Completeness against an independent source: the gold responses of CoNLL-2003 test (first 1000) and of
    the Italian e-mails (texts with newlines, `€`, `’`; the large set's signatures with `|`), tokenised as the
    tokenizer splits them, all pass."""
    from conftest import DATA
    from instruct_ner.examples import labels_of
    from instruct_ner.prompts.readers import ReaderOptions, load_examples

    conll, _ = load_examples(SHARED_DATA / "conll2003" / "test.txt")
    emails, _ = load_examples(DATA / "emails_it" / "test.csv", ReaderOptions(id_column="id"))
    large, _ = load_examples(DATA / "emails_it_large" / "test.csv", ReaderOptions(id_column="id"))
    assert any("|" in e.text for e in large)
    for examples in (conll[:1000], emails, large):
        factory = ConstraintFactory(tokenizer, response_format, labels_of(e.tags for e in examples), [0])
        for e in examples:
            response = get_format(response_format).render(e)
            constraint = factory.row(e)
            assert walk(tokenizer, constraint, response, budget=10**6) is None and constraint.accepting(), response


def test_decoding_and_loading_print_no_deprecation_or_progress_noise(tiny_llama, capfd):
    """Issue 43, item 17: no `past_key_values ... deprecated` FutureWarning and no weight-loading bar per run."""
    import warnings

    from instruct_ner.inference.decoding import DecodeOptions, HFGenerator
    from instruct_ner.sft.models import load_causal_lm, load_tokenizer

    capfd.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        model = load_causal_lm(str(tiny_llama), "fp32")
        tokenizer = load_tokenizer(str(tiny_llama), padding_side="left")
        generator = HFGenerator(model, tokenizer, "instruction", True, DecodeOptions("entity_list", ["PER"], False))
        prompt = "### Instruction:\nList the entities.\n\n### Input:\nPeter visits Rome\n\n### Response:\n"
        prompts = [prompt] * 2
        generator.prepare(prompts)
        assert len(generator.generate(prompts, [3, 3])) == 2
    assert "Loading weights" not in capfd.readouterr().err
