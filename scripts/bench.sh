#!/usr/bin/env bash
# End-to-end benchmark: frame rates measured in ONE run on the same clips, as ratios to the
# floor a live pipeline pays anyway (decode + videoconvert + x264enc veryfast zerolatency),
# so they hold on a noisy machine. Each pipeline runs REPS times (default 2), each run beside
# a run of the floor; the fastest of each counts. Writes bench-results.md (and prints it); BENCHMARKS.md quotes it.
#   call     720p, one face (a talking head at 1.5x on a 1280x720 canvas, ~300 px face)
#   noface   720p, no face, constant motion (videotestsrc ball)
#   faces4   720p, four faces (2x2 mosaic of the talking head), recall against facedetect
#   cctv     1080p, small faces (3x3 mosaic of bikes.mp4, faces ~19-59 px)
#   cctv720  720p, the same scene as a 2x2 mosaic (bikes.mp4 at its 640x272 on a 1280x720 canvas)
#   pan      720p, a camera panning 12 px a frame (100 frames) over a 2400x720 still: the
#            astronaut picture (720 px) and four London portraits (../shared, CC BY 4.0,
#            300 px) on black
#   rss      peak RSS after 1,000 and 10,000 frames of a clip where a face comes and goes
# Usage: scripts/bench.sh [OUTPUT_MD]   (REPS=2, LEAK_FRAMES=10000; LEAK_FRAMES=0 skips)
set -euo pipefail
source "$(dirname "$0")/bench-env.sh"
OUT_MD="${1:-bench-results.md}"
REPS="${REPS:-2}"
LEAK="${LEAK_FRAMES:-10000}"
BIKES="$CACHE/data/bikes.mp4"
ENC="x264enc speed-preset=veryfast tune=zerolatency"
I420="video/x-raw,format=I420"

echo "[bench] making clips" >&2
gst-launch-1.0 -q -e compositor name=m background=black sink_0::xpos=160 sink_0::ypos=90 \
  ! video/x-raw,width=1280,height=720 ! videoconvert ! $I420 ! x264enc speed-preset=fast quantizer=20 pass=quant \
  ! mp4mux ! filesink location="$W/call.mp4" \
  filesrc location="$WL" ! decodebin ! videoconvert ! videoscale ! video/x-raw,width=960,height=540 ! m.sink_0
gst-launch-1.0 -q -e videotestsrc num-buffers=600 pattern=ball ! video/x-raw,width=1280,height=720,framerate=25/1,format=I420 \
  ! x264enc speed-preset=fast ! mp4mux ! filesink location="$W/noface.mp4"
gst-launch-1.0 -q -e compositor name=m sink_1::xpos=640 sink_2::ypos=360 sink_3::xpos=640 sink_3::ypos=360 \
  ! video/x-raw,width=1280,height=720 ! identity eos-after=250 ! videoconvert ! $I420 ! x264enc speed-preset=fast quantizer=20 pass=quant \
  ! mp4mux ! filesink location="$W/faces4.mp4" \
  filesrc location="$WL" ! decodebin ! videoconvert ! m.sink_0 \
  filesrc location="$WL" ! decodebin ! videoconvert ! m.sink_1 \
  filesrc location="$WL" ! decodebin ! videoconvert ! m.sink_2 \
  filesrc location="$WL" ! decodebin ! videoconvert ! m.sink_3
cctv_src=""; pads=""
for i in 0 1 2; do for j in 0 1 2; do
  k=$((i * 3 + j)); pads="$pads sink_$k::xpos=$((j * 640)) sink_$k::ypos=$((132 + i * 272))"
  cctv_src="$cctv_src filesrc location=$BIKES ! decodebin ! videoconvert ! m.sink_$k"
done; done
gst-launch-1.0 -q -e compositor name=m background=black $pads ! video/x-raw,width=1920,height=1080 ! videoconvert ! $I420 \
  ! x264enc speed-preset=fast quantizer=20 pass=quant ! mp4mux ! filesink location="$W/cctv.mp4" $cctv_src

