#!/usr/bin/env python3
"""HelmRelease benchmark: sluice's HelmRelease controller against Flux's helm-controller.

The same HelmReleases (podinfo with varied values, bjw-s app-template with a real
repository's values, traefik with a homelab's values and kube-prometheus-stack), reconciled
once by Flux's helm-controller and once by
`sluice controller --helmrelease`, on the same control plane, one after the other, each in a
namespace of its own that it alone watches. The charts come from two OCIRepositories whose
artifacts this script serves itself (status written as a source controller writes it), so
only the HelmRelease controllers are measured. For each: the time from creating the
HelmReleases to all Ready, the process's CPU seconds and peak memory (from /proc), what a
no-change reconcile of every HelmRelease does (new release revisions: target 0), and the
HelmReleases written in a quiet minute (target 0); with the API server's audit log, the API
requests of each phase (by the controller's user agent). See bench/helmrelease/README.md.
"""

import argparse
import fnmatch
import hashlib
import http.server
import io
import json
import os
import random
import socketserver
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ocirepository"))
from bench import (  # noqa: E402
    Kube, Sampler, delete_all, free_port, log, proc_cpu, proc_mem, proc_status_mib, stop_run,
    wait_http,
)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vs-flux"))
import measure  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import pagecache  # noqa: E402



def proc_rss_split(pid):
    """(RssAnon, RssFile) in MiB: memory only the process has (heap, stacks) and pages of its
    binary and libraries mapped from files, which the kernel can drop and read again."""
    return proc_status_mib(pid, "RssAnon", "RssFile")


class SplitSampler(Sampler):
    """A Sampler of (RssAnon, RssFile): the kernel's peak (VmHWM) is exact but not split."""

    def _sample(self):
        return proc_rss_split(self.pid)

    def peak(self):
        """(anonymous, file-backed) of the sample with the largest sum; (0, 0) without any."""
        return max((s for _, s in self.samples), key=sum, default=(0.0, 0.0))


HR_PATH = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/{ns}/helmreleases"
OCI_PATH = "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/ocirepositories"
SECRETS = "/api/v1/namespaces/{ns}/secrets?labelSelector=owner%3Dhelm"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"

# The charts of the mix, by the name of their OCIRepository and HelmReleases: the chart's
# directory in the corpus and the prefix of its HelmReleases' names.
CHARTS = {
    "podinfo": "podinfo",
    "app-template": "app-template",
    "traefik": "traefik",
    "kps": "kube-prometheus-stack",
}


def is_ready(obj):
    """Ready=True for the current generation."""
    st = obj.get("status") or {}
    if st.get("observedGeneration") != obj["metadata"].get("generation"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])


def helmignore(directory):
    """The chart's `.helmignore` rules as `helm package` reads them: (pattern, negated,
    directories only) per line; a pattern without a slash matches a base name, one with a
    slash the path from the chart's root."""
    rules = []
    try:
        with open(os.path.join(directory, ".helmignore")) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return rules
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = line[1:] if negated else line
        rules.append((line.rstrip("/").lstrip("/"), negated, line.endswith("/")))
    return rules


def ignored(rules, rel, is_dir):
    out = False
    for pattern, negated, dirs_only in rules:
        if dirs_only and not is_dir:
            continue
        target = rel if "/" in pattern else os.path.basename(rel)
        if fnmatch.fnmatchcase(target, pattern):
            out = not negated
    return out


def chart_tgz(directory):
    """The chart directory as `helm package` lays it out (`<name>/...`), without what its
    `.helmignore` names (traefik's ignores `crds/kustomization.yaml`, which Helm would
    otherwise read as a CRD and fail on)."""
    with open(os.path.join(directory, "Chart.yaml")) as f:
        meta = yaml.safe_load(f)
    name, version = meta["name"], str(meta["version"])
    rules = helmignore(directory)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for root, dirs, files in os.walk(directory, followlinks=True):
            rel_root = os.path.relpath(root, directory)
            rel = (lambda n: n) if rel_root == "." else (lambda n: f"{rel_root}/{n}")
            dirs[:] = sorted(d for d in dirs if not ignored(rules, rel(d), True))
            for fname in sorted(files):
                if ignored(rules, rel(fname), False):
                    continue
                tar.add(os.path.join(root, fname), arcname=f"{name}/{rel(fname)}", recursive=False)
    return name, version, buf.getvalue()


