#!/usr/bin/env bash
# Python stages under real mpirun. The package is built with the `mpi`
# feature in the dev profile (a functional check needs no optimisation, and
# the dev build reuses what ./test.sh compiled); `mpirun -n 3 daf run` hands
# the run to `python -m daf.run` on every rank. Asserted against two thread
# slices, for
#  1. Python stages beside a built-in stage, one visit failing on slice 1 on
#     purpose (LSST's failure semantics, Python traceback): identical reports;
#  2. Python stages around the built-in IO stages' butler method (a Python
#     stage makes an image per slice, OutputStage puts it through the
#     butler, InputStage reads it back, a Python stage checks it): identical
#     reports, and the two repositories hold the same datasets, pixel for
#     pixel.
# `daf bench python` needs a release build (minutes on two cores): it runs
# here only with DAF_BENCH_PYTHON=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v mpirun >/dev/null || { echo "mpirun not installed (apt-get install openmpi-bin libopenmpi-dev)"; exit 1; }
venv="${DAF_VENV:-$HOME/.cache/daf/venv}"
py="$venv/bin/python"
start=$(date +%s)

PATH="$venv/bin:$PATH" MATURIN_PEP517_ARGS="--profile dev --features mpi" "$venv/bin/pip" install -q \
  --disable-pip-version-check --no-build-isolation --no-deps --force-reinstall ./python
"$py" -c "import daf.harness as h; assert h.HAS_MPI, 'built without MPI'"
# The daf binary only hands the run to Python: use the one this CI run built
# (40-mpi.sh's release build, else ./test.sh's), building it only if absent
# (`cargo build -p daf-cli --bin daf` alone unifies dependency features differently
# from the workspace build and recompiles much of the stack).
daf=target/release/daf
[ -x "$daf" ] || daf=target/debug/daf
[ -x "$daf" ] || { cargo build -p daf-cli --bin daf -q; daf=target/debug/daf; }
echo "built in $(( $(date +%s) - start ))s"
mpirun=(mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)
export DAF_PYTHON="$py" PYTHONPATH="$PWD/python/tests"
data=python/tests/data
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# run NAME PIPELINE EXPECTED_STATUS [daf run options...]: one run under
# mpirun -n 3 and one on 2 thread slices, each dumped to $work/NAME-{mpi,threads}.json.
run() {
  local name=$1 pipeline=$2 want=$3 t rc
  shift 3
  for t in mpi threads; do
    local extra=()
    [ "$name" = butler ] && extra=(--location "repo=$work/repo-$t")
    set +e
    if [ "$t" = mpi ]; then
      timeout 300 "${mpirun[@]}" -n 3 "$daf" run "$pipeline" "$@" "${extra[@]}" \
        --dump "$work/$name-$t.json" > "$work/$name-$t.log" 2>&1
    else
      timeout 300 "$daf" run "$pipeline" "$@" "${extra[@]}" --slices 2 --transport threads \
        --dump "$work/$name-$t.json" > "$work/$name-$t.log" 2>&1
    fi
    rc=$?
    set -e
    if [ "$rc" -ne "$want" ]; then
      echo "$name on $t: exit status $rc (expected $want)"; cat "$work/$name-$t.log"; exit 1
    fi
  done
  grep -q '"n_slices": 2' "$work/$name-mpi.json"
  diff -u "$work/$name-threads.json" "$work/$name-mpi.json"
}

# 1. Python stages; visit 2 fails on slice 1 (exit status 3).
run stages "$data/py_pipeline.yaml" 3 --events "$data/py_events.jsonl"
grep -q "slice 1: ValueError in scale (bad pixels in visit 2" "$work/stages-mpi.log" || { cat "$work/stages-mpi.log"; exit 1; }
grep -q "Traceback" "$work/stages-mpi.json"
echo "ok: Python stages under mpirun -n 3 == 2 thread slices (identical reports, failure with traceback)"

# 2. Python stages around the butler-method IO stages.
for t in mpi threads; do
  "$py" -c "import daf, sys; daf.Butler.create_repository(sys.argv[1], {'img': ('img/v%(visit)d-c%(ccd)d.fits', 'ImageF', 'FitsStorage')})" "$work/repo-$t"
done
run butler "$data/py_butler_pipeline.yaml" 0 --events "$data/py_events.jsonl"
"$py" - "$work/repo-mpi" "$work/repo-threads" <<'PY'
import sys
import numpy as np
import daf
a, b = (daf.Butler(r) for r in sys.argv[1:3])
ids = sorted(a.query_metadata("img", ["visit", "ccd"]))
assert ids == sorted(b.query_metadata("img", ["visit", "ccd"])) == [(v, c) for v in (1, 2, 3) for c in (0, 1)], ids
for v, c in ids:
    x, y = a.get("img", visit=v, ccd=c).array, b.get("img", visit=v, ccd=c).array
    np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(x, np.full((8, 8), v * 10 + c, np.float32))
print(f"ok: {len(ids)} datasets written through the butler, the same under mpirun and on threads")
PY
for v in 1 2 3; do
  for s in 0 1; do
    want=$(( 64 * (v * 10 + s) ))
    grep -q "\"back_sum\": $want.0" "$work/butler-mpi.json" || { echo "visit $v slice $s: no back_sum $want"; cat "$work/butler-mpi.json"; exit 1; }
  done
done
echo "ok: Python stages and butler-method IO stages under mpirun -n 3 == 2 thread slices (identical reports and datasets)"
echo "45-python: $(( $(date +%s) - start ))s"

if [ "${DAF_BENCH_PYTHON:-0}" = 1 ]; then
  PATH="$venv/bin:$PATH" "$venv/bin/pip" install -q --disable-pip-version-check --no-build-isolation --no-deps \
    --force-reinstall ./python
  cargo build --release -p daf-cli --bin daf -q
  target/release/daf bench python
fi
