#!/usr/bin/env python3
"""Side by side: Flux's controllers against `sluice controller`.

One generated homelab-shaped Flux repository (repo.py) served over smart HTTP by
`git http-backend` (with 30 HelmReleases whose charts a local registry serves, and an Alert to a
local webhook, when the Helm corpus is there); for each stack in turn, a fresh local control plane (scripts/testenv,
with the API server's audit log on), Flux's CRDs, the stack's processes, and then:

  1. sync      a GitRepository and the entry-point Kustomization `flux-system` are created;
               the time until every Kustomization is Ready at the first commit, and for each
               one how long after its dependency it became Ready (dependency unblock);
  2. leaf      a commit changing one leaf application is published and the GitRepository
               asked to reconcile (`reconcile.fluxcd.io/requestedAt`, what a webhook
               Receiver or `flux reconcile source git` does): time to the leaf Ready at the
               new revision, and to every Kustomization at it;
  3. steady    nothing changes for a while: requests and writes the stack makes while its
               Kustomizations and GitRepository reconcile on their intervals;
  4. restart   the API server is killed and started again while a new commit is published:
               the time from the API server being ready again to the leaf Ready at it.

Memory is the sum of the stack's processes' RSS sampled every 0.5 s (and the sum of their
own peaks); CPU from /proc; API requests from the audit log by user agent (the API server's
`apiserver_request_total` has no client label; its totals are reported too, for all clients).
See bench/vs-flux/README.md.

Only the Python standard library and PyYAML.
"""

import argparse
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ocirepository"))
from bench import Kube, Registry, free_port, log, wait_http  # noqa: E402

# bench/helmrelease's chart packing and release values (its module is named `bench` too).
_spec = importlib.util.spec_from_file_location(
    "bench_helmrelease", os.path.join(HERE, "..", "helmrelease", "bench.py"))
helmbench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helmbench)

sys.path.insert(1, HERE)
import measure  # noqa: E402
import repo as repogen  # noqa: E402
import yaml  # noqa: E402

NS = repogen.NAMESPACE
GIT_PATH = f"/apis/source.toolkit.fluxcd.io/v1/namespaces/{NS}/gitrepositories"
KS_NS_PATH = f"/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{NS}/kustomizations"
STACKS = ("flux", "flux-tuned", "sluice")
# Flux's own advice for many applications (fluxcd.io/flux/installation/configuration/
# vertical-scaling): more workers and a 5 s dependency requeue (source-, kustomize- and
# helm-controller; notification-controller keeps its defaults).
FLUX_TUNED = ["--concurrent=10", "--requeue-dependency=5s"]


def components(stack, args):
    """The processes of a stack (as the audit log names them)."""
    if stack == "sluice":
        return {"sluice"}
    out = {"source-controller", "kustomize-controller"}
    if args.helm_releases:
        # Helm's SDK inside helm-controller talks to the API server with a client of its own,
        # whose user agent is Go's default (`Go-http-client/…`): its applies and reads are
        # helm-controller's too. Nothing else in the test run says so (the control plane's
        # components say `sluice-testenv`, the harness `bench-vs-flux`).
        out |= {"helm-controller", "go-http-client", "notification-controller"}
    return out


