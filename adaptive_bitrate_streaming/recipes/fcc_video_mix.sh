#!/usr/bin/env bash
# The ABR recipe (fcc_smollm2.sh) on a pool that also streams synthetic videos: RobustMPC over fcc-train with
# video1 and with four synthetic videos (seeds 1..4) whose chunk sizes are 0.8, 0.9, 1.1 and 1.3 times the nominal
# bitrates (encoders under- or overshooting them), two noisy passes each, so that the policy learns to read
# the next chunks' sizes rather than video1's. Adaptation and model selection as the recipe's (fcc-valid,
# video1), 3 epochs over a pool twice the recipe's size, so the same number of batches. No unseen setting's
# data is used. Re-running the script resumes where it stopped.
#
#   DATA=/path/to/data bash recipes/fcc_video_mix.sh        (from adaptive_bitrate_streaming/)
set -euo pipefail
DATA=${DATA:-${TRAILBLAZER_DATA:-data}}
OUT=${OUT:-artifacts/fcc_video_mix}
VIDEOS=$OUT/videos  # a data root of its own: the public data may be read-only
mkdir -p "$OUT"

videos=(video1)
seed=1
for scale in 0.8 0.9 1.1 1.3; do  # each video with its own seed (its own per-chunk complexity)
  [ -d "$VIDEOS/abr/videos/encoded-${scale}_sizes" ] || python generate_synthetic_data.py --data-dir "$VIDEOS" \
    --prefix "encoded-$scale" --video-scale "$scale" --seed "$seed" --train 0 --valid 0 --test 0
  videos+=("$VIDEOS/abr/videos/encoded-${scale}_sizes")
  seed=$((seed + 1))
done
if [ ! -d "$OUT/pool" ]; then
  python generate_exp_pool.py --models robustmpc --trace fcc-train --video "${videos[@]}" --trace-num -1 \
    --seeds 1 2 --data-dir "$DATA" --output "$OUT/pool"
fi
OUT=$OUT POOL=$OUT/pool EPOCHS=3 DATA=$DATA bash recipes/fcc_smollm2.sh
