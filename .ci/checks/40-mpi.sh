#!/usr/bin/env bash
# The harness under real mpirun: the same pipeline with 3 and 4 ranks gives
# the same outputs (run report and files) as the thread transport with 2 and 3
# slices; a slice that dies or hangs ends the run with an error and a partial
# report, not a deadlock; pex_harness's topologies and events (cli/tests/mpi_pex.rs);
# and the per-stage overhead bench over MPI.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v mpirun >/dev/null || { echo "mpirun not installed (apt-get install openmpi-bin libopenmpi-dev)"; exit 1; }

# `--features` names the feature of each selected package: daf (the facade),
# daf-cli (the binary, its mpi_pex test and benches) and daf-python all have `mpi`.
cargo clippy --workspace --all-targets --features mpi -q -- -D warnings
# `testing`: the small stages the pipelines under tests/data/harness use
# (daf.harness.ShareParallel, FailParallel, ...); a user's build leaves them out.
cargo build --release -p daf-cli --features mpi,testing --bin daf -q
daf=target/release/daf
mpirun=(mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)
data=tests/data/harness
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

links() { (cd "$1" && find . -type l -printf '%p -> %l\n' | sort); }

for ranks in 3 4; do
  slices=$((ranks - 1))
  for t in mpi threads; do
    set +e
    if [ "$t" = mpi ]; then
      timeout 300 "${mpirun[@]}" -n "$ranks" "$daf" run "$data/ring_pipeline.yaml" \
        --events "$data/ring_events.jsonl" --location input=/data \
        --location "output=$work/$t$ranks/out" --dump "$work/$t$ranks.json" > "$work/$t$ranks.log" 2>&1
    else
      timeout 300 "$daf" run "$data/ring_pipeline.yaml" --slices "$slices" \
        --events "$data/ring_events.jsonl" --location input=/data \
        --location "output=$work/$t$ranks/out" --dump "$work/$t$ranks.json" > "$work/$t$ranks.log" 2>&1
    fi
    rc=$?
    set -e
    # The pipeline fails one visit on purpose: exit status 3, report written.
    if [ "$rc" -ne 3 ]; then
      echo "$t with $ranks ranks: exit status $rc (expected 3)"; cat "$work/$t$ranks.log"; exit 1
    fi
  done
  grep -q '"n_slices": '"$slices" "$work/mpi$ranks.json"
  diff -u "$work/threads$ranks.json" "$work/mpi$ranks.json"
  diff -u <(links "$work/threads$ranks/out") <(links "$work/mpi$ranks/out")
  n=$(links "$work/mpi$ranks/out" | wc -l)
  [ "$n" -eq $((4 * slices)) ] || { echo "expected $((4 * slices)) links, found $n"; exit 1; }
  echo "ok: $ranks ranks under mpirun == $slices thread slices ($n links, identical reports)"
done

for case in dying_slice hanging_slice; do
  start=$(date +%s)
  set +e
  timeout 120 "${mpirun[@]}" -n 3 "$daf" run "$data/$case.yaml" --events "$data/ring_events.jsonl" \
    > "$work/$case.log" 2>&1
  rc=$?
  set -e
  took=$(( $(date +%s) - start ))
  if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
    echo "$case: exit status $rc after ${took}s (expected an error, not success or a hang)"
    cat "$work/$case.log"; exit 1
  fi
  echo "ok: $case ended the run with status $rc after ${took}s"
done

# pex_harness's examples under mpirun: the ring, focalplane (syncslices, 17
# ranks) and sliceleaders topologies, EventStage and the exit event, and a
# slice that is killed, aborts, exits or hangs (partial report, non-zero
# exit, no hang). The test binary launches
# `mpirun --allow-run-as-root --oversubscribe -n N` on itself per scenario.
cargo test -p daf-cli --features mpi --test mpi_pex

# Per-stage harness overhead over MPI (4 slices = 5 ranks), as a bench row.
"${mpirun[@]}" -n 5 "$daf" bench harness --mpi-only
