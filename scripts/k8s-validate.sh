#!/usr/bin/env bash
# Validates deploy/k8s/*.yaml offline against the Kubernetes OpenAPI schemas bundled in
# the kubernetes-validate package (PyPI; installed once into a venv in the cache), for the
# version that introduced backoffLimitPerIndex as beta (1.29) and the current one (1.33),
# strict: unknown fields are errors.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${FACEENHANCE_CACHE:-$HOME/.cache/faceenhance}"
venv="$CACHE/k8s-venv"
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "kubernetes-validate==1.33.*" >&2
fi
for v in 1.29.0 1.33.0; do
  "$venv/bin/kubernetes-validate" --strict -k "$v" deploy/k8s/*.yaml
done
