"""Dev micro entity F1 of a model while it trains: the evaluators that dev-F1 selection (sft/selection.py) calls.

- `generative_evaluator(dev, builder)`: the model generates for the dev sentences as `generate` does (greedy,
  constrained, the run's prompt builder) and its responses are parsed into tags.
- `tagger_evaluator(dev, max_length)`: the token classifier tags them (inference/tagging.py).

An evaluator is a callable `(model, tokenizer) -> micro F1` that leaves the model in training mode. They live here,
above `sft/`, because scoring a generative model needs generation; instruct_ner/training.py builds one and passes it
down to the trainer. This module does not train or select.
"""

from __future__ import annotations

from instruct_ner.examples import Example
from instruct_ner.inference.score import score_tags


def tagger_dev_f1(model, tokenizer, examples: list[Example], max_length: int = 512) -> float:
    """Micro entity F1 of the token classifier on `examples` (the model is put back in training mode)."""
    from instruct_ner.inference.tagging import predict

    pred = predict(model, examples, tokenizer, max_length)
    model.train()
    return score_tags([e.tags for e in examples], pred)["micro"]["f1"]


def generative_dev_f1(model, tokenizer, builder, examples: list[Example], batch_size: int = 16) -> float:
    """Micro entity F1 of a generative model (greedy, the project's decoding) on `examples`; the generator pads on
    the left per call, so the trainer's own tokenizer serves."""
    from instruct_ner.inference.decoding import DecodeOptions, HFGenerator
    from instruct_ner.inference.predictor import GenerativePredictor

    was_training = model.training
    model.eval()
    options = DecodeOptions(builder.response_format, builder.labels, constrain=True)
    predictor = GenerativePredictor(builder, HFGenerator(model, tokenizer, builder.style, True, options))
    pred = [record["pred_tags"] for record in predictor.predict(examples, batch_size)]
    if was_training:
        model.train()
    return score_tags([e.tags for e in examples], pred)["micro"]["f1"]


def tagger_evaluator(dev: list[Example], max_length: int = 512):
    """`(model, tokenizer) -> dev micro F1` of a token classifier on `dev`."""
    return lambda model, tokenizer: tagger_dev_f1(model, tokenizer, dev, max_length)


def generative_evaluator(dev: list[Example], builder, batch_size: int = 16):
    """`(model, tokenizer) -> dev micro F1` of a generative model prompted by `builder` (the run's own)."""
    return lambda model, tokenizer: generative_dev_f1(model, tokenizer, builder, dev, batch_size)
