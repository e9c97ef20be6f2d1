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
#    non-contrast CT and T1-like MR): the first 8 cases of each set, ten structures (README's
#    table; 20 minutes on 2 cores), then the training configuration's held-out seeds
for m in ct mr; do
  python - "$m" <<'PY'
import json, shutil, sys
from pathlib import Path
m = sys.argv[1]
src, dst = Path(f"work/data/phantoms-heldout-style-{m}"), Path(f"work/data/heldout-style-{m}-8")
shutil.rmtree(dst, ignore_errors=True)
cases = sorted(p.name for p in (src / "images").iterdir())[:8]
for sub in ("images", "labels"):
    (dst / sub).mkdir(parents=True)
    for case in cases:
        shutil.copyfile(src / sub / case, dst / sub / case)
meta = json.loads((src / "dataset.json").read_text())
(dst / "dataset.json").write_text(json.dumps({**meta, "name": meta.get("name", "") + "-first8"}, indent=2))
PY
done
run docs/evaluation-heldout-style --data work/data/heldout-style-ct-8 --data work/data/heldout-style-mr-8 \
  --classes liver,spleen,kidney_left,kidney_right,aorta,stomach,spinal_cord,esophagus,hip_left,body
run docs/evaluation --data work/data/phantoms-heldout

# 3. seen in training: MNI152 and Colin27 at another orientation and voxel size (LSA, 2x3x2 mm),
#    and Colin27 rendered as a head CT
run docs/evaluation-mni152 --data work/data/mni152-lsa-2x3x2 --classes brain,grey_matter,white_matter --first-click deepest
run docs/evaluation-colin27-mr --data work/data/colin27-lsa-2x3x2 --classes head,brain,skull,cerebellum --first-click deepest
run docs/evaluation-colin27-ct --data work/data/colin27-ct --classes head,brain,skull,cerebellum --first-click deepest