def testenv(args, *argv):
    r = subprocess.run([args.testenv, *argv], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"scripts/testenv {' '.join(argv)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r


def start_stack(stack, args, kubeconfig, workdir):
    env = dict(os.environ, KUBECONFIG=kubeconfig, NO_COLOR="1", RUNTIME_NAMESPACE=NS,
               TMPDIR=workdir)
    storage = tempfile.mkdtemp(prefix="storage-", dir=workdir)
    sport = free_port()
    storage_flags = ["--storage-path", storage, "--storage-addr", f"127.0.0.1:{sport}",
                     "--storage-adv-addr", f"127.0.0.1:{sport}"]
    commands = {}
    helm = bool(args.helm_releases)
    if stack == "sluice":
        commands["sluice"] = [args.sluice, "controller", *storage_flags]
        if helm:
            commands["sluice"] += ["--helmrelease", "--notification",
                                   f"--notification-events-addr=127.0.0.1:{free_port()}",
                                   f"--receiver-addr=127.0.0.1:{free_port()}"]
    else:
        tuned = FLUX_TUNED if stack == "flux-tuned" else []
        # As Flux installs them: every controller posts its events to notification-controller.
        events = []
        if helm:
            eport = free_port()
            events = [f"--events-addr=http://127.0.0.1:{eport}/"]
            commands["notification-controller"] = [
                args.notification_controller, "--enable-leader-election=false",
                f"--events-addr=127.0.0.1:{eport}", f"--receiverAddr=127.0.0.1:{free_port()}"]
        commands["source-controller"] = [args.source_controller, "--enable-leader-election=false",
                                         *storage_flags, *tuned, *events]
        commands["kustomize-controller"] = [args.kustomize_controller,
                                            "--enable-leader-election=false", *tuned, *events]
        if helm:
            commands["helm-controller"] = [args.helm_controller, "--enable-leader-election=false",
                                           *tuned, *events]
    procs, health = {}, {}
    for name, cmd in commands.items():
        hport, mport = free_port(), free_port()
        cmd = [*cmd, "--metrics-addr", f"127.0.0.1:{mport}", "--health-addr", f"127.0.0.1:{hport}"]
        logf = open(os.path.join(args.logs, f"{stack}-{name}.log"), "wb")
        procs[name] = subprocess.Popen(cmd, env=env, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
        logf.close()
        health[name] = hport
    for name, hport in health.items():
        wait_http(hport, "/readyz", procs[name], timeout=120)
    return procs


def stop_stack(procs):
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def request_reconcile(kube, token):
    kube.request("PATCH", f"{GIT_PATH}/flux-system",
                 {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}},
                 content_type="application/merge-patch+json")


def create_sync(kube, git_port):
    kube.request("POST", GIT_PATH, {
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "flux-system", "namespace": NS},
        "spec": {"interval": "1m", "url": f"http://127.0.0.1:{git_port}/bench.git",
                 "ref": {"branch": "main"}},
    })
    kube.request("POST", KS_NS_PATH, {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "flux-system", "namespace": NS},
        "spec": {"interval": "10m", "path": "./clusters/bench", "prune": True,
                 "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
    })


def quantiles(xs):
    if not xs:
        return {}
    xs = sorted(xs)
    return {"min": xs[0], "median": statistics.median(xs),
            "p90": xs[min(len(xs) - 1, int(0.9 * len(xs)))], "max": xs[-1]}


def unblock_latencies(watcher, parents, rev):
    out = []
    for child, parent in parents.items():
        c, p = watcher.ready_at(child, rev), watcher.ready_at(parent, rev)
        if c is not None and p is not None:
            out.append(c - p)
    return out


def start_latencies(requests, watcher, parents, rev):
    """For each dependant: from its dependency Ready at `rev` (the stack's status write) to
    the stack's first request
    for the dependant's Deployment (`<name>-web`) after it: the controller's own share of
    the unblock, without the apply and the health checks (which the cluster's speed
    decides, the same for both stacks). Also how many dependants were touched before
    their dependency was Ready (an ordering fault; meaningful on the first sync, when
    nothing exists yet)."""
    touches = measure.first_touches(requests, "deployments.apps", "-web")
    statuses = measure.first_touches(requests, "kustomizations/status.kustomize.toolkit.fluxcd.io", "")
    starts, early = [], 0
    for child, parent in parents.items():
        p = watcher.ready_at(parent, rev)
        ts = touches.get(child, [])
        if p is None or not ts:
            continue
        # The dependency became Ready when the stack wrote that status, a moment before
        # the harness's watch saw it: the last status write up to then.
        p = max([t for t in statuses.get(parent, []) if t <= p], default=p)
        if ts[0] < p:
            early += 1
        after = [t for t in ts if t >= p]
        if after:
            starts.append(after[0] - p)
    return starts, early


