#!/usr/bin/env bash
# `cargo package` dry runs of every published crate, in dependency order
# (daf-base → daf-storages → daf-formatters → daf-mappers → daf-butler →
# daf-harness → daf → daf-cli; daf-python is `publish = false`). The crates depend on
# each other by path and version, and none is on crates.io yet: packaging
# them one by one (`-p CRATE`) fails on the first dependent, because its
# dependency is looked up in the crates.io index. `cargo package --workspace`
# packages them together, resolving each against the ones packaged before it
# (a local overlay registry) — offline, from the index cache the build
# filled. Each .crate is then checked: it holds Cargo.toml, README.md and
# src/lib.rs, and its manifest carries the inherited metadata.
set -euo pipefail
cd "$(dirname "$0")/../.."
order=(daf-base daf-storages daf-formatters daf-mappers daf-butler daf-harness daf daf-cli)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
args=(--no-verify --allow-dirty --workspace --exclude daf-python)
cargo package "${args[@]}" --offline 2>&1 | grep -E '^ *(Packaging|Packaged|error|warning)' \
  || cargo package "${args[@]}"
fail=0
for c in "${order[@]}"; do
  f="target/package/$c-$version.crate"
  [ -f "$f" ] || { echo "30-package: $f not made"; fail=1; continue; }
  list=$(tar tzf "$f")
  for want in Cargo.toml README.md src/lib.rs; do
    grep -qx "$c-$version/$want" <<<"$list" || { echo "30-package: $c lacks $want"; fail=1; }
  done
  manifest=$(tar xzf "$f" -O "$c-$version/Cargo.toml")
  for key in description license repository readme keywords categories rust-version; do
    grep -q "^$key = " <<<"$manifest" || { echo "30-package: $c has no $key"; fail=1; }
  done
  echo "30-package: $c $version: $(wc -l <<<"$list") files, $(du -k "$f" | cut -f1) KiB"
done
exit "$fail"