LONDON="$(realpath -m ../shared/data/london-faces)"
if [ -d "$LONDON" ]; then
  # the still: one composited frame as raw RGB; the pan: 1280-wide windows of it, 12 px apart
  people=""; k=0
  for p in 001_03 010_03 020_03 030_03; do
    people="$people sink_$((k + 1))::xpos=$((150 + 560 * k)) sink_$((k + 1))::ypos=300"; k=$((k + 1))
  done
  # shellcheck disable=SC2086
  gst-launch-1.0 -q compositor name=m background=black $people ! video/x-raw,width=2400,height=720,format=RGB \
    ! identity eos-after=2 ! filesink location="$W/pano.rgb" \
    filesrc location="$CACHE/data/astronaut.png" ! pngdec ! videoconvert ! videoscale ! video/x-raw,width=2400,height=720,pixel-aspect-ratio=1/1 ! imagefreeze ! m.sink_0 \
    filesrc location="$LONDON/001_03.jpg" ! jpegdec ! videoconvert ! videoscale ! video/x-raw,width=300,height=300 ! imagefreeze ! m.sink_1 \
    filesrc location="$LONDON/010_03.jpg" ! jpegdec ! videoconvert ! videoscale ! video/x-raw,width=300,height=300 ! imagefreeze ! m.sink_2 \
    filesrc location="$LONDON/020_03.jpg" ! jpegdec ! videoconvert ! videoscale ! video/x-raw,width=300,height=300 ! imagefreeze ! m.sink_3 \
    filesrc location="$LONDON/030_03.jpg" ! jpegdec ! videoconvert ! videoscale ! video/x-raw,width=300,height=300 ! imagefreeze ! m.sink_4
  python3 - "$W/pano.rgb" "$W/pan.rgb" <<'PY'
import sys
pano = open(sys.argv[1], "rb").read()[: 2400 * 720 * 3]
with open(sys.argv[2], "wb") as out:
    for i in range(100):
        x = 12 * i
        out.write(b"".join(pano[(y * 2400 + x) * 3:(y * 2400 + x + 1280) * 3] for y in range(720)))
PY
  gst-launch-1.0 -q -e filesrc location="$W/pan.rgb" ! rawvideoparse width=1280 height=720 format=rgb framerate=25/1 \
    ! videoconvert ! $I420 ! x264enc speed-preset=fast quantizer=20 pass=quant ! mp4mux ! filesink location="$W/pan.mp4"
fi

pads=""; src720=""
for i in 0 1; do for j in 0 1; do
  k=$((i * 2 + j)); pads="$pads sink_$k::xpos=$((j * 640)) sink_$k::ypos=$((88 + i * 272))"
  src720="$src720 filesrc location=$BIKES ! decodebin ! videoconvert ! m.sink_$k"
done; done
# shellcheck disable=SC2086
gst-launch-1.0 -q -e compositor name=m background=black $pads ! video/x-raw,width=1280,height=720 ! videoconvert ! $I420 \
  ! x264enc speed-preset=fast quantizer=20 pass=quant ! mp4mux ! filesink location="$W/cctv720.mp4" $src720

frames() { gst-launch-1.0 -v filesrc location="$1" ! decodebin ! identity silent=false ! fakesink 2>/dev/null | grep -c 'chain' || true; }

# time_of CLIP MIDDLE [3]: wall seconds of decode ! MIDDLE ! encode (cut to its first 3 frames
# with a third argument: start-up, loading models and the first frame's full search).
time_of() {
  local cut=""
  [ -n "${3:-}" ] && cut="! identity eos-after=3"
  /usr/bin/time -f '%e %M' -o "$W/time" gst-launch-1.0 -m filesrc location="$1" ! decodebin $cut ! videoconvert \
    $2 ! videoconvert ! $ENC ! fakesink > "$W/last.log" 2>&1
  cat "$W/time"
}
min() { awk -v a="$1" -v b="$2" 'BEGIN{print (b == "" || a < b) ? a : b}'; }

# run NAME CLIP MIDDLE: REPS times, each next to a run of the clip's floor (this machine's speed
# drifts by 10-30 % within minutes: a floor measured beside each run cancels most of it); prints
# "secs maxrss_kb start_secs floor_secs floor_start_secs", each the fastest of its REPS.
run() {
  local best="" rss=0 start="" fbest="" fstart="" s r
  for _ in $(seq "$REPS"); do
    if [ -n "$3" ]; then
      read -r s r < <(time_of "$2" ""); fbest=$(min "$s" "$fbest")
      read -r s r < <(time_of "$2" "" 3); fstart=$(min "$s" "$fstart")
    fi
    read -r s r < <(time_of "$2" "$3")
    cp "$W/last.log" "$W/$1.log"
    if [ -z "$best" ] || awk -v a="$s" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$s; rss=$r; fi
    read -r s r < <(time_of "$2" "$3" 3); start=$(min "$s" "$start")
  done
  [ -z "$3" ] && { fbest=$best; fstart=$start; }
  echo "$best $rss $start $fbest $fstart"
}

