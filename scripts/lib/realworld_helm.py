#!/usr/bin/env python3
"""Every chart of a set of unpacked public repositories, rendered by the real
`helm template` and by `sluice helm template`, compared byte for byte
(scripts/realworld-helm runs this).

A chart is a directory with a Chart.yaml that is not a dependency vendored
under another chart's charts/. Its cases: its defaults, and each values file
of its ci/ directory (the files chart-testing installs it with). Helm's
`template` renders only what a chart vendors, so a dependency missing from
charts/ is completed in a copy of the chart, as `helm dependency build` would
complete it: a `file://` repository from that path, any other from a chart of
the same name among the unpacked repositories (its own repository first).
The copy is the input of both tools; a chart whose dependencies cannot all be
found is reported as skipped, with the first missing one.

Each case is classified:
  exact        the same bytes on stdout
  content      both render, the outputs differ
  error        Helm renders it, sluice fails
  sluice-only  sluice renders what Helm refuses
  both-fail    neither renders it, and sluice's error is Helm's (stderr byte
               for byte)
  fail-differs neither renders it, with different errors (the texts and
               their diff are kept)
  masked       Helm's own output differs between two runs (randAlphaNum,
               genCA, now ...) on some lines, and sluice's output is Helm's
               on every other line (the same number of lines)
  random       as masked, but the outputs differ elsewhere too or Helm's two
               runs differ in their number of lines: not comparable
Helm's results are kept in the cache (the unpacked trees do not change), so
a rerun only runs sluice.
"""

import argparse
import concurrent.futures
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time

import yaml

RELEASE = "realworld"
NAMESPACE = "realworld"
KUBE_VERSION = "1.36.3"
CLASSES = ["exact", "masked", "content", "error", "sluice-only", "both-fail", "fail-differs", "random", "skipped"]


def read_chart_yaml(d):
    try:
        with open(os.path.join(d, "Chart.yaml"), encoding="utf-8") as f:
            meta = yaml.safe_load(f)
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    return meta if isinstance(meta, dict) else None


def find_charts(cache):
    """(repository, chart directory, metadata) for every chart, sorted."""
    found = []
    for repo in sorted(os.listdir(cache)):
        top = os.path.join(cache, repo)
        if repo.startswith(".") or repo.endswith(".tmp") or not os.path.isdir(top):
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d != ".git")
            if "Chart.yaml" not in filenames:
                continue
            meta = read_chart_yaml(dirpath)
            if meta is None or not meta.get("name"):
                continue
            found.append((repo, dirpath, meta))
    charts = {d for _, d, _ in found}

    def vendored(d):
        parent = os.path.dirname(d)
        return os.path.basename(parent) == "charts" and os.path.dirname(parent) in charts

    return [c for c in found if not vendored(c[1])], found


def dependencies(d):
    """The dependencies a chart declares: Chart.yaml's, or a v1 chart's
    requirements.yaml."""
    deps = (read_chart_yaml(d) or {}).get("dependencies")
    if not deps:
        try:
            with open(os.path.join(d, "requirements.yaml"), encoding="utf-8") as f:
                deps = (yaml.safe_load(f) or {}).get("dependencies")
        except (OSError, yaml.YAMLError, UnicodeDecodeError, AttributeError):
            deps = None
    return [x for x in deps or [] if isinstance(x, dict) and x.get("name")]


def vendored_names(d):
    """The names of the charts a chart vendors under charts/ (by their own
    Chart.yaml, as Helm matches them; archives by their file name)."""
    names = set()
    cdir = os.path.join(d, "charts")
    if not os.path.isdir(cdir):
        return names
    for e in os.listdir(cdir):
        p = os.path.join(cdir, e)
        if os.path.isdir(p):
            meta = read_chart_yaml(p)
            if meta and meta.get("name"):
                names.add(meta["name"])
        elif e.endswith(".tgz"):
            # NAME-VERSION.tgz: every prefix before a '-' could be the name.
            stem = e[: -len(".tgz")]
            parts = stem.split("-")
            for i in range(1, len(parts)):
                names.add("-".join(parts[:i]))
    return names


