# scripts/lib/go-cache.sh — sourced, not run. Builds a reference tool from Go
# modules once and caches the binary outside the repository:
#
#   source "$root/scripts/lib/go-cache.sh"
#   build_my_tool() { ... go build -o "$1" ...; }    # $1: where to write it
#   bin="$(go_cache_build "$dir" my-tool "$version" build_my_tool)"
#
# The binary is "$dir/<name>". It is reused while the key it was built with
# (the given version plus `go version`, kept in "$dir/.build-key") matches;
# otherwise it is rebuilt. One build at a time per directory, even with many
# processes asking at once (flock on "$dir.lock"); the build writes a
# temporary file that replaces the binary only when it succeeded. The build
# function's output goes to stderr; stdout carries only the binary's path.
# Build time is reported on stderr ("built <name> in Ns").
#
# go_cache_path DIR NAME VERSION prints the path only when a matching build
# is cached (exit 1 otherwise) and never builds; without `go` installed it
# accepts any cached build of that version.

go_cache_key() {
    local version="$1" gov
    gov="$(go env GOVERSION 2>/dev/null || true)"
    echo "$version ${gov:-unknown-go}"
}

go_cache_path() {
    local dir="$1" name="$2" version="$3" bin key
    bin="$dir/$name"
    [[ -x "$bin" && -f "$dir/.build-key" ]] || return 1
    if command -v go >/dev/null 2>&1; then
        key="$(go_cache_key "$version")"
        [[ "$(cat "$dir/.build-key")" == "$key" ]] || return 1
    else
        [[ "$(cut -d' ' -f1 "$dir/.build-key")" == "$version" ]] || return 1
    fi
    echo "$bin"
}

go_cache_build() {
    local dir="$1" name="$2" version="$3" build_fn="$4" key start tmp
    if go_cache_path "$dir" "$name" "$version"; then
        return 0
    fi
    if ! command -v go >/dev/null 2>&1; then
        echo "go is not installed (needed to build $name $version)" >&2
        return 1
    fi
    mkdir -p "$dir"
    key="$(go_cache_key "$version")"
    (
        exec 9>"$dir.lock"
        if ! flock -n 9; then
            echo "another process is building $name into $dir; waiting..." >&2
            flock 9
        fi
        # The other process may have built it meanwhile.
        if go_cache_path "$dir" "$name" "$version" >/dev/null; then
            exit 0
        fi
        echo "building $name $version ($key) into $dir ..." >&2
        start=$SECONDS
        tmp="$dir/.$name.tmp.$$"
        rm -f "$tmp"
        if ! "$build_fn" "$tmp" >&2; then
            rm -f "$tmp"
            echo "building $name $version failed" >&2
            exit 1
        fi
        mv -f "$tmp" "$dir/$name"
        echo "$key" >"$dir/.build-key"
        echo "built $name $version in $((SECONDS - start))s" >&2
    ) || return 1
    echo "$dir/$name"
}
