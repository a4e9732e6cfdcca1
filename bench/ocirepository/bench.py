#!/usr/bin/env python3
"""OCIRepository benchmark: sluice against Flux's source-controller.

N OCIRepositories (default 150) on a 1-minute interval, each its own chart
repository in one local registry (Debian's docker-registry, distribution
v2.8), reconciled once by `sluice controller` and once by Flux's
source-controller, on the same control plane and registry, one after the
other. For each: the time from creating the objects to all Ready, the
controller process's CPU seconds and resident memory (from /proc), and what
the registry sees (through a counting proxy in front of it) per no-change
poll. See bench/ocirepository/README.md.

Only the Python standard library and PyYAML; the Kubernetes API is spoken
directly (client certificates from the kubeconfig).
"""

import argparse
import base64
import gzip
import hashlib
import http.client
import http.server
import io
import json
import os
import random
import signal
import socket
import socketserver
import ssl
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse

import yaml

CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
CHART_CONFIG = "application/vnd.cncf.helm.config.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- Kubernetes


class Kube:
    """Just enough of the Kubernetes API: JSON requests with the
    kubeconfig's client certificate."""

    def __init__(self, kubeconfig, workdir):
        with open(kubeconfig) as f:
            cfg = yaml.safe_load(f)
        ctx_name = cfg.get("current-context")
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
        url = urllib.parse.urlparse(cluster["server"])
        self.host, self.port = url.hostname, url.port or 443
        self.ctx = ssl.create_default_context()
        if "certificate-authority-data" in cluster:
            self.ctx.load_verify_locations(
                cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
            )
        elif "certificate-authority" in cluster:
            self.ctx.load_verify_locations(cafile=cluster["certificate-authority"])
        cert, key = user.get("client-certificate"), user.get("client-key")
        if "client-certificate-data" in user:
            cert = os.path.join(workdir, "client.crt")
            key = os.path.join(workdir, "client.key")
            for path, field in ((cert, "client-certificate-data"), (key, "client-key-data")):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(base64.b64decode(user[field]))
        if cert:
            self.ctx.load_cert_chain(cert, key)
        self.token = user.get("token")
        self.local = threading.local()

    def _conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=60)
            self.local.conn = c
        return c

    def request(self, method, path, body=None, content_type="application/json", ok=(200, 201, 202)):
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        for attempt in range(3):
            try:
                c = self._conn()
                c.request(method, path, body=data, headers=headers)
                r = c.getresponse()
                raw = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.local.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.5)
        if r.status not in ok:
            raise RuntimeError(f"{method} {path}: {r.status} {raw[:500]!r}")
        return json.loads(raw) if raw else None

    def apply_crd(self, crd, manager):
        name = crd["metadata"]["name"]
        self.request(
            "PATCH",
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
            f"?fieldManager={manager}&force=true",
            body=crd,
            content_type="application/apply-patch+yaml",
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            got = self.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conds = (got.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conds):
                return
            time.sleep(0.2)
        raise RuntimeError(f"CRD {name} not Established")

    def create_namespace(self, name):
        self.request(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": name, "labels": {"sluice.dev/test": "true"}}},
        )

    def delete_namespace(self, name):
        self.request("DELETE", f"/api/v1/namespaces/{name}", ok=(200, 202, 404))


OCI_PATH = "/apis/source.toolkit.fluxcd.io/v1/namespaces/{ns}/ocirepositories"


def is_ready(obj):
    st = obj.get("status") or {}
    if st.get("observedGeneration") != obj["metadata"].get("generation"):
        return False
    if not (st.get("artifact") or {}).get("revision"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])


# ------------------------------------------------------------------ registry


