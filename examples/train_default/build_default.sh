#!/usr/bin/env bash
# Everything after the foundation: three experts, their plugins, the default gate.
# The experts are finetuned like the foundation was: on images synthesised from the phantoms'
# label and tissue maps with random contrasts (--synthesis), with box prompts, so they work on
# real scans and not only on the generator's intensities.
# The gate trains on the plugins' calibration sets plus the 24 spare CT phantoms (seeds 3000+,
# never the held-out 9000+ ones), each also as a copy with images synthesised from its labels in
# the CT style and in the random-contrast style (synthesize_dataset.py): trained on the
# generator's images alone, the gate routed most real-CT prompts to the wrong expert (MoE 0.14
# mean Dice on the shared real CT against the foundation's 0.37; with the copies, 0.27).
# --margin 0.1: an expert is the right answer for a training prompt only when it beats the
# foundation by 0.1 Dice (default 0.02). With 0.02 the gate learnt that the hip expert, decent on
# most phantom structures, is often marginally best, and sent 8 of 9 real-CT structures to it.
# Run from the repo root after train.py has finished the foundation run:
#   bash examples/train_default/build_default.sh [FOUNDATION_RUN_DIR]
# Each step is resumable (finetune runs resume from their run folders; finished steps are kept).
set -euo pipefail
run=${1:-work/runs/foundation-synth}
steps=${STEPS:-600}            # finetune steps per expert (STEPS=2 for a dry run of the script)
prompts=${PROMPTS:-2}          # gate-training clicks per class and case
export SAMMOE_HOME=${SAMMOE_HOME:-$PWD/work/home-default}
python examples/train_default/install_default.py foundation "$run/model.safetensors"

declare -A CLASSES=([spinal-cord]=spinal_cord [esophagus]=esophagus [hip]=hip_left,hip_right)
declare -A TITLES=([spinal-cord]="spinal cord" [esophagus]="esophagus" [hip]="femoral heads (left and right hip)")
for name in spinal-cord esophagus hip; do
  if [ ! -f "work/experts/$name/expert.json" ]; then
    /usr/bin/time -f "$name finetune: %U s user CPU, %e s wall" sammoe finetune \
      --data work/data/phantoms-train-ct --data work/data/phantoms-train-mr \
      --name "$name" --classes "${CLASSES[$name]}" --parts decoder \
      --steps "$steps" --batch-size 2 --lr 3e-4 --clicks 4 --seed 7 --synthesis \
      --calibration "work/data/calib-$name" --cache-dir work/cache \
      --modality any --license Apache-2.0 --author "sammoe developers" \
      --description "Expert for the ${TITLES[$name]} on CT and MR: the sammoe-small-box foundation's prompt encoder and mask decoder finetuned on images synthesised from phantom label maps." \
      -o "work/experts/$name" --overwrite --quiet
  fi
  sammoe new-plugin "sammoe-expert-$name" --expert "work/experts/$name" -o plugins --overwrite >/dev/null
  pip install -q -c constraints/dev.txt -e "plugins/sammoe-expert-$name" >/dev/null
done

for style in ct random; do
  [ -f "work/data/phantoms-calib-synth-$style/dataset.json" ] || \
    python examples/train_default/synthesize_dataset.py work/data/phantoms-calib "work/data/phantoms-calib-synth-$style" --style "$style" --seed 1
done
/usr/bin/time -f "retrain-gate: %U s user CPU, %e s wall" sammoe retrain-gate --data work/data/phantoms-calib \
  --data work/data/phantoms-calib-synth-ct --data work/data/phantoms-calib-synth-random --epochs 120 --margin 0.1 --prompts-per-class "$prompts" --json -q > work/gate-report.json
python examples/train_default/install_default.py gate "$(python -c 'import json; print(json.load(open("work/gate-report.json"))["gate"])')"
