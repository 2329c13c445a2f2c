#!/usr/bin/env bash
# Run every Go fuzz target in the module, one after another, each for
# $FUZZTIME (default 30s). `make fuzz` runs it as is; `make test` runs it with a
# short FUZZTIME so the targets stay exercised beyond their seed corpus.
# Usage: scripts/fuzz.sh [PACKAGE...]   (default: ./...)
# Env:   FUZZTIME=10s  GO=go
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)

# Packages that hold a fuzz target; `go test -fuzz` accepts one package and
# one target per run.
mapfile -t dirs < <(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' \
  $(for p in "${pkgs[@]}"; do "$GO" list -f '{{.Dir}}' "$p"; done) | xargs -r -n1 dirname | sort -u)

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
for dir in "${dirs[@]}"; do
  mapfile -t targets < <(grep -hoE '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //' | sort -u)
  for target in "${targets[@]}"; do
    echo "fuzz: ${dir#$PWD/} $target ($FUZZTIME)"
    ok=0
    for attempt in 1 2; do
      if "$GO" test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$dir" >"$log" 2>&1; then
        ok=1
        break
      fi
      # Go's fuzzer can end a short run with "context deadline exceeded" and
      # no failing input: an input was in flight at the deadline. That is not
      # a finding, so run once more; a real crasher is saved and fails again.
      if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written to' "$log"; then
        echo "fuzz: $target ended at its deadline mid-input; running it again"
        continue
      fi
      break
    done
    if [ "$ok" != 1 ]; then
      cat "$log"
      echo "fuzz: $target FAILED (the failing input is saved under $dir/testdata/fuzz/$target)"
      status=1
    fi
  done
done
exit $status
