#!/usr/bin/env bash
# Every test, Rust and Python: the README's test command (`./test.sh`).
# Extra arguments go to `cargo test` (e.g. `./test.sh -p daf-butler`); with
# them the Python part is skipped (so is it with DAF_SKIP_PYTHON=1).
#
# The Python part installs the package the way a user does, `pip install
# ./python` (maturin is the PEP 517 backend), into the venv DAF_VENV (default
# ~/.cache/daf/venv, created with numpy, astropy, pytest and maturin if
# missing), then runs pytest on python/tests. The wheel is built with the dev
# profile (MATURIN_PEP517_ARGS=--profile dev): it reuses the dependencies
# `cargo test` just compiled, so it costs seconds, where a release build of
# the whole stack costs minutes on two cores. Benchmarks build release.
set -euo pipefail
cd "$(dirname "$0")"
cargo test --workspace "$@"

skipped=()
if [ "$#" -gt 0 ] || [ "${DAF_SKIP_PYTHON:-0}" = 1 ]; then
  skipped+=("the Python tests (cargo arguments given or DAF_SKIP_PYTHON=1)")
else
  venv="${DAF_VENV:-$HOME/.cache/daf/venv}"
  if ! "$venv/bin/python" -c "import numpy, astropy, pytest, maturin" 2>/dev/null; then
    echo "=== creating the Python venv $venv (numpy, astropy, pytest, maturin)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check numpy astropy pytest maturin
  fi
  echo "=== pip install ./python (dev profile) into $venv"
  PATH="$venv/bin:$PATH" MATURIN_PEP517_ARGS="--profile dev" "$venv/bin/pip" install -q --disable-pip-version-check \
    --no-build-isolation --no-deps --force-reinstall ./python
  echo "=== pytest python/tests"
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  set +e
  # From the repository root, so the installed package is the one imported.
  "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider python/tests 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" -eq 0 ] || exit "$rc"
  n=$(grep -c '^SKIPPED' "$log" || true)
  [ "$n" -eq 0 ] || skipped+=("$n Python test(s): $(grep '^SKIPPED' "$log" | sed 's/^SKIPPED \[[0-9]*\] //' | tr '\n' ';')")
fi
if [ "${#skipped[@]}" -eq 0 ]; then
  echo "test.sh: nothing skipped (Rust tests that need a missing tool or server print SKIPPED: above)"
else
  echo "test.sh: skipped ${skipped[*]}"
fi
