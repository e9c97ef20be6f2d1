#!/usr/bin/env bash
# One prepared device run for issue 13 (fast end to end): install sammoe and its three plugins
# from this tree (no network there; wheels the GPU image lacks go in .whl/), then, side by side:
#   1. bench/end_to_end.py: stages of one `sammoe segment`, CPU and CUDA, fp32 and auto (bf16),
#      CUDA both with the runtime defaults (CUDA graphs, 8 crops per encoder pass) and eager
#      (--no-cuda-graphs --crop-batch 1), on the example volume, then on the shared real CT;
#   2. the runtime's CUDA graphs against eager on the real CT: label maps compared (fp32: the
#      exact mode, so they must be equal; auto/bf16: agreement printed);
#   3. bench/encoder_speed.py: the encoder alone (eager, bf16, bench graph, runtime, runtime x8);
#   4. bench/batch_throughput.py: volumes per minute through segment_batch on CUDA;
#   5. full-volume Dice on the real CT, fp32 against auto (bf16) on CUDA: the documented
#      difference of the CUDA default precision.
# Each step has its own timeout so that one slow step cannot eat the device budget.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site \
  . plugins/sammoe-expert-spinal-cord plugins/sammoe-expert-esophagus plugins/sammoe-expert-hip || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 SAMMOE_HOME=/tmp/sammoe-home
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
shared=shared; [ -d "$shared/data/real-ct-dicom" ] || shared=../shared
real=/tmp/real-ct
if [ -d "$shared/data/real-ct-dicom" ]; then
  timeout 120 python3 examples/real_ct/prepare_real_ct.py "$shared/data/real-ct-dicom" "$real" >/dev/null
fi
timeout 150 python3 bench/end_to_end.py --device cpu,cuda --precision fp32,auto --runtime default,eager --repeats 2
if [ -f "$real/images/real_ct.nii.gz" ]; then
  timeout 120 python3 bench/end_to_end.py "$real/images/real_ct.nii.gz" bench/real_ct.prompts.json \
    --device cuda --precision fp32,auto --runtime default,eager --repeats 2
  for precision in fp32 auto; do
    for runtime in graph eager; do
      flags=(); [ "$runtime" = eager ] && flags=(--no-cuda-graphs --crop-batch 1)
      timeout 60 python3 -m sammoe_core segment "$real/images/real_ct.nii.gz" --prompts bench/real_ct.prompts.json \
        -o "/tmp/cmp-$precision-$runtime.nii.gz" --device cuda --precision "$precision" "${flags[@]}" -q --overwrite
    done
    python3 - "$precision" <<'PY'
import sys, nibabel as nib, numpy as np
p = sys.argv[1]
a, b = (np.asarray(nib.load(f"/tmp/cmp-{p}-{r}.nii.gz").dataobj) for r in ("graph", "eager"))
print(f"{p}: CUDA graphs + crop batch 8 vs eager one crop at a time: equal={np.array_equal(a, b)} "
      f"agreement={(a == b).mean():.6f} labelled voxels {int((a > 0).sum())} vs {int((b > 0).sum())}")
PY
  done
fi
timeout 90 python3 bench/encoder_speed.py --device cuda --repeats 5 --medim-repeats 1
timeout 90 python3 bench/batch_throughput.py --config sammoe-small --volumes 32 --size 128 --device cuda --workers 1
if [ -f "$real/images/real_ct.nii.gz" ]; then
  for precision in fp32 auto; do
    timeout 100 python3 examples/real_ct/evaluate_full_volume.py "$real" --clicks 1,3,5 --precision "$precision" \
      --device cuda --json "/tmp/eval-$precision.json" | tail -4
  done
fi
