#!/usr/bin/env python3
"""Writes the linker's symbol ordering file from callgrind profiles.

    symbol_order.py --out FILE BIN=KIND_DIR[,KIND_DIR...]...
    symbol_order.py --out FILE --check BIN

Each KIND_DIR holds the callgrind profiles (`--demangle=no`) of one kind of
work (`helm`, `kustomize`, `controller`) run by BIN. A function is kept when
it is a symbol of BIN and some profile saw it run in BIN. The order puts the
functions most kinds of work share first, then those of one kind together,
each group by how many profiles ran them, so that each kind of work touches
as few pages of the binary's code as it can. With several binaries (the
release build and the image's, whose symbol names differ: their hashes
depend on the build's target), their lists follow each other; the linker
skips the names its binary does not have. See scripts/symbol-order.
"""
import argparse
import os
import re
import subprocess
import sys

SYMBOL = re.compile(r"^[A-Za-z_.$][A-Za-z0-9_.$]*$")
# `fn=(id) name`, `fn=(id)`, or `fn=name`; the same for ob=, cfn=, cob=.
ENTRY = re.compile(r"^(ob|fn|cob|cfn)=(?:\((\d+)\))?\s*(.*)$")


def executed(path, binary):
    """The functions of `binary` that the profile at `path` saw run."""
    names = {"ob": {}, "fn": {}}
    current_ob = None
    found = set()
    with open(path, errors="replace") as f:
        for line in f:
            if not line[:1] in "ofc":
                continue
            m = ENTRY.match(line.rstrip("\n"))
            if not m:
                continue
            key, ident, name = m.groups()
            table = names["ob" if key.endswith("ob") else "fn"]
            if name:
                if ident:
                    table[ident] = name
            else:
                name = table.get(ident)
            if key == "ob":
                current_ob = name
            elif key == "fn" and current_ob and os.path.basename(current_ob) == binary and name:
                # callgrind marks recursion levels as `name'2`.
                found.add(re.sub(r"'\d+$", "", name))
    return found


def defined_text_symbols(binary):
    out = subprocess.run(["nm", "--defined-only", binary], check=True, capture_output=True, text=True).stdout
    return {p[2] for p in (line.split() for line in out.splitlines()) if len(p) == 3 and p[1] in "tTwW"}


def order_for(binary, kind_dirs):
    base = os.path.basename(os.path.realpath(binary))
    symbols = defined_text_symbols(binary)
    runs = {}  # name -> number of profiles that ran it
    kinds = {}  # name -> the kinds of work that ran it
    first = {}  # name -> the order it was first seen in, for a stable result
    for cls in kind_dirs:
        kind = os.path.basename(cls.rstrip("/"))
        profiles = sorted(os.path.join(cls, p) for p in os.listdir(cls))
        for path in profiles:
            for name in sorted(executed(path, base)):
                if not SYMBOL.match(name) or name not in symbols:
                    continue
                runs[name] = runs.get(name, 0) + 1
                kinds.setdefault(name, set()).add(kind)
                first.setdefault(name, len(first))
        print(f"symbol order: {binary}: {kind}: {len(profiles)} profiles", file=sys.stderr)
    if not runs:
        sys.exit(f"symbol order: no profile saw a function of {binary}")
    order = sorted(runs, key=lambda n: (-len(kinds[n]), sorted(kinds[n]), -runs[n], first[n]))
    print(f"symbol order: {binary}: {len(order)} functions", file=sys.stderr)
    return order


def check(binary, path):
    """How many of the ordering file's names `binary` has: after a dependency or
    toolchain update the hashes in them change and the file must be written anew."""
    with open(path) as f:
        names = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    have = defined_text_symbols(binary)
    found = sum(name in have for name in names)
    print(f"symbol order: {binary} has {found} of the {len(names)} names of {path}"
          " (it lists the release and the image builds' names; each has its own)"
          + ("" if found else ": none, so the list is stale (scripts/symbol-order writes it anew)"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--check", metavar="BIN", help="report how many of --out's names BIN has")
    ap.add_argument("groups", nargs="*", metavar="BIN=KIND_DIR[,KIND_DIR...]")
    args = ap.parse_args()
    if not args.out:
        ap.error("--out is needed")
    if args.check:
        check(args.check, args.out)
        return
    names = []
    for group in args.groups:
        binary, _, dirs = group.partition("=")
        names += order_for(binary, [d for d in dirs.split(",") if d])
    with open(args.out, "w") as f:
        f.write("# The functions the linker places first in sluice's code, in this order:\n")
        f.write("# written by scripts/symbol-order from callgrind profiles; crates/sluice/build.rs\n")
        f.write("# says why. Names the binary does not have are skipped.\n")
        seen = set()
        for name in names:
            if name not in seen:
                seen.add(name)
                f.write(name + "\n")
    print(f"symbol order: {len(seen)} names to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
