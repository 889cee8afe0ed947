#!/usr/bin/env bash
# Network interpolation sweep (ESRGAN): restore-fc-gan against restore-fc, exported per alpha
# and rung size and evaluated on the held-out London crops (PSNR / SSIM / HF, a grid each).
# Usage: bash scripts/interpolate.sh OUTDIR "0 0.5 1" "128 256"
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1; alphas=$2; sizes=$3
config=${CONFIG:-configs/restore-fc-gan.toml}  # CONFIG=configs/restore-fc-gan2.toml for the second run
mkdir -p "$out"
for s in $sizes; do
  cfg=$(mktemp --suffix=.toml)
  sed "s#^cache = .*#cache = \"cache/london-$s\"#" "$config" > "$cfg"
  for a in $alphas; do
    ./target/debug/faceenhance-train export --config "$config" --base checkpoints/restore-fc \
      --alpha "$a" --size "$s" --out "$out/a$a-$s.onnx" 2>/dev/null
    ./target/debug/faceenhance-train eval --config "$cfg" --model "$out/a$a-$s.onnx" --count 16 --threads 2 \
      --drift-runs 1 --drift-count 2 --grid "$out/a$a-$s.png" --grid-rows 4 --grid-cell "$s" \
      --json "$out/a$a-$s.json" > /dev/null 2>&1
    python3 -c "
import json; d=json.load(open('$out/a$a-$s.json')); m=d['scores']; b=d['baseline']
print(f'size $s alpha $a: psnr {m[\"psnr\"]:.2f} ({d[\"gain_psnr\"]:+.2f}) ssim {m[\"ssim\"]:.4f} ({d[\"gain_ssim\"]:+.4f}) hf {m[\"hf\"]:.3f} (input {b[\"hf\"]:.2f})')"
  done
  rm -f "$cfg"
done
