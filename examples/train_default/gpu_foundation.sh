#!/usr/bin/env bash
# The foundation recipe on a lent GPU machine (16 cores + one GPU), in one call:
# generate the phantoms in parallel, cache every case on the model lattice in parallel, then
# train with the data loaded by 14 worker processes, under a wall-clock budget.
# Usage (repo root): bash examples/train_default/gpu_foundation.sh OUT_DIR [BUDGET_S]
# Expects: .whl/ (wheels the GPU image lacks), work/data/mni152 and work/data/colin27 (made here
# by prepare_data.py; carried, never committed).
set -uo pipefail
out=${1:?out dir}; budget=${2:-300}
# DRY_RUN=1: a few tiny phantom sets on this machine's CPU, to check the script before a lease.
ncase=${DRY_RUN:+1}; ncase=${ncase:-7}; nct=${DRY_RUN:+1}; nct=${nct:-15}; nmr=${DRY_RUN:+0}; nmr=${nmr:-3}
if [ -z "${DRY_RUN:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
mkdir -p work/gpu "$out"
t0=$(date +%s)
for k in $(seq 0 "$nct"); do python3 -m sammoe_core phantoms work/gpu/ct-$k --n "$ncase" --seed $((1000 + k)) --quiet --overwrite & done
for k in $(seq 0 "$nmr"); do python3 -m sammoe_core phantoms work/gpu/mr-$k --n "$ncase" --seed $((2000 + k)) --contrast mr --quiet --overwrite & done
wait
echo "phantoms: $(( $(date +%s) - t0 )) s"
python3 examples/train_default/gpu_config.py work/gpu work/gpu/foundation.json "$budget" ${DRY_RUN:+cpu}
python3 - <<'PY'
import json, concurrent.futures as cf
from sammoe_core.training import TrainConfig
from sammoe_core.training.data import prepare_dataset
cfg = TrainConfig.model_validate_json(open("work/gpu/foundation.json").read())
def prep(src):
    return len(prepare_dataset(src.path, "work/gpu/cache", cfg.preprocessing, src.classes, cfg.seed))
with cf.ProcessPoolExecutor(min(16, len(cfg.data))) as ex:
    print("cached cases:", sum(ex.map(prep, cfg.data)))
PY
echo "cache: $(( $(date +%s) - t0 )) s"
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader 2>/dev/null
python3 examples/train_default/train.py work/gpu/foundation.json work/gpu/run --cache work/gpu/cache --quiet
echo "total: $(( $(date +%s) - t0 )) s"
cp work/gpu/run/run.json "$out"/
# files come back at most 16 MiB each: ship the weights as two halves (joined again here)
python3 - "$out" <<'PY'
import sys
from safetensors.torch import load_file, save_file
state = load_file("work/gpu/run/model.safetensors")
keys = sorted(state)
half = len(keys) // 2
for i, part in enumerate((keys[:half], keys[half:])):
    save_file({k: state[k] for k in part}, f"{sys.argv[1]}/weights-part{i}.safetensors")
PY
cp work/gpu/run/log.jsonl "$out"/ 2>/dev/null || : > "$out"/log.jsonl
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/log.jsonl")]
if not rows:
    sys.exit(0)
for r in rows[:: max(1, len(rows) // 12)] + rows[-1:]:
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()})
PY
