#!/usr/bin/env bash
# One prepared device run for issue 13 (fast end to end): install sammoe and its three plugins
# from this tree (no network there; wheels the GPU image lacks go in .whl/), then, side by side:
#   1. bench/end_to_end.py: stages of one `sammoe segment`, CPU and CUDA, fp32 and auto (bf16),
#      for the example volume and, when the shared real CT was converted (work/data/real-ct
#      carried along), for it too;
#   2. bench/encoder_speed.py: the encoder alone (eager, bf16, CUDA graph);
#   3. bench/batch_throughput.py: volumes per minute through segment_batch on CUDA.
# Each step has its own timeout so that one slow step cannot eat the device budget.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site \
  . plugins/sammoe-expert-spinal-cord plugins/sammoe-expert-esophagus plugins/sammoe-expert-hip || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 SAMMOE_HOME=/tmp/sammoe-home
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
timeout 200 python3 bench/end_to_end.py --device cpu,cuda --precision fp32,auto --repeats 2
if [ -f work/data/real-ct/images/real_ct.nii.gz ] && [ -f work/realct.prompts.json ]; then
  timeout 150 python3 bench/end_to_end.py work/data/real-ct/images/real_ct.nii.gz work/realct.prompts.json \
    --device cuda --precision fp32,auto --repeats 2
fi
timeout 90 python3 bench/encoder_speed.py --device cuda --repeats 5 --medim-repeats 1
timeout 120 python3 bench/batch_throughput.py --config sammoe-small --volumes 32 --size 128 --device cuda --workers 1
