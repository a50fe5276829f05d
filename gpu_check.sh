#!/usr/bin/env bash
# The CUDA check, short enough for a lent GPU machine (about 5 minutes on one GPU): the model tests of both
# trees on cuda (the cache-equals-recomputation tests among them), the device and mixed-precision tests (a
# backbone split between the GPU and the CPU included), and the LLM benchmark on cuda in float32 and bfloat16
# (decision latency cached vs full, batch 16 vs 1 training throughput; SmolLM2-135M's architecture with
# random weights: speed does not depend on them, and the converted weights are too large to carry).
#
# The GPU machine reaches no package registry. Here, once:   make gpu-check-wheels
# There, from the repository root, with .whl/ and downloaded_plms/smollm2/135m/config.json carried:
#   bash gpu_check.sh            (the log goes to $OUT/gpu_check.log, else artifacts/gpu_check/gpu_check.log)
# DEVICE=cpu bash gpu_check.sh runs the same checks on the CPU (slowly), to try the script itself.
set -euo pipefail
cd "$(dirname "$0")"
LOG_DIR=${OUT:-artifacts/gpu_check}
mkdir -p "$LOG_DIR"
exec > >(tee "$LOG_DIR/gpu_check.log") 2>&1
PYTHON=${PYTHON:-python3}
if [ -d .whl ]; then  # the versions of requirements-*.txt that the machine's image lacks
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gpu_check_site .whl/*.whl
  export PYTHONPATH=/tmp/gpu_check_site
fi
export TRAILBLAZER_TEST_DEVICE=${DEVICE:-cuda} PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
"$PYTHON" -c "import torch, transformers; print('torch', torch.__version__, '| transformers', transformers.__version__,
'| GPU:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none')"

status=0
(cd adaptive_bitrate_streaming && "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_plm_policy.py tests/test_devices.py) || status=1
(cd cluster_job_scheduling && "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_plm.py \
  -k "cache or training_forward or absolute or stages") || status=1

cd adaptive_bitrate_streaming
DATA=$(mktemp -d)
trap 'rm -rf "$DATA"' EXIT
"$PYTHON" generate_synthetic_data.py --data-dir "$DATA" --train 0 --valid 0 --test 4 >/dev/null
for dtype in float32 bfloat16; do
  "$PYTHON" benchmarks/benchmark_llm.py --device "$TRAILBLAZER_TEST_DEVICE" --random-weights --dtype "$dtype" \
    --data-dir "$DATA" --trace synthetic-test --video synthetic || status=1
done
exit $status
