#!/usr/bin/env bash
# resource-usage.sh LOGDIR OUT: condenses the ptxas -v logs kept by nvcc-log.sh into one report: per
# object, architecture and kernel: registers, spill stores/loads, stack and static shared memory.
# Sorted by spill stores, so a kernel that spills is at the top.
set -euo pipefail
logdir=$1; out=$2
{
  echo "# linkbert CUDA resource usage (ptxas -v), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "# object arch registers spill_stores spill_loads stack_bytes smem_bytes kernel"
  for f in "$logdir"/*.log; do
    [ -e "$f" ] || continue
    awk -v obj="$(basename "$f" .log)" '
      /Compiling entry function/ { n = split($0, q, "'"'"'"); fn = q[2]; arch = (n >= 4) ? q[4] : "?"; st = 0; sl = 0; stack = 0 }
      /bytes stack frame/ { stack = $1; st = $5; sl = $9 }
      /Used [0-9]+ registers/ {
        match($0, /Used [0-9]+ registers/); regs = substr($0, RSTART + 5, RLENGTH - 15)
        smem = 0; if (match($0, /[0-9]+ bytes smem/)) smem = substr($0, RSTART, RLENGTH - 11)
        if (fn != "") printf "%s %s %s %s %s %s %s %s\n", obj, arch, regs, st, sl, stack, smem, fn
        fn = ""
      }
    ' "$f"
  done | sort -k4,4nr -k3,3nr | { if command -v c++filt >/dev/null; then c++filt; else cat; fi; }
} > "$out"
total=$(grep -vc '^#' "$out" || true)
spills=$(awk '!/^#/ && ($4 > 0 || $5 > 0)' "$out" | wc -l)
echo "resource-usage: $total kernels, $spills with spills -> $out"
# Every spilling kernel image must be in spills.allow (same arch, at most its spill-store bytes).
allow="$(dirname "$0")/spills.allow"
awk '
  FNR == NR { if ($0 !~ /^#/ && NF >= 3) { n++; arch[n] = $1; max[n] = $2; sub(/^[^ ]+ +[^ ]+ +/, ""); name[n] = $0 } next }
  /^#/ || ($4 == 0 && $5 == 0) { next }
  {
    ok = 0
    for (i = 1; i <= n; i++) if (arch[i] == $2 && index($0, name[i]) > 0 && $4 <= max[i]) ok = 1
    if (!ok) { bad++; printf "resource-usage: %s spills %s bytes (stores) and is not allowed by %s: %s\n", $2, $4, FILENAME_ALLOW, $0 }
  }
  END { exit bad > 0 }
' FILENAME_ALLOW="$allow" "$allow" "$out" || {
  echo "resource-usage: a kernel spills that $allow does not allow: fix it, or add it there with the reason" >&2
  exit 1
}
