#!/usr/bin/env bash
# Repeat the 2-process fit → test → predict sequence N times (default 20) and count clean exits: status 0
# and no "terminate called" (a C++ thread destroyed while joinable) on stderr.
#   tools/repeat-ddp.sh [N] [spawn|torchrun|both]
# Logs of failed repetitions stay in $REPEAT_DIR (default a temporary folder), which is printed.
set -uo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
modes=${2:-both}
[ "$modes" = both ] && modes="spawn torchrun"
py=${PYTHON:-.venv/bin/python}
export WANDB_MODE=${WANDB_MODE:-disabled} PYTHONFAULTHANDLER=1
dir=${REPEAT_DIR:-$(mktemp -d -t repeat-ddp.XXXXXX)}
echo "logs in $dir"
for mode in $modes; do
  clean=0
  for i in $(seq 1 "$n"); do
    work="$dir/$mode-$i"
    mkdir -p "$work"
    if [ "$mode" = spawn ]; then
      $py tools/ddp_sequence.py "$work" spawn >"$work/stdout" 2>"$work/stderr"
    else
      $py -m torch.distributed.run --standalone --nproc_per_node=2 tools/ddp_sequence.py "$work" ddp \
        >"$work/stdout" 2>"$work/stderr"
    fi
    rc=$?
    if [ $rc -eq 0 ] && ! grep -q "terminate called" "$work/stderr"; then
      clean=$((clean + 1))
      rm -rf "$work"
    else
      echo "$mode $i: exit $rc$(grep -q 'terminate called' "$work/stderr" && echo ', terminate called')"
    fi
  done
  echo "$mode: $clean/$n clean"
done
