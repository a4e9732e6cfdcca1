#!/usr/bin/env python3
"""HelmRelease benchmark: sluice's HelmRelease controller against Flux's helm-controller.

The same HelmReleases (podinfo with varied values, and bjw-s app-template with a real
repository's values), reconciled once by Flux's helm-controller and once by
`sluice controller --helmrelease`, on the same control plane, one after the other, each in a
namespace of its own that it alone watches. The charts come from two OCIRepositories whose
artifacts this script serves itself (status written as a source controller writes it), so
only the HelmRelease controllers are measured. For each: the time from creating the
HelmReleases to all Ready, the process's CPU seconds and peak memory (from /proc), what a
no-change reconcile of every HelmRelease does (new release revisions: target 0), and the
HelmReleases written in a quiet minute (target 0). See bench/helmrelease/README.md.
"""

import argparse
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
    Kube, Sampler, delete_all, free_port, log, proc_cpu, proc_mem, stop_run, wait_http,
)

HR_PATH = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/{ns}/helmreleases"
OCI_PATH = "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/ocirepositories"
SECRETS = "/api/v1/namespaces/{ns}/secrets?labelSelector=owner%3Dhelm"


def is_ready(obj):
    """Ready=True for the current generation."""
    st = obj.get("status") or {}
    if st.get("observedGeneration") != obj["metadata"].get("generation"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])


def chart_tgz(directory):
    """The chart directory as `helm package` lays it out (`<name>/...`)."""
    with open(os.path.join(directory, "Chart.yaml")) as f:
        meta = yaml.safe_load(f)
    name, version = meta["name"], str(meta["version"])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for root, dirs, files in os.walk(directory):
            dirs.sort()
            for fname in sorted(files):
                full = os.path.join(root, fname)
                rel = os.path.relpath(full, directory)
                tar.add(full, arcname=f"{name}/{rel}", recursive=False)
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
    return {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def run_one(tool, args, kube, charts_url, sources, mix):
    ns = f"bench-hr-{tool}-{os.getpid()}-{random.randrange(1 << 16):04x}"
    log(f"{tool}: namespace {ns}")
    kube.create_namespace(ns)
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
    logf = open(os.path.join(args.logs, f"{tool}.log"), "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
    result = {"tool": tool}
    sampler = None
    try:
        wait_http(hport, "/readyz", proc)
        time.sleep(2)
        sampler = Sampler(proc.pid, period=0.5)
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
        result["ready_s"] = time.time() - t0
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
        result["noop_s"] = time.time() - t1
        result["noop_cpu"] = proc_cpu(proc.pid) - cpu1
        result["noop_new_revisions"] = len(kube.request("GET", SECRETS.format(ns=ns))["items"]) - revisions0

        # A quiet minute: nothing changes, nothing should be written.
        time.sleep(3)
        before = {o["metadata"]["name"]: o["metadata"]["resourceVersion"]
                  for o in kube.request("GET", HR_PATH.format(ns=ns))["items"]}
        cpu2 = proc_cpu(proc.pid)
        time.sleep(args.quiet)
        after = {o["metadata"]["name"]: o["metadata"]["resourceVersion"]
                 for o in kube.request("GET", HR_PATH.format(ns=ns))["items"]}
        result["quiet_cpu"] = proc_cpu(proc.pid) - cpu2
        result["quiet_writes"] = sum(1 for n, rv in after.items() if before.get(n) != rv)
        result["peak_rss"] = proc_mem(proc.pid)[1]
        result["rss"] = proc_mem(proc.pid)[0]

        # Clean up while the controller runs: it uninstalls the releases.
        delete_all(kube, HR_PATH.format(ns=ns), 180)
    finally:
        stop_run(kube, ns, proc, sampler, logf)
    return result


def report(results, count):
    rows = [
        ("all Ready (s)", "ready_s", 1),
        ("CPU to all Ready (s)", "ready_cpu", 2),
        ("peak RSS (MiB)", "peak_rss", 1),
        ("RSS after (MiB)", "rss", 1),
        ("idle RSS before (MiB)", "idle_rss", 1),
        ("no-change reconcile of all (s)", "noop_s", 1),
        ("CPU of it (s)", "noop_cpu", 2),
        ("new revisions from it", "noop_new_revisions", 0),
        ("HelmReleases written in the quiet window", "quiet_writes", 0),
        ("CPU in the quiet window (s)", "quiet_cpu", 2),
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
    p.add_argument("--charts", required=True, help="directory holding podinfo/ and app-template/")
    p.add_argument("--app-values", required=True, help="real values for app-template")
    p.add_argument("--logs", required=True)
    p.add_argument("--podinfo", type=int, default=24)
    p.add_argument("--app-template", type=int, default=6)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--quiet", type=int, default=60)
    p.add_argument("--ready-timeout", type=int, default=600)
    p.add_argument("--tools", default="helm-controller,sluice")
    args = p.parse_args()

    work = tempfile.mkdtemp(prefix="bench-hr-")
    kube = Kube(args.kubeconfig, work)
    # Every source kind (helm-controller watches HelmCharts and ExternalArtifacts too) and
    # HelmRelease, Flux's own CRDs.
    crds = sorted(f for f in os.listdir(args.flux_crds)
                  if f.startswith("source.toolkit.fluxcd.io_") or f.startswith("helm.toolkit.fluxcd.io_"))
    for f in crds:
        with open(os.path.join(args.flux_crds, f)) as fh:
            kube.apply_crd(yaml.safe_load(fh), "sluice-bench-helmrelease")

    served, sources = {}, {}
    for kind in ("podinfo", "app-template"):
        name, version, data = chart_tgz(os.path.join(args.charts, kind))
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = f"/charts/{name}-{version}.tgz"
        served[path] = data
        sources[kind] = (version, digest, path)
    server = serve(served)
    charts_url = f"http://127.0.0.1:{server.server_address[1]}"

    with open(args.app_values) as f:
        app_values = yaml.safe_load(f)

    def app(name, i):
        return app_template_values(app_values, name)

    mix = [("podinfo", podinfo_values)] * args.podinfo + [("app-template", app)] * args.app_template
    results = []
    for tool in args.tools.split(","):
        if tool == "helm-controller" and not args.helm_controller:
            continue
        results.append(run_one(tool, args, kube, charts_url, sources, mix))
    server.shutdown()
    report(results, len(mix))


if __name__ == "__main__":
    main()
