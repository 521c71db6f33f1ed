#!/usr/bin/env bash
# The test suite: every crate's unit, integration and property tests (fast; no external peers).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --locked "$@"