def statuses(kube):
    """(kind, namespace/name) -> status of every Kustomization and HelmRelease."""
    out = {}
    for kind, path in (("Kustomization", measure.KS_PATH), ("HelmRelease", measure.HR_PATH)):
        for o in kube.request("GET", path)["items"]:
            out[(kind, f"{o['metadata']['namespace']}/{o['metadata']['name']}")] = o.get("status") or {}
    return out


def status_changes(a, b):
    """What a no-change window changed in the objects' statuses: for each object whose status
    differs, the top-level fields that do (old and new, cut short), so a write the window
    should not have made says what it wrote."""
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key, {}), b.get(key, {})
        if x == y:
            continue
        fields = {f: [json.dumps(x.get(f))[:300], json.dumps(y.get(f))[:300]]
                  for f in sorted(set(x) | set(y)) if x.get(f) != y.get(f)}
        out.append({"kind": key[0], "object": key[1], "fields": fields})
    return out


def check_releases(kube, rg):
    """Every HelmRelease's Helm release is deployed, in Helm's own storage (a Secret per
    revision, `owner=helm`), at revision 1: nothing was installed twice or upgraded for
    nothing."""
    want = {(ns, name) for ns, name, _ in rg.helm_releases()}
    if not want:
        return
    got = {}
    for s in kube.request("GET", "/api/v1/secrets?labelSelector=owner%3Dhelm")["items"]:
        labels = s["metadata"].get("labels") or {}
        key = (s["metadata"]["namespace"], labels.get("name"))
        if key in want:
            got.setdefault(key, []).append((labels.get("version"), labels.get("status")))
    missing = sorted(want - set(got))
    if missing:
        raise RuntimeError(f"no Helm release for {len(missing)} HelmReleases, e.g. {missing[:3]}")
    bad = {k: v for k, v in got.items() if v != [("1", "deployed")]}
    if bad:
        raise RuntimeError(f"{len(bad)} Helm releases not at exactly revision 1 deployed, "
                           f"e.g. {list(bad.items())[:3]}")


def check_objects(kube, rg, leaf, mark):
    """What the stack applied is what the repository says: every Widget is there, the
    leaf's changed ConfigMap carries the new mark, every Helm release is deployed once."""
    widgets = kube.request("GET", f"/apis/{repogen.GROUP}/v1/widgets")["items"]
    want = 3 * sum(1 for n in rg.nodes if n[1] > 0)
    if len(widgets) != want:
        raise RuntimeError(f"{len(widgets)} Widgets in the cluster, {want} expected")
    team = next(n[3] for n in rg.nodes if n[0] == leaf)
    cm = kube.request("GET", f"/api/v1/namespaces/team-{team}/configmaps/{leaf}-settings-0")
    if cm["data"].get("mark") != mark or cm["data"].get("app") != leaf:
        raise RuntimeError(f"ConfigMap {leaf}-settings-0 has {cm['data']}, mark {mark} expected")
    check_releases(kube, rg)


