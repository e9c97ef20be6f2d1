#!/usr/bin/env bash
# One prepared device run for the embedded default: install sammoe and its three plugins from this
# tree (no network there), then bench/cuda_default.py (CUDA vs CPU on the same machine) and the
# MoE overhead on CUDA. Wheels for what the GPU image lacks go in .whl/ (pydantic, monai, ...).
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site \
  . plugins/sammoe-expert-spinal-cord plugins/sammoe-expert-esophagus plugins/sammoe-expert-hip || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 SAMMOE_HOME=/tmp/sammoe-home
cd /tmp && python3 -c "import sammoe_core, torch; print(sammoe_core.__file__, torch.__version__, torch.cuda.get_device_name())" && cd - >/dev/null
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
(cd /tmp && python3 -m sammoe_core plugins) | head -c 1500; echo
python3 bench/cuda_default.py "${OUT:-/tmp/out}/default" cuda
python3 bench/moe_overhead.py --device cuda --repeats 20
