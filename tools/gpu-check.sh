#!/usr/bin/env bash
# Every GPU check of musictag in one command, for a GPU machine lent for a few minutes:
#
#   make gpu-wheels             # here, with the network: .whl/ = the wheels that machine lacks + the
#                               # published checkpoints the CUDA tests compare against (~22 MB)
#   bash tools/gpu-check.sh     # there, from the repository root, with .whl/ carried along
#
# That machine's python3 (3.12) already holds torch, lightning, torchmetrics, pandas, ...; the wheels go
# to /tmp/site and musictag runs from the checkout (PYTHONPATH, python3 -m musictag): nothing is
# pip-installed into it. Everything lands in $OUT (default ./gpu-out), at most 8 files:
#   gpu-check.log       the whole output of every step, with each step's status and seconds
#   summary.md          step statuses, the pytest result, the README's tables (musictag bench --report)
#   pytest-gpu.xml      junit of `pytest -m gpu tests/gpu`
#   bench-eager.json    every architecture, batch 16 and 256, fp32 and bf16-mixed (short_chunk first)
#   bench-compile.json  short_chunk through torch.compile
#   bench-epoch.json    one MTAT-sized epoch of short_chunk in bf16-mixed, loader included
#   bench-data.json     cache preparation and loader throughput (CPU side)
#   profile.txt         torch.profiler's top operators of short_chunk steps, only if a target is missed
#                       (bf16 batch 256 < 10,000 samples/s, or the epoch > 10 s)
#
# Budget (one H200; estimates, nothing has been measured there yet): wheels + versions 15 s; pytest
# (-n 4 with pytest-xdist) ~90 s; eager bench ~150-180 s (92 configurations × (3 warm-up + 3 × 10
# steps): ~1 s each for the short models, up to ~10 s for the 29-s ones at batch 256); epoch ~60 s (two
# epochs of 953 steps + validation, the first to warm up); profile ~20 s; compile ~40 s per configuration
# (inductor); data ~60 s. Each step has its own timeout and the next runs whatever happened; no step
# starts once GPU_CHECK_BUDGET_S (default 450) is spent and a running one is cut there, so the script
# ends within ~8 minutes (give the command ~560 s). Steps run most important first: compile and the
# data pipeline (the CPU side) get what is left.
#
# GPU_CHECK_DRY=1 runs every step on the CPU, tiny (small architectures, batch 2, one step; a budget of
# 1200 s for a slow CPU), with .venv/bin/python when there is one and without the wheels: it checks this
# script, not the GPU.
set -uo pipefail