def run_stack(stack, args, rg, revs, git_port, webhook):
    name = f"vsflux-{stack}"
    out = testenv(args, "up", "--name", name, "--nodes", "3", "--audit-log",
                  "--owner-pid", str(os.getpid())).stdout
    kubeconfig = out.strip().split("=", 1)[1]
    workdir = tempfile.mkdtemp(prefix=f"{stack}-", dir=args.workdir)
    result = {"stack": stack}
    procs, sampler, watcher, hr_watcher, audit = {}, None, None, None, None
    try:
        kube = Kube(kubeconfig, workdir)
        audit = measure.Audit(os.path.join(os.path.dirname(kubeconfig), "logs", "audit.log"))
        for f in sorted(os.listdir(args.flux_crds)):
            if f.endswith(".yaml"):
                with open(os.path.join(args.flux_crds, f)) as fh:
                    for crd in yaml.safe_load_all(fh):
                        if crd:
                            kube.apply_crd(crd, "bench-vs-flux")
        kube.create_namespace(NS)
        rg.reset_served()
        rg.publish(revs[0])

        t_start = time.time()
        procs = start_stack(stack, args, kubeconfig, workdir)
        result["startup_s"] = time.time() - t_start
        sampler = measure.Stack(procs)
        time.sleep(3)
        result["idle_rss"] = sampler.rss()

        def alive():
            dead = sampler.dead()
            if dead:
                raise RuntimeError(f"{stack}: {', '.join(dead)} exited; see {args.logs}")

        watcher = measure.Watcher(kube)
        hr_watcher = measure.Watcher(kube, measure.HR_PATH, measure.ready_generation)
        if webhook:
            webhook.reset()
        comps = components(stack, args)
        names = ["flux-system"] + [n[0] for n in rg.nodes]
        releases = [name for _, name, _ in rg.helm_releases()]
        parents = rg.parents()
        leaf = rg.leaves()[-1]
        metrics0 = measure.request_totals(kube)

        # 1. sync
        cpu0, t0 = sampler.cpu(), time.time()
        create_sync(kube, git_port)
        t_ready = watcher.wait(names, revs[0], args.timeout, alive)
        result["ready_s"] = t_ready - t0
        if releases:
            result["helmreleases"] = len(releases)
            result["hr_ready_s"] = hr_watcher.wait(releases, "ready", args.timeout, alive) - t0
        result["sync_cpu"] = sampler.cpu() - cpu0
        sync = audit.window(t0, t_ready, comps)
        result["sync_requests"] = measure.summarize(sync)
        result["unblock"] = quantiles(unblock_latencies(watcher, parents, revs[0]))
        starts, early = start_latencies(sync, watcher, parents, revs[0])
        result["unblock_start"] = quantiles(starts)
        result["applied_before_dependency_ready"] = early
        check_objects(kube, rg, leaf, "initial")
        log(f"{stack}: {len(names)} Kustomizations Ready in {result['ready_s']:.1f}s "
            f"(unblock median {result['unblock']['median']:.2f}s)")
        time.sleep(args.settle)

        # 2. leaf
        cpu1, t1 = sampler.cpu(), time.time()
        rg.publish(revs[1])
        request_reconcile(kube, f"leaf-{t1}")
        result["leaf_s"] = watcher.wait([leaf], revs[1], args.timeout, alive) - t1
        t_all = watcher.wait(names, revs[1], args.timeout, alive)
        result["leaf_all_s"] = t_all - t1
        result["leaf_cpu"] = sampler.cpu() - cpu1
        leaf_reqs = audit.window(t1, t_all, comps)
        result["leaf_requests"] = measure.summarize(leaf_reqs)
        result["leaf_unblock"] = quantiles(unblock_latencies(watcher, parents, revs[1]))
        result["leaf_unblock_start"] = quantiles(start_latencies(leaf_reqs, watcher, parents, revs[1])[0])
        check_objects(kube, rg, leaf, "leaf-1")
        log(f"{stack}: leaf Ready at the new commit in {result['leaf_s']:.1f}s, "
            f"everything in {result['leaf_all_s']:.1f}s")
        time.sleep(args.settle)

        # 3. steady
        before = statuses(kube)
        cpu2, t2 = sampler.cpu(), time.time()
        end = t2 + args.steady
        while time.time() < end:
            alive()
            time.sleep(min(2.0, max(0.1, end - time.time())))
        t3 = time.time()
        result["steady_s"] = t3 - t2
        result["steady_cpu"] = sampler.cpu() - cpu2
        rss = sampler.between(t2, t3)
        result["steady_rss"] = statistics.median(rss) if rss else float("nan")
        anon = sampler.anon_between(t2, t3)
        result["steady_anon"] = statistics.median(anon) if anon else float("nan")
        steady = measure.summarize(audit.window(t2, t3, comps))
        result["steady_status_changes"] = status_changes(before, statuses(kube))
        result["steady_requests"] = steady
        rounds = args.steady / args.interval_s
        result["steady_rounds"] = rounds
        result["writes_per_round"] = steady["writes"] / rounds
        # The objects reconciled on the interval: Kustomizations, and each Helm
        # application's OCIRepository and HelmRelease.
        result["requests_per_reconcile"] = steady["total"] / (rounds * (len(names) + 2 * len(releases)))
        log(f"{stack}: steady {result['steady_s']:.0f}s: {steady['total']} requests, "
            f"{steady['writes']} writes, {len(result['steady_status_changes'])} statuses changed")

        # 4. restart
        rg.publish(revs[2])
        t4 = time.time()
        testenv(args, "restart", "--name", name, "--component", "apiserver", "--kill",
                "--timeout", "180s")
        t5 = time.time()
        result["apiserver_down_s"] = t5 - t4
        request_reconcile(kube, f"restart-{t5}")
        result["recover_s"] = watcher.wait([leaf], revs[2], args.timeout, alive) - t5
        check_objects(kube, rg, leaf, "leaf-2")
        log(f"{stack}: after the API server restart, the leaf at the new commit in "
            f"{result['recover_s']:.1f}s")

        t_end = time.time()
        result["total_cpu"] = sampler.cpu()
        result["peak_rss"] = sampler.peak()
        result["peak_rss_hwm_sum"] = sampler.hwm()
        result["peak_anon"] = sampler.anon_peak()
        result["all_requests"] = measure.summarize(audit.window(t0, t_end, comps))
        result["agents"] = audit.agents(t0, t_end)
        result["apiserver_request_total"] = measure.delta(metrics0, measure.request_totals(kube))
        if webhook:
            result["notifications_sync"] = webhook.summary(t0, t_ready)
            result["notifications_steady"] = webhook.summary(t2, t3)
            result["notifications"] = webhook.summary(detail=True)
    finally:
        for w in (watcher, hr_watcher):
            if w:
                w.stop()
        if sampler:
            sampler.stop()
        stop_stack(procs)
        if audit and os.path.exists(audit.path):
            shutil.copyfile(audit.path, os.path.join(args.logs, f"{stack}-audit.log"))
        try:
            testenv(args, "down", "--name", name)
        except RuntimeError as e:
            log(str(e))
    return result


