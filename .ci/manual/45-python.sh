#!/usr/bin/env bash
# The Python package beyond ./test.sh: built in release mode with the `mpi`
# feature, Python stages under real mpirun (`mpirun -n 3 daf run`, which hands
# the run to `python -m daf.run` on every rank) give the same report as two
# thread slices, and `daf bench python` (against the Gen3 butler and astropy).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v mpirun >/dev/null || { echo "mpirun not installed (apt-get install openmpi-bin libopenmpi-dev)"; exit 1; }
venv="${DAF_VENV:-$HOME/.cache/daf/venv}"

# Release build (the bench's figures) with the MPI transport.
PATH="$venv/bin:$PATH" MATURIN_PEP517_ARGS="--features mpi" "$venv/bin/pip" install -q \
  --disable-pip-version-check --no-build-isolation --no-deps --force-reinstall ./python
"$venv/bin/python" -c "import daf.harness as h; assert h.HAS_MPI, 'built without MPI'"
cargo build --release --features mpi --bin daf -q
daf=target/release/daf
mpirun=(mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)
export DAF_PYTHON="$venv/bin/python" PYTHONPATH="$PWD/python/tests"
data=python/tests/data
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for t in mpi threads; do
  set +e
  if [ "$t" = mpi ]; then
    timeout 300 "${mpirun[@]}" -n 3 "$daf" run "$data/py_pipeline.yaml" --events "$data/py_events.jsonl" \
      --dump "$work/$t.json" > "$work/$t.log" 2>&1
  else
    timeout 300 "$daf" run "$data/py_pipeline.yaml" --events "$data/py_events.jsonl" --slices 2 \
      --transport threads --dump "$work/$t.json" > "$work/$t.log" 2>&1
  fi
  rc=$?
  set -e
  if [ "$rc" -ne 3 ]; then
    echo "$t: exit status $rc (expected 3: visit 2 fails on slice 1)"; cat "$work/$t.log"; exit 1
  fi
done
grep -q "slice 1: ValueError in scale (bad pixels in visit 2" "$work/mpi.log" || { cat "$work/mpi.log"; exit 1; }
grep -q '"n_slices": 2' "$work/mpi.json"
diff -u "$work/threads.json" "$work/mpi.json"
echo "ok: Python stages under mpirun -n 3 == 2 thread slices (identical reports, failure with traceback)"

"$daf" bench python
