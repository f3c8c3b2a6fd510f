"""A line-by-line port of the counting in the reference `conlleval` Perl script (CoNLL-2000 shared task),
used only to check our scoring, as seqeval's own tests do."""


def _split(tag):
    return (tag, "") if tag == "O" else tuple(tag.split("-", 1))


def end_of_chunk(prev_tag, tag, prev_type, type_):
    """conlleval.pl endOfChunk, including its E- and bracket rules."""
    return (
        (prev_tag == "B" and tag == "B")
        or (prev_tag == "B" and tag == "O")
        or (prev_tag == "I" and tag == "B")
        or (prev_tag == "I" and tag == "O")
        or (prev_tag == "E" and tag in ("E", "I", "O"))
        or (prev_tag not in ("O", ".") and prev_type != type_)
        or prev_tag in ("[", "]")
    )


def start_of_chunk(prev_tag, tag, prev_type, type_):
    """conlleval.pl startOfChunk, including its E- and bracket rules."""
    return (
        (prev_tag in ("B", "I", "O") and tag == "B")
        or (prev_tag == "O" and tag == "I")
        or (prev_tag == "E" and tag in ("E", "I"))
        or (prev_tag == "O" and tag == "E")
        or (tag not in ("O", ".") and prev_type != type_)
        or tag in ("[", "]")
    )


def conlleval_counts(gold_sentences, pred_sentences):
    """(correct chunks, found guessed, found correct) exactly as conlleval counts them."""
    correct_chunk = found_guessed = found_correct = 0
    last_correct, last_correct_type, last_guessed, last_guessed_type = "O", "", "O", ""
    in_correct = False
    stream = []
    for gold, pred in zip(gold_sentences, pred_sentences):
        stream += list(zip(gold, pred)) + [("O", "O")]  # the boundary line acts as an O token
    for correct_tag, guessed_tag in stream:
        correct, correct_type = _split(correct_tag)
        guessed, guessed_type = _split(guessed_tag)
        if in_correct:
            correct_end = end_of_chunk(last_correct, correct, last_correct_type, correct_type)
            guessed_end = end_of_chunk(last_guessed, guessed, last_guessed_type, guessed_type)
            if correct_end and guessed_end and last_guessed_type == last_correct_type:
                in_correct = False
                correct_chunk += 1
            elif correct_end != guessed_end or guessed_type != correct_type:
                in_correct = False
        correct_start = start_of_chunk(last_correct, correct, last_correct_type, correct_type)
        guessed_start = start_of_chunk(last_guessed, guessed, last_guessed_type, guessed_type)
        if correct_start and guessed_start and guessed_type == correct_type:
            in_correct = True
        found_correct += correct_start
        found_guessed += guessed_start
        last_correct, last_correct_type, last_guessed, last_guessed_type = correct, correct_type, guessed, guessed_type
    if in_correct:
        correct_chunk += 1
    return correct_chunk, found_guessed, found_correct
