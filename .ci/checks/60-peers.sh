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
# after AREA_LIMIT seconds (default 600), and all of them together after
# CHECK_LIMIT seconds (default 1500, so CI stays inside its 45 minutes).
# Timed with a release build on the shared 2-core machine under heavy load
# (each area run by hand as below): foundation 1 s, policy 0 s, registry
# 4 s, harness 1 s, db 29 s, fits 32 s, boost 16 s, butler 2.5-3 min, scale
# 12 s: about 4.5 minutes in all.
# The release build is the one 50-db-bench.sh made (`cargo run --release -p daf-cli`).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${DAF_TEST_POSTGRES_URL:?set by .ci/run}"
export DAF_PYTHON="${DAF_PYTHON:-$HOME/.cache/daf/venv/bin/python}"
AREA_LIMIT="${AREA_LIMIT:-600}"
CHECK_LIMIT="${CHECK_LIMIT:-1500}"
cargo build --release -q -p daf-cli --bin daf
daf=target/release/daf
out=target/ci-bench
mkdir -p "$out"
: > "$out/peers.jsonl"
check_start=$(date +%s)
run() {
  local t0 left limit
  t0=$(date +%s)
  left=$(( CHECK_LIMIT - (t0 - check_start) ))
  if [ "$left" -le 0 ]; then
    echo "peers check: over its ${CHECK_LIMIT} s budget before daf $*" >&2
    return 1
  fi
  limit=$(( left < AREA_LIMIT ? left : AREA_LIMIT ))
  echo "--- daf $* (at most ${limit} s)"
  timeout --signal=KILL "$limit" "$daf" "$@" | tee -a "$out/peers.jsonl"
  echo "--- $2: $(( $(date +%s) - t0 )) s"
}
for area in foundation policy registry harness db boost fits butler; do
  run bench "$area" --peers --quick --json
done
run bench scale --quick --json --plot "$out/scale.png"
echo "--- peers check: $(( $(date +%s) - check_start )) s, $(wc -l < "$out/peers.jsonl") measurements in $out/peers.jsonl"
