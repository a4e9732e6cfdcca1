#!/usr/bin/env python3
"""Measures `helm template` against `sluice helm template` (called by bench/helm/run).

    bench.py --helm BIN --sluice BIN --corpus DIR [--repeat N]

Each command runs --repeat times for its wall time (the median) and --repeat
times more for its peak RSS (the highest) and output, after both binaries were
dropped from the page cache (see bench/pagecache.py). The timed runs are
started with posix_spawn and nothing around them, so that the figure is the
command's, not the harness's: a run under GNU time from Python costs a few
milliseconds of forking and exec'ing before the command starts, as much as
sluice's whole render of a small chart. The memory runs need GNU time (a child
forked from Python would report Python's RSS as its peak). The cost of
spawning /bin/true the same way is printed, and not subtracted. Both get the same arguments: the corpus case's release,
chart, namespace, kube version, values files, --include-crds and, where the
case says so, --skip-schema-validation. Exits 1 when an output differs from
Helm's (apart from documents of templates that call random functions, and
documents of one kind in another order, as the corpus runner allows) or a
command fails where the other does not.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import pagecache  # noqa: E402

TARGET_SPEEDUP, TARGET_MEMORY = 20, 0.25
GNU_TIME = '/usr/bin/time' if os.access('/usr/bin/time', os.X_OK) else None


def run(cmd):
    """(exit code, peak RSS MiB, stdout), under GNU time where there is one."""
    with tempfile.NamedTemporaryFile('r') as rss:
        full = [GNU_TIME, '-f', '%M', '-o', rss.name, *cmd] if GNU_TIME else cmd
        p = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        words = rss.read().split() if GNU_TIME else []
        kib = int(words[-1]) if words and words[-1].isdigit() else ru.ru_maxrss
    return os.waitstatus_to_exitcode(status), kib / 1024, out


def timed(cmd):
    """Wall seconds of one run of `cmd`, spawned directly, its output to a file."""
    with tempfile.TemporaryFile() as out, open(os.devnull, 'wb') as null:
        actions = [(os.POSIX_SPAWN_DUP2, out.fileno(), 1), (os.POSIX_SPAWN_DUP2, null.fileno(), 2)]
        t0 = time.perf_counter()
        pid = os.posix_spawn(cmd[0], cmd, os.environ, file_actions=actions)
        os.waitpid(pid, 0)
        return time.perf_counter() - t0


def measure(cmd, repeat):
    """(exit code, median wall s, highest peak RSS MiB, stdout of the last run)."""
    peak, code, out = 0.0, 0, b''
    for _ in range(repeat):
        code, mib, out = run(cmd)
        peak = max(peak, mib)
    wall = statistics.median(timed(cmd) for _ in range(repeat))
    return code, wall, peak, out


def case_args(corpus, case):
    d = os.path.join(corpus, 'cases', case)
    meta = yaml.safe_load(open(os.path.join(d, 'case.yaml')))
    args = [meta['release'], os.path.join(corpus, 'charts', meta['chart']),
            '--namespace', meta['namespace'], '--kube-version', str(meta['kubeVersion']), '--include-crds']
    for v in meta.get('values') or []:
        args += ['-f', os.path.join(d, v)]
    if meta.get('skipSchemaValidation'):
        args.append('--skip-schema-validation')
    return args, meta


def same(a, b, loose):
    """Equal, or equal with random templates' documents and same-kind order set aside."""
    if a == b:
        return True
    def docs(raw):
        out = []
        for chunk in raw.decode(errors='replace').split('\n---'):
            src = next((l[10:] for l in chunk.splitlines() if l.startswith('# Source: ')), None)
            # What trails a document (the blank lines Helm keeps, the final newline) belongs
            # to its place in the stream, which moves with the order.
            out.append('' if src in loose else chunk.rstrip())
        return sorted(out)
    return docs(a) == docs(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--helm', required=True)
    ap.add_argument('--sluice', required=True)
    ap.add_argument('--corpus', required=True)
    ap.add_argument('--repeat', type=int, default=5)
    a = ap.parse_args()
    for binary in (a.helm, a.sluice):
        pagecache.evict(binary)
    cases = sorted(os.listdir(os.path.join(a.corpus, 'cases')))
    floor = statistics.median(timed(['/bin/true']) for _ in range(max(a.repeat, 11)))
    print(f"spawning /bin/true the way the timed runs are spawned: {floor * 1000:.2f} ms (median; not subtracted)")
    bad = 0
    rows = []
    for case in cases:
        args, meta = case_args(a.corpus, case)
        hc, hw, hm, ho = measure([a.helm, 'template', *args], a.repeat)
        sc, sw, sm, so = measure([a.sluice, 'helm', 'template', *args], a.repeat)
        ok = (hc != 0 and sc != 0) or (hc == 0 and sc == 0 and same(ho, so, set(meta.get('nondeterministic') or [])))
        bad += not ok
        rows.append((case, hw, sw, hm, sm, ok))
    print(f"{'case':62} {'helm s':>8} {'sluice s':>9} {'x':>6} {'helm MiB':>9} {'sluice MiB':>10} {'mem':>6}")
    for case, hw, sw, hm, sm, ok in rows:
        print(f"{case:62} {hw:8.3f} {sw:9.4f} {hw / sw:6.1f} {hm:9.1f} {sm:10.1f} {sm / hm:6.2f}{'' if ok else '  OUTPUT DIFFERS'}")
    th, ts = sum(r[1] for r in rows), sum(r[2] for r in rows)
    mh, ms = max(r[3] for r in rows), max(r[4] for r in rows)
    kps = [r for r in rows if r[0] == 'kube-prometheus-stack-defaults']
    print(f"all {len(rows)} cases: helm {th:.2f} s, sluice {ts:.2f} s: {th / ts:.1f}x faster; "
          f"peak RSS helm {mh:.1f} MiB, sluice {ms:.1f} MiB: {ms / mh:.2f} of Helm's memory")
    if kps:
        _, hw, sw, hm, sm, _ = kps[0]
        print(f"kube-prometheus-stack defaults: helm {hw:.3f} s {hm:.1f} MiB, sluice {sw:.4f} s {sm:.1f} MiB: "
              f"{hw / sw:.1f}x faster, {sm / hm:.2f} of the memory "
              f"(target: {TARGET_SPEEDUP}x, {TARGET_MEMORY})")
    else:
        print("kube-prometheus-stack defaults: not in this corpus run (see the skip message above)")
    print(f"identical output: {len(rows) - bad}/{len(rows)}")
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
