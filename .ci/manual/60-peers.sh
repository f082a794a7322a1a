#!/usr/bin/env bash
# Runs every `daf bench` area with its peers (C++ Boost compiled with g++,
# cfitsio, astropy, the Gen3 butler, Python sqlite3, psql \copy; installed by
# .ci/run) in quick mode, printing one JSON object per measurement into the
# log (the CI artifact). A missing peer fails the check with an install hint.
# Ratios are reported, not enforced: CI machines are shared and noisy.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${DAF_TEST_POSTGRES_URL:?set by .ci/run}"
export DAF_PYTHON="${DAF_PYTHON:-$HOME/.cache/daf/venv/bin/python}"
cargo build --release -q
daf=target/release/daf
for area in foundation policy registry harness db boost fits butler; do
  echo "--- daf bench $area --peers --quick --json"
  "$daf" bench "$area" --peers --quick --json
done
