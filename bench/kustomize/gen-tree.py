#!/usr/bin/env python3
"""Writes a kustomize tree with N resources (a base and an overlay) to DIR."""
import os
import sys

out, n = sys.argv[1], int(sys.argv[2])
groups = max(1, n // 4)
os.makedirs(os.path.join(out, 'base'), exist_ok=True)
os.makedirs(os.path.join(out, 'overlay'), exist_ok=True)
with open(os.path.join(out, 'base', 'resources.yaml'), 'w') as f:
    for i in range(groups):
        f.write(f"""---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{i}
  labels:
    app: app-{i}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: app-{i}
  template:
    metadata:
      labels:
        app: app-{i}
    spec:
      serviceAccountName: sa-{i}
      containers:
      - name: main
        image: nginx:1.25
        envFrom:
        - configMapRef:
            name: cm-{i}
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: app-{i}
spec:
  selector:
    app: app-{i}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: sa-{i}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm-{i}
data:
  key: value-{i}
""")
with open(os.path.join(out, 'base', 'kustomization.yaml'), 'w') as f:
    f.write("resources:\n- resources.yaml\ncommonLabels:\n  team: bench\n")
with open(os.path.join(out, 'overlay', 'kustomization.yaml'), 'w') as f:
    f.write("""resources:
- ../base
namespace: bench
namePrefix: prod-
images:
- name: nginx
  newTag: "1.27"
configMapGenerator:
- name: settings
  literals:
  - MODE=prod
patches:
- target:
    kind: Deployment
  patch: |-
    - op: replace
      path: /spec/replicas
      value: 3
""")
