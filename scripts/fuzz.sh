#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, one after
# another, on one core at the lowest priority, and prints a summary line per
# target: executions, coverage, corpus size, and whether it crashed.
#
#   scripts/fuzz.sh SECONDS [TARGET...]
#
# Builds with cargo-fuzz (`cargo install cargo-fuzz --locked`). On a stable
# toolchain it sets RUSTC_BOOTSTRAP=1, which lets stable rustc take the
# sanitizer flags cargo-fuzz passes. Seeds come from real encodings
# (fuzz/src/seeds.rs); the corpus grows in fuzz/corpus/TARGET, crashes land
# in fuzz/artifacts/TARGET, logs in fuzz/logs/TARGET.log (none committed).
# Exits 1 if any target crashed; reproduce with
#   cd fuzz && cargo fuzz run TARGET artifacts/TARGET/crash-…
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
export CARGO_INCREMENTAL=0
if ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list | grep -vx seeds)
fi

# Always the same flags, so that the build is reused from run to run.
nice -n 19 cargo fuzz build
bin=target/$(rustc -vV | sed -n 's/^host: //p')/release
"$bin/seeds" corpus
mkdir -p logs

failed=0
for target in "${targets[@]}"; do
    mkdir -p "artifacts/$target"
    log="logs/$target.log"
    status=ok
    # -rss_limit_mb keeps a runaway allocation a finding, not an OOM kill.
    if ! nice -n 19 "$bin/$target" "corpus/$target" \
        -artifact_prefix="artifacts/$target/" \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        status=CRASH
        failed=1
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -oE '(#[0-9]+|DONE).*cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1 |
        grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' || echo "cov: ?")
    printf '%-14s %-5s %ss %12s execs  %s\n' "$target" "$status" "$seconds" "$execs" "$cov"
    if [ "$status" = CRASH ]; then
        grep -m3 -E 'panicked|ERROR: libFuzzer|SUMMARY' "$log" | sed 's/^/    /' || true
        ls "artifacts/$target" | sed 's/^/    /'
    fi
done
exit "$failed"
