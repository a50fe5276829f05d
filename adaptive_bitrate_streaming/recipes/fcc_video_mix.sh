#!/usr/bin/env bash
# The ABR recipe (fcc_smollm2.sh) on a pool that also streams synthetic videos: RobustMPC over fcc-train with
# video1 and with four synthetic videos (seeds 1..4) whose chunk sizes are 0.8, 0.9, 1.1 and 1.3 times the nominal
# bitrates (encoders under- or overshooting them), two noisy passes each, so that the policy learns to read
# the next chunks' sizes rather than video1's. Adaptation and model selection as the recipe's (fcc-valid,
# video1), 3 epochs over a pool twice the recipe's size, so the same number of batches. No unseen setting's
# data is used. Re-running the script resumes where it stopped.
# WIDE=N (default 0) adds N synthetic training traces with a wider bandwidth range than FCC's (levels 0.3-6 Mbps
# held up to 20 s, noise 0.2, seed 41: other settings than the unseen-traces set's), streamed like fcc-train.
# TEACHERS="robustmpc udr_1 ..." (default robustmpc) plays every episode with each of these policies and keeps
# the best one (generate_exp_pool.py --keep-best 1): a pool better than any of its teachers.
# WIDE_TEACHERS="udr_1 ..." (default: TEACHERS) streams the wide traces with other policies than the FCC traces
# (generate_exp_pool.py --trace-models), e.g. those trained on synthetic traces; several keep the best of them.
# POOL adapts on an existing pool instead of making $OUT/pool; SEED and ADAPT_ONLY as in fcc_smollm2.sh, e.g. the
# wide mix's other adaptation seeds (as reproduce.py adapts them):
#   SEED=1 POOL=artifacts/fcc_wide_mix/pool ADAPT_ONLY=1 OUT=artifacts/fcc_wide_mix_seed_1 DATA=... bash recipes/fcc_video_mix.sh
#
#   DATA=/path/to/data bash recipes/fcc_video_mix.sh        (from adaptive_bitrate_streaming/)
#   WIDE=80 OUT=artifacts/fcc_wide_mix DATA=/path/to/data bash recipes/fcc_video_mix.sh
#   WIDE=80 TEACHERS="robustmpc udr_1 genet mpc bba" OUT=artifacts/fcc_wide_best DATA=... bash recipes/fcc_video_mix.sh
#   WIDE=80 WIDE_TEACHERS=udr_1 OUT=artifacts/fcc_wide_udr DATA=... bash recipes/fcc_video_mix.sh
#   WIDE=80 WIDE_TEACHERS="robustmpc udr_1" OUT=artifacts/fcc_wide_both DATA=... bash recipes/fcc_video_mix.sh
set -euo pipefail
DATA=${DATA:-${TRAILBLAZER_DATA:-data}}
OUT=${OUT:-artifacts/fcc_video_mix}
POOL=${POOL:-$OUT/pool}
VIDEOS=$OUT/videos  # a data root of its own: the public data may be read-only
mkdir -p "$OUT"

if [ ! -d "$POOL" ]; then
  videos=(video1)
  seed=1
  for scale in 0.8 0.9 1.1 1.3; do  # each video with its own seed (its own per-chunk complexity)
    [ -d "$VIDEOS/abr/videos/encoded-${scale}_sizes" ] || python generate_synthetic_data.py --data-dir "$VIDEOS" \
      --prefix "encoded-$scale" --video-scale "$scale" --seed "$seed" --train 0 --valid 0 --test 0
    videos+=("$VIDEOS/abr/videos/encoded-${scale}_sizes")
    seed=$((seed + 1))
  done
  traces=(fcc-train)
  trace_models=()
  WIDE=${WIDE:-0}
  if [ "$WIDE" -gt 0 ]; then
    [ -d "$VIDEOS/abr/traces/train/wide-train" ] || python generate_synthetic_data.py --data-dir "$VIDEOS" \
      --prefix wide --seed 41 --train "$WIDE" --valid 0 --test 0 --min-mbps 0.3 --max-mbps 6 --max-hold 20 --noise 0.2
    traces+=("$VIDEOS/abr/traces/train/wide-train")
    [ -n "${WIDE_TEACHERS:-}" ] && trace_models=(--trace-models "$VIDEOS/abr/traces/train/wide-train=${WIDE_TEACHERS// /,}")
  fi
  read -r -a teachers <<< "${TEACHERS:-robustmpc}"
  read -r -a wide_teachers <<< "${WIDE_TEACHERS:-}"
  best=()  # several teachers of one trace set: the best of their episodes
  [ "${#teachers[@]}" -gt 1 ] || [ "${#wide_teachers[@]}" -gt 1 ] && best=(--keep-best 1)
  python generate_exp_pool.py --models "${teachers[@]}" --trace "${traces[@]}" --video "${videos[@]}" \
    --trace-num -1 --seeds 1 2 --data-dir "$DATA" --output "$POOL" "${best[@]}" "${trace_models[@]}"
fi
OUT=$OUT POOL=$POOL EPOCHS=3 DATA=$DATA bash recipes/fcc_smollm2.sh
