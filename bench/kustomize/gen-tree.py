#!/usr/bin/env python3
"""Writes a kustomize tree of about N resources to DIR (a base and an overlay).

    gen-tree.py DIR N

base/     50 resource files of groups (ConfigMap, ServiceAccount, Deployment,
          Service) that reference each other (envFrom, volumes,
          serviceAccountName, secretKeyRef), commonLabels, commonAnnotations,
          a configMapGenerator (literals and a file) and a secretGenerator.
overlay/  namePrefix, namespace, labels (with and without selectors), images,
          replicas, a merging configMapGenerator, a secretGenerator,
          24 strategic-merge patch files, 2 strategic-merge patches with
          label-selector targets and 4 JSON 6902 patches.

The output is deterministic: the same N always gives the same tree.
"""
import os
import sys

FILES = 50
SMP_FILES = 24
IMAGES = ['nginx:1.25', 'busybox:1.36', 'example.com/team/api:v3']


def group(i, groups):
    name = f'app-{i:04d}'
    tier = 'frontend' if i % 3 == 0 else 'backend'
    peer = f'app-{(i + 1) % groups:04d}'
    image = IMAGES[i % len(IMAGES)]
    return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}-config
  labels:
    app: {name}
data:
  PORT: "8080"
  PEER_URL: http://{peer}:80/api
  DEBUG: "false"
  app.properties: |
    name={name}
    threads={i % 16 + 1}
    greeting=hello: world
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {name}-sa
  labels:
    app: {name}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app: {name}
    tier: {tier}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
        tier: {tier}
    spec:
      serviceAccountName: {name}-sa
      containers:
      - name: main
        image: {image}
        args:
        - --port=8080
        - --peer={peer}
        ports:
        - name: http
          containerPort: 8080
        envFrom:
        - configMapRef:
            name: {name}-config
        - configMapRef:
            name: shared-settings
        env:
        - name: DB_PASSWORD
          valueFrom:
            secretKeyRef:
              name: db-credentials
              key: password
        - name: INDEX
          value: "{i}"
        resources:
          requests:
            cpu: 10m
            memory: 16Mi
        volumeMounts:
        - name: config
          mountPath: /etc/app
        - name: creds
          mountPath: /etc/creds
          readOnly: true
      volumes:
      - name: config
        configMap:
          name: {name}-config
      - name: creds
        secret:
          secretName: db-credentials
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  selector:
    app: {name}
  ports:
  - name: http
    port: 80
    targetPort: http
"""


# Strategic-merge patch templates; {n} is a Deployment/Service base name.
SMP = [
    # replicas and limits, merging into the container list by name
    """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {n}
spec:
  replicas: 4
  template:
    spec:
      containers:
      - name: main
        resources:
          limits:
            cpu: 500m
            memory: 256Mi
""",
    # a sidecar (new list element) and a pod annotation
    """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {n}
spec:
  template:
    metadata:
      annotations:
        sidecar.example.com/inject: "true"
    spec:
      containers:
      - name: proxy
        image: busybox:1.36
        args: ["proxy", "--listen=:9090"]
        ports:
        - containerPort: 9090
          name: proxy
""",
    # an env var merged by name, and one replaced
    """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {n}
spec:
  template:
    spec:
      containers:
      - name: main
        env:
        - name: INDEX
          value: "patched"
        - name: FEATURE_FLAGS
          value: a,b,c
""",
    # a new volume and mount, from a ConfigMap of the base
    """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {n}
spec:
  template:
    spec:
      containers:
      - name: main
        volumeMounts:
        - name: extra
          mountPath: /etc/extra
      volumes:
      - name: extra
        configMap:
          name: {n}-config
          items:
          - key: app.properties
            path: app.properties
""",
    # delete a volume element and drop a field with null
    """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {n}
spec:
  template:
    spec:
      containers:
      - name: main
        args: null
        volumeMounts:
        - $patch: delete
          mountPath: /etc/creds
      volumes:
      - name: creds
        $patch: delete
""",
    # a Service: new port (merged by port) and a type
    """apiVersion: v1
kind: Service
metadata:
  name: {n}
spec:
  type: NodePort
  ports:
  - name: metrics
    port: 9100
    targetPort: 9100
""",
    # a ConfigMap: change a key, remove a key, add a key
    """apiVersion: v1
kind: ConfigMap
metadata:
  name: {n}-config
