#!/usr/bin/env bash
# The harness's IO stages (butler method) under real mpirun on a repository
# whose bytes are in S3 (the SeaweedFS of .ci/setup/20-seaweedfs.sh) and whose
# registry is in PostgreSQL: three ranks (two slices) put and get through one
# bucket and one registry; nothing is lost, `daf verify` is clean and
# `daf provenance` answers (cli/tests/s3_harness.rs, run with the MPI binary).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v mpirun >/dev/null || { echo "mpirun not installed (apt-get install openmpi-bin libopenmpi-dev)"; exit 1; }
[ -n "${DAF_TEST_S3_ENDPOINT:-}" ] || { echo "DAF_TEST_S3_ENDPOINT not set (source .ci/setup/20-seaweedfs.sh)"; exit 1; }
# `testing`: the small stages the pipelines under tests/data/harness use
# (daf.harness.ShareParallel, FailParallel, ...); a user's build leaves them out.
cargo build --release -p daf-cli --features mpi,testing --bin daf -q
DAF_S3_MPI_DAF="$PWD/target/release/daf" timeout 600 \
  cargo test -q -p daf-cli --test s3_harness -- --exact io_stages_under_mpirun_write_and_read_an_s3_repository
echo "ok: IO stages under mpirun on S3 + PostgreSQL"
