# Sourced by the end-to-end bench scripts: set-up, release build, plugin path, the cache
# and its talking-head clip, YuNet from ../shared when there, and a scratch folder removed
# on exit.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
cargo build --release --quiet -p faceenhance -p gst-plugin-faceenhance -p faceenhance-cli
export GST_PLUGIN_PATH="$PWD/target/release"
CACHE="${FACEENHANCE_CACHE:-$HOME/.cache/faceenhance}"
YUNET="$(realpath -m ../shared/models/face_detection_yunet_2022mar.onnx)"
WL="$CACHE/data/WolfgangLanger_Pexels.mp4"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
