"""The benchmark's Git repository: a homelab-shaped Flux repository, generated.

    clusters/bench/          the entry point: one Kustomization object per file
    infrastructure/          namespaces, a CRD, the cluster-wide substitution ConfigMap
    apps/<name>/             one directory per application Kustomization

The Kustomizations form a dependsOn tree four levels deep: `infrastructure`, then one
`team-N` per team, then `team-N-svc-M`, then the leaves under them. Every Kustomization
applies the same number of objects (default 20): a Deployment whose environment comes from
a ConfigMap and a Secret generator, Services, Ingresses, custom resources of the CRD that
`infrastructure` installs, and plain ConfigMaps; names, labels and hosts come from
`postBuild.substitute` and from `substituteFrom` the ConfigMap `cluster-vars`.

With charts (`Helm`), the first leaves also carry one HelmRelease each, as a homelab's apps
do: an OCIRepository pointing at the chart in a local registry (Helm's OCI layout) and a
HelmRelease with `chartRef` to it, in the application's namespace; the leaf's `wait: true`
makes its Kustomization Ready only once the release is. Four in five are podinfo with varied
values, one in five bjw-s app-template with a real repository's values. `infrastructure` then
also holds a generic Provider (a local webhook) and an Alert for every Kustomization,
GitRepository, OCIRepository and HelmRelease.

Commits are made with fixed dates and identities, so the same inputs give the same commit
ids: both stacks reconcile exactly the same revisions.
"""

import os
import subprocess

import yaml

GROUP = "bench.sluice.dev"
NAMESPACE = "flux-system"


def tree(total, teams=4, services=4):
    """[(name, level, parent or None, team)]: `total` Kustomizations in a tree four deep."""
    nodes = [("infrastructure", 0, None, None)]
    for t in range(teams):
        nodes.append((f"team-{t}", 1, "infrastructure", t))
    mids = []
    for t in range(teams):
        for s in range(services):
            name = f"team-{t}-svc-{s}"
            mids.append((name, t))
            nodes.append((name, 2, f"team-{t}", t))
    leaves = total - len(nodes)
    if leaves < 0:
        raise ValueError(f"at least {len(nodes)} Kustomizations are needed for the tree")
    for i in range(leaves):
        parent, t = mids[i % len(mids)]
        nodes.append((f"{parent}-app-{i // len(mids)}", 3, parent, t))
    return nodes


def kustomization_object(node, interval):
    name, level, parent, team = node
    spec = {
        "interval": interval,
        "retryInterval": "1m",
        "timeout": "3m",
        "path": f"./infrastructure" if level == 0 else f"./apps/{name}",
        "prune": True,
        "wait": True,
        "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
    }
    if parent:
        spec["dependsOn"] = [{"name": parent}]
        spec["postBuild"] = {
            "substitute": {"APP": name, "TEAM": f"team-{team}"},
            "substituteFrom": [{"kind": "ConfigMap", "name": "cluster-vars"}],
        }
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def _yaml(obj, indent=0):
    """A small YAML writer for the plain data above (deterministic, block style)."""
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:")
                out.append(_yaml(v, indent + 2))
            else:
                out.append(f"{pad}{k}: {_scalar(v)}")
    else:
        for v in obj:
            if isinstance(v, dict) and v:
                first = _yaml(v, indent + 2).split("\n")
                out.append(f"{pad}- {first[0].lstrip()}")
                out.extend(first[1:])
            else:
                out.append(f"{pad}- {_scalar(v)}")
    return "\n".join(out)


def _scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return str(v)
    if v == {}:
        return "{}"
    if v == []:
        return "[]"
    s = str(v)
    if s == "" or s[0] in "!&*{}[],#|>@`\"'%-?:" or ": " in s or s.lower() in ("yes", "no", "true", "false", "null", "on", "off") or s.replace(".", "").isdigit():
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return s


CRD = f"""apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{GROUP}
spec:
  group: {GROUP}
  names:
    kind: Widget
    listKind: WidgetList
    plural: widgets
    singular: widget
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"""


class Helm:
    """What the HelmReleases need: how many, the registry (`host:port`) holding the charts
    at `charts/<chart>:<version>`, the charts' versions, the values function per chart
    (`values[chart](release, i)`), and the webhook the Alert's Provider posts to."""

    def __init__(self, count, registry, versions, values, webhook):
        self.count = count
        self.registry = registry
        self.versions = versions
        self.values = values
        self.webhook = webhook

    def chart_of(self, i):
        return "app-template" if i % 5 == 4 else "podinfo"


