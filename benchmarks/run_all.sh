#!/usr/bin/env bash
# The first-round figures of BENCHMARKS.md, in one go, on the embedded SmolLM2 on CPU (about 75 minutes on 2 cores),
# then their tables rendered from the JSON results into benchmarks/results/first_round.md (BENCHMARKS.md itself is
# written by hand from the result files; this no longer overwrites it). Run from the repository root after `make install`:
#     bash benchmarks/run_all.sh
set -euo pipefail
export PYTHONWARNINGS=ignore TOKENIZERS_PARALLELISM=false
PY=.venv/bin/python
mkdir -p benchmarks/results
# Issue 3: the CPU recipe on 200 CoNLL-2003 sentences (its adapter feeds the generation benchmark).
{ echo "measured: $(date -u '+%Y-%m-%d %H:%M UTC')"
  /usr/bin/time -v .venv/bin/instruct-ner train --config sft/recipes/smollm2-conll2003-cpu.yaml 2>&1; } \
    | tee benchmarks/results/train_cpu_recipe.log
$PY benchmarks/sft_speed.py --steps 6 --batch 8 --out benchmarks/results/sft_speed.json
$PY benchmarks/generate_speed.py --adapter runs/smollm2-conll2003 --limit 500 --batch_sizes 1 8 32 \
    --out benchmarks/results/generate_speed.json
$PY benchmarks/tagger_speed.py --steps 8 --batch 8 --out benchmarks/results/tagger_speed.json
$PY benchmarks/side_by_side.py --out benchmarks/results/side_by_side
$PY benchmarks/summarise.py > benchmarks/results/first_round.md
