# sluice developer entry points. `make test` is what CI runs (.ci/run).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo

.PHONY: image test deps nats-server versitygw fmt-check lint deny vendor-check testenv-build unit integration fuzz conformance helm-conformance helm-testcharts realworld realworld-helm bench bench-vs-flux flux-reference helm-controller-check helm-storage-check gitea-check flux-migration-check image-import-tool image-import-check build release testenv-up testenv-down clean demo

## test: everything CI checks, on a fresh machine too (installs what is missing);
## the image and containerd's importer are built first, and the image's
## kubelet-style test (with the import) may not skip
test: REQUIRE_IMAGE = 1
test: deps fmt-check lint deny vendor-check testenv-build nats-server versitygw image image-import-tool integration fuzz

## nats-server: the real NATS server (scripts/build-nats-server, from its Go
## module, cached; ~30 s cold) that the `nats` Provider test publishes through
nats-server:
	scripts/build-nats-server >/dev/null

## versitygw: a real S3 server that checks request signatures (Versity's
## gateway, scripts/build-versitygw, from its Go module, cached; ~2 min
## cold) for the Bucket source tests
versitygw:
	scripts/build-versitygw >/dev/null

## image: the controller image as an OCI archive, target/image/sluice.oci.tar
## (a static release build plus scripts/oci-image.py; no Docker daemon).
## crates/sluice/tests/image.rs runs it as a kubelet would.
image:
	scripts/image

## image-import-tool: containerd's own image importer (tools/containerd-import,
## built from Go modules and cached by scripts/containerd-import; ~3 min cold),
## with which the image test shows that k3s imports the archive as it is
image-import-tool:
	scripts/containerd-import build >/dev/null

## image-import-check: the image, the importer, and the image test alone
image-import-check: image image-import-tool
	SLUICE_REQUIRE_IMAGE=1 scripts/with-testenv $(CARGO) test -p sluice --test image -- --nocapture

deps:
	scripts/install-deps

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## deny: cargo-deny's licenses, bans and sources checks (deny.toml); advisories
## only with a local RustSec copy (scripts/deny says when it skips them)
deny:
	scripts/deny

## vendor-check: each crate under vendor/ is its crates.io release plus the
## patch beside it (vendor/README.md)
vendor-check:
	scripts/vendor-check

testenv-build:
	scripts/testenv build

## unit: the tests that need no cluster
unit:
	$(CARGO) test --workspace --lib --bins

## integration: unit and integration tests, with one local control plane for the run
## (the real-Gitea tests of `bootstrap gitea` run only when scripts/gitea has
## built Gitea, the migration test with Flux's own controllers only when
## scripts/flux-reference has built them; this target says when they are
## skipped: see gitea-check and flux-migration-check)
integration:
	@scripts/gitea path >/dev/null 2>&1 || echo "NOTE: the real-Gitea tests of 'sluice bootstrap gitea' will be SKIPPED: Gitea is not built (make gitea-check builds it, ~6 min cold, and runs them)"
	@{ scripts/flux-reference path source-controller && scripts/flux-reference path kustomize-controller; } >/dev/null 2>&1 || echo "NOTE: the migration test with Flux's own source- and kustomize-controller will be SKIPPED: they are not built (make flux-migration-check builds them, ~15 min cold, and runs it)"
	SLUICE_REQUIRE_IMAGE=$(REQUIRE_IMAGE) scripts/with-testenv $(CARGO) test --workspace --no-fail-fast

## fuzz: every fuzz target for FUZZ_SECONDS (default 15) each, plus the
## fixed findings in fuzz/regressions/ (scripts/fuzz, fuzz/README.md)
fuzz:
	scripts/fuzz

## conformance: the kustomize corpus in ../shared (skips cleanly when absent).
## `make test` runs it too, as crates/sluice/tests/conformance.rs.
conformance:
	$(CARGO) build -p sluice
	SLUICE_BIN=$(CURDIR)/target/debug/sluice scripts/conformance-kustomize

## helm-conformance: the Helm chart corpus in ../shared against `sluice helm
## template` (skips cleanly when absent). `make test` runs it too, as
## crates/sluice/tests/conformance.rs.
helm-conformance:
	$(CARGO) build -p sluice
	SLUICE_BIN=$(CURDIR)/target/debug/sluice scripts/conformance-helm

## helm-testcharts: Helm's own test charts (from the Go module cache)
## rendered by the real helm (built once, scripts/build-helm) and by sluice
helm-testcharts:
	$(CARGO) build -p sluice
	SLUICE_BIN=$(CURDIR)/target/debug/sluice scripts/helm-testcharts

