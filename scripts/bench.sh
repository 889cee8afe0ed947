#!/usr/bin/env bash
# End-to-end benchmark: frame rates measured in ONE run on the same clips, so the ratios
# hold on a noisy machine. Writes bench-results.md (and prints it); BENCHMARKS.md quotes it.
#   floor        decode + encode, nothing else
#   facedetect   gst-plugins-bad's OpenCV Haar element
#   facedetector ours alone (auto = CenterFace, and YuNet when ../shared has it)
#   faceenhance  the whole bin, default model
# plus peak RSS and RSS after 10,000 frames against 1,000 (a leak shows).
# Usage: scripts/bench.sh [OUTPUT_MD]   (FRAMES_LEAK=10000 by default)
set -euo pipefail
source "$(dirname "$0")/bench-env.sh"
OUT_MD="${1:-bench-results.md}"
LEAK="${FRAMES_LEAK:-10000}"

echo "[bench] making clips" >&2
# 720p with four faces: a 2x2 mosaic of the 640x360 talking-head clip (one face each).
gst-launch-1.0 -q -e compositor name=m sink_1::xpos=640 sink_2::ypos=360 sink_3::xpos=640 sink_3::ypos=360 \
  ! video/x-raw,width=1280,height=720 ! identity eos-after=250 ! videoconvert ! x264enc speed-preset=fast quantizer=20 pass=quant \
  ! mp4mux ! filesink location="$W/faces4-720p.mp4" \
  filesrc location="$WL" ! decodebin ! videoconvert ! m.sink_0 \
  filesrc location="$WL" ! decodebin ! videoconvert ! m.sink_1 \
  filesrc location="$WL" ! decodebin ! videoconvert ! m.sink_2 \
  filesrc location="$WL" ! decodebin ! videoconvert ! m.sink_3
# 720p with no face at all.
gst-launch-1.0 -q -e videotestsrc num-buffers=300 pattern=ball ! video/x-raw,width=1280,height=720,framerate=25/1 \
  ! x264enc speed-preset=fast ! mp4mux ! filesink location="$W/nofaces-720p.mp4"

# run NAME CLIP MIDDLE: decode ! MIDDLE ! videoconvert ! x264enc ! fakesink; prints "secs maxrss_kb"
run() {
  local clip=$2 middle=$3
  /usr/bin/time -f '%e %M' -o "$W/time" gst-launch-1.0 -m filesrc location="$clip" ! decodebin ! videoconvert \
    $middle ! videoconvert ! x264enc speed-preset=medium ! fakesink > "$W/$1.log" 2>&1
  cat "$W/time"
}

# Faces found per analysed frame, from the element messages in a -m log.
recall() { # LOG MESSAGE_NAME FACES_PER_FRAME
  case $2 in
    facedetect) grep -o 'facedetect, timestamp.*' "$1" | awk -v k="$3" '{n++; c=gsub(/[(]uint/,"")/4; s+=(c>k?k:c)} END{printf "%.2f", (n? s/(n*k):0)}' ;;
    facedetector) grep -o 'facedetector, timestamp.*faces=(int)[0-9]*' "$1" | sed 's/.*faces=(int)//' \
      | awk -v k="$3" '{n++; s+=($1>k?k:$1)} END{printf "%.2f", (n? s/(n*k):0)}' ;;
  esac
}

rows=()
row() { # LABEL CLIP MIDDLE FRAMES RECALL_MSG
  read -r secs rss < <(run "$1" "$2" "$3")
  local fps; fps=$(awk -v f="$4" -v s="$secs" 'BEGIN{printf "%.1f", f/s}')
  local rec="-"
  [ -n "${5:-}" ] && rec=$(recall "$W/$1.log" "$5" 4)
  rows+=("| $1 | $fps | $secs | $((rss / 1024)) | $rec |")
  echo "[bench] $1: $fps fps, ${secs}s, $((rss / 1024)) MiB, recall $rec" >&2
}

FACES="$W/faces4-720p.mp4"; NOFACES="$W/nofaces-720p.mp4"
# identity prints one "chain" line per buffer in verbose mode: the frame count.
NF=$(gst-launch-1.0 -v filesrc location="$FACES" ! decodebin ! identity silent=false ! fakesink 2>/dev/null | grep -c 'chain' || true)
NN=300
row "floor: decode+encode (4 faces)" "$FACES" "" "$NF"
row "facedetect (gst-plugins-bad, Haar)" "$FACES" "! facedetect display=false" "$NF" facedetect
row "facedetector (auto: CenterFace)" "$FACES" "! facedetector" "$NF" facedetector
row "facedetector detector=haar min-face-size=30" "$FACES" "! facedetector detector=haar min-face-size=30" "$NF" facedetector
[ -f "$YUNET" ] && row "facedetector (YuNet)" "$FACES" "! facedetector model=$YUNET" "$NF" facedetector
row "faceenhance (auto: CenterFace)" "$FACES" "! faceenhance" "$NF"
[ -f "$YUNET" ] && row "faceenhance (YuNet)" "$FACES" "! faceenhance detector-model=$YUNET" "$NF"
[ -f "$YUNET" ] && row "faceenhance (YuNet, detect-interval=5)" "$FACES" "! faceenhance detector-model=$YUNET detect-interval=5" "$NF"
row "floor: decode+encode (no faces)" "$NOFACES" "" "$NN"
row "faceenhance (no faces, CenterFace)" "$NOFACES" "! faceenhance" "$NN"
[ -f "$YUNET" ] && row "faceenhance (no faces, YuNet)" "$NOFACES" "! faceenhance detector-model=$YUNET" "$NN"

# Leak check: the same still, 1,000 and $LEAK frames, peak RSS of each run.
leak() {
  /usr/bin/time -f '%M' -o "$W/rss" gst-launch-1.0 -q filesrc location="$CACHE/data/astronaut.png" ! pngdec \
    ! imagefreeze num-buffers="$1" ! videoconvert ! faceenhance ${YUNET:+detector-model=$YUNET} ! fakesink
  echo $(( $(cat "$W/rss") / 1024 ))
}
[ -f "$YUNET" ] || YUNET=
R1=$(leak 1000); R2=$(leak "$LEAK")
echo "[bench] RSS after 1000 frames: ${R1} MiB, after $LEAK: ${R2} MiB" >&2

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
{
  echo "### End to end, $(date -u +%Y-%m-%d), $(nproc) cores ($cpu), $(free -g | awk '/Mem/{print $2}') GiB"
  echo
  echo "720p H.264, 2x2 mosaic of WolfgangLanger_Pexels.mp4 (4 faces of ~200 px), $NF frames; no-face clip: videotestsrc ball, $NN frames."
  echo "Every pipeline: filesrc ! decodebin ! videoconvert ! [element] ! videoconvert ! x264enc ! fakesink."
  echo "Recall: share of the 4 faces found per analysed frame."
  echo
  echo "| pipeline | fps | seconds | peak RSS MiB | recall |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Leak check (astronaut still through faceenhance): peak RSS ${R1} MiB after 1,000 frames, ${R2} MiB after ${LEAK}."
} | tee "$OUT_MD"
