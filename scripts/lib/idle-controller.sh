#!/usr/bin/env bash
# idle-controller.sh CRDS SECONDS COMMAND...: installs the CRDs in directory
# CRDS (Flux's), then runs COMMAND (the controller, possibly under valgrind)
# as `sluice install` runs it, with the flags of its manifest and every
# controller on, against the control plane in $KUBECONFIG (run it under
# scripts/with-testenv), with nothing to reconcile; probes its health
# and metrics endpoints every 2 seconds (a kubelet's probes and a Prometheus
# scrape), then stops it with SIGTERM after SECONDS. scripts/symbol-order
# profiles this run as the `idle` kind of work: what a controller runs between
# reconciles, which it keeps mapped all its life.
set -euo pipefail
crds="$1" seconds="$2"
shift 2
kubectl apply --server-side -f "$crds" >/dev/null
kubectl wait --for condition=established --timeout=60s crd --all >/dev/null
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-idle.XXXXXX")"
metrics="$(port)" health="$(port)" storage="$(port)"
RUNTIME_NAMESPACE=default POD_NAME=sluice-idle TMPDIR="$work" SLUICE_REMOTE_CACHE="$work/remote" \
    "$@" controller --log-format=json --metrics-addr="127.0.0.1:$metrics" \
    --health-addr="127.0.0.1:$health" --storage-path="$work/data" \
    --storage-addr="127.0.0.1:$storage" --storage-adv-addr="127.0.0.1:$storage" \
    --enable-leader-election --helmrelease --notification \
    --notification-events-addr="127.0.0.1:$(port)" --receiver-addr="127.0.0.1:$(port)" \
    >"$work/log" 2>&1 &
pid=$!
end=$((SECONDS + seconds))
while ((SECONDS < end)) && kill -0 "$pid" 2>/dev/null; do
    sleep 2
    for path in "$health/healthz" "$health/readyz" "$metrics/metrics"; do
        curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$path" || true
    done
done
status=0
if kill -TERM "$pid" 2>/dev/null; then
    wait "$pid" || status=$?
else
    wait "$pid" || true
    echo "idle controller: it exited before $seconds s; its log:" >&2
    tail -5 "$work/log" >&2
    status=1
fi
rm -rf "$work"
exit "$status"