# ------------------------------------------------------------------- report

ROWS = [
    # (label, key path, digits, lower is better)
    ("memory: idle RSS (MiB)", ("idle_rss",), 0),
    ("memory: peak RSS, sampled sum (MiB)", ("peak_rss",), 0),
    ("memory: peak RSS, sum of each process's peak (MiB)", ("peak_rss_hwm_sum",), 0),
    ("memory: steady RSS, median (MiB)", ("steady_rss",), 0),
    ("memory: peak private RSS (RssAnon), sampled sum (MiB)", ("peak_anon",), 0),
    ("memory: steady private RSS (RssAnon), median (MiB)", ("steady_anon",), 0),
    ("CPU: first sync (s)", ("sync_cpu",), 1),
    ("CPU: leaf commit (s)", ("leaf_cpu",), 1),
    ("CPU: steady window (s)", ("steady_cpu",), 1),
    ("CPU: whole run (s)", ("total_cpu",), 1),
    ("first commit -> all Ready (s)", ("ready_s",), 1),
    ("first commit -> all HelmReleases Ready (s)", ("hr_ready_s",), 1),
    ("dependency unblock, median (s)", ("unblock", "median"), 2),
    ("dependency unblock, p90 (s)", ("unblock", "p90"), 2),
    ("dependency unblock, max (s)", ("unblock", "max"), 2),
    ("dependency Ready -> dependant started, median (s)", ("unblock_start", "median"), 2),
    ("dependency Ready -> dependant started, p90 (s)", ("unblock_start", "p90"), 2),
    ("dependants applied before their dependency was Ready", ("applied_before_dependency_ready",), 0),
    ("leaf commit -> leaf Ready (s)", ("leaf_s",), 1),
    ("leaf commit -> all Ready at it (s)", ("leaf_all_s",), 1),
    ("API requests: first sync", ("sync_requests", "total"), 0),
    ("API writes: first sync", ("sync_requests", "writes"), 0),
    ("API requests: leaf commit", ("leaf_requests", "total"), 0),
    ("API writes: leaf commit", ("leaf_requests", "writes"), 0),
    ("API requests: steady window", ("steady_requests", "total"), 0),
    ("API dry-run applies: steady window", ("steady_requests", "dry_runs"), 0),
    ("API writes per no-change round", ("writes_per_round",), 1),
    ("API requests per object reconcile (steady)", ("requests_per_reconcile",), 2),
    ("API requests: whole run", ("all_requests", "total"), 0),
    ("API server restart -> leaf Ready at new commit (s)", ("recover_s",), 1),
    ("notifications delivered: first sync", ("notifications_sync", "total"), 0),
    ("notifications delivered: steady window", ("notifications_steady", "total"), 0),
    ("notifications delivered: whole run", ("notifications", "total"), 0),
]


