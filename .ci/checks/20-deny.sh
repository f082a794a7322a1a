#!/usr/bin/env bash
# cargo deny (deny.toml): licences, banned/duplicate crates and sources must
# pass. Advisories need the RustSec database from github.com: they are
# checked when it can be fetched, and the log says plainly when it cannot.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v cargo-deny >/dev/null 2>&1; then
  echo "installing cargo-deny from crates.io (about 10 minutes on 2 cores)"
  cargo install --locked --quiet cargo-deny
fi
cargo deny --version
cargo deny --offline check bans licenses sources
if timeout 120 cargo deny check advisories; then
  echo "cargo deny: advisories checked"
else
  if timeout 10 git ls-remote https://github.com/RustSec/advisory-db HEAD >/dev/null 2>&1; then
    echo "cargo deny: advisories FAILED"; exit 1
  fi
  echo "cargo deny: advisories NOT checked: the RustSec database (github.com) is unreachable from this machine"
fi
