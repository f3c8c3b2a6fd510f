#!/usr/bin/env bash
# The GPU cells of BENCHMARKS.md, in one command on a CUDA machine with the project installed:
#   1. SFT throughput and peak CUDA memory of the embedded model at 8-bit, bf16 and fp32 (alone on the GPU);
#   2. the four LoRA systems on all 14,041 CoNLL-2003 training sentences, `--precision auto` (8-bit training,
#      bf16 tagging and generation: what a user gets on CUDA), run side by side on the one GPU;
#   3. generation throughput at batch 1 / 16 / 64 with the inline adapter of step 2 (500 test sentences).
# Every cell resumes from its checkpoints within one machine's life; logs go to logs/gpu/.
# Cost measured on one H100 (BENCHMARKS.md, "On a GPU"): at 8-bit an all-data tagger cell trains ~17 min, a generative
# one ~14 min plus six dev-F1 evaluations generating in 8-bit (~5 min each, shared GPU): over an hour for the four.
# Usage: bash benchmarks/gpu_cells.sh
set -u
cd "$(dirname "$0")/.."
export TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
mkdir -p logs/gpu
echo "== $(date -u +%H:%M:%S) sft_speed"
[ -e benchmarks/results/sft_speed_gpu.json ] || $PY benchmarks/sft_speed.py --steps 30 --batch 8 \
  --out benchmarks/results/sft_speed_gpu.json > logs/gpu/sft_speed.log 2>&1
declare -A pids
for system in tagger-bidirectional tagger-causal gen-inline gen-list; do
  echo "== $(date -u +%H:%M:%S) start conll2003/$system/all"
  $PY benchmarks/learning_curve.py --cell "conll2003/$system/all" --precision auto > "logs/gpu/$system.log" 2>&1 &
  pids[$system]=$!
done
wait "${pids[gen-inline]}"
echo "== $(date -u +%H:%M:%S) gen-inline done rc=$?; generate_speed"
$PY benchmarks/generate_speed.py --adapter runs/learning_curve/conll2003__gen-inline__all/model --limit 500 \
  --batch_sizes 1 16 64 --unshared 16 --unguarded --out benchmarks/results/generate_speed_gpu.json \
  > logs/gpu/generate_speed.log 2>&1
wait
echo "== $(date -u +%H:%M:%S) all done"
