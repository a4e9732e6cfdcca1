"""What the benchmark observes: the stack's processes (/proc), the Kustomizations and
HelmReleases (one watch each), the API server (its audit log and its request metrics), the Git
server and the webhook the Alert posts to."""

import http.client
import http.server
import json
import os
import re
import socketserver
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone

# The helpers bench/ocirepository already has (its module is named `bench` too).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ocirepository"))
from bench import Sampler, proc_cpu, proc_mem  # noqa: E402

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


def proc_anon(pid):
    """RssAnon in MiB: the process's private memory (heap, stacks), without the pages of its
    executable and libraries that RSS also counts (file-backed, shared, dropped by the kernel
    under pressure)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Stack(Sampler):
    """The processes of one stack, sampled together: RSS summed every `period` seconds (and
    their private memory, RssAnon, beside it)."""

    def __init__(self, procs, period=0.5):
        self.procs = procs  # name -> Popen
        self.anon = []  # (time, summed RssAnon MiB)
        super().__init__(None, period)

    def _sample(self):
        now = time.time()
        self.anon.append((now, sum(proc_anon(p.pid) for p in self.procs.values())))
        return sum(proc_mem(p.pid)[0] for p in self.procs.values())

    def anon_peak(self):
        return max((r for _, r in self.anon), default=float("nan"))

    def anon_between(self, t0, t1):
        return [r for t, r in self.anon if t0 <= t <= t1]

    def cpu(self):
        return sum(proc_cpu(p.pid) for p in self.procs.values())

    def rss(self):
        return self._sample()

    def hwm(self):
        """Sum of each process's own peak (an upper bound of the stack's peak)."""
        return sum(proc_mem(p.pid)[1] for p in self.procs.values())

    def peak(self):
        return max((r for _, r in self.samples), default=float("nan"))

    def dead(self):
        return [n for n, p in self.procs.items() if p.poll() is not None]


# ------------------------------------------------- Kustomizations, HelmReleases

KS_PATH = "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations"
HR_PATH = "/apis/helm.toolkit.fluxcd.io/v2/helmreleases"


def ready_revision(obj):
    """The revision a Kustomization is Ready at, or None."""
    st = obj.get("status") or {}
    for c in st.get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "True":
            return st.get("lastAppliedRevision")
    return None


def ready_generation(obj):
    """`"ready"` when the object is Ready for its current generation (a HelmRelease), else
    None."""
    st = obj.get("status") or {}
    if st.get("observedGeneration") != obj["metadata"].get("generation"):
        return None
    for c in st.get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "True":
            return "ready"
    return None


class Watcher:
    """Watches every object of `path` (the Kustomizations by default) and records, to the
    tenth of a millisecond, when each was first seen Ready at each revision (`revision(obj)`):
    the harness's clock, not the seconds the objects' conditions carry. Objects are known by
    name (unique in this benchmark)."""

    def __init__(self, kube, path=KS_PATH, revision=ready_revision):
        self.kube = kube
        self.path = path
        self.revision = revision
        self.lock = threading.Condition()
        self.first_ready = {}  # (name, revision) -> time
        self.latest = {}  # name -> object
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _record(self, obj, now):
        name = obj["metadata"]["name"]
        rev = self.revision(obj)
        with self.lock:
            self.latest[name] = obj
            if rev and (name, rev) not in self.first_ready:
                self.first_ready[(name, rev)] = now
            self.lock.notify_all()

    def _run(self):
        while not self.stop_ev.is_set():
            try:
                lst = self.kube.request("GET", self.path)
                now = time.time()
                for o in lst["items"]:
                    self._record(o, now)
                rv = lst["metadata"]["resourceVersion"]
                conn = http.client.HTTPSConnection(self.kube.host, self.kube.port,
                                                   context=self.kube.ctx, timeout=30)
                conn.request("GET", f"{self.path}?watch=1&allowWatchBookmarks=true"
                             f"&timeoutSeconds=120&resourceVersion={rv}",
                             headers={"Accept": "application/json", "User-Agent": "bench-vs-flux"})
                r = conn.getresponse()
                if r.status != 200:
                    raise RuntimeError(f"watch: {r.status}")
                while not self.stop_ev.is_set():
                    line = r.readline()
                    if not line:
                        break
                    ev = json.loads(line)
                    if ev.get("type") in ("ADDED", "MODIFIED"):
                        self._record(ev["object"], time.time())
                conn.close()
            except Exception:  # noqa: BLE001 - a watch is re-established, whatever ended it
                if self.stop_ev.wait(0.5):
                    return

    def wait(self, names, rev, timeout, check=None):
        """Waits until every name was seen Ready at `rev`; returns the time the last one was.
        `check()` raises when the run must end (a process died)."""
        deadline = time.time() + timeout
        with self.lock:
            while True:
                missing = [n for n in names if (n, rev) not in self.first_ready]
                if not missing:
                    return max(self.first_ready[(n, rev)] for n in names)
                left = deadline - time.time()
                if left <= 0:
                    sample = {n: (self.latest.get(n, {}).get("status") or {}).get("conditions")
                              for n in missing[:3]}
                    raise TimeoutError(f"{len(missing)}/{len(names)} not Ready at {rev} after "
                                       f"{timeout:.0f}s, e.g. {json.dumps(sample)[:1500]}")
                self.lock.wait(min(1.0, left))
                if check:
                    self.lock.release()
                    try:
                        check()
                    finally:
                        self.lock.acquire()

    def ready_at(self, name, rev):
        with self.lock:
            return self.first_ready.get((name, rev))

    def stop(self):
        self.stop_ev.set()


# ------------------------------------------------------------------ API server


def _ts(s):
    # 2026-12-03T09:41:07.123456Z
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def who(user_agent):
    """The component a request came from, by its user agent: `sluice-controller/…`,
    `source-controller/…`, `kustomize-controller/…`, `helm-controller/…`,
    `notification-controller/…`; the local control plane's own
    components (kube-controller-manager, scheduler, node simulator) run inside one binary
    and all say `sluice-testenv/…`; the harness says `bench-vs-flux` or nothing."""
    ua = (user_agent or "").lower()
    for prefix, name in (("sluice-controller/", "sluice"), ("sluice-testenv", "control plane"),
                         ("kustomize-controller/", "kustomize-controller"),
                         ("source-controller/", "source-controller"),
                         ("helm-controller/", "helm-controller"),
                         ("notification-controller/", "notification-controller"),
                         ("kube-apiserver", "kube-apiserver"), ("bench-vs-flux", "harness"),
                         ("python", "harness")):
        if ua.startswith(prefix):
            return name
    return ua.split("/")[0] or "harness"


class Audit:
    """The API server's audit log (scripts/testenv up --audit-log), read incrementally:
    one record per request (by audit id): time, verb (`dry-run patch` for a server-side
    dry run: not a write), resource, component (by user agent), response code, object name."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.requests = {}  # auditID -> (time, verb, resource, component, code)

    def read(self):
        if not os.path.exists(self.path):
            return
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            aid = ev.get("auditID")
            if aid in self.requests:
                continue
            ref = ev.get("objectRef") or {}
            res = ref.get("resource", "")
            if ref.get("subresource"):
                res += "/" + ref["subresource"]
            if ref.get("apiGroup"):
                res += "." + ref["apiGroup"]
            verb = ev.get("verb", "")
            if "dryRun=" in ev.get("requestURI", ""):
                # A server-side dry run (what both stacks diff with) changes nothing.
                verb = "dry-run " + verb
            code = (ev.get("responseStatus") or {}).get("code", 0)
            self.requests[aid] = (_ts(ev["requestReceivedTimestamp"]), verb, res,
                                  who(ev.get("userAgent")), code, ref.get("name", ""))

    def window(self, t0, t1, components):
        self.read()
        return [r for r in self.requests.values() if t0 <= r[0] <= t1 and r[3] in components]

    def agents(self, t0, t1):
        self.read()
        out = {}
        for r in self.requests.values():
            if t0 <= r[0] <= t1:
                out[r[3]] = out.get(r[3], 0) + 1
        return out


