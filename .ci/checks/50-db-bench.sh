#!/usr/bin/env bash
# Runs `daf bench db --quick` against the CI database servers (started and
# exported by .ci/run as DAF_TEST_POSTGRES_URL / DAF_TEST_MYSQL_URL): proves
# the bulk-load paths (PostgreSQL COPY, psql \copy reference, MariaDB
# multi-row REPLACE) work end to end and prints the ratio table. Ratios are
# reported, not enforced (CI machines are shared and noisy).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${DAF_TEST_POSTGRES_URL:?set by .ci/run}"
: "${DAF_TEST_MYSQL_URL:?set by .ci/run}"
cargo run --release -q -p daf-cli --bin daf -- bench db --quick
