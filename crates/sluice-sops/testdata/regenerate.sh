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

# PGP, as Flux's SOPS guide sets it up: TEST-ONLY keys without a passphrase (an RSA 4096 key
# as the guide makes, and gpg's default ed25519/cv25519), exported armored as a decryption
# Secret's `.asc` entry holds them. Kept like the age keys; sops calls gpg with this home.
export GNUPGHOME
GNUPGHOME=$(mktemp -d)
trap 'rm -f "$cfg"; rm -rf "$GNUPGHOME"' EXIT
for k in rsa ecc; do
  if [ ! -f "test-$k.asc" ]; then
    if [ "$k" = rsa ]; then
      gpg --batch --full-generate-key <<KEY
%no-protection
Key-Type: 1
Key-Length: 4096
Subkey-Type: 1
Subkey-Length: 4096
Expire-Date: 0
Name-Real: sluice test $k
Name-Email: test-$k@sluice.invalid
KEY
    else
      gpg --batch --passphrase '' --quick-gen-key "sluice test $k <test-$k@sluice.invalid>" default default never
    fi
    { echo "# TEST-ONLY PGP key for sluice-sops fixtures: public, never use it for real data."
      gpg --export-secret-keys --armor "test-$k@sluice.invalid"; } > "test-$k.asc"
  fi
  gpg --batch --import "test-$k.asc" 2> /dev/null
  fpr=$(gpg --with-colons --list-secret-keys "test-$k@sluice.invalid" | awk -F: '$1 == "fpr" {print $10; exit}')
  pgpcfg=$(mktemp)
  # Only data and stringData, as the guide's .sops.yaml asks.
  printf 'creation_rules:\n  - pgp: %s\n    encrypted_regex: ^(data|stringData)$\n' "$fpr" > "$pgpcfg"
  for doc in secret configmap; do
    "$sops" --config "$pgpcfg" encrypt "$doc.plain.yaml" > "$doc.pgp-$k.sops.yaml"
    "$sops" --config "$pgpcfg" decrypt "$doc.pgp-$k.sops.yaml" > /dev/null
  done
  rm -f "$pgpcfg"
done

# Check: the real sops decrypts each fixture back to its original.
for f in *.sops.*; do
  case $f in *.pgp-*) continue ;; esac
  SOPS_AGE_KEY_FILE=test.agekey "$sops" --config "$cfg" decrypt "$f" > /dev/null
done
echo "fixtures regenerated with sops $SOPS_VERSION for $recipient"
