#!/usr/bin/env bash
# Rebuilds the encrypted fixtures of sluice-sops with the real sops.
#
# test.agekey and other.agekey are TEST-ONLY age keys, generated for these
# fixtures and published with them: never use them for anything real.
# The script keeps existing keys (so only the *.sops.* files change); delete
# them to generate new ones.
#
# sops and age are built from the Go module proxy at pinned versions into
# ~/.cache/sluice (the first run takes a few minutes):
#   GOBIN=~/.cache/sluice/sops-$SOPS_VERSION go install github.com/getsops/sops/v3/cmd/sops@$SOPS_VERSION
#   GOBIN=~/.cache/sluice/age-$AGE_VERSION go install filippo.io/age/cmd/...@$AGE_VERSION
set -euo pipefail

SOPS_VERSION=v3.13.3
AGE_VERSION=v1.3.2
here=$(cd "$(dirname "$0")" && pwd)
cache=${SLUICE_CACHE:-$HOME/.cache/sluice}
sops=$cache/sops-$SOPS_VERSION/sops
keygen=$cache/age-$AGE_VERSION/age-keygen

if [ ! -x "$sops" ]; then
  GOBIN=$(dirname "$sops") go install "github.com/getsops/sops/v3/cmd/sops@$SOPS_VERSION"
fi
if [ ! -x "$keygen" ]; then
  GOBIN=$(dirname "$keygen") go install "filippo.io/age/cmd/...@$AGE_VERSION"
fi

cd "$here"
for k in test other; do
  if [ ! -f "$k.agekey" ]; then
    { echo "# TEST-ONLY age key for sluice-sops fixtures: public, never use it for real data."
      "$keygen" 2>/dev/null; } > "$k.agekey"
  fi
done
recipient=$("$keygen" -y test.agekey)

# No .sops.yaml from a parent directory may change the result.
cfg=$(mktemp)
trap 'rm -f "$cfg"' EXIT
cat > "$cfg" <<CFG
creation_rules:
  - path_regex: mac-only
    age: $recipient
    encrypted_regex: ^(data|stringData)\$
    mac_only_encrypted: true
  - age: $recipient
CFG

enc() { # input output [sops flags...]
  local in=$1 out=$2
  shift 2
  "$sops" --config "$cfg" encrypt "$@" "$in" > "$out.tmp"
  mv "$out.tmp" "$out"
}

enc secret.plain.yaml secret.sops.yaml
enc configmap.plain.yaml configmap.sops.yaml
enc secret-regex.plain.yaml secret-regex.sops.yaml --encrypted-regex '^(data|stringData)$'
enc commented.plain.yaml commented.sops.yaml
enc mac-only.plain.yaml mac-only.sops.yaml
enc secret.plain.json secret.sops.json
# secretGenerator sources: a dotenv file and an arbitrary (binary) file.
enc app.plain.env app.sops.env --input-type dotenv --output-type dotenv
enc cert.plain.txt cert.sops.txt --input-type binary --output-type binary

# Check: the real sops decrypts each fixture back to its original.
for f in *.sops.*; do
  SOPS_AGE_KEY_FILE=test.agekey "$sops" --config "$cfg" decrypt "$f" > /dev/null
done
echo "fixtures regenerated with sops $SOPS_VERSION for $recipient"