# Share of K expected faces found per analysed frame, from the element messages of a -m log.
recall() { # LOG MESSAGE_NAME K
  case $2 in
    facedetect) grep -o 'facedetect, timestamp.*' "$1" | awk -v k="$3" '{n++; c=gsub(/[(]uint/,"")/4; s+=(c>k?k:c)} END{printf "%.2f", (n? s/(n*k):0)}' ;;
    facedetector) grep -o 'facedetector, timestamp.*faces=(int)[0-9]*' "$1" | sed 's/.*faces=(int)//' \
      | awk -v k="$3" '{n++; s+=($1>k?k:$1)} END{printf "%.2f", (n? s/(n*k):0)}' ;;
  esac
}
# Mean faces per analysed frame (no truth: CCTV), and the share of frames with a face restored.
per_frame() { grep -o 'facedetector, timestamp.*faces=(int)[0-9]*' "$1" | sed 's/.*faces=(int)//' | awk '{n++; s+=$1} END{printf "%.2f", (n? s/n:0)}'; }
restored_share() { grep -o 'facerestore, timestamp.*' "$1" | awk '{n++; if ($0 ~ /restored=\(int\)[1-9]/) r++} END{printf "%.2f", (n? r/n:0)}'; }

rows=()
row() { # CLIP_LABEL LABEL CLIP MIDDLE NFRAMES [EXTRA_COLUMN_COMMAND]
  read -r secs rss start floor floor_start < <(run "$2" "$3" "$4")
  local fps ratio steady extra="-"
  fps=$(awk -v f="$5" -v s="$secs" 'BEGIN{printf "%.1f", f/s}')
  ratio=$(awk -v s="$secs" -v f="$floor" 'BEGIN{printf "%.2f", s/f}')
  # per frame once running: the whole run less its start-up, against the floor's
  steady=$(awk -v s="$secs" -v a="$start" -v f="$floor" -v b="$floor_start" 'BEGIN{printf "%.2f", (s-a)/(f-b)}')
  [ -n "${6:-}" ] && extra=$(eval "$6")
  rows+=("| $1 | $2 | $fps | $ratio | $steady | $start | $((rss / 1024)) | $extra |")
  echo "[bench] $1 / $2: $fps fps, ${ratio}x the floor (${steady}x running, start ${start} s), $((rss / 1024)) MiB, $extra" >&2
}

MSG="post-messages=true"
N=$(frames "$W/call.mp4")
row call floor "$W/call.mp4" "" "$N"
row call "facedetector" "$W/call.mp4" "! facedetector" "$N" 'recall "$W/facedetector.log" facedetector 1'
row call "faceenhance" "$W/call.mp4" "! faceenhance $MSG" "$N" 'restored_share "$W/faceenhance.log"'
row call "faceenhance restore-interval=4" "$W/call.mp4" "! faceenhance restore-interval=4 $MSG" "$N" \
  'restored_share "$W/faceenhance restore-interval=4.log"'
row call "faceenhance max-latency=40 (live)" "$W/call.mp4" "! faceenhance max-latency=40 $MSG" "$N" \
  'restored_share "$W/faceenhance max-latency=40 (live).log"'
row call "facedetector detect-interval=5" "$W/call.mp4" "! facedetector detect-interval=5 $MSG" "$N" \
  'recall "$W/facedetector detect-interval=5.log" facedetector 1'
row call "faceenhance detect-interval=5 restore-interval=8" "$W/call.mp4" \
  "! faceenhance detect-interval=5 restore-interval=8 $MSG" "$N" \
  'restored_share "$W/faceenhance detect-interval=5 restore-interval=8.log"'
row call "faceenhance detect-interval=10 restore-interval=16" "$W/call.mp4" \
  "! faceenhance detect-interval=10 restore-interval=16 $MSG" "$N" \
  'restored_share "$W/faceenhance detect-interval=10 restore-interval=16.log"'
row call "faceenhance detect-interval=5 max-latency=40 (live)" "$W/call.mp4" \
  "! faceenhance detect-interval=5 max-latency=40 $MSG" "$N" \
  'restored_share "$W/faceenhance detect-interval=5 max-latency=40 (live).log"'

N=$(frames "$W/noface.mp4")
row noface floor "$W/noface.mp4" "" "$N"
row noface "facedetector" "$W/noface.mp4" "! facedetector" "$N"
row noface "faceenhance" "$W/noface.mp4" "! faceenhance" "$N"
row noface "faceenhance sweep-frames=50" "$W/noface.mp4" "! faceenhance sweep-frames=50" "$N"
row noface "faceenhance strength=0" "$W/noface.mp4" "! faceenhance strength=0" "$N"

N=$(frames "$W/faces4.mp4")
row faces4 floor "$W/faces4.mp4" "" "$N"
row faces4 "facedetect (gst-plugins-bad Haar)" "$W/faces4.mp4" "! facedetect display=false" "$N" \
  'recall "$W/facedetect (gst-plugins-bad Haar).log" facedetect 4'
row faces4 "facedetector" "$W/faces4.mp4" "! facedetector" "$N" 'recall "$W/facedetector.log" facedetector 4'
[ -f "$YUNET" ] && row faces4 "facedetector model=YuNet" "$W/faces4.mp4" "! facedetector model=$YUNET" "$N" \
  'recall "$W/facedetector model=YuNet.log" facedetector 4'
