"""Hugging Face datasets -> Examples: a dataset shaped like `eriktks/conll2003` (`tokens`, `ner_tags` as ClassLabel
ids or strings), by hub name, a `save_to_disk` folder, or a local json/jsonl/csv/parquet file.

It downloads nothing itself except through `datasets.load_dataset` for a hub name; `datasets` is imported only
when a dataset is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from instruct_ner.examples import DataError, Example
from instruct_ner.prompts.readers.options import ReaderOptions
from instruct_ner.prompts.readers.report import ErrorPolicy
from instruct_ner.prompts.readers.schemes import checked_tags, scheme_to_iob2, source_scheme


def read_hf(name_or_path: str | Path, options: ReaderOptions, policy: ErrorPolicy) -> Iterator[Example]:
    """A `tokens` + `ner_tags` dataset: hub name (needs internet), `save_to_disk` folder, or local data file."""
    import datasets

    path = Path(name_or_path)
    if path.is_dir():
        dataset = datasets.load_from_disk(str(path))
    elif path.is_file():
        builder = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}.get(path.suffix, "json")
        dataset = datasets.load_dataset(builder, data_files=str(path), split="train")
    else:
        try:
            dataset = datasets.load_dataset(str(name_or_path), split=options.split)
        except (OSError, ConnectionError, ValueError) as error:  # offline, no such dataset, a hub refusal
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DataError(
                str(name_or_path),
                f"not a local file or folder, and the hub could not provide it (offline, or no such dataset: "
                f"{reason[:200]}); pass a local path, or a `save_to_disk` folder",
                "not_found",
            ) from None
    if isinstance(dataset, datasets.DatasetDict):
        if options.split not in dataset:
            raise DataError(str(name_or_path), f"no split {options.split!r}; splits are {sorted(dataset)}", "split")
        dataset = dataset[options.split]
    where = f"{name_or_path}[{options.split}]"
    for column in ("tokens", "ner_tags"):
        if column not in dataset.column_names:
            raise DataError(where, f"missing column {column!r}; columns are {dataset.column_names}", "missing_column")
    feature = dataset.features["ner_tags"]
    inner = getattr(feature, "feature", None)
    if inner is None and isinstance(feature, list):
        inner = feature[0]
    names = getattr(inner, "names", None)
    records = []
    for row, record in enumerate(dataset):
        tokens, ids = record["tokens"], record["ner_tags"]
        try:
            tags = [names[i] if names is not None else str(i) for i in ids]
        except (IndexError, TypeError):
            policy.handle(
                DataError(f"{where} row {row}", f"tag ids {ids} outside the tag names {names}", "invalid_tag")
            )
            continue
        if len(tokens) != len(tags):
            message = f"{len(tokens)} tokens but {len(tags)} tags"
            policy.handle(DataError(f"{where} row {row}", message, "length_mismatch"))
            continue
        records.append((row, record, tokens, tags))
    scheme = source_scheme([tags for *_, tags in records], options.scheme, policy.report)
    for row, record, tokens, tags in records:
        tags = scheme_to_iob2(tags, scheme)
        try:
            tags = checked_tags(tags, lambda i, row=row: f"{where} row {row} token {i}", options, policy.report)
        except DataError as error:
            policy.handle(error)
            continue
        yield Example(str(record.get("id", row)), list(tokens), tags, source=f"{where} row {row}")
