#!/usr/bin/env python3
"""Notification benchmark: `sluice controller --notification` against Flux's notification-controller.

The same burst of events, posted to each one's event endpoint as Flux's controllers post them
(JSON over HTTP), with one Alert taking every Kustomization event and sending it to a
`generic` Provider: a local HTTP sink that counts what arrives. Each burst is N distinct
events and N exact repeats, all sent within one second. For each tool: how the endpoint
answered (202 queued, 429 repeat), its answer latency (p50, p99, max: the endpoint must never
wait for a delivery), the time from the first post to the last delivery, the notifications
delivered (target N: every distinct event once, no repeat), CPU seconds, and memory: idle,
peak, and after each of two bursts (flat: the second burst must not grow it).
See bench/notify/README.md.
"""

import argparse
import http.client
import http.server
import json
import multiprocessing
import os
import random
import socketserver
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ocirepository"))
from bench import Kube, free_port, log, proc_cpu, proc_mem, stop_run, wait_http  # noqa: E402

PROVIDERS = "/apis/notification.toolkit.fluxcd.io/v1beta3/namespaces/{ns}/providers"
ALERTS = "/apis/notification.toolkit.fluxcd.io/v1beta3/namespaces/{ns}/alerts"


def _serve_sink(port_out, count, last):
    """The sink, in a process of its own: it must not share the poster's interpreter lock,
    or the faster a tool delivers, the slower its endpoint would seem to answer."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 - http.server's name
            n = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(n)
            with count.get_lock():
                count.value += 1
                last.value = time.time()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        # Both controllers open tens of connections at once; the default backlog (5)
        # would refuse some and measure the sink's retries, not the controllers.
        request_queue_size = 1024

    server = Server(("127.0.0.1", 0), Handler)
    port_out.value = server.server_address[1]
    server.serve_forever()


class Sink:
    """Counts the notifications that arrive (the `generic` Provider's address)."""

    def __init__(self):
        self._count = multiprocessing.Value("i", 0)
        self._last = multiprocessing.Value("d", 0.0)
        port = multiprocessing.Value("i", 0)
        self.proc = multiprocessing.Process(
            target=_serve_sink, args=(port, self._count, self._last), daemon=True)
        self.proc.start()
        while port.value == 0:
            time.sleep(0.01)
        self.port = port.value

    @property
    def last(self):
        return self._last.value

    def count(self):
        return self._count.value

    def reset(self):
        with self._count.get_lock():
            self._count.value = 0
            self._last.value = 0.0


def event(ns, i, burst):
    return json.dumps({
        "involvedObject": {"kind": "Kustomization", "namespace": ns, "name": f"app-{i % 50}",
                           "uid": f"uid-{i % 50}", "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
        "severity": "info" if i % 5 else "error",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "message": f"burst {burst} event {i}: Deployment/apps/web-{i} configured",
        "reason": "ReconciliationSucceeded",
        "metadata": {"kustomize.toolkit.fluxcd.io/revision": f"main@sha1:{i:040x}"},
        "reportingController": "kustomize-controller",
        "reportingInstance": "bench",
    }).encode()


def burst(port, bodies, seconds=1.0, workers=8):
    """Posts `bodies` evenly over `seconds` from `workers` keep-alive connections; the status
    and latency of each post."""
    start = time.time()
    per = len(bodies) / workers
    results = []
    lock = threading.Lock()

    def work(w):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = bodies[int(w * per):int((w + 1) * per)]
        out = []
        for k, body in enumerate(mine):
            due = start + seconds * (k / max(len(mine), 1))
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            t = time.time()
            try:
                conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                status = r.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 0
            out.append((status, time.time() - t))
        conn.close()
        with lock:
            results.extend(out)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(work, range(workers)))
    return start, time.time() - start, results


def run_one(tool, args, kube, sink):
    ns = f"bench-notify-{tool}-{os.getpid()}-{random.randrange(1 << 16):04x}"
    log(f"{tool}: namespace {ns}")
    kube.create_namespace(ns)
    kube.request("POST", PROVIDERS.format(ns=ns), {
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
        "metadata": {"name": "sink", "namespace": ns},
        "spec": {"type": "generic", "address": f"http://127.0.0.1:{sink.port}/hook"},
    })
    kube.request("POST", ALERTS.format(ns=ns), {
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
        "metadata": {"name": "all", "namespace": ns},
        "spec": {"providerRef": {"name": "sink"}, "eventSources": [{"kind": "Kustomization", "name": "*"}]},
    })
    mport, hport, eport, rport = free_port(), free_port(), free_port(), free_port()
    env = dict(os.environ, KUBECONFIG=args.kubeconfig, NO_COLOR="1")
    if tool == "sluice":
        cmd = [args.sluice, "--log-level", "warn", "controller", "--watch-namespace", ns,
               "--source=false", "--kustomization=false", "--reloader=false", "--notification",
               "--receiver-addr", f"127.0.0.1:{rport}", "--notification-events-addr", f"127.0.0.1:{eport}",
               "--metrics-addr", f"127.0.0.1:{mport}", "--health-addr", f"127.0.0.1:{hport}"]
    else:
        env["RUNTIME_NAMESPACE"] = ns
        cmd = [args.notification_controller, "--watch-all-namespaces=false",
               "--enable-leader-election=false", "--log-level", "error",
               "--events-addr", f"127.0.0.1:{eport}", "--receiverAddr", f"127.0.0.1:{rport}",
               "--metrics-addr", f"127.0.0.1:{mport}", "--health-addr", f"127.0.0.1:{hport}"]
    logf = open(os.path.join(args.logs, f"{tool}.log"), "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
    result = {"tool": tool}
    try:
        wait_http(hport, "/readyz", proc)
        time.sleep(3)
        result["idle_rss"] = proc_mem(proc.pid)[0]
        cpu0 = proc_cpu(proc.pid)
        rss_after = []
        for b in (1, 2):
            sink.reset()
            distinct = [event(ns, i, b) for i in range(args.events)]
            bodies = distinct + distinct  # every event twice: the repeat must be dropped
            random.Random(b).shuffle(bodies)
            start, took, posts = burst(eport, bodies)
            deadline = time.time() + args.timeout
            while sink.count() < args.events and time.time() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"{tool} exited ({proc.returncode}); see {logf.name}")
                time.sleep(0.05)
            time.sleep(2)  # late repeats, if any, would arrive now
            delivered = sink.count()
            lat = sorted(p[1] for p in posts)
            codes = {}
            for status, _ in posts:
                codes[status] = codes.get(status, 0) + 1
            if b == 1:
                result.update({
                    "posted_in_s": took,
                    "codes": codes,
                    "p50_ms": 1000 * statistics.median(lat),
                    "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))],
                    "max_ms": 1000 * lat[-1],
                    "delivered": delivered,
                    "all_delivered_s": (sink.last - start) if delivered else float("nan"),
                })
            else:
                result["delivered_2"] = delivered
            rss_after.append(proc_mem(proc.pid)[0])
            log(f"{tool}: burst {b}: posted {len(bodies)} in {took:.2f}s {codes}, "
                f"delivered {delivered}/{args.events} in {sink.last - start:.2f}s")
        result["cpu"] = proc_cpu(proc.pid) - cpu0
        result["rss_after"] = rss_after
        result["peak_rss"] = proc_mem(proc.pid)[1]
    finally:
        stop_run(kube, ns, proc, None, logf)
    return result


def report(results, events):
    mib = 1  # proc_mem reports MiB
    rows = [
        ("answered 202 (queued)", lambda r: f"{r['codes'].get(202, 0)}"),
        ("answered 429 (repeat)", lambda r: f"{r['codes'].get(429, 0)}"),
        ("other answers", lambda r: f"{sum(v for k, v in r['codes'].items() if k not in (202, 429))}"),
        ("answer p50 / p99 / max (ms)", lambda r: f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f} / {r['max_ms']:.1f}"),
        (f"delivered (of {events})", lambda r: f"{r['delivered']} / {r['delivered_2']}"),
        ("first post to last delivery (s)", lambda r: f"{r['all_delivered_s']:.2f}"),
        ("CPU, both bursts (s)", lambda r: f"{r['cpu']:.2f}"),
        ("RSS idle (MiB)", lambda r: f"{r['idle_rss'] / mib:.1f}"),
        ("RSS after burst 1 / 2 (MiB)", lambda r: f"{r['rss_after'][0] / mib:.1f} / {r['rss_after'][1] / mib:.1f}"),
        ("peak RSS (MiB)", lambda r: f"{r['peak_rss'] / mib:.1f}"),
    ]
    tools = [r["tool"] for r in results]
    width = max(len(r[0]) for r in rows) + 2
    print(f"\n{'':<{width}}" + "".join(f"{t:>26}" for t in tools))
    for name, f in rows:
        print(f"{name:<{width}}" + "".join(f"{f(r):>26}" for r in results))
    by = {r["tool"]: r for r in results}
    if "sluice" in by and "notification-controller" in by:
        s, f = by["sluice"], by["notification-controller"]
        print("\nsluice / notification-controller:")
        print(f"  time to last delivery {s['all_delivered_s'] / f['all_delivered_s']:.2f}, "
              f"CPU {s['cpu'] / max(f['cpu'], 1e-9):.2f}, "
              f"peak RSS {s['peak_rss'] / f['peak_rss']:.2f}, "
              f"idle RSS {s['idle_rss'] / f['idle_rss']:.2f}, "
              f"p99 answer {s['p99_ms'] / max(f['p99_ms'], 1e-9):.2f}")
    for r in results:
        growth = (r["rss_after"][1] - r["rss_after"][0]) / mib
        print(f"{r['tool']}: memory after the second burst {growth:+.1f} MiB against the first")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sluice", required=True)
    p.add_argument("--notification-controller")
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--flux-crds", required=True)
    p.add_argument("--logs", required=True)
    p.add_argument("--events", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--tools", default="notification-controller,sluice")
    args = p.parse_args()
    kube = Kube(args.kubeconfig, args.logs)
    import yaml
    for name in ("providers", "alerts", "receivers"):
        with open(os.path.join(args.flux_crds, f"notification.toolkit.fluxcd.io_{name}.yaml")) as f:
            kube.apply_crd(yaml.safe_load(f), "bench-notify")
    sink = Sink()
    results = []
    for tool in args.tools.split(","):
        if tool == "notification-controller" and not args.notification_controller:
            continue
        results.append(run_one(tool, args, kube, sink))
    report(results, args.events)
    bad = [r["tool"] for r in results if r["delivered"] != args.events or r["delivered_2"] != args.events]
    if bad:
        print(f"\nFAIL: {', '.join(bad)} did not deliver every distinct event exactly once")
        sys.exit(1)


if __name__ == "__main__":
    main()
