#!/usr/bin/env bash
# Installs what uvfio needs on a fresh machine. Today: only a Rust toolchain with rustfmt and clippy.
set -euo pipefail
if ! command -v cargo >/dev/null; then
    echo "uvfio needs a Rust toolchain (cargo); install it with rustup first" >&2
    exit 1
fi
for comp in rustfmt clippy; do
    if ! cargo "${comp/rustfmt/fmt}" --version >/dev/null 2>&1; then
        rustup component add "$comp"
    fi
done
