#!/usr/bin/env bash
# The GPU check, for a session whose task was lent a device machine (the `device` tool's
# `status`: can_start_another true). Three verbs:
#
#   scripts/gpu-check.sh prepare      here: the onnxruntime-gpu wheel for the device's Python
#                                     (3.12) cut into .gpu/part-NN (<= 24 MiB each: the tree
#                                     itself is ~39 MiB of the 64 MiB a call may carry), and
#                                     the device commands to run, printed
#   scripts/gpu-check.sh device N     there, once per part N (carry .gpu/part-N): stores it in
#                                     /tmp/gpu-parts; the call with the last part also runs
#                                     the check and writes $OUT/gpu-results.md
#   scripts/gpu-check.sh record FILE  here: puts FILE's table into BENCHMARKS.md
#
# The check: faces per second of every shipped model and of a GFPGAN-class 512 px net
# (scripts/gpu/gfpgan_class.py, random weights) on CUDA fp32, CUDA fp16 (weights and
# compute in half precision) and TensorRT fp16 where its libraries are present (no
# registry serves them: the row then says why it did not run), at batch 1 and 8; and four
# streams' faces through four sessions against one shared session's batch of four
# (scripts/gpu/streams.py: what share-sessions is for on a GPU). The
# device image has PyTorch, onnx and CUDA 13's libraries (nvidia-* wheels) but only the
# CPU onnxruntime: the GPU build travels as the wheel. Keep the machine warm between the
# calls (30 s), and give it back after the last.
set -euo pipefail
cd "$(dirname "$0")/.."
ORT_VERSION=1.31.1
PARTS=.gpu
CHUNK_MB=24

case "${1:-}" in
prepare)
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
  rm -rf "$PARTS" && mkdir -p "$PARTS/wheel"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    "onnxruntime-gpu==$ORT_VERSION" -d "$PARTS/wheel"
  whl=$(ls "$PARTS"/wheel/*.whl)
  (cd "$PARTS" && split -b "${CHUNK_MB}M" -d -a 2 "wheel/$(basename "$whl")" part- && sha256sum part-* > SHA256SUMS)
  basename "$whl" > "$PARTS/WHEEL"
  rm -rf "$PARTS/wheel"
  n=$(ls "$PARTS"/part-* | wc -l)
  echo "[gpu-check] $(basename "$whl") in $n parts. Device calls, back to back (each carries .gpu):"
  for p in "$PARTS"/part-*; do
    k=${p##*/part-}
    echo "  run(carry=[\".gpu/part-$k\", \".gpu/SHA256SUMS\", \".gpu/WHEEL\"], command=\"bash scripts/gpu-check.sh device $k $((n - 1))\", timeout_s=560)"
  done
  echo "then: scripts/gpu-check.sh record <files_at>/gpu-results.md, and give_back"
  ;;
device)
  k=$2 last=$3
  mkdir -p /tmp/gpu-parts
  cp "$PARTS/part-$k" /tmp/gpu-parts/
  cp "$PARTS/SHA256SUMS" "$PARTS/WHEEL" /tmp/gpu-parts/
  echo "[gpu-check] part $k of 0..$last stored"
  [ "$((10#$k))" -eq "$((10#$last))" ] || exit 0
  cd /tmp/gpu-parts && sha256sum -c SHA256SUMS && cat part-* > "$(cat WHEEL)" && cd - > /dev/null
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/ortgpu "/tmp/gpu-parts/$(cat /tmp/gpu-parts/WHEEL)"
  # CUDA 13 and cuDNN 9 from the image's nvidia-* wheels, where PyTorch found them.
  site=$(python3 -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))')
  libs=$(find "$site/nvidia" -name 'lib' -type d | tr '\n' ':')
  export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:-}" PYTHONPATH=/tmp/ortgpu
  out="${OUT:-/tmp}/gpu-results.md"
  {
    echo "### GPU, $(date -u +%Y-%m-%d): $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"
    echo
    python3 scripts/gpu/gfpgan_class.py /tmp/gfpgan-class.onnx
    echo
    python3 scripts/gpu/speed.py 50 models/restore-64.onnx models/restore-128.onnx models/restore-256.onnx \
      models/restore-512.onnx models/sr-x4-64.onnx models/sr-x8-64.onnx /tmp/gfpgan-class.onnx
    echo
    # many cameras (issue 28, item 5): 4 streams' faces, own sessions against one shared batch
    python3 scripts/gpu/streams.py 4 10 models/sr-x4-64.onnx models/restore-128.onnx \
      models/restore-256.onnx /tmp/gfpgan-class.onnx
  } 2>&1 | tee "$out"
  ;;
record)
  file=$2
  python3 - "$file" <<'EOF'
import re, sys
table = open(sys.argv[1]).read().strip()
path = "BENCHMARKS.md"
text = open(path).read()
start, end = "<!-- gpu-check -->", "<!-- /gpu-check -->"
block = f"{start}\n{table}\n{end}"
if start in text:
    text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
else:
    text += "\n## GPU (scripts/gpu-check.sh)\n\n" + block + "\n"
open(path, "w").write(text)
print(f"[gpu-check] {sys.argv[1]} recorded in {path}")
EOF
  ;;
*)
  sed -n '2,22p' "$0"
  exit 2
  ;;
esac