data:
  DEBUG: "true"
  PEER_URL: null
  EXTRA: |-
    line one
    line two
""",
    # probes and a security context
    """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {n}
spec:
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 1000
      containers:
      - name: main
        readinessProbe:
          httpGet:
            path: /healthz
            port: http
          periodSeconds: 5
""",
]

JSON6902 = [
    """- op: replace
  path: /spec/replicas
  value: 7
- op: add
  path: /metadata/annotations/bench.example.com~1patched
  value: json6902
""",
    """- op: add
  path: /spec/template/spec/containers/0/env/-
  value:
    name: FROM_JSON_PATCH
    value: "1"
- op: remove
  path: /spec/template/spec/containers/0/args
""",
    """- op: test
  path: /spec/template/spec/containers/0/name
  value: main
- op: copy
  from: /spec/template/metadata/labels/app
  path: /spec/template/metadata/labels/copied
- op: move
  from: /spec/template/spec/containers/0/resources
  path: /spec/template/spec/containers/0/moved
""",
]


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as fh:
        fh.write(text)


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    # 4 resources per group; the generators add 4 more (2 in base, 2 in overlay).
    groups = max(FILES, (n - 4) // 4)
    base, overlay = os.path.join(out, 'base'), os.path.join(out, 'overlay')
    per_file = [[] for _ in range(FILES)]
    for i in range(groups):
        per_file[i * FILES // groups].append(group(i, groups))
    for f, docs in enumerate(per_file):
        write(os.path.join(base, f'apps-{f:02d}.yaml'), '---\n'.join(docs))
    write(os.path.join(base, 'settings.properties'), 'cache.size=128\ncache.ttl=30s\n')
    write(os.path.join(base, 'kustomization.yaml'),
          'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n'
          + ''.join(f'- apps-{f:02d}.yaml\n' for f in range(FILES))
          + """commonLabels:
  app.kubernetes.io/part-of: bench
commonAnnotations:
  bench.example.com/owner: platform
configMapGenerator:
- name: shared-settings
  literals:
  - LOG_LEVEL=info
  - REGION=eu-1
  files:
  - settings.properties
secretGenerator:
- name: db-credentials
  literals:
  - username=bench
  - password=s3cret
""")

    # Patch targets spread over the tree, none patched twice by a file.
    step = max(1, groups // SMP_FILES)
    patches = []
    for k in range(SMP_FILES):
        write(os.path.join(overlay, f'smp-{k:02d}.yaml'),
              SMP[k % len(SMP)].format(n=f'app-{(k * step + 1) % groups:04d}'))
        patches.append(f'- path: smp-{k:02d}.yaml\n')
    for k, ops in enumerate(JSON6902):
        write(os.path.join(overlay, f'json-{k:02d}.yaml'), ops)
        patches.append(f"""- path: json-{k:02d}.yaml
  target:
    group: apps
    version: v1
    kind: Deployment
    name: app-{(k * step + 2) % groups:04d}
""")
    patches.append("""- target:
    kind: Service
    labelSelector: app in (app-0000,app-0003,app-0006)
  patch: |-
    - op: add
      path: /spec/sessionAffinity
      value: ClientIP
- target:
    kind: Deployment
    labelSelector: tier=frontend
  patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: any
    spec:
      template:
        spec:
          terminationGracePeriodSeconds: 10
- target:
    kind: Deployment
    annotationSelector: bench.example.com/owner=platform
    name: app-00[0-4]5
  patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: any
      annotations:
        bench.example.com/selected: "yes"
""")
    write(os.path.join(overlay, 'kustomization.yaml'),
          """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../base
namePrefix: prod-
namespace: bench
labels:
- pairs:
    env: prod
  includeSelectors: true
- pairs:
    release: r42
  includeTemplates: true
images:
- name: nginx
  newTag: "1.27"
- name: busybox
  newName: registry.example.com/mirror/busybox
- name: example.com/team/api
  digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
replicas:
- name: app-0000
  count: 5
configMapGenerator:
- name: shared-settings
  behavior: merge
  literals:
  - LOG_LEVEL=warn
- name: overlay-flags
  literals:
  - FEATURE_X=on
secretGenerator:
- name: tls-extra
  type: Opaque
  literals:
  - token=abc123
patches:
""" + ''.join(patches))


if __name__ == '__main__':
    main()
