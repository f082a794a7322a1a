#!/usr/bin/env bash
# Runs every `daf bench` area with its peers (C++ Boost compiled with g++,
# cfitsio, astropy, the Gen3 butler, Python sqlite3, psql \copy; installed by
# .ci/run) in quick mode, then `daf bench scale --quick` with its chart. Each
# measurement is one JSON object, printed into the log and kept in
# target/ci-bench/peers.jsonl (the chart in target/ci-bench/scale.png). A
# missing peer fails the check with an install hint. Ratios are reported, not
# enforced: CI machines are shared and noisy.
#
# Bounded: only --quick sizes; each area is stopped (and the check fails)
# after AREA_LIMIT seconds. Timed on the 2-core machine: the areas together
# take about 6 minutes, under the 45-minute CI budget with the rest of
# .ci/run (~15 minutes). The release build is the one 50-db-bench.sh made.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${DAF_TEST_POSTGRES_URL:?set by .ci/run}"
export DAF_PYTHON="${DAF_PYTHON:-$HOME/.cache/daf/venv/bin/python}"
AREA_LIMIT="${AREA_LIMIT:-600}"
cargo build --release -q --bin daf
daf=target/release/daf
out=target/ci-bench
mkdir -p "$out"
: > "$out/peers.jsonl"
check_start=$(date +%s)
run() {
  local t0
  t0=$(date +%s)
  echo "--- daf $*"
  timeout --signal=KILL "$AREA_LIMIT" "$daf" "$@" | tee -a "$out/peers.jsonl"
  echo "--- $2: $(( $(date +%s) - t0 )) s"
}
for area in foundation policy registry harness db boost fits butler; do
  run bench "$area" --peers --quick --json
done
run bench scale --quick --json --plot "$out/scale.png"
echo "--- peers check: $(( $(date +%s) - check_start )) s, $(wc -l < "$out/peers.jsonl") measurements in $out/peers.jsonl"
