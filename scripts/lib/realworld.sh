# scripts/lib/realworld.sh: public repositories unpacked for the real-world
# runs (scripts/realworld-kustomize, scripts/realworld-helm). Third-party
# trees never go into this repository: they are unpacked from git
# directories (bare or not; `owner+name/repo` paths, the layout of `fetch`,
# are named `owner+name`) into a cache directory, once.
#
#   realworld_unpack TOOL CACHE GIT_DIR...
#
# TOOL names the caller in messages. A repository already in CACHE is left
# as it is. A partial snapshot (its largest blobs absent) is written file by
# file, and says how many are missing.
realworld_unpack() {
    local tool="$1" cache="$2" g name gd missing meta path mode sha
    shift 2
    mkdir -p "$cache"
    for g in "$@"; do
        g="${g%/}"
        name="$(basename "$g")"
        [[ "$name" == repo || "$name" == .git ]] && name="$(basename "$(dirname "$g")")"
        name="${name%.git}"
        if [[ ! -d "$g" ]]; then
            echo "$tool: $g absent, skipped"
            continue
        fi
        if [[ -d "$cache/$name" ]]; then
            continue
        fi
        gd="$(git -C "$g" rev-parse --absolute-git-dir 2>/dev/null || echo "$g")"
        rm -rf "$cache/$name.tmp"
        mkdir -p "$cache/$name.tmp"
        if git --git-dir="$gd" archive HEAD 2>/dev/null | tar -x -C "$cache/$name.tmp" 2>/dev/null; then
            mv "$cache/$name.tmp" "$cache/$name"
            echo "unpacked $name"
        elif git --git-dir="$gd" rev-parse -q --verify 'HEAD^{tree}' >/dev/null; then
            rm -rf "$cache/$name.tmp"
            mkdir -p "$cache/$name.tmp"
            missing=0
            while IFS=$'\t' read -r -d '' meta path; do
                read -r mode _ sha <<<"$meta"
                [[ "$mode" == 160000 ]] && continue
                mkdir -p "$cache/$name.tmp/$(dirname "$path")"
                if [[ "$mode" == 120000 ]]; then
                    ln -s "$(git --git-dir="$gd" cat-file blob "$sha" 2>/dev/null)" "$cache/$name.tmp/$path" 2>/dev/null || missing=$((missing + 1))
                elif ! git --git-dir="$gd" cat-file blob "$sha" >"$cache/$name.tmp/$path" 2>/dev/null; then
                    rm -f "$cache/$name.tmp/$path"
                    missing=$((missing + 1))
                fi
            done < <(git --git-dir="$gd" ls-tree -r -z HEAD)
            mv "$cache/$name.tmp" "$cache/$name"
            echo "unpacked $name ($missing files absent from the snapshot)"
        else
            rm -rf "$cache/$name.tmp"
            echo "$tool: could not unpack $g, skipped"
        fi
    done
}
