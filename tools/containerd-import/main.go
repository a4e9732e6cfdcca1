// containerd-import: imports an image archive with containerd's own importer
// (core/images/archive.ImportIndex, what `k3s ctr images import` and k3s's
// air-gap import of /var/lib/rancher/k3s/agent/images/ run) into a local
// content store, then resolves each image the archive names for linux/amd64
// and checks that its config and every layer were imported. Prints one line
// per image: `imported NAME DIGEST (N layers)`.
//
//	containerd-import ARCHIVE STORE-DIR
//
// Built and cached by scripts/containerd-import; run by
// crates/sluice/tests/image.rs (make image-import-check).
package main

import (
	"context"
	_ "crypto/sha256"
	"encoding/json"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/platforms"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
	os.Exit(1)
}

func main() {
	ctx := context.Background()
	store, err := local.NewStore(os.Args[2])
	if err != nil {
		fail("store", err)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fail("open", err)
	}
	idx, err := archive.ImportIndex(ctx, store, f)
	if err != nil {
		fail("import", err)
	}
	raw, err := content.ReadBlob(ctx, store, idx)
	if err != nil {
		fail("index", err)
	}
	var index v1.Index
	if err := json.Unmarshal(raw, &index); err != nil {
		fail("index", err)
	}
	for _, m := range index.Manifests {
		name := m.Annotations[images.AnnotationImageName]
		mf, err := images.Manifest(ctx, store, m, platforms.Only(platforms.MustParse("linux/amd64")))
		if err != nil {
			fail("manifest of "+name, err)
		}
		for _, d := range append([]v1.Descriptor{mf.Config}, mf.Layers...) {
			if _, err := store.Info(ctx, d.Digest); err != nil {
				fail("blob "+d.Digest.String(), err)
			}
		}
		fmt.Printf("imported %s %s (%d layers)\n", name, m.Digest, len(mf.Layers))
	}
}