def helm_file(helm, i, interval):
    """`helm.yaml` of the i-th Helm application: its OCIRepository and HelmRelease. The
    names get the Kustomization's namePrefix; `chartRef` (which kustomize does not know)
    names the prefixed OCIRepository through the `APP` substitution."""
    chart = helm.chart_of(i)
    oci = {
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
        "metadata": {"name": "chart"},
        "spec": {"interval": interval, "url": f"oci://{helm.registry}/charts/{chart}",
                 "ref": {"tag": helm.versions[chart]}, "insecure": True,
                 "layerSelector": {"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                                   "operation": "copy"}},
    }
    spec = {"interval": interval, "timeout": "5m",
            "chartRef": {"kind": "OCIRepository", "name": "${APP}-chart"},
            "install": {"remediation": {"retries": 3}},
            "upgrade": {"remediation": {"retries": 3}},
            "values": helm.values[chart]("release", i)}
    if chart == "app-template":
        # As in the repository the values come from: the chart's schema is stricter than
        # the values it renders.
        spec["install"]["disableSchemaValidation"] = True
        spec["upgrade"]["disableSchemaValidation"] = True
    hr = {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
          "metadata": {"name": "release"}, "spec": spec}
    return yaml.safe_dump_all([oci, hr], sort_keys=False)


def notification_file(helm, teams):
    """A generic Provider (the harness's webhook) and an Alert on everything."""
    provider = {"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
                "metadata": {"name": "chat", "namespace": NAMESPACE},
                "spec": {"type": "generic", "address": helm.webhook}}
    sources = [{"kind": k, "name": "*"} for k in ("GitRepository", "Kustomization")]
    sources += [{"kind": k, "name": "*", "namespace": f"team-{t}"}
                for t in range(teams) for k in ("OCIRepository", "HelmRelease")]
    alert = {"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
             "metadata": {"name": "chat", "namespace": NAMESPACE},
             "spec": {"providerRef": {"name": "chat"}, "eventSeverity": "info",
                      "eventSources": sources}}
    return yaml.safe_dump_all([provider, alert], sort_keys=False)


def infrastructure_files(teams, each, helm=None):
    files = {}
    docs = [f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-{t}\n" for t in range(teams)]
    files["infrastructure/namespaces.yaml"] = "---\n".join(docs)
    files["infrastructure/crd.yaml"] = CRD
    files["infrastructure/cluster-vars.yaml"] = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cluster-vars\n"
        f"  namespace: {NAMESPACE}\ndata:\n  DOMAIN: home.example\n"
        "  REGISTRY: registry.home.example\n  VERSION: 1.0.0\n")
    extra = max(0, each - teams - 2)
    docs = [f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: infra-settings-{i}\n"
            f"  namespace: {NAMESPACE}\ndata:\n  index: \"{i}\"\n" for i in range(extra)]
    files["infrastructure/settings.yaml"] = "---\n".join(docs)
    resources = ["namespaces.yaml", "crd.yaml", "cluster-vars.yaml", "settings.yaml"]
    if helm:
        files["infrastructure/notifications.yaml"] = notification_file(helm, teams)
        resources.append("notifications.yaml")
    files["infrastructure/kustomization.yaml"] = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
        + "".join(f"- {r}\n" for r in resources))
    return files


def app_files(name, team, each, revision_mark, helm_yaml=None):
    """The files of one application: `each` objects once built (at least 10), and its
    OCIRepository and HelmRelease when `helm_yaml` is given."""
    d = f"apps/{name}"
    files = {}
    files[f"{d}/deployment.yaml"] = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app.kubernetes.io/name: ${APP}
    app.kubernetes.io/part-of: ${TEAM}
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: ${APP}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: ${APP}
    spec:
      containers:
      - name: app
        image: ${REGISTRY}/${TEAM}/app:${VERSION}
        ports:
        - containerPort: 8080
        envFrom:
        - configMapRef:
            name: app-env
        - secretRef:
            name: app-secret
"""
    svc = []
    for i, port in enumerate((80, 9090)):
        svc.append(f"""apiVersion: v1
kind: Service
metadata:
  name: web-{i}
spec:
  selector:
    app.kubernetes.io/name: ${{APP}}
  ports:
  - port: {port}
    targetPort: 8080
""")
    files[f"{d}/services.yaml"] = "---\n".join(svc)
    ing = []
    for i in range(2):
        ing.append(f"""apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web-{i}
spec:
  rules:
  - host: ${{APP}}-{i}.${{DOMAIN}}
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web-{i}
            port:
              number: 80
""")
    files[f"{d}/ingresses.yaml"] = "---\n".join(ing)
    widgets = [f"""apiVersion: {GROUP}/v1
kind: Widget
metadata:
  name: widget-{i}
spec:
  size: {i + 1}
  owner: ${{TEAM}}
""" for i in range(3)]
    files[f"{d}/widgets.yaml"] = "---\n".join(widgets)
    plain = max(0, each - 10)
    cms = [f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: settings-{i}
data:
  app: ${{APP}}
  index: "{i}"
  mark: "{revision_mark if i == 0 else 'initial'}"
""" for i in range(plain)]
    files[f"{d}/configmaps.yaml"] = "---\n".join(cms) if cms else "[]\n"
    files[f"{d}/kustomization.yaml"] = f"""apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: team-{team}
namePrefix: {name}-
resources:
- deployment.yaml
- services.yaml
- ingresses.yaml
- widgets.yaml
{"- configmaps.yaml" if cms else ""}
{"- helm.yaml" if helm_yaml else ""}
configMapGenerator:
- name: app-env
  literals:
  - LOG_LEVEL=info
  - LISTEN=:8080
secretGenerator:
- name: app-secret
  literals:
  - TOKEN=not-a-real-token
"""
    if helm_yaml:
        files[f"{d}/helm.yaml"] = helm_yaml
    return files


