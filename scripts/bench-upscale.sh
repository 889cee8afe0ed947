#!/usr/bin/env bash
# Output up-scaling end to end, one run, same clip: frames per second of
#   videoscale     plain cubic (Catmull-Rom) up-scaling of the whole frame, GStreamer's own
#   faceenhance    upscale=4: detection, the model ladder, never worse, bicubic or Lanczos
#                  background
# on the 640x360 talking-head clip (WolfgangLanger_Pexels.mp4, one face) and on a 360p
# CCTV-like 4x4 mosaic of it (16 small faces). Nothing is encoded: 2560x1440 x264 would
# dominate. The tiled background model is timed per frame by criterion
# (`cargo bench --bench stages -- upscale`). Writes bench-upscale.md (and prints it).
# Usage: scripts/bench-upscale.sh [OUTPUT_MD]
set -euo pipefail
source "$(dirname "$0")/bench-env.sh"
OUT_MD="${1:-bench-upscale.md}"
DET=""
[ -f "$YUNET" ] && DET="detector-model=$YUNET"

echo "[bench] making clips" >&2
gst-launch-1.0 -q -e filesrc location="$WL" ! decodebin ! videoconvert ! identity eos-after=150 \
  ! x264enc speed-preset=fast quantizer=20 pass=quant ! mp4mux ! filesink location="$W/one-360p.mp4"
# 16 tiles of 160x90: sink_i at (160 (i mod 4), 90 (i div 4)).
desc="compositor name=m"
for i in $(seq 0 15); do desc="$desc sink_$i::xpos=$((160 * (i % 4))) sink_$i::ypos=$((90 * (i / 4)))"; done
desc="$desc ! video/x-raw,width=640,height=360 ! identity eos-after=150 ! videoconvert \
  ! x264enc speed-preset=fast quantizer=20 pass=quant ! mp4mux ! filesink location=$W/mosaic-360p.mp4"
for i in $(seq 0 15); do
  desc="$desc filesrc location=$WL ! decodebin ! videoconvert ! videoscale ! video/x-raw,width=160,height=90 ! m.sink_$i"
done
# shellcheck disable=SC2086
gst-launch-1.0 -q -e $desc
[ -s "$W/mosaic-360p.mp4" ] || { echo "mosaic clip failed" >&2; exit 1; }

rows=()
row() { # LABEL CLIP MIDDLE
  /usr/bin/time -f '%e %M' -o "$W/time" gst-launch-1.0 -q filesrc location="$2" ! decodebin ! videoconvert \
    $3 ! fakesink > "$W/log" 2>&1 || { echo "[bench] $1 failed:" >&2; cat "$W/log" >&2; exit 1; }
  read -r secs rss < "$W/time"
  local fps; fps=$(awk -v s="$secs" 'BEGIN{printf "%.1f", 150/s}')
  rows+=("| $1 | $fps | $secs | $((rss / 1024)) |")
  echo "[bench] $1: $fps fps" >&2
}
for clip in one mosaic; do
  C="$W/$clip-360p.mp4"
  row "$clip: decode only" "$C" ""
  row "$clip: videoscale x4 (Catmull-Rom cubic)" "$C" "! videoscale method=catrom ! video/x-raw,width=2560,height=1440"
  row "$clip: faceenhance upscale=4" "$C" "! faceenhance upscale=4 $DET"
  row "$clip: faceenhance upscale=4 background=lanczos" "$C" "! faceenhance upscale=4 background=lanczos $DET"
  row "$clip: faceenhance upscale=4 force=true" "$C" "! faceenhance upscale=4 force=true $DET"
done
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
{
  echo "### Up-scaling x4, $(date -u +%Y-%m-%d), $(nproc) cores ($cpu)"
  echo
  echo "150 frames of 640x360 H.264: 'one' = WolfgangLanger_Pexels.mp4 (one large face), 'mosaic' = a 4x4 mosaic of it (16 faces)."
  echo "Every pipeline: filesrc ! decodebin ! videoconvert ! [element] ! fakesink (output 2560x1440)."
  echo
  echo "| pipeline | fps | seconds | peak RSS MiB |"
  echo "| --- | ---: | ---: | ---: |"
  printf '%s\n' "${rows[@]}"
} | tee "$OUT_MD"