DRY=${GPU_CHECK_DRY:-0}
BUDGET=${GPU_CHECK_BUDGET_S:-$([ "$DRY" = 1 ] && echo 1200 || echo 450)}
CAP_SCALE=$([ "$DRY" = 1 ] && echo 3 || echo 1)  # a small CPU is slower at everything
OUT=${OUT:-./gpu-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
LOG=$OUT/gpu-check.log
: >"$LOG"
START=$SECONDS
export WANDB_MODE=disabled WANDB_SILENT=true PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1

log() { echo "[$(date -u +%H:%M:%S) +$((SECONDS - START))s] $*" | tee -a "$LOG"; }

if [ "$DRY" = 1 ] && [ -x .venv/bin/python ]; then PY=${PYTHON:-.venv/bin/python}; else PY=${PYTHON:-python3}; fi
if [ "$DRY" != 1 ]; then
    if ls .whl/*.whl >/dev/null 2>&1; then
        log "installing $(ls .whl/*.whl | wc -l) wheels from .whl into /tmp/site"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            .whl/*.whl >>"$LOG" 2>&1 || log "WARNING: the wheels did not install (see above)"
        export PYTHONPATH=/tmp/site
    else
        log "WARNING: no .whl/*.whl (make gpu-wheels, and carry .whl): using the packages installed"
    fi
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if [ -z "${MUSICTAG_REFERENCE:-}" ] && [ -d .whl/reference ]; then export MUSICTAG_REFERENCE=$PWD/.whl/reference; fi

STEPS=()
# step NAME CAP_S COMMAND...: run COMMAND (stdout and stderr into the log, or stdout into $STEP_STDOUT)
# under the smaller of CAP_S and the budget left; record its status.
step() {
    local name=$1 cap=$(($2 * CAP_SCALE))
    shift 2
    local left=$((BUDGET - (SECONDS - START)))
    local limit=$((cap < left ? cap : left))
    if [ "$limit" -lt 20 ]; then
        log "SKIP $name: the budget of ${BUDGET}s is spent"
        STEPS+=("| $name | skipped: budget spent | 0 |")
        return 0
    fi
    log "START $name (at most ${limit}s): $*"
    local t0=$SECONDS rc
    timeout -k 15 "$limit" "$@" >>"${STEP_STDOUT:-$LOG}" 2>>"$LOG"
    rc=$?
    local status=ok
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then status="timed out at ${limit}s"; elif [ $rc -ne 0 ]; then status="failed (exit $rc)"; fi
    log "END $name: $status in $((SECONDS - t0))s"
    STEPS+=("| $name | $status | $((SECONDS - t0)) |")
}

# --- what machine, which versions -----------------------------------------------------------------
log "musictag $(git rev-parse --short HEAD 2>/dev/null || echo '(no git)'), dry=$DRY, python $PY, OUT=$OUT"
if command -v nvidia-smi >/dev/null; then nvidia-smi >>"$LOG" 2>&1; fi
"$PY" - >>"$LOG" 2>&1 <<'EOF'
import platform, torch, lightning, torchmetrics, torchaudio
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "cudnn", torch.backends.cudnn.version(), "lightning", lightning.__version__,
      "torchmetrics", torchmetrics.__version__, "torchaudio", torchaudio.__version__)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("device", p.name, f"{p.total_memory / 2**30:.0f} GiB, sm_{p.major}{p.minor}, {p.multi_processor_count} SMs,",
          "bf16", torch.cuda.is_bf16_supported())
import soundfile, soxr, jsonargparse, omegaconf
print("soundfile", soundfile.__version__, "libsndfile", soundfile.__libsndfile_version__, "soxr", soxr.__version__,
      "jsonargparse", jsonargparse.__version__, "omegaconf", omegaconf.__version__)
EOF

MT=("$PY" -m musictag bench)
if [ "$DRY" = 1 ]; then
    TARGET=pons_time  # short_chunk takes seconds a step on a small CPU
    ARCHS=(pons_time pons_frequency)
    SIZE=(--batch-size 2 3 --steps 1 --repeats 1 --warmup 0)
    COMPILE=(--arch pons_time --batch-size 2 --precision 32 --steps 1 --repeats 1 --warmup 1)
    EPOCH=(--scale 0.001)
    PYTEST_EXTRA=()
    PROFILE=(--batch-size 2 --steps 2 --warmup 1)
    DATA_REPEATS=1
else
    TARGET=short_chunk
    # short_chunk first: its figures are the targets, and they survive a cut (--save after each)
    mapfile -t ARCHS < <("$PY" -c "from musictag.models import available; print('short_chunk'); [print(a) for a in available() if a != 'short_chunk']")
    SIZE=(--batch-size 16 256 --steps 10 --repeats 3 --warmup 3)
    # batch 256 first (the target), then 16 (the recipes' batch, where launch overhead counts most)
    COMPILE=(--arch short_chunk --batch-size 256 16 --precision bf16-mixed 32 --steps 10 --repeats 3 --warmup 3)
    EPOCH=()
    PYTEST_EXTRA=(--durations=15)
    if "$PY" -c "import xdist" 2>/dev/null; then PYTEST_EXTRA+=(-n 4); fi  # one GPU, four test processes
    if "$PY" -c "import pytest_timeout" 2>/dev/null; then PYTEST_EXTRA+=(--timeout=180); fi
    PROFILE=(--batch-size 256 --steps 5 --warmup 3)
    DATA_REPEATS=3
fi

# --- (a) the CUDA tests ------------------------------------------------------------------------------
step pytest-gpu 240 "$PY" -m pytest -q -m gpu tests/gpu -p no:cacheprovider \
    --junitxml="$OUT/pytest-gpu.xml" "${PYTEST_EXTRA[@]}"

# --- (b) every architecture, eager; (d) the epoch ---------------------------------------------------
step bench-eager 210 "${MT[@]}" --arch "${ARCHS[@]}" "${SIZE[@]}" --precision 32 bf16-mixed \
    --save "$OUT/bench-eager.json"
step bench-epoch 150 "${MT[@]}" --arch "$TARGET" --epoch --precision bf16-mixed "${EPOCH[@]}" \
    --save "$OUT/bench-epoch.json"

# --- (f) a profile when a target is missed (always in the dry run, to check the step) ------------------
WHY=$("$PY" - "$OUT/bench-eager.json" "$OUT/bench-epoch.json" "$DRY" "$TARGET" <<'EOF'
import json, os, sys
eager, epoch, dry, target = sys.argv[1:]
def rows(path):
    return json.load(open(path)) if os.path.exists(path) else []
rate = [r["samples_per_s"] for r in rows(eager) if r["arch"] == target and r["precision"] == "bf16-mixed"
        and r["batch"] == 256 and not r["compile"]]
seconds = [r["full_mtat_epoch_seconds"] for r in rows(epoch)]
why = []
why += [f"{target} bf16-mixed batch 256: {rate[0]:,.0f} samples/s < 10,000"] if rate and rate[0] < 10_000 else []
why += [f"no {target} bf16-mixed batch 256 figure"] if not rate else []
why += [f"MTAT epoch {seconds[0]:.1f} s > 10 s"] if seconds and seconds[0] > 10 else []
why += ["no epoch figure"] if not seconds else []
why += ["dry run"] if dry == "1" and not why else []
print("; ".join(why))
EOF
)
if [ -n "$WHY" ]; then
    log "profiling $TARGET steps: $WHY"
    STEP_STDOUT=$OUT/profile.txt step profile 60 "${MT[@]}" --arch "$TARGET" --precision bf16-mixed \
        "${PROFILE[@]}" --profile
else
    log "no profile: short_chunk meets both targets"
fi

# --- (c) torch.compile; (e) the data pipeline --------------------------------------------------------
step bench-compile 200 "${MT[@]}" --compile "${COMPILE[@]}" --save "$OUT/bench-compile.json"
step bench-data 90 "${MT[@]}" --data-only --data-repeats "$DATA_REPEATS" --save "$OUT/bench-data.json"

# --- summary.md ------------------------------------------------------------------------------------------
{
    echo "# musictag GPU check ($(date -u '+%Y-%m-%d %H:%M UTC'), $((SECONDS - START)) s)"
    echo
    grep -m1 "^device " "$LOG" || echo "device: none (CPU)"
    grep -m1 "^python " "$LOG" || true
    echo
    echo "| step | status | seconds |"
    echo "|---|---|---:|"
    printf '%s\n' "${STEPS[@]}"
    echo
    RESULT=$(grep -E '^(=+ )?[0-9]+ (passed|failed|skipped|error)' "$LOG" | tail -1)
    echo "pytest: ${RESULT:-no result line (see gpu-check.log)}"
    grep -E "^(FAILED|ERROR) " "$LOG" | head -40 | sed 's/^/    /' || true
    grep -E "^musictag bench: .* failed: " "$LOG" | sed 's/^/    /' || true
    [ -n "$WHY" ] && echo && echo "profiled ($WHY): profile.txt"
    echo
    FIGURES=()
    for f in "$OUT"/bench-eager.json "$OUT"/bench-compile.json "$OUT"/bench-epoch.json "$OUT"/bench-data.json; do
        [ -s "$f" ] && FIGURES+=("$f")
    done
    if [ ${#FIGURES[@]} -gt 0 ]; then "${MT[@]}" --report "${FIGURES[@]}" 2>&1; else echo "no figures"; fi
} >"$OUT/summary.md" 2>>"$LOG"
log "done: $(ls "$OUT" | tr '\n' ' ')"
cat "$OUT/summary.md"
