#!/usr/bin/env bash
# Every test: set-up (idempotent), format and lint checks, the core and plugin tests, and
# the training crate's tests. Needs ../shared beside the repository (or FACEENHANCE_SHARED).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets -- -D warnings
# The gst-launch tests load the plugin from target/release: build it first.
cargo build --release --workspace
cargo test --release --workspace
# Archives at scale: the Kubernetes manifests against the schema (offline), and the Slurm
# array job + join on a one-node cluster started and stopped here.
bash scripts/k8s-validate.sh
bash scripts/slurm-test.sh
if [ -f training/Cargo.toml ]; then
  (cd training && cargo fmt -- --check && cargo test)
fi
