# scripts/lib/release-sluice.sh: the sluice binary a benchmark measures.
# `release_sluice ROOT` prints $SLUICE_BIN (resolved) when set; otherwise
# ROOT/target/release/sluice, built first when missing or older than the
# sources (Rust files, manifests, build scripts, the symbol order list).
# Used by bench/*/run.

release_sluice() {
    local root="$1" bin
    if [[ -n "${SLUICE_BIN:-}" ]]; then
        realpath "$SLUICE_BIN"
        return
    fi
    bin="$root/target/release/sluice"
    if [[ ! -x "$bin" ]] || [[ -n "$(find "$root/Cargo.toml" "$root/Cargo.lock" "$root/crates" \
        \( -path '*/src/*' -o -name Cargo.toml -o -name Cargo.lock -o -name build.rs -o -name symbol-order.txt \) -type f \
        -newer "$bin" -print -quit)" ]]; then
        echo "building target/release/sluice (missing or older than the sources) ..." >&2
        (cd "$root" && cargo build --release -p sluice --bin sluice >&2)
    fi
    echo "$bin"
}
