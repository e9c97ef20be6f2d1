#!/usr/bin/env bash
# One prepared device run for the network issue: CUDA parity, then encoder timings.
# Expects wheels for what the GPU image lacks in .whl/ (pydantic, medim, ...).
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit 1
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 bench/cuda_network.py
python3 bench/encoder_speed.py --device cuda --repeats 50 --medim-repeats 20
