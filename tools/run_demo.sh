#!/usr/bin/env bash
# The main job on the embedded default (`make demo`): generate SynthRef if missing, train the
# tiny EVF-SAM on it (resuming an interrupted run), evaluate val / testA / testB, and draw a
# few predictions with their expressions.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/_python.sh
PY=$PYTHON
CONFIG=configs/evf_sam/evf-tiny_synthref.py
DATA=data/synthref
WORK_DIR=work_dirs/evf-tiny_synthref

say() { echo; echo "[demo] $*"; }

if [ ! -f "$DATA/synthref/instances.json" ]; then
    say "generating SynthRef in $DATA"
    "$PY" tools/dataset_converters/make_synthref.py "$DATA" --num-images 600 --seed 0
fi

MAX_ITERS=$("$PY" -c "from mmengine.config import Config; \
print(Config.fromfile('$CONFIG').train_cfg.max_iters)" 2>/dev/null | tail -n 1)
if [ -f "$WORK_DIR/last_checkpoint" ] && \
    [ "$(basename "$(cat "$WORK_DIR/last_checkpoint")")" = "iter_${MAX_ITERS}.pth" ]; then
    say "$WORK_DIR already holds the finished run (iter_${MAX_ITERS}.pth); not training again"
else
    say "training $CONFIG -> $WORK_DIR (resumes from $WORK_DIR/last_checkpoint if present)"
    "$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" --resume
fi

CHECKPOINT=$(cat "$WORK_DIR/last_checkpoint")
say "evaluating $CHECKPOINT on val / testA / testB, drawing a few predictions"
"$PY" tools/test.py "$CONFIG" "$CHECKPOINT" --work-dir "$WORK_DIR" --show-dir vis \
    --cfg-options default_hooks.visualization.max_images=4 | tee "$WORK_DIR/test_summary.txt"
"$PY" tools/analysis/text_following.py "$CONFIG" "$CHECKPOINT" --work-dir "$WORK_DIR" --split val \
    | tail -n 1 | tee "$WORK_DIR/text_following.txt"

VIS_DIR=$(ls -d "$WORK_DIR"/*/vis 2>/dev/null | tail -n 1)
say "done. Written:"
echo "  dataset:      $DATA"
echo "  checkpoints:  $WORK_DIR (last: $CHECKPOINT)"
echo "  logs:         $WORK_DIR/<timestamp>/"
echo "  metrics:      $WORK_DIR/test_summary.txt"
echo "  overlays:     ${VIS_DIR:-none}"
echo "  contact sheet (open first): ${VIS_DIR:+${VIS_DIR%/vis}/contact_sheet.png}"
echo "  $(cat "$WORK_DIR/text_following.txt")"
say "try it in a browser (then open http://127.0.0.1:7860/):"
echo "  $PY tools/demo/app.py --config $CONFIG --weights $CHECKPOINT"
