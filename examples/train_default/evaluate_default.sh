#!/usr/bin/env bash
# Every figure README and docs/evaluation*/ report for the embedded default, real scans first.
# Run from the repo root after build_default.sh (the new default installed, plugins reinstalled):
#   bash examples/train_default/evaluate_default.sh
# Needs work/data (prepare_data.py, make_calibration.py) and the shared real CT converted with
#   python examples/real_ct/prepare_real_ct.py ../shared/data/real-ct-dicom work/data/real-ct
# MNI152 and Colin27 were training volumes: their figures show fit to real anatomy at other
# geometries and contrasts, not generalisation.
set -euo pipefail
export SAMMOE_HOME=${SAMMOE_HOME:-$PWD/work/home-default}
clicks=1,3,5
run() { local out=$1; shift; sammoe evaluate "$@" --clicks "$clicks" -o "$out" --overwrite -q > /dev/null; echo "wrote $out"; }

# 1. the shared real CT (evaluation only): crop Dice from the deepest voxel of each structure,
#    and full-volume Dice through `sammoe segment` (edge extension), MoE and foundation alone
run docs/evaluation-real-ct --data work/data/real-ct --first-click deepest
for policy in threshold foundation; do
  python examples/real_ct/evaluate_full_volume.py work/data/real-ct --clicks "$clicks" --policy "$policy" \
    --json "docs/evaluation-real-ct/full-volume-$policy.json" | tee "docs/evaluation-real-ct/full-volume-$policy.md"
done
python examples/real_ct/evaluate_full_volume.py work/data/real-ct --clicks 1 --box \
  --json docs/evaluation-real-ct/full-volume-box.json | tee docs/evaluation-real-ct/full-volume-box.md

# 2. phantoms of the held-out generator configuration (other deformations, organ absences, habitus,
#    non-contrast CT and T1-like MR), then the training configuration's held-out seeds
run docs/evaluation-heldout-style --data work/data/phantoms-heldout-style-ct --data work/data/phantoms-heldout-style-mr
run docs/evaluation --data work/data/phantoms-heldout

# 3. seen in training: MNI152 and Colin27 at another orientation and voxel size (LSA, 2x3x2 mm),
#    and Colin27 rendered as a head CT
run docs/evaluation-mni152 --data work/data/mni152-lsa-2x3x2 --classes brain,grey_matter,white_matter --first-click deepest
run docs/evaluation-colin27-mr --data work/data/colin27-lsa-2x3x2 --classes head,brain,skull,cerebellum --first-click deepest
run docs/evaluation-colin27-ct --data work/data/colin27-ct --classes head,brain,skull,cerebellum --first-click deepest
