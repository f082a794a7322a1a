#!/usr/bin/env bash
# Every test, Rust and Python: the README's test command (`./test.sh`).
# Extra arguments go to `cargo test` (e.g. `./test.sh -p daf-butler`).
set -euo pipefail
cd "$(dirname "$0")"
cargo test --workspace "$@"