## realworld: every kustomization directory of the public repositories cached
## in ~/.cache/sluice/realworld (or given as git dirs: make realworld
## REPOS="..."), built by Go kustomize v5.8.1 and sluice; prints exact /
## order-only / content / error counts (scripts/realworld-kustomize)
realworld:
	$(CARGO) build -p sluice
	SLUICE_BIN=$(CURDIR)/target/debug/sluice scripts/realworld-kustomize $(REPOS)

## realworld-helm: every chart (defaults and ci/ values) of the public
## repositories cached in ~/.cache/sluice/realworld-helm (or given as git dirs:
## make realworld-helm REPOS="..."), rendered by the real helm v4.2.4 (built
## once, scripts/build-helm) and by sluice; prints exact / masked / content /
## error counts (scripts/realworld-helm). A release build: charts that make
## keys (genCA, bcrypt) take minutes in a debug one.
realworld-helm:
	$(CARGO) build --release -p sluice
	SLUICE_BIN=$(CURDIR)/target/release/sluice scripts/realworld-helm $(REPOS)

## bench: performance benchmarks against their reference tools (see bench/)
bench:
	bench/run

## bench-vs-flux: Flux's source- and kustomize-controller (defaults, and as
## Flux's docs tune them) and sluice, each on a fresh control plane with the
## same generated repository; one table with ratios (bench/vs-flux/README.md,
## docs/performance.md). Part of `make bench`; ~25 minutes plus the Go builds.
bench-vs-flux:
	bench/vs-flux/run

## flux-reference: Flux's helm-, source-, kustomize- and notification-controller (the versions
## Flux v2.9.5 ships) built from Go modules into ~/.cache/sluice/flux (once;
## minutes cold). Not part of `make test` (scripts/flux-reference)
flux-reference:
	scripts/flux-reference build all

## helm-controller-check: Flux's helm-controller (built, cached) beside
## `sluice controller`: a HelmRelease from a sluice-served OCIRepository
## installs and upgrades, is taken over by `sluice controller --helmrelease`
## with no new revision, upgraded by it, and handed back to helm-controller
## with no new revision (crates/sluice/tests/flux_helm_controller.rs)
helm-controller-check:
	bin="$$(scripts/flux-reference build helm-controller)"; \
	SLUICE_HELM_CONTROLLER_BIN="$$bin" scripts/with-testenv $(CARGO) test -p sluice --test flux_helm_controller -- --nocapture

## flux-migration-check: Flux's own source- and kustomize-controller (built,
## cached) reconcile a repository; `sluice install` takes over (no object
## changed at the same revision, the next commit applied and pruned in place),
## `sluice uninstall --restore-flux` hands back and Flux carries on from
## sluice's status and inventory (crates/sluice/tests/install.rs,
## flux_s_own_controllers_hand_over_to_sluice_and_take_back)
flux-migration-check:
	sc="$$(scripts/flux-reference build source-controller)"; \
	kc="$$(scripts/flux-reference build kustomize-controller)"; \
	SLUICE_FLUX_SOURCE_CONTROLLER_BIN="$$sc" SLUICE_FLUX_KUSTOMIZE_CONTROLLER_BIN="$$kc" \
	scripts/with-testenv $(CARGO) test -p sluice --test install flux_s_own -- --nocapture

## helm-storage-check: the real helm (built once, scripts/build-helm) lists,
## reads and rolls back releases that sluice stored, on the test control
## plane (crates/sluice/tests/helm_storage.rs)
helm-storage-check:
	bin="$$(scripts/build-helm)"; \
	SLUICE_HELM_BIN="$$bin" scripts/with-testenv $(CARGO) test -p sluice --test helm_storage -- --nocapture

## gitea-check: a real Gitea (code.gitea.io/gitea built from the Go module
## proxy once by scripts/gitea, cached) for `sluice bootstrap gitea`: the
## repository created, the deploy key added, the push over HTTPS, the
## controller syncing over Gitea's SSH server (crates/sluice/tests/bootstrap.rs)
gitea-check:
	scripts/gitea build >/dev/null
	SLUICE_REQUIRE_GITEA=1 scripts/with-testenv $(CARGO) test -p sluice --test bootstrap gitea -- --nocapture

## demo: the homelab example reconciled from Git on a local control plane, sluice
## running in it from the image (scripts/demo; DEMO_IN_CLUSTER=0: beside it)
demo:
	scripts/demo

build:
	$(CARGO) build

release:
	$(CARGO) build --release

testenv-up:
	scripts/testenv up

testenv-down:
	scripts/testenv down

clean:
	$(CARGO) clean
