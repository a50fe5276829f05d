#!/usr/bin/env bash
# The paper's default ABR setting on the real data, with SmolLM2-135M on a CPU: an experience pool from
# RobustMPC on fcc-train (5 noisy passes), adaptation with model selection on fcc-valid, results on all 100
# fcc-test traces (video1), next to the baselines on fcc-valid and fcc-test. Re-running the script resumes
# where it stopped. SEED (default 100003) is the adaptation seed, POOL an existing pool to adapt on instead of
# $OUT/pool, ADAPT_ONLY=1 stops after the adaptation (reproduce.py adapts its other seeds so). WHICH_LAYER (default 3:
# early exit after block 3; -1 = all 30 blocks) and EPOCHS (default 6) change the backbone's depth and the length of
# the adaptation, LR_SCHEDULE (default constant; cosine) its learning rate after the warm-up, REWARD_FLOOR_QUANTILE
# (default 0: the pool's worst reward) the floor of the rewards' min-max normalisation, AVERAGE_DECAY (default 0:
# the raw weights) validates and keeps an exponential moving average of the weights, DTYPE (default float32;
# bfloat16: mixed precision, 1.7x faster on CPUs with AVX-512 BF16) the training precision, e.g. the 30-block
# policy of the load experiment:
#   OUT=artifacts/fcc_smollm2_30 POOL=artifacts/fcc_smollm2/pool WHICH_LAYER=-1 DTYPE=bfloat16 DATA=... bash recipes/fcc_smollm2.sh
#
#   DATA=/path/to/data bash recipes/fcc_smollm2.sh        (from adaptive_bitrate_streaming/)
set -euo pipefail
DATA=${DATA:-${TRAILBLAZER_DATA:-data}}
OUT=${OUT:-artifacts/fcc_smollm2}
SEED=${SEED:-100003}
POOL=${POOL:-$OUT/pool}
WHICH_LAYER=${WHICH_LAYER:-3}
EPOCHS=${EPOCHS:-6}
LR_SCHEDULE=${LR_SCHEDULE:-constant}
REWARD_FLOOR_QUANTILE=${REWARD_FLOOR_QUANTILE:-0}
AVERAGE_DECAY=${AVERAGE_DECAY:-0}
DTYPE=${DTYPE:-float32}
RUN=$OUT/run
mkdir -p "$OUT"

if [ ! -d "$POOL" ]; then
  python generate_exp_pool.py --models robustmpc --trace fcc-train --video video1 --trace-num -1 \
    --seeds 1 2 3 4 5 --data-dir "$DATA" --output "$POOL"
fi

if [ ! -f "$RUN/best_model/settings.json" ] || [ ! -f "$OUT/adapted" ]; then
  resume=()
  [ -f "$RUN/checkpoint/training_state.json" ] && resume=(--resume)
  python run_plm.py --adapt --plm-type smollm2 --plm-size 135m --which-layer "$WHICH_LAYER" --rank 64 \
    --exp-pool-path "$POOL" --model-dir "$RUN" --valid-trace fcc-valid --video video1 --data-dir "$DATA" \
    --num-epochs "$EPOCHS" --batch-size 8 --lr 5e-4 --lr-schedule "$LR_SCHEDULE" \
    --reward-floor-quantile "$REWARD_FLOOR_QUANTILE" --average-decay "$AVERAGE_DECAY" --w 20 --seed "$SEED" \
    --dtype "$DTYPE" "${resume[@]}"
  touch "$OUT/adapted"
fi
[ "${ADAPT_ONLY:-0}" = 1 ] && exit 0

python run_plm.py --test --model-dir "$RUN" --trace fcc-test --trace-num -1 --video video1 --data-dir "$DATA" \
  --results-dir "$OUT/results_fcc_test" --overwrite

for model in bba mpc genet robustmpc; do
  for traces in fcc-valid fcc-test; do
    python run_baseline.py --model "$model" --trace "$traces" --trace-num -1 --video video1 --data-dir "$DATA" \
      --results-dir "$OUT/baselines_$traces/$model" --overwrite
  done
done
