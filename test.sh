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
#
# A Rust test whose tool or server is missing prints `SKIPPED: why` (in CI it
# fails instead); cargo hides the output of passing tests, so each skip is
# also appended to the file DAF_SKIP_LOG names, and the end of this script
# lists them. Database tests use DAF_TEST_POSTGRES_URL and DAF_TEST_MYSQL_URL,
# defaulting to the local servers (127.0.0.1:5432 and :3306, database
# `test`) when they listen; set a variable to an empty value to skip one.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: >"$work/skips"
DAF_SKIP_LOG="$work/skips" cargo test --workspace "$@"

skipped=()
rust_skips=$(grep -c '^SKIPPED' "$work/skips" || true)
if [ "$rust_skips" -gt 0 ]; then
  reasons=$(sed 's/^SKIPPED: //' "$work/skips" | sort | uniq -c | sed 's/^ *\([0-9]*\) \(.*\)/\2 (×\1)/' | paste -sd';' - | sed 's/;/; /g')
  skipped+=("$rust_skips Rust test(s): $reasons")
fi
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
  log="$work/pytest.log"
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
  echo "test.sh: nothing skipped"
else
  summary=$(printf '%s | ' "${skipped[@]}")
  echo "test.sh: skipped ${summary% | }"
fi
