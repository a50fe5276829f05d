#!/usr/bin/env bash
# Sampling temperatures of an adapted CJS scheduler (default: the policy of recipes/tpch_smollm2.sh). Each
# variant decides validation episodes 1001..1005 (never test seeds), Decima and Fair play them too; the variant
# with the lowest average JCT there is then tested on seeds 1..20 in blocks of five and compared seed by seed with
# Decima (the folders of recipes/tpch_best_of_n.sh are reused when present). LLM episodes run as two one-thread
# processes side by side. Re-running resumes (finished folders are kept). ONLY="name ..." runs only these
# variants, e.g. the best of the recipe's policy for another policy:
#
#   DATA=/path/to/data bash recipes/tpch_temperature.sh        (from cluster_job_scheduling/)
#   POLICY=artifacts/tpch_best_of_n/run OUT=artifacts/tpch_temperature_best_of_4 ONLY=both_0.5 DATA=... bash recipes/tpch_temperature.sh
set -euo pipefail
DATA=${DATA:-${TRAILBLAZER_DATA:-data}}
POLICY=${POLICY:-artifacts/tpch_smollm2/run}
OUT=${OUT:-artifacts/tpch_temperature}
# name: flags of run_plm.py --test ("likely": the most likely decisions)
VARIANTS=(
  "likely:"
  "exec_only:--sample --temperature 0 --exec-temperature 1"
  "stage_only:--sample --temperature 1 --exec-temperature 0"
  "both_0.5:--sample --temperature 0.5"
  "stage_0.5_exec_1:--sample --temperature 0.5 --exec-temperature 1"
  "stage_0.3_exec_0.7:--sample --temperature 0.3 --exec-temperature 0.7"
)
if [ -n "${ONLY:-}" ]; then
  chosen=()
  for name in $ONLY; do
    found=""
    for variant in "${VARIANTS[@]}"; do
      if [ "${variant%%:*}" = "$name" ]; then found=$variant; fi
    done
    if [ -z "$found" ]; then
      echo "error: ONLY: no variant named $name in recipes/tpch_temperature.sh; the names are in its VARIANTS" >&2
      exit 2
    fi
    chosen+=("$found")
  done
  VARIANTS=("${chosen[@]}")
fi
mkdir -p "$OUT"

llm() {  # results folder, first seed, flags...
  local out=$1 first=$2; shift 2
  [ -f "$out/summary.json" ] || OMP_NUM_THREADS=1 python run_plm.py --test --model-dir "$POLICY" --seed "$first" \
    --num-seeds 5 --data-dir "$DATA" --results-dir "$out" --overwrite "$@" > "$out.log" 2>&1
}
baseline() {  # scheduler, results folder, first seed
  [ -f "$2/summary.json" ] || python run_baseline.py --sched "$1" --seed "$3" --num-seeds 5 --data-dir "$DATA" \
    --results-dir "$2" --overwrite --quiet
}
average_jct() { python -c "import json, sys; print(f\"{json.load(open(sys.argv[1]))['avg_jct_s']:.2f}\")" "$1/summary.json"; }

baseline decima "$OUT/decima_valid" 1001
baseline fair "$OUT/fair_valid" 1001
for ((i = 0; i < ${#VARIANTS[@]}; i += 2)); do
  pids=()
  for variant in "${VARIANTS[@]:i:2}"; do
    read -ra flags <<< "${variant#*:}"
    llm "$OUT/${variant%%:*}" 1001 "${flags[@]}" & pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
done

best="" best_jct=""
echo "validation episodes 1001..1005, average JCT (s): decima $(average_jct "$OUT/decima_valid"), fair $(average_jct "$OUT/fair_valid")"
for variant in "${VARIANTS[@]}"; do
  name=${variant%%:*} jct=$(average_jct "$OUT/${variant%%:*}")
  echo "  $name (${variant#*:}): $jct"
  if [ -z "$best" ] || python -c "import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))" "$jct" "$best_jct"; then
    best=$variant best_jct=$jct
  fi
done
name=${best%%:*}
read -ra flags <<< "${best#*:}"
echo "testing $name on seeds 1..20"

results=() reference=()
(llm "$OUT/${name}_seeds_1-5" 1 "${flags[@]}"; llm "$OUT/${name}_seeds_11-15" 11 "${flags[@]}") &
(llm "$OUT/${name}_seeds_6-10" 6 "${flags[@]}"; llm "$OUT/${name}_seeds_16-20" 16 "${flags[@]}") &
wait
for first in 1 6 11 16; do
  block=seeds_$first-$((first + 4))
  decima=artifacts/tpch_best_of_n/decima_$block
  [ -f "$decima/summary.json" ] || { decima=$OUT/decima_$block; baseline decima "$decima" "$first"; }
  results+=("$OUT/${name}_$block") reference+=("$decima")
done
python compare_results.py --results "${results[@]}" --reference "${reference[@]}"
