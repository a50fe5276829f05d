#!/usr/bin/env bash
# The default CJS setting with a best-of-N pool (issue: an LLM scheduler better than its teacher): every job
# sequence (seeds 100, 101, ...) is played by Decima with sampling --rollouts-per-seed times and only its
# best episode (lowest average JCT) is kept, so the pool's behaviour is better than one Decima rollout.
# Adaptation as recipes/tpch_smollm2.sh (SmolLM2-135M, block 5, LoRA 64, K 20, Decima's encoder frozen),
# model selection on seed 1001; tests on seeds 1..20 next to Decima on the same seeds, compared seed by
# seed. Re-running the script resumes where it stopped (the pool's finished seeds, the training checkpoint,
# finished blocks of five test seeds). ROLLOUTS (default 4) is N; POOL_SIZE (default 300000 decisions, about 57
# job sequences) how many decisions the pool holds; ADAPT_ONLY=1 stops after the adaptation (then
# recipes/tpch_temperature.sh with POLICY=$OUT/run tests it with sampled decisions). SEED (default 1) seeds the
# adaptation; POOL reuses a pool made before, e.g. another adaptation seed on the same pool:
#   SEED=2 POOL=artifacts/tpch_best_of_n/pool_decima_best_of_4 OUT=artifacts/tpch_best_of_n_seed_2 ADAPT_ONLY=1 ...
# SEGMENT_S selects within episodes instead (generate_exp_pool.py --segment-s): one episode per job sequence, every
# SEGMENT_S simulated seconds of it the best of ROLLOUTS continuations from the same state:
#   SEGMENT_S=300 POOL_SIZE=250000 OUT=artifacts/tpch_segments ADAPT_ONLY=1 ...
# WHICH_LAYER (default 5) is the block after which the LLM exits (-1: all 30), NUM_ITERS (default 6) the number
# of training iterations, AVERAGE_DECAY (default 0: the raw weights) validates and keeps an exponential moving
# average of the weights (--average-decay).
#
#   DATA=/path/to/data bash recipes/tpch_best_of_n.sh        (from cluster_job_scheduling/)
set -euo pipefail
DATA=${DATA:-${TRAILBLAZER_DATA:-data}}
OUT=${OUT:-artifacts/tpch_best_of_n}
ROLLOUTS=${ROLLOUTS:-4}
POOL_SIZE=${POOL_SIZE:-300000}
SEGMENT_S=${SEGMENT_S:-}
POOL=${POOL:-$OUT/pool_decima_best_of_$ROLLOUTS${SEGMENT_S:+_segments_$SEGMENT_S}}
SEED=${SEED:-1}
WHICH_LAYER=${WHICH_LAYER:-5}
NUM_ITERS=${NUM_ITERS:-6}
RUN=$OUT/run
mkdir -p "$OUT"

if [ ! -d "$POOL" ]; then
  python generate_exp_pool.py --scheds decima --rollouts-per-seed "$ROLLOUTS" --keep-best 1 --pool-size "$POOL_SIZE" \
    ${SEGMENT_S:+--segment-s "$SEGMENT_S"} --complete-episode --seed 100 --data-dir "$DATA" --output "$POOL"
fi

if [ ! -f "$OUT/trained" ]; then
  resume=()
  [ -f "$RUN/checkpoint/training_state.json" ] && resume=(--resume)
  python run_plm.py --train --plm-type smollm2 --plm-size 135m --which-layer "$WHICH_LAYER" --peft-rank 64 --K 20 \
    --pt-encoder-config config/decima_tpch.yaml --freeze-encoder --exp-pool-path "$POOL" --model-dir "$RUN" \
    --valid-seeds 1001 --data-dir "$DATA" --num-iters "$NUM_ITERS" --num-steps-per-iter 800 --batch-size 8 --lr 2e-4 \
    --average-decay "${AVERAGE_DECAY:-0}" --seed "$SEED" "${resume[@]}"
  touch "$OUT/trained"
fi
[ "${ADAPT_ONLY:-0}" = 1 ] && exit 0

# Tests in blocks of five seeds (a block is a results folder), so that a rerun redoes at most one block.
results=() reference=()
for first in 1 6 11 16; do
  block=seeds_$first-$((first + 4))
  [ -f "$OUT/decima_$block/summary.json" ] || python run_baseline.py --sched decima --seed "$first" --num-seeds 5 \
    --data-dir "$DATA" --results-dir "$OUT/decima_$block" --overwrite --quiet
  [ -f "$OUT/results_$block/summary.json" ] || python run_plm.py --test --model-dir "$RUN" --seed "$first" \
    --num-seeds 5 --data-dir "$DATA" --results-dir "$OUT/results_$block" --overwrite
  results+=("$OUT/results_$block") reference+=("$OUT/decima_$block")
done
python compare_results.py --results "${results[@]}" --reference "${reference[@]}"
