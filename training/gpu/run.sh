#!/usr/bin/env bash
# One-shot training on a lent GPU machine (training/gpu/README.md): emoji pack -> run folder (fresh,
# or warm-started from the shipped model / an earlier run's weights) -> torchrun on every GPU with a
# wall-clock budget (the training stops itself with a checkpoint before the budget ends) -> compact
# bf16 weights, a sample grid and the log under $OUT.
#
#   bash training/gpu/run.sh                                  # on the GPU machine (device tool: carry training/gpu/pack)
#   WEBDIT_GPU_DRYRUN=1 OUT=/tmp/out bash training/gpu/run.sh # here: CPU, gloo, 2 processes, toy preset
#
# Environment (all optional):
#   OUT         what comes back (the device tool sets it); default training/runs/gpu-out
#   BUDGET_MIN  the whole script's wall clock, minutes (default 9: a device command may run 10)
#   PRESET      default cuda-tiny (the shipped architecture, GPU batches); dry run: toy
#   WARM        ""  | shipped (public/models/webdit-tiny, from_onnx) | <model folder> | <folder with weights.json
#               + parts, or weights.pt> (an earlier run's $OUT). Default: shipped for cuda-tiny, none else
#   TRAIN       with WARM: components that train (default transformer; the others stay frozen)
#   NPROC       processes (default: the GPU count; dry run 2)
#   SET         extra preset overrides, e.g. "dit_batch=512 lr_dit=3e-4"
#   EMOJI_PACK  default training/gpu/pack/emoji.tar.xz (built here by training/gpu/pack.py); missing -> shapes only
#   WORK        scratch folder for the run (default /tmp/webdit-gpu); the run folder is $WORK/run
#   PYTHON      default python3 (/usr/bin/python3 in the dry run)
set -uo pipefail
STARTED=$(date +%s)
cd "$(dirname "$0")/../.."
DRY=${WEBDIT_GPU_DRYRUN:-0}
if [ "$DRY" = 1 ]; then
  PYTHON=${PYTHON:-/usr/bin/python3}
  PRESET=${PRESET:-toy}
  BUDGET_MIN=${BUDGET_MIN:-1.5}
  NPROC=${NPROC:-2}
  SET=${SET-"dit_steps=1000000"}       # the budget, not the step count, ends the DiT stage
  export CUDA_VISIBLE_DEVICES=""
else
  PYTHON=${PYTHON:-python3}
  PRESET=${PRESET:-cuda-tiny}
  BUDGET_MIN=${BUDGET_MIN:-9}
  SET=${SET-}
fi
if [ -z "${WARM+x}" ]; then WARM=$([ "$PRESET" = cuda-tiny ] && echo shipped || echo ""); fi
TRAIN=${TRAIN:-transformer}
OUT=${OUT:-training/runs/gpu-out}
WORK=${WORK:-/tmp/webdit-gpu}
RUN=$WORK/run
CACHE=$WORK/emoji
EMOJI_PACK=${EMOJI_PACK:-training/gpu/pack/emoji.tar.xz}
RESERVE_S=${RESERVE_S:-75}              # packing, samples and torchrun's start, out of the budget
mkdir -p "$OUT" "$WORK"
LOG=$OUT/run.log
say() { echo "[run.sh $(date +%H:%M:%S) +$(( $(date +%s) - STARTED ))s] $*" | tee -a "$LOG"; }

say "preset $PRESET, budget ${BUDGET_MIN} min, warm '${WARM}' (train $TRAIN), dry run $DRY, out $OUT, run $RUN"
$PYTHON - <<'EOF' 2>&1 | tee -a "$LOG"
import os, platform, torch
gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
print(f"python {platform.python_version()}, torch {torch.__version__}, cuda {torch.version.cuda}, "
      f"{os.cpu_count()} CPUs, GPUs {gpus or 'none'}")
EOF
if [ -z "${NPROC:-}" ]; then
  NPROC=$($PYTHON -c "import torch; print(max(1, torch.cuda.device_count()))")
fi

export PYTHONUNBUFFERED=1
$PYTHON training/gpu/steps.py prepare --run "$RUN" --cache "$CACHE" --emoji-pack "$EMOJI_PACK" \
  ${WARM:+--warm "$WARM"} --train "$TRAIN" --preset "$PRESET" 2>&1 | tee -a "$LOG"
[ "${PIPESTATUS[0]}" = 0 ] || { say "prepare failed"; exit 1; }

NOW=$(date +%s)
MINUTES=$($PYTHON -c "print(round(max(0.1, ($STARTED + $BUDGET_MIN * 60 - $RESERVE_S - $NOW) / 60), 2))")
SETS=()
for kv in $SET; do SETS+=(--set "$kv"); done
say "torchrun: $NPROC process(es), training budget $MINUTES min"
$PYTHON training/gpu/torchrun.py --standalone --nproc_per_node="$NPROC" training/train.py \
  --preset "$PRESET" --run "$RUN" --until train --minutes "$MINUTES" --data-cache "$CACHE" "${SETS[@]}" 2>&1 | tee -a "$LOG"
RC=${PIPESTATUS[0]}
say "training exited with $RC"

$PYTHON training/gpu/steps.py finish --run "$RUN" --out "$OUT" --cache "$CACHE" --preset "$PRESET" --started "$STARTED" \
  --note "run.sh preset $PRESET warm '${WARM}' train $TRAIN nproc $NPROC rc $RC" 2>&1 | tee -a "$LOG"
say "done; under $OUT:"
ls -l "$OUT" | tee -a "$LOG"
exit "$RC"
