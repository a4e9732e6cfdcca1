#!/usr/bin/env python3
"""The sluice image as an OCI archive, without a Docker daemon.

    oci-image.py build --binary PATH --ca-bundle PATH --name REF --epoch SECS --out FILE
    oci-image.py unpack ARCHIVE DIR      # the root filesystem, as a runtime unpacks it
    oci-image.py config ARCHIVE          # the image config (JSON) on stdout

`build` writes one layer (the static `sluice` binary, CA certificates, the
`nonroot` user and an empty /tmp), the config (user 65532, entrypoint
`sluice`, command `controller`) and a manifest into an OCI image layout,
packed as a tar archive: what `k3s ctr images import` and
`skopeo copy oci-archive:` read, and what k3s imports from
/var/lib/rancher/k3s/agent/images/. Everything is deterministic (sorted
entries, fixed owners and modes, timestamps from --epoch, gzip without a
name or time), so the same inputs give the same digest.

Standard library only: this runs on a machine with nothing but Python.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

BINARY = "usr/local/bin/sluice"
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"
UID = GID = 65532

PASSWD = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
GROUP = "root:x:0:\nnonroot:x:65532:\n"
# Static glibc reads it for hosts lookups; kubelet mounts /etc/hosts and
# /etc/resolv.conf.
NSSWITCH = "hosts: files dns\n"


def tar_entries(binary, ca_bundle):
    """(path, kind, mode, uid, data) of the layer, directories included."""
    files = {
        BINARY: (0o755, 0, open(binary, "rb").read()),
        CA_BUNDLE: (0o644, 0, open(ca_bundle, "rb").read()),
        "etc/passwd": (0o644, 0, PASSWD.encode()),
        "etc/group": (0o644, 0, GROUP.encode()),
        "etc/nsswitch.conf": (0o644, 0, NSSWITCH.encode()),
    }
    dirs = {"tmp": (0o1777, 0), "home/nonroot": (0o700, UID)}
    for path in list(files) + list(dirs):
        parts = path.split("/")
        for i in range(1, len(parts)):
            dirs.setdefault("/".join(parts[:i]), (0o755, 0))
    entries = [(p, "dir", m, u, None) for p, (m, u) in dirs.items()]
    entries += [(p, "file", m, u, d) for p, (m, u, d) in files.items()]
    return sorted(entries, key=lambda e: e[0])


def layer_tar(entries, epoch):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, kind, mode, uid, data in entries:
            info = tarfile.TarInfo(path)
            info.mode = mode
            info.uid = info.gid = uid
            info.uname = info.gname = ""
            info.mtime = epoch
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gz(data):
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as f:
        f.write(data)
    return out.getvalue()


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def build(args):
    import datetime

    entries = tar_entries(args.binary, args.ca_bundle)
    raw = layer_tar(entries, args.epoch)
    layer = gz(raw)
    created = datetime.datetime.fromtimestamp(args.epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    version = args.name.rsplit(":", 1)[-1] if ":" in args.name.rsplit("/", 1)[-1] else "latest"
    labels = {
        "org.opencontainers.image.source": "https://github.com/sluice-gitops/sluice",
        "org.opencontainers.image.description": "sluice: a lightweight GitOps engine for k3s, a drop-in for Flux's controllers",
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.version": version,
    }
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "User": f"{UID}:{GID}",
            "Entrypoint": ["/" + BINARY],
            "Cmd": ["controller"],
            "Env": [
                "PATH=/usr/local/bin",
                "SSL_CERT_FILE=/" + CA_BUNDLE,
                "HOME=/home/nonroot",
            ],
            # 9090 artifacts (Service source-controller:80), 8080 metrics, 9440 probes.
            "ExposedPorts": {"9090/tcp": {}, "8080/tcp": {}, "9440/tcp": {}},
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [digest(raw)]},
        "history": [{"created": created, "created_by": "scripts/oci-image.py"}],
    }
    config_bytes = canonical(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest(layer),
                "size": len(layer),
            }
        ],
        "annotations": {"org.opencontainers.image.created": created},
    }
    manifest_bytes = canonical(manifest)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest(manifest_bytes),
                "size": len(manifest_bytes),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    # containerd (k3s ctr images import) names the image from this one,
                    "io.containerd.image.name": args.name,
                    # the OCI layout spec (skopeo oci-archive:) from this one.
                    "org.opencontainers.image.ref.name": version,
                },
            }
        ],
    }
    blobs = {digest(b): b for b in (layer, config_bytes, manifest_bytes)}
    files = [("oci-layout", canonical({"imageLayoutVersion": "1.0.0"})), ("index.json", canonical(index))]
    files += [("blobs/sha256/" + d.split(":", 1)[1], b) for d, b in sorted(blobs.items())]
    tmp = args.out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, args.epoch
            tar.addfile(info)
        for path, data in files:
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, args.epoch
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, args.out)
    print(json.dumps({"archive": args.out, "name": args.name, "manifest": digest(manifest_bytes),
                      "config": digest(config_bytes), "layer": digest(layer), "layer_size": len(layer)}))


def read_layout(archive):
    tar = tarfile.open(archive)
    blob = lambda d: tar.extractfile("blobs/sha256/" + d.split(":", 1)[1]).read()
    index = json.loads(tar.extractfile("index.json").read())
    manifest_bytes = blob(index["manifests"][0]["digest"])
    if digest(manifest_bytes) != index["manifests"][0]["digest"]:
        sys.exit("oci-image: the manifest does not match its digest")
    manifest = json.loads(manifest_bytes)
    return tar, blob, manifest


def unpack(args):
    """Extracts the layers in order, refusing paths out of DIR and links."""
    tar, blob, manifest = read_layout(args.archive)
    root = os.path.realpath(args.dir)
    os.makedirs(root, exist_ok=True)
    for layer in manifest["layers"]:
        data = blob(layer["digest"])
        if digest(data) != layer["digest"]:
            sys.exit(f"oci-image: layer {layer['digest']} does not match its digest")
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as lt:
            for m in lt.getmembers():
                dest = os.path.realpath(os.path.join(root, m.name))
                if not (dest == root or dest.startswith(root + os.sep)) or not (m.isdir() or m.isfile()):
                    sys.exit(f"oci-image: refusing layer entry {m.name!r}")
                if m.isdir():
                    os.makedirs(dest, exist_ok=True)
                    os.chmod(dest, m.mode)
                else:
                    with open(dest, "wb") as f:
                        f.write(lt.extractfile(m).read())
                    os.chmod(dest, m.mode)


def config(args):
    tar, blob, manifest = read_layout(args.archive)
    sys.stdout.write(blob(manifest["config"]["digest"]).decode())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--binary", required=True)
    b.add_argument("--ca-bundle", required=True)
    b.add_argument("--name", required=True)
    b.add_argument("--epoch", type=int, required=True)
    b.add_argument("--out", required=True)
    u = sub.add_parser("unpack")
    u.add_argument("archive")
    u.add_argument("dir")
    c = sub.add_parser("config")
    c.add_argument("archive")
    args = p.parse_args()
    {"build": build, "unpack": unpack, "config": config}[args.cmd](args)


if __name__ == "__main__":
    main()