def podinfo_values(name, i):
    """Values of the i-th podinfo release (replicas and message vary)."""
    return {"replicaCount": 1 + i % 2, "ui": {"message": f"bench {name}"},
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}


def app_template_values(real, controller):
    """A real repository's app-template values (`real`), its one controller named
    `controller`, without what the test control plane cannot have: its HTTPRoute (no Gateway
    API CRDs) and its existing claim (an emptyDir instead)."""
    v = json.loads(json.dumps(real))
    v["controllers"] = {controller: v["controllers"].popitem()[1]} if v.get("controllers") else {}
    v.pop("route", None)
    for p in (v.get("persistence") or {}).values():
        if isinstance(p, dict) and "existingClaim" in p:
            p.pop("existingClaim")
            p["type"] = "emptyDir"
    return v


def kps_values(name, i):
    """kube-prometheus-stack with its defaults but its admission webhooks: the test control
    plane's pods are simulated, so the apiserver could not reach the webhook, and every
    PrometheusRule would wait out the webhook's timeout (the same for both controllers)."""
    return {"prometheusOperator": {"admissionWebhooks": {"enabled": False}}}


class Charts(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def serve(charts):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            data = charts.get(self.path)
            if data is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    server = Charts(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def release(ns, i, kind, chart_values):
    name = f"{kind}-{i:02d}"
    spec = {
        "interval": "10m",
        "timeout": "5m",
        "chartRef": {"kind": "OCIRepository", "name": kind},
        "values": chart_values(name, i),
    }
    if kind == "app-template":
        # As the home-ops repository the values come from: the chart's schema is stricter
        # than the values it renders.
        spec["install"] = {"disableSchemaValidation": True}
        spec["upgrade"] = {"disableSchemaValidation": True}
    if kind in ("traefik", "kps"):
        # Their CRDs come with the chart (`crds/`), created on install and replaced on
        # upgrade, as a homelab repository asks for them.
        spec["install"] = {"crds": "CreateReplace"}
        spec["upgrade"] = {"crds": "CreateReplace"}
    return {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def crd_names(kube):
    return {o["metadata"]["name"] for o in kube.request("GET", CRDS)["items"]}


def delete_crds(kube, names, timeout=180):
    """Deletes the CRDs the charts installed (Helm never deletes them), so that the next
    controller installs them too, and waits for them to go."""
    for name in sorted(names):
        kube.request("DELETE", f"{CRDS}/{name}", ok=(200, 202, 404))
    deadline = time.time() + timeout
    while crd_names(kube) & names and time.time() < deadline:
        time.sleep(0.5)


def requests(audit, t0, t1, tool, logs=None, phase=""):
    """(requests, writes) of the controller `tool` between t0 and t1, from the audit log; with
    `logs`, the requests by verb and the writes by resource go to `<tool>-<phase>-api.json`."""
    if audit is None:
        return None, None
    time.sleep(1)  # the API server writes its audit log asynchronously
    # The controller is whoever else talks to the API server in its window: Helm's SDK inside
    # helm-controller has a user agent of its own (the harness, the control plane's own
    # components and the API server itself are set aside).
    agents = audit.agents(t0, t1)
    theirs = set(agents) - {"harness", "control plane", "kube-apiserver"}
    window = audit.window(t0, t1, theirs)
    got = measure.summarize(window)
    got["agents"] = agents
    if logs:
        reads = {}
        for _, verb, res, _, _, _ in window:
            if verb not in measure.WRITE_VERBS:
                reads[f"{verb} {res}"] = reads.get(f"{verb} {res}", 0) + 1
        got["reads_by_resource"] = reads
        with open(os.path.join(logs, f"{tool}-{phase}-api.json"), "w") as f:
            json.dump(got, f, indent=1, sort_keys=True)
    return got["total"], got["writes"]


def run_one(tool, args, kube, charts_url, sources, mix, audit):
    ns = f"bench-hr-{tool}-{os.getpid()}-{random.randrange(1 << 16):04x}"
    log(f"{tool}: namespace {ns}")
    kube.create_namespace(ns)
    crds_before = crd_names(kube)
    for kind, (version, digest, path) in sources.items():
        kube.request("POST", OCI_PATH.format(ns=ns), {
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
            "metadata": {"name": kind, "namespace": ns},
            "spec": {"interval": "10m", "url": f"oci://bench.invalid/{kind}", "ref": {"tag": version}},
        })
        got = kube.request("GET", f"{OCI_PATH.format(ns=ns)}/{kind}")
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        kube.request("PATCH", f"{OCI_PATH.format(ns=ns)}/{kind}/status", {"status": {
            "observedGeneration": got["metadata"]["generation"],
            "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded",
                            "message": f"stored artifact for digest '{version}@{digest}'",
                            "lastTransitionTime": now,
                            "observedGeneration": got["metadata"]["generation"]}],
            "artifact": {"path": path.lstrip("/"), "url": f"{charts_url}{path}",
                         "revision": f"{version}@{digest}", "digest": digest,
                         "lastUpdateTime": now},
        }}, content_type="application/merge-patch+json")

    mport, hport = free_port(), free_port()
    env = dict(os.environ, KUBECONFIG=args.kubeconfig, NO_COLOR="1")
    if tool == "sluice":
        cmd = [args.sluice, "--log-level", "info", "controller", "--watch-namespace", ns,
               "--source=false", "--kustomization=false", "--reloader=false", "--helmrelease",
               "--helmrelease-concurrency", str(args.concurrency),
               "--metrics-addr", f"127.0.0.1:{mport}", "--health-addr", f"127.0.0.1:{hport}"]
    else:
        env["RUNTIME_NAMESPACE"] = ns
        cmd = [args.helm_controller, "--watch-all-namespaces=false",
               "--enable-leader-election=false", "--log-level", "info",
               "--concurrent", str(args.concurrency),
               "--metrics-addr", f"127.0.0.1:{mport}", "--health-addr", f"127.0.0.1:{hport}"]
    pagecache.evict(cmd[0])
    logf = open(os.path.join(args.logs, f"{tool}.log"), "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
    result = {"tool": tool}
    sampler = None
    try:
        wait_http(hport, "/readyz", proc)
        time.sleep(2)
        sampler = SplitSampler(proc.pid, period=0.1)
        cpu0 = proc_cpu(proc.pid)
        result["idle_rss"] = proc_mem(proc.pid)[0]
        t0 = time.time()
        for i, (kind, values) in enumerate(mix):
            kube.request("POST", HR_PATH.format(ns=ns), release(ns, i, kind, values))
        deadline = t0 + args.ready_timeout
        while True:
            items = kube.request("GET", HR_PATH.format(ns=ns))["items"]
            ready = [o for o in items if is_ready(o)]
            if len(ready) == len(mix):
                break
            if proc.poll() is not None:
                raise RuntimeError(f"{tool} exited ({proc.returncode}); see {logf.name}")
            if time.time() > deadline:
                bad = [(o["metadata"]["name"], (o.get("status") or {}).get("conditions"))
                       for o in items if not is_ready(o)][:3]
                raise RuntimeError(f"{tool}: {len(ready)}/{len(mix)} Ready after "
                                   f"{args.ready_timeout}s; e.g. {json.dumps(bad)[:1500]}")
            time.sleep(0.5)
        t_ready = time.time()
        result["ready_s"] = t_ready - t0
        result["ready_cpu"] = proc_cpu(proc.pid) - cpu0
        revisions0 = len(kube.request("GET", SECRETS.format(ns=ns))["items"])
        log(f"{tool}: {len(mix)} Ready in {result['ready_s']:.1f}s ({revisions0} release revisions)")

        # A no-change reconcile of every HelmRelease (as `flux reconcile hr` asks for it).
        token = f"bench-{time.time():.0f}"
        cpu1 = proc_cpu(proc.pid)
        t1 = time.time()
        for o in items:
            kube.request("PATCH", f"{HR_PATH.format(ns=ns)}/{o['metadata']['name']}",
                         {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}},
                         content_type="application/merge-patch+json")
        while True:
            items = kube.request("GET", HR_PATH.format(ns=ns))["items"]
            done = [o for o in items
                    if (o.get("status") or {}).get("lastHandledReconcileAt") == token and is_ready(o)]
            if len(done) == len(mix):
                break
            if time.time() > t1 + args.ready_timeout:
                raise RuntimeError(f"{tool}: {len(done)}/{len(mix)} handled the reconcile request")
            time.sleep(0.5)
        t_noop = time.time()
        result["noop_s"] = t_noop - t1
        result["noop_cpu"] = proc_cpu(proc.pid) - cpu1
        result["noop_new_revisions"] = len(kube.request("GET", SECRETS.format(ns=ns))["items"]) - revisions0

        # A quiet minute: nothing changes, nothing should be written.
        time.sleep(3)
        before = {o["metadata"]["name"]: o["metadata"]["resourceVersion"]
                  for o in kube.request("GET", HR_PATH.format(ns=ns))["items"]}
        cpu2 = proc_cpu(proc.pid)
        t2 = time.time()
        time.sleep(args.quiet)
        after = {o["metadata"]["name"]: o["metadata"]["resourceVersion"]
                 for o in kube.request("GET", HR_PATH.format(ns=ns))["items"]}
        result["quiet_cpu"] = proc_cpu(proc.pid) - cpu2
        result["quiet_writes"] = sum(1 for n, rv in after.items() if before.get(n) != rv)
        t3 = time.time()
        result["api_ready"], result["api_ready_writes"] = requests(audit, t0, t_ready, tool, args.logs, "ready")
        result["api_noop"], result["api_noop_writes"] = requests(audit, t1, t_noop, tool, args.logs, "noop")
        result["api_quiet"], _ = requests(audit, t2, t3, tool)
        result["peak_rss"] = proc_mem(proc.pid)[1]
        result["peak_anon"], result["peak_file"] = sampler.peak()
        result["rss"] = proc_mem(proc.pid)[0]

        # Clean up while the controller runs: it uninstalls the releases.
        delete_all(kube, HR_PATH.format(ns=ns), 180)
    finally:
        stop_run(kube, ns, proc, sampler, logf)
        delete_crds(kube, crd_names(kube) - crds_before)
    return result


def report(results, count):
    rows = [
        ("all Ready (s)", "ready_s", 1),
        ("CPU to all Ready (s)", "ready_cpu", 2),
        ("peak RSS (MiB)", "peak_rss", 1),
        ("  of it anonymous, sampled (MiB)", "peak_anon", 1),
        ("  of it mapped from files, sampled (MiB)", "peak_file", 1),
        ("RSS after (MiB)", "rss", 1),
        ("idle RSS before (MiB)", "idle_rss", 1),
        ("no-change reconcile of all (s)", "noop_s", 1),
        ("CPU of it (s)", "noop_cpu", 2),
        ("new revisions from it", "noop_new_revisions", 0),
        ("HelmReleases written in the quiet window", "quiet_writes", 0),
        ("CPU in the quiet window (s)", "quiet_cpu", 2),
        ("API requests to all Ready", "api_ready", 0),
        ("of which writes", "api_ready_writes", 0),
        ("API requests of the no-change reconcile", "api_noop", 0),
        ("of which writes", "api_noop_writes", 0),
        ("API requests in the quiet window", "api_quiet", 0),
    ]
    by = {r["tool"]: r for r in results}
    hc, sl = by.get("helm-controller"), by.get("sluice")
    print(f"\n{count} HelmReleases | " + " | ".join(r["tool"] for r in results)
          + (" | sluice / helm-controller" if hc and sl else ""))
    for label, key, digits in rows:
        cells = [f"{r[key]:.{digits}f}" if isinstance(r.get(key), float) else str(r.get(key)) for r in results]
        ratio = ""
        if hc and sl and isinstance(hc.get(key), (int, float)) and hc.get(key):
            ratio = f" | {sl[key] / hc[key]:.2f}"
        print(f"{label} | " + " | ".join(cells) + ratio)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--sluice", required=True)
    p.add_argument("--helm-controller")
    p.add_argument("--flux-crds", required=True)
    p.add_argument("--charts", required=True,
                   help="directory holding podinfo/, app-template/, traefik/ and kube-prometheus-stack/")
    p.add_argument("--app-values", required=True, help="real values for app-template")
    p.add_argument("--traefik-values", required=True, help="a homelab's values for traefik")
    p.add_argument("--logs", required=True)
    p.add_argument("--podinfo", type=int, default=20)
    p.add_argument("--app-template", type=int, default=6)
    p.add_argument("--traefik", type=int, default=3)
    p.add_argument("--kps", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--quiet", type=int, default=60)
    p.add_argument("--ready-timeout", type=int, default=600)
    p.add_argument("--tools", default="helm-controller,sluice")
    p.add_argument("--audit-log", help="the API server's audit log, to count requests")
    args = p.parse_args()
    audit = measure.Audit(args.audit_log) if args.audit_log else None

    work = tempfile.mkdtemp(prefix="bench-hr-")
    kube = Kube(args.kubeconfig, work)
    # Every source kind (helm-controller watches HelmCharts and ExternalArtifacts too) and
    # HelmRelease, Flux's own CRDs.
    crds = sorted(f for f in os.listdir(args.flux_crds)
                  if f.startswith("source.toolkit.fluxcd.io_") or f.startswith("helm.toolkit.fluxcd.io_"))
    for f in crds:
        with open(os.path.join(args.flux_crds, f)) as fh:
            kube.apply_crd(yaml.safe_load(fh), "sluice-bench-helmrelease")

    counts = {"podinfo": args.podinfo, "app-template": args.app_template,
              "traefik": args.traefik, "kps": args.kps}
    served, sources = {}, {}
    for kind, chart in CHARTS.items():
        if not counts[kind]:
            continue
        name, version, data = chart_tgz(os.path.join(args.charts, chart))
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = f"/charts/{name}-{version}.tgz"
        served[path] = data
        sources[kind] = (version, digest, path)
    server = serve(served)
    charts_url = f"http://127.0.0.1:{server.server_address[1]}"

    with open(args.app_values) as f:
        app_values = yaml.safe_load(f)

    with open(args.traefik_values) as f:
        traefik = yaml.safe_load(f)

    def app(name, i):
        return app_template_values(app_values, name)

    def traefik_values(name, i):
        return json.loads(json.dumps(traefik))

    values = {"podinfo": podinfo_values, "app-template": app, "traefik": traefik_values,
              "kps": kps_values}
    mix = [(kind, values[kind]) for kind in CHARTS for _ in range(counts[kind])]
    results = []
    for tool in args.tools.split(","):
        if tool == "helm-controller" and not args.helm_controller:
            continue
        results.append(run_one(tool, args, kube, charts_url, sources, mix, audit))
    server.shutdown()
    report(results, len(mix))


if __name__ == "__main__":
    main()
