# scripts/lib/helm-corpus.sh: the Helm corpus (../shared/conformance/helm)
# prepared for a run. `helm_corpus_prepare CORPUS WORK MIRRORS` fills
# WORK/charts (links, or copies with missing vendored dependencies restored
# from a git mirror) and WORK/cases (links to the cases that can run), and
# sets `skipped_charts` to the charts that could not be completed. Used by
# scripts/conformance-helm and bench/helm/run.

# The vendored dependencies .corpus-source.json lists that are not under
# charts/: "name mirror path commit" per line.
_helm_corpus_missing='
import json, os, sys
d = sys.argv[1]
try:
    src = json.load(open(os.path.join(d, ".corpus-source.json")))
except OSError:
    sys.exit(0)
for dep in src.get("deps") or []:
    if not os.path.isdir(os.path.join(d, "charts", dep["name"])):
        print(dep["name"], dep["mirror"], dep["path"], dep["commit"])
'

helm_corpus_prepare() {
    local corpus="$1" work="$2" mirrors="$3"
    local dir name missing ok dep mirror path commit git_dir strip case chart
    # A filled WORK would have `ln -s` and `cp -r` write through its links
    # into the corpus itself: callers give a fresh directory.
    if [[ -e "$work/charts" || -e "$work/cases" ]]; then
        echo "helm corpus: $work already holds a prepared corpus; give an empty directory" >&2
        return 1
    fi
    mkdir -p "$work/charts" "$work/cases"
    skipped_charts=()
    for dir in "$corpus"/charts/*/; do
        name="$(basename "$dir")"
        missing="$(python3 -c "$_helm_corpus_missing" "$dir")"
        if [[ -z "$missing" ]]; then
            ln -s "$dir" "$work/charts/$name"
            continue
        fi
        cp -r "$dir" "$work/charts/$name"
        chmod -R u+w "$work/charts/$name"
        ok=1
        while read -r dep mirror path commit; do
            git_dir="$mirrors/$mirror/repo"
            if [[ -d "$git_dir" ]] && git -C "$git_dir" cat-file -e "$commit^{commit}" 2>/dev/null; then
                mkdir -p "$work/charts/$name/charts/$dep"
                strip=$(($(tr -cd / <<<"$path" | wc -c) + 1))
                git -C "$git_dir" archive "$commit" "$path" |
                    tar -x -C "$work/charts/$name/charts/$dep" --strip-components="$strip"
            else
                echo "helm corpus: $name lacks its vendored dependency $dep ($mirror $path @ ${commit:0:12}) and no mirror is at $git_dir"
                ok=0
            fi
        done <<<"$missing"
        if [[ $ok == 0 ]]; then
            skipped_charts+=("$name")
        fi
    done
    for case in "$corpus"/cases/*/; do
        chart="$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["chart"])' "$case/case.yaml")"
        if [[ " ${skipped_charts[*]-} " == *" $chart "* ]]; then
            echo "helm corpus: SKIPPED $(basename "$case") (chart $chart incomplete, see above)"
            continue
        fi
        ln -s "$case" "$work/cases/$(basename "$case")"
    done
}
