#!/usr/bin/env python3
"""Measures `kustomize build` against `sluice build` (called by bench/kustomize/run).

    bench.py --kustomize BIN --sluice BIN --work DIR [--full] [--corpus DIR]

Wall time and peak memory (max RSS, from /usr/bin/time, else wait4) of each build.
sluice runs --repeat times per tree (median wall time, highest RSS); Go
kustomize runs once per tree. Exits 1 when the two outputs differ or a build
fails.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = (1500, 5000)
# Keys of the one wide ConfigMap and of each env file in (c).
WIDE_KEYS = (20000, 40000)
TARGET_SPEEDUP, TARGET_MEMORY, TARGET_5K_SECONDS = 100, 0.25, 0.5


# GNU time reports the command's own peak RSS. Without it, wait4 on a child of
# this Python process also counts the parent's pages the child had before exec
# (ru_maxrss is a high-water mark kept across exec), so small figures are
# inflated by Python's own RSS.
GNU_TIME = '/usr/bin/time' if os.access('/usr/bin/time', os.X_OK) else None


def run(cmd, out_path=None, cwd=None, timeout=900):
    """Runs cmd; returns (exit code, wall s, max RSS MiB, stdout bytes, stderr text)."""
    out = open(out_path, 'wb') if out_path else subprocess.PIPE
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile('r') as rss:
        if GNU_TIME:
            cmd = [GNU_TIME, '-f', '%M', '-o', rss.name, *cmd]
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd, start_new_session=True)
        timer = threading.Timer(timeout, os.killpg, (p.pid, signal.SIGKILL))
        timer.start()
        stdout = b'' if out_path else p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        if out_path:
            out.close()
        else:
            p.stdout.close()
        err.seek(0)
        stderr = err.read().decode('utf-8', 'replace')
        words = rss.read().split() if GNU_TIME else []
        kib = int(words[-1]) if words and words[-1].isdigit() else ru.ru_maxrss
    return p.returncode, wall, kib / 1024, stdout, stderr


def build(binary, tree, out_path, repeat):
    walls, rss = [], 0.0
    for _ in range(repeat):
        rc, wall, mib, _, err = run([binary, 'build', tree], out_path)
        if rc != 0:
            sys.exit(f'FAILED: {binary} build {tree} exited {rc}:\n{err[-2000:]}')
        walls.append(wall)
        rss = max(rss, mib)
    return statistics.median(walls), rss


def compare(a, b, label):
    with open(a, 'rb') as fa, open(b, 'rb') as fb:
        if fa.read() == fb.read():
            size = os.path.getsize(a)
            print(f'  outputs: byte-identical ({size / 1048576:.1f} MiB)')
            return True
    print(f'  outputs: DIFFER ({label}); diff head (kustomize → sluice):')
    diff = subprocess.run(['diff', '-u', a, b], capture_output=True, text=True).stdout
    print('\n'.join('    ' + line for line in diff.splitlines()[:60]))
    return False


def row(label, tool, wall, mib):
    print(f'{label:<26} {tool:<10} {wall:>9.3f} {mib:>9.1f}')


def verdict(ok):
    return 'ok' if ok else 'MISSED'


def ratios(kw, km, sw, sm, targets=True):
    speed, mem = kw / sw, sm / km
    if not targets:
        print(f'  time kustomize/sluice: {speed:.1f}x; memory sluice/kustomize: {mem:.2f}')
        return
    print(f'  time kustomize/sluice: {speed:.0f}x (target >= {TARGET_SPEEDUP}x: '
          f'{verdict(speed >= TARGET_SPEEDUP)}); '
          f'memory sluice/kustomize: {mem:.2f} (target <= {TARGET_MEMORY}: '
          f'{verdict(mem <= TARGET_MEMORY)})')


def trees(args):
    ok, sluice_at = True, {}
    for n in SIZES:
        tree = os.path.join(args.work, f'tree-{n}')
        subprocess.run([sys.executable, os.path.join(HERE, 'gen-tree.py'), tree, str(n)],
                       check=True)
        overlay = os.path.join(tree, 'overlay')
        s_out = os.path.join(tree, 'out.sluice')
        sw, sm = build(args.sluice, overlay, s_out, args.repeat)
        with open(s_out, 'rb') as fh:
            docs = fh.read().count(b'\n---\n') + 1
        label = f'generated, {docs:,} objects'
        sluice_at[n] = (docs, sw, sm)
        if n == SIZES[0] or args.full:
            k_out = os.path.join(tree, 'out.kustomize')
            kw, km = build(args.kustomize, overlay, k_out, 1)
            row(label, 'kustomize', kw, km)
            row('', 'sluice', sw, sm)
            ratios(kw, km, sw, sm)
            ok = compare(k_out, s_out, f'{n} resources') and ok
        else:
            row(label, 'sluice', sw, sm)
            print('  kustomize not run at this size (BENCH_KUSTOMIZE_FULL=1 runs it, '
                  'about 6 minutes)')
        if n == SIZES[-1]:
            print(f'  sluice under {TARGET_5K_SECONDS:g} s at {docs:,} objects: '
                  f'{verdict(sw < TARGET_5K_SECONDS)}')
    (d0, w0, m0), (d1, w1, m1) = sluice_at[SIZES[0]], sluice_at[SIZES[-1]]
    print(f'sluice growth: {d0:,} → {d1:,} objects (x{d1 / d0:.1f}): '
          f'{w0:.3f} s → {w1:.3f} s (x{w1 / w0:.1f}), {m0:.1f} → {m1:.1f} MiB')
    return ok


def wide_tree(root, keys):
    """One ConfigMap resource with `keys` data entries, and a generator
    merging an env file of `keys` entries (half of them new) over a base
    generator of as many: the shapes where a per-key scan goes square."""
    base, overlay = os.path.join(root, 'base'), os.path.join(root, 'overlay')
    os.makedirs(base, exist_ok=True)
    os.makedirs(overlay, exist_ok=True)
    with open(os.path.join(base, 'big.env'), 'w') as fh:
        fh.writelines(f'KEY{i}=base{i}\n' for i in range(keys))
    with open(os.path.join(overlay, 'big.env'), 'w') as fh:
        fh.writelines(f'KEY{i}=over{i}\n' for i in range(0, 2 * keys, 2))
    with open(os.path.join(base, 'cm.yaml'), 'w') as fh:
        fh.write('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: wide\ndata:\n')
        fh.writelines(f'  key{i}: value{i}\n' for i in range(keys))
    with open(os.path.join(base, 'kustomization.yaml'), 'w') as fh:
        fh.write('resources:\n- cm.yaml\nconfigMapGenerator:\n- name: env\n  envs:\n  - big.env\n')
    with open(os.path.join(overlay, 'kustomization.yaml'), 'w') as fh:
        fh.write('namePrefix: p-\nresources:\n- ../base\nconfigMapGenerator:\n'
                 '- name: env\n  behavior: merge\n  envs:\n  - big.env\n')
    return overlay


def wide_maps(args):
    ok, at = True, []
    for keys in WIDE_KEYS:
        overlay = wide_tree(os.path.join(args.work, f'wide-{keys}'), keys)
        s_out, k_out = overlay + '.sluice', overlay + '.kustomize'
        sw, sm = build(args.sluice, overlay, s_out, args.repeat)
        label = f'wide maps, {keys:,} keys'
        at.append((keys, sw))
        if keys != WIDE_KEYS[0] and not args.full:
            row(label, 'sluice', sw, sm)
            print('  kustomize not run at this size (BENCH_KUSTOMIZE_FULL=1 runs it, '
                  'about 2 minutes)')
            continue
        kw, km = build(args.kustomize, overlay, k_out, 1)
        row(label, 'kustomize', kw, km)
        row('', 'sluice', sw, sm)
        ratios(kw, km, sw, sm, targets=False)
        ok = compare(k_out, s_out, f'{keys} keys') and ok
    (k0, w0), (k1, w1) = at[0], at[-1]
    print(f'sluice growth: {k0:,} → {k1:,} keys (x{k1 / k0:.0f}): '
          f'{w0:.3f} s → {w1:.3f} s (x{w1 / w0:.1f})')
    return ok


def corpus(args):
    cases_dir = os.path.join(args.corpus, 'cases')
    if not os.path.isdir(cases_dir):
        print(f'conformance corpus: skipped ({cases_dir} is absent)')
        return True
    cases = []
    for name in sorted(os.listdir(cases_dir)):
        path = os.path.join(cases_dir, name, 'case.json')
        if not os.path.isfile(path):
            continue
        with open(path) as fh:
            case = json.load(fh)
        # run.py's default selection: no `skip`, no `needs`.
        if case.get('skip') or case.get('needs'):
            continue
        root = os.path.join(cases_dir, name, 'input')
        if not os.path.isdir(root):  # a case about an empty file system
            root = os.path.join(cases_dir, name)
        cases.append((root, os.path.normpath(os.path.join(root, case['build_dir'])),
                      case.get('cli_flags', [])))
    totals = {'kustomize': [0.0, 0.0], 'sluice': [0.0, 0.0]}
    walls = {'kustomize': [], 'sluice': []}
    same = 0
    for root, bdir, flags in cases:
        results = {}
        for tool, binary in (('kustomize', args.kustomize), ('sluice', args.sluice)):
            rc, wall, mib, out, _ = run([binary, 'build', *flags, bdir], cwd=root, timeout=120)
            totals[tool][0] += wall
            walls[tool].append(wall)
            totals[tool][1] = max(totals[tool][1], mib)
            results[tool] = (rc == 0, out if rc == 0 else b'')
        same += results['kustomize'] == results['sluice']
    label = f'corpus, {len(cases)} cases'
    (kw, km), (sw, sm) = totals['kustomize'], totals['sluice']
    row(label, 'kustomize', kw, km)
    row('', 'sluice', sw, sm)
    ratios(kw, km, sw, sm, targets=False)
    print(f'  median per case: kustomize {statistics.median(walls["kustomize"]) * 1000:.1f} ms, '
          f'sluice {statistics.median(walls["sluice"]) * 1000:.1f} ms (small inputs: '
          f'mostly process start-up)')
    print(f'  same outcome (both fail, or both succeed with byte-identical output): '
          f'{same}/{len(cases)}')
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--kustomize', required=True)
    ap.add_argument('--sluice', required=True)
    ap.add_argument('--work', required=True)
    ap.add_argument('--corpus', required=True)
    ap.add_argument('--full', action='store_true')
    ap.add_argument('--repeat', type=int, default=3)
    args = ap.parse_args()
    print(f'{"":<26} {"tool":<10} {"wall s":>9} {"max MiB":>9}')
    ok = trees(args)
    ok = wide_maps(args) and ok
    ok = corpus(args) and ok
    if not ok:
        sys.exit('FAILED: sluice and kustomize outputs differ (see above)')


if __name__ == '__main__':
    main()