def get(r, path):
    for k in path:
        if not isinstance(r, dict) or k not in r:
            return None
        r = r[k]
    return r


def fmt(v, digits):
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return f"{v:,.{digits}f}"


def report(results):
    stacks = [r["stack"] for r in results]
    by = {r["stack"]: r for r in results}
    head = ["", *stacks]
    ratio_cols = [s for s in stacks if s != "sluice"] if "sluice" in by else []
    head += [f"{s} / sluice" for s in ratio_cols]
    rows = []
    for label, path, digits in ROWS:
        row = [label] + [fmt(get(by[s], path), digits) for s in stacks]
        for s in ratio_cols:
            a, b = get(by[s], path), get(by["sluice"], path)
            row.append(f"{a / b:.1f}x" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else
                       ("-" if a in (None, 0) else "inf"))
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = ["| " + " | ".join(str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i])
                               for i, c in enumerate(r)) + " |" for r in [head, *rows]]
    lines.insert(1, "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|")
    print("\n".join(lines))
    for r in results:
        w = get(r, ("steady_requests", "writes_by_resource")) or {}
        if w:
            print(f"\n{r['stack']}: writes in the steady window: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(w.items(), key=lambda kv: -kv[1])))
        verbs = get(r, ("all_requests", "by_verb")) or {}
        print(f"{r['stack']}: requests by verb (whole run): "
              + ", ".join(f"{k} {v}" for k, v in sorted(verbs.items())))
        notes = get(r, ("notifications", "by_kind")) or {}
        if notes:
            print(f"{r['stack']}: notifications by object kind (whole run): "
                  + ", ".join(f"{k} {v}" for k, v in sorted(notes.items())))
        agents = r.get("agents") or {}
        print(f"{r['stack']}: all requests by user agent (whole run): "
              + ", ".join(f"{k} {v}" for k, v in sorted(agents.items(), key=lambda kv: -kv[1])))


def parse_duration(s):
    units = {"s": 1, "m": 60, "h": 3600}
    return float(s[:-1]) * units[s[-1]]


def report_saved(paths):
    """`bench.py report A.json [B.json ...]`: the table of saved runs, stacks in the order
    first seen, a later file's stack replacing an earlier one's (to combine a run of the
    Flux stacks with a later run of sluice alone, say so where the table is shown)."""
    by = {}
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        for r in doc["results"]:
            by[r["stack"]] = r
            print(f"{r['stack']}: from {path} ({doc['date']})")
    print()
    report(list(by.values()))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "report":
        report_saved(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sluice", required=True)
    p.add_argument("--source-controller")
    p.add_argument("--kustomize-controller")
    p.add_argument("--helm-controller")
    p.add_argument("--notification-controller")
    p.add_argument("--charts", help="directory holding podinfo/ and app-template/ (the Helm corpus)")
    p.add_argument("--app-values", help="real values for app-template")
    p.add_argument("--registry", default="/usr/bin/docker-registry")
    p.add_argument("--helm-releases", type=int, default=30)
    p.add_argument("--testenv", required=True)
    p.add_argument("--flux-crds", required=True)
    p.add_argument("--logs", required=True)
    p.add_argument("--json", required=True)
    p.add_argument("--stacks", default="flux,flux-tuned,sluice")
    p.add_argument("--kustomizations", type=int, default=100)
    p.add_argument("--objects-each", type=int, default=20)
    p.add_argument("--interval", default="2m", help="the Kustomizations' spec.interval")
    p.add_argument("--steady", type=float, default=240, help="seconds of the steady window")
    p.add_argument("--settle", type=float, default=5)
    p.add_argument("--timeout", type=float, default=900)
    args = p.parse_args()
    args.interval_s = parse_duration(args.interval)
    os.makedirs(args.logs, exist_ok=True)
    args.workdir = tempfile.mkdtemp(prefix="bench-vs-flux-")
    stacks = [s for s in args.stacks.split(",") if s]
    if args.helm_releases and not (args.charts and args.app_values):
        p.error("--helm-releases needs --charts and --app-values (or --helm-releases 0)")
    for s in stacks:
        if s not in STACKS:
            p.error(f"unknown stack {s!r} (flux, flux-tuned, sluice)")
        if s != "sluice" and not (args.source_controller and args.kustomize_controller):
            p.error(f"stack {s} needs --source-controller and --kustomize-controller")
        if s != "sluice" and args.helm_releases and not (args.helm_controller and args.notification_controller):
            p.error(f"stack {s} with HelmReleases needs --helm-controller and --notification-controller")

    objects = args.kustomizations * args.objects_each
    registry, webhook, srv = None, None, None
    results, failed = [], []
    try:
        helm = None
        if args.helm_releases:
            registry = Registry(args.registry, args.workdir)
            versions = {}
            for chart in ("podinfo", "app-template"):
                name, version, data = helmbench.chart_tgz(os.path.join(args.charts, chart))
                registry.push_chart(f"charts/{name}", name, version, data)
                versions[chart] = version
            with open(args.app_values) as f:
                real = yaml.safe_load(f)
            values = {"podinfo": helmbench.podinfo_values,
                      "app-template": lambda name, i: helmbench.app_template_values(real, "app")}
            webhook = measure.Webhook()
            helm = repogen.Helm(args.helm_releases, f"127.0.0.1:{registry.port}", versions, values,
                                f"http://127.0.0.1:{webhook.port}/hook")
        rg = repogen.Repo(args.workdir, args.kustomizations, args.objects_each, args.interval, helm)
        revs = [rg.init()]
        leaf = rg.leaves()[-1]
        revs.append(rg.touch_leaf(leaf, "leaf-1"))
        revs.append(rg.touch_leaf(leaf, "leaf-2"))
        print(f"{args.kustomizations} Kustomizations (plus the entry point) in a dependsOn tree 4 deep, "
              f"{objects:,} objects, {args.helm_releases} HelmReleases, interval {args.interval}; "
              f"revisions {', '.join(r[-12:] for r in revs)}")
        srv, git_port = measure.serve_git(rg.bare_root)
        for s in stacks:
            log(f"== {s}")
            try:
                results.append(run_stack(s, args, rg, revs, git_port, webhook))
            except Exception as e:  # noqa: BLE001 - the other stacks still run; the exit code says it
                log(f"{s}: FAILED: {e}")
                failed.append({"stack": s, "error": str(e)})
            write_json(args, objects, results, failed)
    finally:
        if srv:
            srv.shutdown()
        for server in (webhook, registry):
            if server:
                server.stop()
        subprocess.run(["rm", "-rf", args.workdir])
    print()
    report(results)
    for f in failed:
        print(f"\n{f['stack']}: FAILED: {f['error']}")
    print(f"\nJSON: {args.json}")
    if failed:
        sys.exit(1)


def write_json(args, objects, results, failed):
    doc = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "loadavg": open("/proc/loadavg").read().split()[:3]},
        "workload": {"kustomizations": args.kustomizations, "objects": objects,
                     "helmreleases": args.helm_releases,
                     "interval": args.interval, "steady_s": args.steady},
        "flux_tuned_flags": FLUX_TUNED,
        "results": results,
        "failed": failed,
    }
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)


if __name__ == "__main__":
    main()