class Repo:
    """A work tree and the bare repository served to the stacks."""

    def __init__(self, workdir, total, each, interval, helm=None):
        self.work = os.path.join(workdir, "src")
        self.bare_root = os.path.join(workdir, "git")
        self.bare = os.path.join(self.bare_root, "bench.git")
        self.nodes = tree(total)
        self.each = each
        self.interval = interval
        self.commits = 0
        self.marks = {}
        self.helm = helm
        leaves = self.leaves()
        if helm and helm.count > len(leaves):
            raise ValueError(f"{helm.count} HelmReleases need as many leaves; there are {len(leaves)}")
        # leaf name -> its index among the Helm applications
        self.helm_apps = {n: i for i, n in enumerate(leaves[: helm.count])} if helm else {}

    def git(self, *args, cwd=None):
        env = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.com",
                   GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.com",
                   GIT_AUTHOR_DATE=f"2026-01-01T00:{self.commits:02d}:00Z",
                   GIT_COMMITTER_DATE=f"2026-01-01T00:{self.commits:02d}:00Z",
                   GIT_CONFIG_NOSYSTEM="1", HOME=self.work)
        return subprocess.run(["git", *args], cwd=cwd or self.work, env=env, check=True,
                              capture_output=True, text=True).stdout.strip()

    def write_all(self):
        files = {}
        for node in self.nodes:
            obj = kustomization_object(node, self.interval)
            files[f"clusters/bench/{node[0]}.yaml"] = _yaml(obj) + "\n"
            if node[1] > 0:
                i = self.helm_apps.get(node[0])
                hy = helm_file(self.helm, i, self.interval) if i is not None else None
                files.update(app_files(node[0], node[3], self.each, self.marks.get(node[0], "initial"), hy))
        teams = len([n for n in self.nodes if n[1] == 1])
        files.update(infrastructure_files(teams, self.each, self.helm))
        for path, text in files.items():
            full = os.path.join(self.work, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(text)

    def init(self):
        """The first commit; returns its Flux revision (`main@sha1:<id>`)."""
        os.makedirs(self.work, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.write_all()
        return self.commit("initial")

    def commit(self, message):
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        self.commits += 1
        sha = self.git("rev-parse", "HEAD")
        return f"main@sha1:{sha}"

    def reset_served(self):
        """A new bare repository holding the history so far (each stack starts from the
        first commit)."""
        subprocess.run(["rm", "-rf", self.bare], check=True)
        os.makedirs(self.bare_root, exist_ok=True)
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", self.bare], check=True)
        subprocess.run(["git", "-C", self.bare, "config", "http.receivepack", "false"], check=True)

    def publish(self, rev):
        """Makes the served `main` point at `rev` (a commit of the work tree)."""
        sha = rev.split(":", 1)[1]
        self.git("push", "-q", "--force", self.bare, f"{sha}:refs/heads/main")

    def touch_leaf(self, leaf, mark):
        """A commit that changes one ConfigMap of one leaf application."""
        self.marks[leaf] = mark
        self.write_all()
        return self.commit(f"{leaf}: mark {mark}")

    def leaves(self):
        return [n[0] for n in self.nodes if n[1] == 3]

    def helm_releases(self):
        """[(namespace, HelmRelease name, chart)] of the Helm applications."""
        team = {n[0]: n[3] for n in self.nodes}
        return [(f"team-{team[n]}", f"{n}-release", self.helm.chart_of(i))
                for n, i in self.helm_apps.items()]

    def parents(self):
        return {n[0]: n[2] for n in self.nodes if n[2]}
