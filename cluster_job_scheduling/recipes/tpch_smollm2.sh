#!/usr/bin/env bash
# The default CJS setting (TPC-H, 50 executors, 200 jobs, rate 4e-5, moving delay 2000 ms, warm-up 1000 ms)
# with SmolLM2-135M on a CPU: a pool of whole Decima episodes, the graph state encoder of trained Decima
# (kept frozen), adaptation with model selection on seed 1001, results on test seeds 1..5 (most likely
# actions, and seeded sampling), next to Decima, Fair and FIFO on the same seeds.
# Re-running the script resumes where it stopped. SEED (default 1) is the adaptation seed, POOL an existing
# pool to adapt on instead of $OUT/pool_decima, ADAPT_ONLY=1 stops after the adaptation (reproduce.py adapts
# its other seeds so). RETURN_UNIT (default 0: min-max normalised rewards, the original's) is --return-unit:
# RETURN_UNIT=1000 conditions on the job time (s) still to come. AVERAGE_DECAY (default 0: the raw weights) is
# --average-decay: validate and keep an exponential moving average of the weights.
#
#   DATA=/path/to/data bash recipes/tpch_smollm2.sh        (from cluster_job_scheduling/)
set -euo pipefail
DATA=${DATA:-${TRAILBLAZER_DATA:-data}}
OUT=${OUT:-artifacts/tpch_smollm2}
SEED=${SEED:-1}
POOL=${POOL:-$OUT/pool_decima}
RUN=$OUT/run
mkdir -p "$OUT"

if [ ! -d "$POOL" ]; then
  python generate_exp_pool.py --scheds decima --pool-size 300000 --complete-episode --seed 100 \
    --data-dir "$DATA" --output "$POOL"
fi

if [ ! -f "$OUT/trained" ]; then
  resume=()
  [ -f "$RUN/checkpoint/training_state.json" ] && resume=(--resume)
  python run_plm.py --train --plm-type smollm2 --plm-size 135m --which-layer 5 --peft-rank 64 --K 20 \
    --pt-encoder-config config/decima_tpch.yaml --freeze-encoder --exp-pool-path "$POOL" --model-dir "$RUN" \
    --valid-seeds 1001 --data-dir "$DATA" --num-iters 6 --num-steps-per-iter 800 --batch-size 8 --lr 2e-4 \
    --return-unit "${RETURN_UNIT:-0}" --average-decay "${AVERAGE_DECAY:-0}" --seed "$SEED" "${resume[@]}"
  touch "$OUT/trained"
fi
[ "${ADAPT_ONLY:-0}" = 1 ] && exit 0

python run_plm.py --test --model-dir "$RUN" --seed 1 --num-seeds 5 --data-dir "$DATA" \
  --results-dir "$OUT/results_seeds_1-5" --overwrite
python run_plm.py --test --sample --model-dir "$RUN" --seed 1 --num-seeds 5 --data-dir "$DATA" \
  --results-dir "$OUT/sample_seeds_1-5" --overwrite
for sched in decima fair fifo; do
  python run_baseline.py --sched "$sched" --seed 1 --num-seeds 5 --data-dir "$DATA" \
    --results-dir "$OUT/${sched}_seeds_1-5" --overwrite --quiet
done
