#!/usr/bin/env bash
# One prepared device run for the end-to-end profile (issue 13): install sammoe and its three
# plugins from this tree (no network there; wheels the GPU image lacks go in .whl/), then
# bench/end_to_end.py on CPU and CUDA side by side, for the example volume and, when the shared
# real CT was converted (work/data/real-ct carried along), for it too.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site \
  . plugins/sammoe-expert-spinal-cord plugins/sammoe-expert-esophagus plugins/sammoe-expert-hip || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 SAMMOE_HOME=/tmp/sammoe-home
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 bench/end_to_end.py --device cpu,cuda --repeats 3
if [ -f work/data/real-ct/images/real_ct.nii.gz ] && [ -f work/realct.prompts.json ]; then
  python3 bench/end_to_end.py work/data/real-ct/images/real_ct.nii.gz work/realct.prompts.json --device cpu,cuda --repeats 3
fi
