#!/usr/bin/env bash
# Builds (release) and installs the GStreamer plugin, the `faceenhance` command line and
# the shipped models, so that `gst-inspect-1.0 faceenhance` works without GST_PLUGIN_PATH
# and the elements' default `model` is the installed models folder.
#
#   scripts/install.sh [--no-build] [PREFIX]
#
# Where things go:
#   PREFIX given:    PREFIX/lib/gstreamer-1.0, PREFIX/bin, PREFIX/share/faceenhance/models
#                    (GStreamer looks there only with GST_PLUGIN_PATH=PREFIX/lib/gstreamer-1.0)
#   root, no PREFIX: the system's plugin folder (pkg-config's pluginsdir of gstreamer-1.0,
#                    else /usr/local/lib/<multiarch>/gstreamer-1.0), /usr/local/bin,
#                    /usr/local/share/faceenhance/models
#   user, no PREFIX: ~/.local/share/gstreamer-1.0/plugins, ~/.local/bin,
#                    ~/.local/share/faceenhance/models
# The plugin and the command line find the models beside themselves (FACEENHANCE_MODELS
# overrides). The models folder is replaced as a whole: every models/*.onnx with its
# .toml (a folder of models is the default ladder, so a stale model must not stay in it),
# the other *.toml and models/profiles/.
# --no-build: install what is already built (FACEENHANCE_BUILD_DIR, default
# ${CARGO_TARGET_DIR:-target}/release).
# ONNX Runtime is not installed: it is loaded from ~/.cache/faceenhance (scripts/setup.sh)
# or ORT_DYLIB_PATH; GStreamer and OpenCV are the system's.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

build=1
prefix=""
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -h | --help)
      sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "install.sh: unknown option $arg" >&2
      exit 2
      ;;
    *)
      [ -z "$prefix" ] || { echo "install.sh: one PREFIX only" >&2; exit 2; }
      prefix="$arg"
      ;;
  esac
done

if [ -n "$prefix" ]; then
  mkdir -p "$prefix"
  prefix="$(cd "$prefix" && pwd)"
  plugins="$prefix/lib/gstreamer-1.0"
  bin="$prefix/bin"
  models="$prefix/share/faceenhance/models"
elif [ "$(id -u)" = 0 ]; then
  plugins="$(pkg-config --variable=pluginsdir gstreamer-1.0 2>/dev/null || true)"
  if [ -z "$plugins" ]; then
    plugins="/usr/local/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/gstreamer-1.0"
  fi
  bin=/usr/local/bin
  models=/usr/local/share/faceenhance/models
else
  data="${XDG_DATA_HOME:-$HOME/.local/share}"
  plugins="$data/gstreamer-1.0/plugins"
  bin="$HOME/.local/bin"
  models="$data/faceenhance/models"
fi

built="${FACEENHANCE_BUILD_DIR:-${CARGO_TARGET_DIR:-$repo/target}/release}"
if [ "$build" = 1 ]; then
  # The plugin last and on its own: built with the command line in one run, cargo would
  # give the cdylib the CLI's tracing-subscriber features too.
  (cd "$repo" && cargo build --release -p faceenhance-cli && cargo build --release -p gst-plugin-faceenhance)
fi
for f in "$built/libgstfaceenhance.so" "$built/faceenhance"; do
  [ -f "$f" ] || { echo "install.sh: $f not built" >&2; exit 1; }
done
if ! ls "$repo"/models/*.onnx >/dev/null 2>&1; then
  echo "install.sh: no models in $repo/models" >&2
  exit 1
fi

install -d "$plugins" "$bin"
install -m 644 "$built/libgstfaceenhance.so" "$plugins/"
install -m 755 "$built/faceenhance" "$bin/"
case "$models" in
  */faceenhance/models) rm -rf "$models" ;;
esac
install -d "$models/profiles"
install -m 644 "$repo"/models/*.onnx "$repo"/models/*.toml "$models/"
if ls "$repo"/models/profiles/*.toml >/dev/null 2>&1; then
  install -m 644 "$repo"/models/profiles/*.toml "$models/profiles/"
fi
# The attribute predictor (`faceenhance attributes`), in a folder of its own: the ladder
# takes every face model of the top folder.
if ls "$repo"/models/attributes/*.onnx >/dev/null 2>&1; then
  install -d "$models/attributes"
  install -m 644 "$repo"/models/attributes/*.onnx "$repo"/models/attributes/*.toml "$models/attributes/"
fi
# The attribute editor (`faceedit`, `--edit`), in its folder for the same reason.
if ls "$repo"/models/edit/*.onnx >/dev/null 2>&1; then
  install -d "$models/edit"
  install -m 644 "$repo"/models/edit/*.onnx "$repo"/models/edit/*.toml "$models/edit/"
fi

echo "plugin:  $plugins/libgstfaceenhance.so"
echo "command: $bin/faceenhance"
echo "models:  $models ($(ls "$models"/*.onnx | wc -l) .onnx)"
if [ -n "$prefix" ]; then
  echo "GStreamer finds the plugin with: export GST_PLUGIN_PATH=$plugins"
fi