class Registry:
    """docker-registry on a free port, filesystem storage in `workdir`."""

    def __init__(self, binary, workdir):
        self.port = free_port()
        root = os.path.join(workdir, "registry")
        os.makedirs(root, exist_ok=True)
        config = os.path.join(workdir, "registry.yml")
        with open(config, "w") as f:
            f.write(
                "version: 0.1\n"
                "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
                f"storage:\n  filesystem:\n    rootdirectory: {root}\n"
                "  maintenance:\n    uploadpurging:\n      enabled: false\n"
                f"http:\n  addr: 127.0.0.1:{self.port}\n  secret: sluice-bench\n  relativeurls: true\n"
            )
        self.log = open(os.path.join(workdir, "registry.log"), "wb")
        self.proc = subprocess.Popen([binary, "serve", config], stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"docker-registry did not start; see {self.log.name}")
                time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def _req(self, conn, method, path, body=None, headers=None):
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        if r.status >= 300:
            raise RuntimeError(f"registry {method} {path}: {r.status} {data[:300]!r}")
        return r, data

    def push_blob(self, conn, repo, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        try:
            self._req(conn, "HEAD", f"/v2/{repo}/blobs/{digest}")
            return digest
        except RuntimeError:
            pass
        r, _ = self._req(conn, "POST", f"/v2/{repo}/blobs/uploads/", body=b"",
                         headers={"Content-Length": "0"})
        loc = r.getheader("Location")
        url = urllib.parse.urlparse(loc)
        q = url.query + ("&" if url.query else "") + "digest=" + urllib.parse.quote(digest)
        self._req(conn, "PUT", f"{url.path}?{q}", body=data,
                  headers={"Content-Type": "application/octet-stream",
                           "Content-Length": str(len(data))})
        return digest

    def push_chart(self, repo, name, version, tgz):
        """As `helm push`: a config blob (Chart.yaml as JSON), one chart
        layer, an OCI image manifest under the tag `version`."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        config = json.dumps({"name": name, "version": version, "apiVersion": "v2",
                             "type": "application"}, separators=(",", ":")).encode()
        cd = self.push_blob(conn, repo, config)
        ld = self.push_blob(conn, repo, tgz)
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": CHART_CONFIG, "digest": cd, "size": len(config)},
            "layers": [{"mediaType": CHART_LAYER, "digest": ld, "size": len(tgz)}],
            "annotations": {"org.opencontainers.image.title": name,
                            "org.opencontainers.image.version": version},
        }, separators=(",", ":")).encode()
        self._req(conn, "PUT", f"/v2/{repo}/manifests/{version}", body=manifest,
                  headers={"Content-Type": OCI_MANIFEST, "Content-Length": str(len(manifest))})
        conn.close()
        return f"{version}@sha256:{hashlib.sha256(manifest).hexdigest()}"


def chart_tgz(name, version, pad_bytes):
    """A chart archive as `helm package` lays it out: <name>/Chart.yaml,
    values.yaml and templates/ (a ConfigMap; `pad_bytes` of values so the
    archive has a realistic size)."""
    rnd = random.Random(name)
    files = {
        f"{name}/Chart.yaml": f"apiVersion: v2\nname: {name}\nversion: {version}\ntype: application\n",
        f"{name}/values.yaml": "settings:\n" + "".join(
            f"  key{i}: {rnd.getrandbits(64):016x}\n" for i in range(max(1, pad_bytes // 24))),
        f"{name}/templates/configmap.yaml":
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n"
            "data:\n{{- range $k, $v := .Values.settings }}\n  {{ $k }}: {{ $v | quote }}\n{{- end }}\n",
    }
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w") as tar:
            for path, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(path)
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# ------------------------------------------------------------ counting proxy


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.requests = []  # (time, method, repo, kind, status, bytes_in, bytes_out)
            self.connections = 0

    def add(self, rec):
        with self.lock:
            self.requests.append(rec)

    def connection(self):
        with self.lock:
            self.connections += 1

    def snapshot(self):
        with self.lock:
            return list(self.requests), self.connections


def classify(path):
    """(repository, kind) of a registry API path."""
    p = urllib.parse.urlparse(path).path
    if p in ("/v2", "/v2/"):
        return "", "ping"
    if p.startswith("/v2/"):
        for marker, kind in (("/manifests/", "manifest"), ("/blobs/uploads", "upload"),
                             ("/blobs/", "blob"), ("/tags/list", "tags")):
            i = p.find(marker)
            if i >= 0:
                return p[4:i], kind
    return "", "other"


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream_port = 0
    counter = None

    def setup(self):
        super().setup()
        self.counter.connection()
        self.upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)

    def log_message(self, *args):
        pass

    def _forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        bytes_in = len(self.requestline) + 2 + len(str(self.headers)) + length
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("connection", "keep-alive", "proxy-connection")}
        try:
            self.upstream.request(self.command, self.path, body=body, headers=headers)
            r = self.upstream.getresponse()
            data = r.read()
        except (http.client.HTTPException, OSError):
            self.upstream.close()
            self.upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
            self.upstream.request(self.command, self.path, body=body, headers=headers)
            r = self.upstream.getresponse()
            data = r.read()
        self.send_response_only(r.status, r.reason)
        out_headers = [(k, v) for k, v in r.getheaders()
                       if k.lower() not in ("connection", "keep-alive", "transfer-encoding",
                                            "content-length")]
        length_header = r.getheader("Content-Length")
        if self.command == "HEAD" and length_header is not None:
            out_headers.append(("Content-Length", length_header))
        else:
            out_headers.append(("Content-Length", str(len(data))))
        for k, v in out_headers:
            self.send_header(k, v)
        self.end_headers()
        head_bytes = len(f"HTTP/1.1 {r.status} {r.reason}\r\n") + sum(
            len(k) + len(v) + 4 for k, v in out_headers) + 2
        if self.command != "HEAD":
            self.wfile.write(data)
        repo, kind = classify(self.path)
        self.counter.add((time.time(), self.command, repo, kind, r.status, bytes_in,
                          head_bytes + (0 if self.command == "HEAD" else len(data))))

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward


class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def start_proxy(upstream_port, counter):
    handler = type("Handler", (ProxyHandler,), {"upstream_port": upstream_port, "counter": counter})
    server = ThreadingServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def polls_in(requests, gap=10.0):
    """Requests grouped into polls: per repository, a run of requests with
    less than `gap` seconds between them is one poll."""
    by_repo = {}
    for rec in requests:
        if rec[2]:
            by_repo.setdefault(rec[2], []).append(rec[0])
    polls = 0
    for times in by_repo.values():
        times.sort()
        polls += 1
        polls += sum(1 for a, b in zip(times, times[1:]) if b - a > gap)
    return polls


# ---------------------------------------------------------------- processes


def proc_cpu(pid):
    """utime + stime (+ reaped children's) in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is state (field 3); utime is field 14.
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK


def proc_status_mib(pid, *keys):
    """The kB fields `keys` of /proc/PID/status (such as "VmRSS"), in MiB; 0 when absent."""
    found = dict.fromkeys(keys, 0.0)
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in found:
                found[key] = int(value.split()[0]) / 1024
    return tuple(found[k] for k in keys)


def proc_mem(pid):
    """(VmRSS, VmHWM) in MiB."""
    return proc_status_mib(pid, "VmRSS", "VmHWM")


def proc_threads(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


class Sampler:
    """RSS of `pid` every `period` seconds, in a thread."""

    def __init__(self, pid, period=1.0):
        self.pid, self.period = pid, period
        self.samples = []  # (time, rss MiB)
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _sample(self):
        return proc_mem(self.pid)[0]

    def _run(self):
        while not self.stop_ev.is_set():
            try:
                self.samples.append((time.time(), self._sample()))
            except OSError:
                return
            self.stop_ev.wait(self.period)

    def stop(self):
        self.stop_ev.set()
        self.thread.join()

    def between(self, t0, t1):
        return [r for t, r in self.samples if t0 <= t <= t1]


def wait_http(port, path, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the controller exited ({proc.returncode}) while starting")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no 200 from 127.0.0.1:{port}{path} within {timeout}s")


# --------------------------------------------------------------------- a run


def delete_all(kube, path, timeout):
    """Deletes every object of a collection and waits (up to timeout seconds) for them to go,
    while the controller under test still runs (it removes its finalizers)."""
    kube.request("DELETE", path, ok=(200, 202))
    deadline = time.time() + timeout
    while kube.request("GET", path)["items"] and time.time() < deadline:
        time.sleep(0.5)


def stop_run(kube, ns, proc, sampler, logf):
    """The end of a run, whatever happened: sampling stopped, the controller terminated
    (killed after 30 s), its log closed, the namespace deleted."""
    if sampler:
        sampler.stop()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    logf.close()
    try:
        kube.delete_namespace(ns)
    except Exception as e:  # noqa: BLE001 - cleanup must not hide the result
        log(f"deleting namespace {ns}: {e}")


def run_one(tool, args, kube, registry, proxy, counter, revisions, workdir):
    ns = f"bench-oci-{tool}-{os.getpid()}-{random.randrange(1 << 16):04x}"
    log(f"{tool}: namespace {ns}")
    kube.create_namespace(ns)
    storage = tempfile.mkdtemp(prefix=f"storage-{tool}-", dir=workdir)
    sport, mport, hport = free_port(), free_port(), free_port()
    env = dict(os.environ, KUBECONFIG=args.kubeconfig, NO_COLOR="1")
    if tool == "sluice":
        cmd = [args.sluice, "--log-level", "info", "controller", "--watch-namespace", ns,
               "--kustomization=false", "--reloader=false",
               "--storage-path", storage, "--storage-addr", f"127.0.0.1:{sport}",
               "--storage-adv-addr", f"127.0.0.1:{sport}",
               "--metrics-addr", f"127.0.0.1:{mport}", "--health-addr", f"127.0.0.1:{hport}"]
    else:
        env["RUNTIME_NAMESPACE"] = ns
        cmd = [args.source_controller, "--watch-all-namespaces=false",
               "--enable-leader-election=false", "--log-level", "info",
               "--storage-path", storage, "--storage-addr", f"127.0.0.1:{sport}",
               "--storage-adv-addr", f"127.0.0.1:{sport}",
               "--metrics-addr", f"127.0.0.1:{mport}", "--health-addr", f"127.0.0.1:{hport}"]
    logf = open(os.path.join(args.logs, f"{tool}.log"), "wb")
    t_start = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
    result = {"tool": tool}
    sampler = None
    try:
        wait_http(hport, "/readyz", proc)
        result["startup_s"] = time.time() - t_start
        time.sleep(2)
        sampler = Sampler(proc.pid)
        cpu0 = proc_cpu(proc.pid)
        result["idle_rss"] = proc_mem(proc.pid)[0]
        result["idle_threads"] = proc_threads(proc.pid)

        # Create every OCIRepository, then wait for all Ready.
        counter.reset()
        t0 = time.time()
        host = f"127.0.0.1:{proxy.server_address[1]}"
        for i in range(args.count):
            name = f"chart-{i:03d}"
            kube.request("POST", OCI_PATH.format(ns=ns), {
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "OCIRepository",
                "metadata": {"name": name, "namespace": ns},
                "spec": {
                    "interval": args.interval,
                    "timeout": "60s",
                    "url": f"oci://{host}/bench/{name}",
                    "ref": {"tag": "1.0.0"},
                    "insecure": True,
                    "layerSelector": {"mediaType": CHART_LAYER, "operation": "copy"},
                },
            })
        created = time.time() - t0
        deadline = t0 + args.ready_timeout
        while True:
            items = kube.request("GET", OCI_PATH.format(ns=ns))["items"]
            ready = [o for o in items if is_ready(o)]
            if len(ready) == args.count:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"{tool} exited ({proc.returncode}); see {logf.name}")
            if time.time() > deadline:
                bad = [o for o in items if not is_ready(o)][:3]
                raise RuntimeError(f"{tool}: {len(ready)}/{args.count} Ready after "
                                   f"{args.ready_timeout}s; e.g. {json.dumps([o.get('status') for o in bad])[:1500]}")
            time.sleep(0.5)
        t_ready = time.time()
        result["create_s"] = created
        result["ready_s"] = t_ready - t0
        result["initial_cpu"] = proc_cpu(proc.pid) - cpu0
        initial_reqs, initial_conns = counter.snapshot()
        result["initial_requests"] = len(initial_reqs)
        result["initial_blob_gets"] = sum(1 for r in initial_reqs if r[3] == "blob" and r[1] == "GET")
        got = {o["metadata"]["name"]: o["status"]["artifact"]["revision"] for o in items}
        wrong = [n for n, rev in got.items() if rev != revisions[n]]
        if wrong:
            raise RuntimeError(f"{tool}: unexpected revisions for {wrong[:5]}: "
                               f"{[got[n] for n in wrong[:5]]}")
        result["revisions"] = got
        log(f"{tool}: {args.count} Ready in {result['ready_s']:.1f}s; steady for {args.minutes} min")

        # Steady state: nothing changes for `minutes`.
        counter.reset()
        cpu1 = proc_cpu(proc.pid)
        t1 = time.time()
        end = t1 + args.minutes * 60
        while time.time() < end:
            if proc.poll() is not None:
                raise RuntimeError(f"{tool} exited ({proc.returncode}); see {logf.name}")
            time.sleep(min(5, max(0.1, end - time.time())))
        t2 = time.time()
        result["steady_cpu"] = proc_cpu(proc.pid) - cpu1
        result["steady_min"] = (t2 - t1) / 60
        rss = sampler.between(t1, t2)
        result["steady_rss"] = statistics.median(rss) if rss else float("nan")
        result["steady_rss_max"] = max(rss) if rss else float("nan")
        result["peak_rss"] = proc_mem(proc.pid)[1]
        result["steady_threads"] = proc_threads(proc.pid)
        reqs, conns = counter.snapshot()
        polls = polls_in(reqs)
        result["polls"] = polls
        result["requests"] = len(reqs)
        result["connections"] = conns
        result["bytes_out"] = sum(r[6] for r in reqs)
        result["bytes_in"] = sum(r[5] for r in reqs)
        kinds = {}
        for r in reqs:
            key = f"{r[1]} {r[3]}"
            kinds[key] = kinds.get(key, 0) + 1
        result["kinds"] = kinds
        items = kube.request("GET", OCI_PATH.format(ns=ns))["items"]
        still = sum(1 for o in items if is_ready(o)
                    and o["status"]["artifact"]["revision"] == revisions[o["metadata"]["name"]])
        result["still_ready"] = still

        # Clean up while the controller runs (it removes its finalizers).
        delete_all(kube, OCI_PATH.format(ns=ns), 120)
    finally:
        stop_run(kube, ns, proc, sampler, logf)
    return result


# ------------------------------------------------------------------- report


def fmt(v, digits=1):
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def report(results, args, chart_bytes):
    by = {r["tool"]: r for r in results}
    s, f = by.get("sluice"), by.get("source-controller")
    def per_poll(r, key):
        return r[key] / r["polls"] if r["polls"] else float("nan")
    rows = [
        ("start to /readyz, s", "startup_s", 2),
        ("create -> all Ready, s", "ready_s", 1),
        ("CPU s, create -> all Ready", "initial_cpu", 2),
        ("CPU s per minute, steady", lambda r: r["steady_cpu"] / r["steady_min"], 2),
        ("RSS MiB, idle before", "idle_rss", 1),
        ("RSS MiB, peak (VmHWM)", "peak_rss", 1),
        ("RSS MiB, steady (median)", "steady_rss", 1),
        ("threads, idle before", "idle_threads", 0),
        ("threads, end of steady window", "steady_threads", 0),
        ("registry requests, initial", "initial_requests", 0),
        ("no-change polls seen", "polls", 0),
        ("requests per poll", lambda r: per_poll(r, "requests"), 2),
        ("bytes per poll, from registry", lambda r: per_poll(r, "bytes_out"), 0),
        ("bytes per poll, to registry", lambda r: per_poll(r, "bytes_in"), 0),
        ("new connections per poll", lambda r: per_poll(r, "connections"), 2),
    ]
    print()
    print(f"{args.count} OCIRepositories, interval {args.interval}, steady window "
          f"{args.minutes} min, chart {chart_bytes} bytes")
    print(f"{'':34} {'sluice':>12} {'source-ctrl':>12} {'flux/sluice':>12}")
    for label, key, digits in rows:
        vals = []
        for r in (s, f):
            if r is None:
                vals.append(None)
            else:
                vals.append(key(r) if callable(key) else r[key])
        ratio = ""
        if None not in vals and isinstance(vals[0], (int, float)) and vals[0]:
            ratio = f"{vals[1] / vals[0]:.2f}x"
        cells = [("-" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v)))
                 for v in vals]
        print(f"{label:34} {cells[0]:>12} {cells[1]:>12} {ratio:>12}")
    for r in (s, f):
        if r is None:
            continue
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(r["kinds"].items()))
        print(f"  {r['tool']}: steady requests by kind: {kinds or 'none'}; "
              f"{r['still_ready']}/{args.count} still Ready at the same revision; "
              f"blob GETs while creating: {r['initial_blob_gets']}")
    if s and f:
        same = sum(1 for n, rev in s["revisions"].items() if f["revisions"].get(n) == rev)
        print(f"  revisions: {same}/{args.count} identical between the two")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--sluice", required=True)
    ap.add_argument("--source-controller")
    ap.add_argument("--registry", default="/usr/bin/docker-registry")
    ap.add_argument("--flux-crds", required=True, help="directory of Flux's CRD files")
    ap.add_argument("--count", type=int, default=150)
    ap.add_argument("--interval", default="1m")
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--ready-timeout", type=float, default=600)
    ap.add_argument("--chart-bytes", type=int, default=8192,
                    help="approximate size of values.yaml in each chart")
    ap.add_argument("--tools", default="source-controller,sluice")
    ap.add_argument("--logs", required=True)
    args = ap.parse_args()

    tools = [t for t in args.tools.split(",") if t]
    if "source-controller" in tools and not args.source_controller:
        ap.error("--source-controller is needed to run source-controller")
    os.makedirs(args.logs, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="sluice-bench-oci-")
    kube = Kube(args.kubeconfig, workdir)
    registry = Registry(args.registry, workdir)
    counter = Counter()
    proxy = start_proxy(registry.port, counter)
    results = []
    try:
        log(f"pushing {args.count} charts to 127.0.0.1:{registry.port}")
        revisions = {}
        chart_bytes = 0
        for i in range(args.count):
            name = f"chart-{i:03d}"
            tgz = chart_tgz(name, "1.0.0", args.chart_bytes)
            chart_bytes = len(tgz)
            revisions[name] = registry.push_chart(f"bench/{name}", name, "1.0.0", tgz)
        sluice_crds = [d for d in yaml.safe_load_all(subprocess.run(
            [args.sluice, "install", "--export"], check=True, capture_output=True, text=True).stdout)
            if d and d.get("kind") == "CustomResourceDefinition"]
        flux_crds = []
        for fn in sorted(os.listdir(args.flux_crds)):
            if fn.startswith("source.toolkit.fluxcd.io_") and fn.endswith(".yaml"):
                with open(os.path.join(args.flux_crds, fn)) as f:
                    flux_crds.extend(d for d in yaml.safe_load_all(f) if d)
        for tool in tools:
            # One field manager for both sets: applying the other's CRDs
            # replaces them whole.
            for crd in (sluice_crds if tool == "sluice" else flux_crds):
                kube.apply_crd(crd, "sluice-bench-ocirepository")
            results.append(run_one(tool, args, kube, registry, proxy, counter, revisions, workdir))
        if tools[-1] != "sluice" and "sluice" in tools:
            for crd in sluice_crds:
                kube.apply_crd(crd, "sluice-bench-ocirepository")
    finally:
        proxy.shutdown()
        registry.stop()
        subprocess.run(["rm", "-rf", workdir], check=False)
    report(results, args, chart_bytes)
    with open(os.path.join(args.logs, "results.json"), "w") as f:
        json.dump([{k: v for k, v in r.items() if k != "revisions"} for r in results], f, indent=1)


if __name__ == "__main__":
    main()
