#!/usr/bin/env bash
# Many cameras (issue 28, item 5): STREAMS (default 4) CCTV streams through faceenhance as
# one process with shared sessions (the default, share-sessions=true: one session per model,
# the streams' faces batched), one process with sessions of each stream's own, STREAMS
# processes side by side, and one stream alone. Each stream is bikes.mp4 (640x272, 250
# frames, faces of 20-60 px), mirrored on every other camera; all cameras show their faces
# at the same moments, the batching's best case. decode ! faceenhance ! fakesink: no encoder,
# the restoration's own cost. Each layout runs REPS times (default 2), the fastest counts.
# Prints a markdown table: wall time, frames/s and restored faces/s over all streams,
# peak RSS (summed over processes).
# Usage: scripts/bench-streams.sh [OUTPUT_MD]
set -euo pipefail
source "$(dirname "$0")/bench-env.sh"
OUT_MD="${1:-bench-streams.md}"
N="${STREAMS:-4}"
REPS="${REPS:-2}"
BIKES="$CACHE/data/bikes.mp4"
FRAMES=250

# branch K SHARE: one camera's pipeline description
branch() {
  local flip="identity"
  [ $(($1 % 2)) = 1 ] && flip="videoflip method=horizontal-flip"
  echo "filesrc location=$BIKES ! decodebin ! videoconvert ! $flip ! faceenhance share-sessions=$2 post-messages=true ! fakesink sync=false"
}

# one_process COUNT SHARE LOG: COUNT cameras in one gst-launch; prints "secs maxrss_kb"
one_process() {
  local desc="" k
  for k in $(seq 0 $(($1 - 1))); do desc="$desc $(branch "$k" "$2")"; done
  # shellcheck disable=SC2086
  /usr/bin/time -f '%e %M' -o "$W/time" gst-launch-1.0 -m $desc > "$3" 2>&1
  cat "$W/time"
}

# processes COUNT LOG: COUNT gst-launch processes at once; prints "secs summed_maxrss_kb"
processes() {
  local start end k rss=0
  start=$(date +%s.%N)
  for k in $(seq 0 $(($1 - 1))); do
    # shellcheck disable=SC2046
    /usr/bin/time -f '%M' -o "$W/time.$k" gst-launch-1.0 -m $(branch "$k" true) > "$2.$k" 2>&1 &
  done
  wait
  end=$(date +%s.%N)
  for k in $(seq 0 $(($1 - 1))); do rss=$((rss + $(cat "$W/time.$k"))); done
  cat "$2".* > "$2"
  echo "$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.2f", b - a}') $rss"
}

restored() { grep -o 'restored=(int)[0-9]*' "$1" | awk -F')' '{s += $2} END {print s + 0}'; }

# best LAYOUT...: the fastest of REPS runs; prints "secs rss_kb restored"
best() {
  local b="" line r
  for _ in $(seq "$REPS"); do
    line=$("$@" "$W/log")
    r=$(restored "$W/log")
    if [ -z "$b" ] || awk -v a="${line% *}" -v c="${b%% *}" 'BEGIN{exit !(a < c)}'; then b="$line $r"; fi
  done
  echo "$b"
}

row() { # NAME STREAMS "secs rss restored"
  set -- "$1" "$2" $3
  awk -v n="$1" -v k="$2" -v s="$3" -v rss="$4" -v r="$5" -v f="$FRAMES" \
    'BEGIN{printf "| %s | %d | %.1f | %.1f | %.1f | %d |\n", n, k, s, k * f / s, r / s, rss / 1024}'
}

echo "[bench-streams] $N streams, $REPS runs each" >&2
{
  echo "| layout | streams | wall s | frames/s (all streams) | restored faces/s | peak RSS MiB (summed) |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  row "one stream" 1 "$(best one_process 1 true)"
  row "one process, shared sessions (default)" "$N" "$(best one_process "$N" true)"
  row "one process, share-sessions=false" "$N" "$(best one_process "$N" false)"
  row "$N processes" "$N" "$(best processes "$N")"
} | tee "$OUT_MD"
