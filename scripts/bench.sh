#!/usr/bin/env bash
# make bench: run every Go benchmark once (each one samples internally and
# reports medians, p99s and ratios measured side by side), then write
# dist/bench/report.md from the reported metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist/bench
mkdir -p "$out"
pattern=${BENCH:-.}
go test -run '^$' -bench "$pattern" -benchtime 1x -count 1 -timeout 60m ./... 2>&1 | tee "$out/raw.txt"
{
  echo "# Benchmark report"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ) · $(nproc) cores · $(go version | cut -d' ' -f3)"
  echo
  echo "Medians and ratios are measured side by side in one run (see each benchmark's doc)."
  echo
  echo "| benchmark | metric | value |"
  echo "|---|---|---|"
  awk '/^Benchmark/ { name=$1; sub(/-[0-9]+$/, "", name); for (i=3; i<NF; i+=2) if ($(i+1) != "ns/op") printf "| %s | %s | %s |\n", name, $(i+1), $i }' "$out/raw.txt"
} > "$out/report.md"
echo
cat "$out/report.md"