row faces4 "faceenhance" "$W/faces4.mp4" "! faceenhance" "$N"

N=$(frames "$W/cctv.mp4")
row cctv floor "$W/cctv.mp4" "" "$N"
row cctv "facedetector" "$W/cctv.mp4" "! facedetector" "$N" 'per_frame "$W/facedetector.log"'
row cctv "facedetector sweep-frames=0 (every frame searched)" "$W/cctv.mp4" "! facedetector sweep-frames=0" "$N" \
  'per_frame "$W/facedetector sweep-frames=0 (every frame searched).log"'
row cctv "faceenhance" "$W/cctv.mp4" "! faceenhance" "$N"

N=$(frames "$W/cctv720.mp4")
row cctv720 floor "$W/cctv720.mp4" "" "$N"
row cctv720 "facedetector" "$W/cctv720.mp4" "! facedetector" "$N" 'per_frame "$W/facedetector.log"'
row cctv720 "facedetector sweep-frames=0 (every frame searched)" "$W/cctv720.mp4" "! facedetector sweep-frames=0" "$N" \
  'per_frame "$W/facedetector sweep-frames=0 (every frame searched).log"'
row cctv720 "faceenhance" "$W/cctv720.mp4" "! faceenhance" "$N"

if [ -f "$W/pan.mp4" ]; then
  N=$(frames "$W/pan.mp4")
  row pan floor "$W/pan.mp4" "" "$N"
  row pan "facedetector" "$W/pan.mp4" "! facedetector" "$N" 'per_frame "$W/facedetector.log"'
  row pan "facedetector sweep-frames=0 (every frame searched)" "$W/pan.mp4" "! facedetector sweep-frames=0" "$N" \
    'per_frame "$W/facedetector sweep-frames=0 (every frame searched).log"'
  row pan "faceenhance" "$W/pan.mp4" "! faceenhance" "$N"
fi

# Memory: a face leaving and coming back, over and over; peak RSS after 1,000 and LEAK frames.
LEAKLINE=""
if [ "$LEAK" -gt 0 ]; then
  FN="$CACHE/data/face_noface.mov"; NF="$CACHE/data/noface_face.mov"
  srcs=""; cycles=$(( LEAK / 338 + 1 ))
  for i in $(seq "$cycles"); do
    srcs="$srcs filesrc location=$FN ! decodebin ! videoconvert ! $I420 ! c. filesrc location=$NF ! decodebin ! videoconvert ! $I420 ! c."
  done
  gst-launch-1.0 -q -e concat name=c ! x264enc speed-preset=ultrafast ! mp4mux ! filesink location="$W/comings.mp4" $srcs
  rss() {
    /usr/bin/time -f '%M' -o "$W/rss" gst-launch-1.0 -q filesrc location="$W/comings.mp4" ! decodebin ! identity eos-after="$1" \
      ! videoconvert ! faceenhance ! fakesink
    echo $(( $(cat "$W/rss") / 1024 ))
  }
  R1=$(rss 1000); R2=$(rss "$LEAK")
  LEAKLINE="Memory: a 960x540 clip where a face leaves and comes back every 169 frames, through faceenhance: peak RSS ${R1} MiB after 1,000 frames, ${R2} MiB after ${LEAK}."
  echo "[bench] $LEAKLINE" >&2
fi

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
{
  echo "### End to end, $(date -u +%Y-%m-%d), $(nproc) cores ($cpu), $(free -g | awk '/Mem/{print $2}') GiB"
  echo
  echo "Every pipeline: \`filesrc ! decodebin ! videoconvert ! [element] ! videoconvert ! $ENC ! fakesink\`;"
  echo "clips are I420 H.264. The floor is that pipeline with no element; 'x floor' is time over the"
  echo "floor's on the same clip, each run of a pipeline next to a run of the floor (fastest of $REPS"
  echo "each: the machine's speed drifts within minutes); 'running' is the same less each pipeline's"
  echo "start-up (the time of its first 3 frames: what a stream pays once), the per-frame cost of a stream"
  echo "that runs on. Last column: call: share of frames with"
  echo "the face restored (facerestore messages) or found (facedetector); faces4: share of the 4 faces"
  echo "found per analysed frame; cctv, cctv720 and pan: faces found per analysed frame (no truth: compare the rows)."
  echo
  echo "| clip | pipeline | fps | x floor | x floor running | start-up s | peak RSS MiB | restored / recall / faces |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  printf '%s\n' "${rows[@]}"
  echo
  [ -n "$LEAKLINE" ] && echo "$LEAKLINE"
} | tee "$OUT_MD"
