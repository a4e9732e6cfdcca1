#!/usr/bin/env bash
# Benchmark `sluice build` against Go kustomize on a generated tree.
#
#   bench/kustomize/run.sh [N]     # N resources (default 1000; Go kustomize is slow beyond)
#
# Go kustomize (sigs.k8s.io/kustomize/kustomize/v5, pinned below) is built
# once from the Go module proxy into ~/.cache/sluice/kustomize-<version>/.
# Prints wall-clock times and whether the two outputs are identical.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
N="${1:-1000}"
KVER="${KUSTOMIZE_VERSION:-v5.8.1}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/sluice/kustomize-$KVER"
KUSTOMIZE="$CACHE/kustomize"
SLUICE="${SLUICE_BIN:-$ROOT/target/release/sluice}"

if [[ ! -x "$KUSTOMIZE" ]]; then
    echo "building kustomize $KVER into $CACHE ..." >&2
    mkdir -p "$CACHE"
    GOBIN="$CACHE" go install "sigs.k8s.io/kustomize/kustomize/v5@$KVER" >&2
fi
if [[ ! -x "$SLUICE" ]]; then
    (cd "$ROOT" && cargo build --release -p sluice >&2)
fi

TREE="$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench.XXXXXX")"
trap 'rm -rf "$TREE"' EXIT
python3 "$ROOT/bench/kustomize/gen-tree.py" "$TREE" "$N"

time_it() {
    local start end
    start=$(date +%s.%N)
    "$@" >"$TREE/out.$(basename "$1")" 2>"$TREE/err.$(basename "$1")" || { cat "$TREE/err.$(basename "$1")" >&2; return 1; }
    end=$(date +%s.%N)
    python3 -c "print('%.3f' % ($end - $start))"
}

k=$(time_it "$KUSTOMIZE" build "$TREE/overlay")
s=$(time_it "$SLUICE" build "$TREE/overlay")
echo "resources: $N"
echo "kustomize $KVER: ${k}s"
echo "sluice build:    ${s}s"
if cmp -s "$TREE/out.kustomize" "$TREE/out.sluice"; then
    echo "outputs: identical"
else
    echo "outputs: DIFFER"
    diff "$TREE/out.kustomize" "$TREE/out.sluice" | head -40
    exit 1
fi
