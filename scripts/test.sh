#!/usr/bin/env bash
# The test suite: every crate's unit, integration and property tests (fast; no external peers).
# Ends with one summary line over all test binaries: "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$log" || status=$?
if [ "${UVFIO_E2E:-0}" = 1 ]; then
  # The external peer: QEMU 11 with a Linux guest against `uvfio serve` (downloads ~300 MB once).
  cargo build --release --locked --bin uvfio
  scripts/e2e/qemu-guest.sh 2>&1 | tee -a "$log" || status=$?
  # The same guest with RAM QEMU does not share: device DMA through VFIO_USER_DMA_READ / _WRITE.
  scripts/e2e/qemu-guest.sh --private-ram 2>&1 | tee -a "$log" || status=$?
fi
awk '/^test result:/ { p += $4; f += $6; s += $8 } /^e2e: / { p += $2; f += $4 } END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