def complete(d, repo, index, used, depth=0):
    """Vendors the dependencies `d` lacks into its charts/ (recursively),
    adding each chart directory taken to `used`; the first that cannot be
    found, or None."""
    if depth > 8:
        return "dependencies nested too deep"
    have = vendored_names(d)
    for dep in dependencies(d):
        name = dep["name"]
        if name in have:
            continue
        src, src_repo = None, repo
        repo_url = str(dep.get("repository") or "")
        if repo_url.startswith("file://"):
            p = os.path.normpath(os.path.join(d, repo_url[len("file://"):]))
            if os.path.isfile(os.path.join(p, "Chart.yaml")):
                src = p
        if src is None:
            # The same repository's chart of that name, else one of the same
            # owner's (k8s-at-home's charts take `common` from its
            # library-charts, not bitnami's `common`), else any.
            candidates = index.get(name, [])
            owner = repo.split("+")[0]
            same = [c for c in candidates if c[0] == repo] or [c for c in candidates if c[0].split("+")[0] == owner]
            if same or candidates:
                src_repo, src = (same or candidates)[0]
        if src is None:
            return f"dependency {name} ({repo_url or 'no repository'}) not found"
        target = os.path.join(d, "charts", name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copytree(src, target, symlinks=False, ignore=shutil.ignore_patterns(".git"))
        used.append((name, src))
        have.add(name)
        # Its own dependencies are looked for beside it first (bitnami's
        # postgresql, taken by a k8s-at-home chart, wants bitnami's common).
        missing = complete(target, src_repo, index, used, depth + 1)
        if missing:
            return f"{name}: {missing}"
    return None


def cases_of(d):
    """(case name, values file or None) for a chart."""
    out = [("defaults", None)]
    ci = os.path.join(d, "ci")
    if os.path.isdir(ci):
        for f in sorted(os.listdir(ci)):
            if f.endswith((".yaml", ".yml")) and os.path.isfile(os.path.join(ci, f)):
                out.append((f"ci/{f}", os.path.join(ci, f)))
    return out


def run(cmd, timeout):
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return 124, b"", f"timed out after {timeout} s".encode()


def args_for(chart, values):
    a = [
        "template", RELEASE, chart, "-n", NAMESPACE,
        "--kube-version", KUBE_VERSION, "--include-crds",
    ]
    if values:
        a += ["-f", values]
    return a


def helm_result(helm, chart, values, key, store, timeout):
    """Helm's (rc, stdout, stderr, second stdout or None when the two runs
    agree), cached under `store`."""
    base = os.path.join(store, key)
    if os.path.exists(base + ".json"):
        with open(base + ".json", encoding="utf-8") as f:
            meta = json.load(f)
        # Version 2 ran the second time at once, often in the same second as
        # the first: a random output's `now` lines were not seen to vary.
        if meta.get("v") == 3 or (meta.get("v") == 2 and not os.path.exists(base + ".out2")):
            with open(base + ".out", "rb") as f:
                out = f.read()
            with open(base + ".err", "rb") as f:
                err = f.read()
            out2 = None
            if os.path.exists(base + ".out2"):
                with open(base + ".out2", "rb") as f:
                    out2 = f.read()
            return meta["rc"], out, err, out2
    rc, out, err = run([helm] + args_for(chart, values), timeout)
    ended = time.time()
    out2 = None
    if rc == 0:
        _, second, _ = run([helm] + args_for(chart, values), timeout)
        if second != out:
            # A chart with random lines may also print the time (`now`, as
            # bitnami's argo-cd stamps its admin password): run it again in
            # a later second than the first run, so that those lines differ
            # too and are masked, as they will differ from sluice's run.
            time.sleep(max(0.0, math.floor(ended) + 1.05 - time.time()))
            _, second, _ = run([helm] + args_for(chart, values), timeout)
            out2 = second
    os.makedirs(store, exist_ok=True)
    with open(base + ".out", "wb") as f:
        f.write(out)
    with open(base + ".err", "wb") as f:
        f.write(err)
    if out2 is not None:
        with open(base + ".out2", "wb") as f:
            f.write(out2)
    elif os.path.exists(base + ".out2"):
        os.remove(base + ".out2")
    with open(base + ".json", "w", encoding="utf-8") as f:
        json.dump({"v": 3, "rc": rc}, f)
    return rc, out, err, out2


def same_but_random(first, second, sluice):
    """Whether `sluice` is Helm's output on every line on which Helm's two
    runs agree (`None` when the runs do not line up)."""
    a, b, s = first.split(b"\n"), second.split(b"\n"), sluice.split(b"\n")
    if len(a) != len(b):
        return None
    if len(s) != len(a):
        return False
    return all(x != y or x == z for x, y, z in zip(a, b, s))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--helm", required=True)
    ap.add_argument("--helm-version", required=True)
    ap.add_argument("--sluice", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=60)
    ap.add_argument("--only", default="", help="only charts whose path contains one of these (comma-separated)")
    a = ap.parse_args()

    charts, every = find_charts(a.cache)
    index = {}
    for repo, d, meta in every:
        index.setdefault(meta["name"], []).append((repo, d))
    if a.only:
        wanted = [w for w in a.only.split(",") if w]
        charts = [c for c in charts if any(w in c[1] for w in wanted)]
    work = os.path.join(a.out, "charts")
    store = os.path.join(a.cache, f".helm-{a.helm_version}")
    os.makedirs(work, exist_ok=True)

    jobs = []
    results = []
    for repo, d, _meta in charts:
        rel = os.path.relpath(d, a.cache)
        key = rel.replace("/", "__")
        chart = d
        used = []
        if any(x["name"] not in vendored_names(d) for x in dependencies(d)):
            chart = os.path.join(work, key)
            if os.path.exists(chart):
                shutil.rmtree(chart)
            shutil.copytree(d, chart, symlinks=False, ignore=shutil.ignore_patterns(".git"))
            missing = complete(chart, repo, index, used)
            if missing:
                results.append(("skipped", rel, "defaults", missing))
                continue
        for case, values in cases_of(d):
            if values:
                values = os.path.join(chart, os.path.relpath(values, d))
            jobs.append((rel, key, chart, case, values, used))

    def one(job):
        rel, key, chart, case, values, used = job
        # The cached Helm result is keyed by the case and the chart's inputs:
        # the tree as unpacked and the dependencies it was completed with.
        ckey = key + "__" + case.replace("/", "__")
        taken = [
            f"{n}={os.path.relpath(src, a.cache) if os.path.abspath(src).startswith(os.path.abspath(a.cache) + os.sep) else 'local'}"
            for n, src in used
        ]
        h = hashlib.sha256("\n".join([ckey] + taken).encode()).hexdigest()[:12]
        hrc, hout, herr, hout2 = helm_result(a.helm, chart, values, f"{ckey[:80]}-{h}", store, a.timeout)
        src, sout, serr = run([a.sluice, "helm"] + args_for(chart, values), a.timeout)
        detail = ""
        if hrc != 0 and src != 0:
            # Both refuse it: with Helm's words (stderr byte for byte), or not.
            cls = "both-fail" if herr == serr else "fail-differs"
        elif hrc != 0:
            cls = "sluice-only"
            detail = herr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            detail = "helm: " + detail[0]
        elif src != 0:
            cls = "error"
            detail = "sluice: " + (serr.decode(errors="replace").strip().splitlines()[-1:] or [""])[0]
        elif hout2 is not None:
            masked = same_but_random(hout, hout2, sout)
            cls = {None: "random", True: "masked", False: "content"}[masked]
        elif hout == sout:
            cls = "exact"
        else:
            cls = "content"
        if cls in ("content", "error", "sluice-only", "fail-differs"):
            base = os.path.join(a.out, ckey)
            for suffix, data in ((".helm", hout), (".helm.err", herr), (".sluice", sout), (".sluice.err", serr)):
                with open(base + suffix, "wb") as f:
                    f.write(data)
            if cls in ("content", "fail-differs"):
                ext = ".err" if cls == "fail-differs" else ""
                diff = subprocess.run(
                    ["diff", "-u", base + ".helm" + ext, base + ".sluice" + ext], capture_output=True
                ).stdout
                with open(base + ".diff", "wb") as f:
                    f.write(diff)
                detail = f"{len(diff.splitlines())} diff lines: {base}.diff"
        return (cls, rel, case, detail)

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        for r in ex.map(one, jobs):
            results.append(r)
            if r[0] not in ("exact", "masked", "both-fail"):
                print(f"{r[0]:<12} {r[1]} [{r[2]}] {r[3]}", flush=True)

    counts = {c: 0 for c in CLASSES}
    with open(os.path.join(a.out, "results.txt"), "w", encoding="utf-8") as f:
        for cls, rel, case, detail in sorted(results, key=lambda r: (r[1], r[2])):
            counts[cls] += 1
            f.write(f"{cls}\t{rel}\t{case}\t{detail}\n")
    repos = len({c[0] for c in charts})
    print(f"realworld-helm: {len(results)} cases of {len(charts)} charts in {repos} repositories")
    for c in CLASSES:
        print(f"  {c:<12} {counts[c]}")
    compared = sum(counts[c] for c in ("exact", "masked", "content", "error", "sluice-only"))
    same = counts["exact"] + counts["masked"]
    print(f"  identical: {same} of {compared} comparable cases (masked: random lines aside)")
    failed = counts["both-fail"] + counts["fail-differs"]
    print(f"  refused by both: {failed}, with Helm's error text byte for byte: {counts['both-fail']}")
    print(f"details: {a.out}/results.txt (outputs and diffs kept for every case that differs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
