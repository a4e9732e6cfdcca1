#!/usr/bin/env python3
"""Writes the linker's symbol ordering file from callgrind profiles.

    symbol_order.py --out FILE BIN=KIND_DIR[,KIND_DIR...]...
    symbol_order.py --out FILE --check BIN

Each KIND_DIR holds the callgrind profiles (`--demangle=no`) of one kind of
work (`helm`, `kustomize`, `controller`, `idle`, `helmrelease`) run by BIN. A
function is kept when it is a symbol of BIN and some profile saw it run in
BIN. The order groups the functions by the set of kinds that ran them (those
most kinds share first), each group by how many profiles ran them: a
process's RSS counts every 64 KiB window of code it touches (the kernel maps
that much around each page it faults in), and a group's windows are touched
by the kinds of its functions and no other. So what a kind of work costs is
about the size of its functions, as long as the kinds are the right ones: a
kind that mixes two workloads (an idle controller within a busy one) leaves
the smaller spread over the larger's windows. The report gives, for each
kind, its functions' size and the windows they fall in.

With several binaries (the release build and the image's, whose symbol
names differ: their hashes depend on the build's target), their lists follow
each other; the linker skips the names its binary does not have. See
scripts/symbol-order.
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
    """The binary's functions, with their sizes."""
    out = subprocess.run(["nm", "--defined-only", "-S", binary], check=True, capture_output=True,
                         text=True).stdout
    sizes = {}
    for p in (line.split() for line in out.splitlines()):
        if len(p) == 4 and p[2] in "tTwW":
            sizes[p[3]] = int(p[1], 16)
        elif len(p) == 3 and p[1] in "tTwW":  # no size known
            sizes.setdefault(p[2], 0)
    return sizes


def windows(order, sizes, kinds):
    """For each kind, how many 64 KiB windows of code its functions span when laid out in
    `order` (an estimate: each function at the next 16-byte boundary)."""
    spans, at = {}, 0
    for name in order:
        size = max(sizes[name], 1)
        for kind in kinds[name]:
            spans.setdefault(kind, set()).update(range(at >> 16, ((at + size - 1) >> 16) + 1))
        at += (size + 15) & ~15
    return {k: len(v) for k, v in spans.items()}


def order_for(binary, kind_dirs):
    base = os.path.basename(os.path.realpath(binary))
    sizes = defined_text_symbols(binary)
    runs = {}  # name -> number of profiles that ran it
    kinds = {}  # name -> the kinds of work that ran it
    first = {}  # name -> the order it was first seen in, for a stable result
    for cls in kind_dirs:
        kind = os.path.basename(cls.rstrip("/"))
        profiles = sorted(os.path.join(cls, p) for p in os.listdir(cls))
        for path in profiles:
            for name in sorted(executed(path, base)):
                if not SYMBOL.match(name) or name not in sizes:
                    continue
                runs[name] = runs.get(name, 0) + 1
                kinds.setdefault(name, set()).add(kind)
                first.setdefault(name, len(first))
        print(f"symbol order: {binary}: {kind}: {len(profiles)} profiles", file=sys.stderr)
    if not runs:
        sys.exit(f"symbol order: no profile saw a function of {binary}")
    order = sorted(runs, key=lambda n: (-len(kinds[n]), sorted(kinds[n]), -runs[n], first[n]))
    print(f"symbol order: {binary}: {len(order)} functions", file=sys.stderr)
    spans = windows(order, sizes, kinds)
    for kind in sorted(spans):
        names = [n for n in order if kind in kinds[n]]
        print(f"symbol order: {binary}: {kind}: {len(names)} functions,"
              f" {sum(sizes[n] for n in names) / 1e6:.1f} MB, in about {spans[kind]} windows of 64 KiB",
              file=sys.stderr)
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
