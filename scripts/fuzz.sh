#!/usr/bin/env bash
# Run every cargo-fuzz target in fuzz/ for SECONDS each (default 60); fail on a crash.
#
#   scripts/fuzz.sh [SECONDS]
#
# Needs the nightly toolchain (libFuzzer and the sanitizers); installs cargo-fuzz when
# it is missing. The seed corpus in fuzz/corpus/<target>/ is read, never written: the
# inputs a run finds go to a scratch directory, and a crashing input to
# fuzz/artifacts/<target>/ (reproduce it with `cargo +nightly fuzz run <target> FILE`
# from fuzz/).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
case "$seconds" in
    ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "the nightly toolchain is needed: rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

cd fuzz
for target in $(cargo +nightly fuzz list); do
    echo "== fuzz $target for ${seconds}s"
    mkdir -p "$scratch/$target"
    # The first corpus directory is where new inputs are written; the seeds stay as they are.
    cargo +nightly fuzz run "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
echo "== fuzzing passed: no crash in ${seconds}s per target"