def first_touches(requests, resource, suffix):
    """name -> sorted times at which the stack touched the object `<name><suffix>` of
    `resource` (any verb)."""
    out = {}
    for t, _, res, _, _, name in requests:
        if res == resource and name.endswith(suffix):
            out.setdefault(name[: len(name) - len(suffix)], []).append(t)
    for ts in out.values():
        ts.sort()
    return out


def summarize(requests):
    by_verb = {}
    by_resource = {}
    for _, verb, res, _, _, _ in requests:
        by_verb[verb] = by_verb.get(verb, 0) + 1
        if verb in WRITE_VERBS:
            key = f"{verb} {res}"
            by_resource[key] = by_resource.get(key, 0) + 1
    writes = sum(n for v, n in by_verb.items() if v in WRITE_VERBS)
    dry_runs = sum(n for v, n in by_verb.items() if v.startswith("dry-run "))
    return {"total": len(requests), "writes": writes, "dry_runs": dry_runs, "by_verb": by_verb,
            "writes_by_resource": by_resource}


METRIC = re.compile(r'^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$')


def request_totals(kube):
    """apiserver_request_total summed by verb (the API server's own counter, all clients)."""
    conn = http.client.HTTPSConnection(kube.host, kube.port, context=kube.ctx, timeout=30)
    conn.request("GET", "/metrics", headers={"User-Agent": "bench-vs-flux"})
    body = conn.getresponse().read().decode()
    conn.close()
    out = {}
    for line in body.splitlines():
        m = METRIC.match(line)
        if not m:
            continue
        labels = dict(kv.split("=", 1) for kv in re.findall(r'\w+="[^"]*"', m.group(1)))
        verb = labels.get("verb", '""').strip('"')
        out[verb] = out.get(verb, 0) + float(m.group(2))
    return out


