#!/usr/bin/env bash
# nvcc-log.sh LOGDIR nvcc ARGS...: CMake's CUDA compiler launcher. Runs nvcc unchanged, and keeps what it
# printed (the -Xptxas -v registers/spills report) in LOGDIR/<object name>.log for resource-usage.sh.
# nvcc's exit status is passed through, and its output still reaches the build log.
set -o pipefail
logdir=$1; shift
obj=unknown
prev=
for a in "$@"; do
  if [ "$prev" = "-o" ]; then obj=$(basename "$a"); fi
  prev=$a
done
mkdir -p "$logdir"
"$@" 2>&1 | tee "$logdir/$obj.log"