def delta(a, b):
    return {k: int(b.get(k, 0) - a.get(k, 0)) for k in set(a) | set(b) if b.get(k, 0) != a.get(k, 0)}


# ------------------------------------------------------------------ Git server


def serve_git(project_root):
    """Smart HTTP for the bare repositories under `project_root`, through `git http-backend`
    (read-only), on 127.0.0.1; returns (server, port). Every request is counted."""

    backend = "/usr/lib/git-core/git-http-backend"
    counts = {"requests": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args):
            pass

        def _cgi(self):
            counts["requests"] += 1
            url = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            env = {
                "GIT_PROJECT_ROOT": project_root, "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": urllib.parse.unquote(url.path), "QUERY_STRING": url.query,
                "REQUEST_METHOD": self.command, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1",
                "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            }
            if self.headers.get("Content-Encoding"):
                env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
            out = subprocess.run([backend], input=body, env=env, capture_output=True).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            if not _:
                head, _, payload = out.partition(b"\n\n")
            status = 200
            headers = []
            for line in head.decode("latin-1").splitlines():
                k, _, v = line.partition(":")
                if k.lower() == "status":
                    status = int(v.strip().split()[0])
                elif k:
                    headers.append((k, v.strip()))
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _cgi
        do_POST = _cgi

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    srv = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    srv.counts = counts
    return srv, srv.server_address[1]


# ------------------------------------------------------------------- webhook


class Webhook:
    """Where the Alert's generic Provider posts: every event is kept as (time, involved
    object's kind, reason, name, metadata keys); answers 200."""

    def __init__(self):
        self.lock = threading.Lock()
        self.events = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    ev = json.loads(body)
                    obj = ev.get("involvedObject") or {}
                    kind, name = obj.get("kind", "?"), obj.get("name", "?")
                    reason = ev.get("reason", "?")
                    keys = sorted(ev.get("metadata") or {})
                except ValueError:
                    kind, reason, name, keys = "?", "not JSON", "?", []
                with hook.lock:
                    hook.events.append((time.time(), kind, reason, name, keys))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self):
        with self.lock:
            self.events = []

    def summary(self, t0=0.0, t1=float("inf"), detail=False):
        """Counts by kind and by kind and reason; with `detail`, every event too."""
        with self.lock:
            evs = [e for e in self.events if t0 <= e[0] <= t1]
        by_kind, by_reason = {}, {}
        for _, kind, reason, _, _ in evs:
            by_kind[kind] = by_kind.get(kind, 0) + 1
            by_reason[f"{kind} {reason}"] = by_reason.get(f"{kind} {reason}", 0) + 1
        out = {"total": len(evs), "by_kind": by_kind, "by_reason": by_reason}
        if detail:
            out["events"] = [list(e) for e in evs]
        return out

    def stop(self):
        self.server.shutdown()
