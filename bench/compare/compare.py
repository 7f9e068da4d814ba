#!/usr/bin/env python3
"""Side by side: modu and llama.cpp on the same GGUF file, run alternately, ratios printed.

llama.cpp is not part of modu: build it anywhere and give its build directory (the one holding
bin/llama-bench and bin/llama-server). Each round runs modu then llama.cpp (then the next round
the other way round), so drifting machine load hits both alike; the tables give means over rounds.

  python3 bench/compare/compare.py --llama ~/llama.cpp/build --model bench-1b-q4_k_m.gguf \\
      [--modu build/release/src/cli/modu] [--threads 2] [--rounds 2] [--pp 128,512] [--tg 64] \\
      [--depth 0,8192] [--serve 1,4,8,16] [--parallel 8] [--serve-tokens 64] [--json out.json]

Tests: prefill of --pp tokens and decode of --tg tokens at each --depth (llama-bench -p/-n/-d and
`modu bench -p/-n/-d`, same threads), then the OpenAI server of each (modu serve / llama-server,
--parallel slots) under 1..N concurrent streaming clients (bench/serve/serve_load.mjs): aggregate
generated tokens/s and time to first token. Ratios are modu / llama.cpp (TTFT: lower is better).
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def run_json(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit('compare: %s failed (%d):\n%s' % (' '.join(cmd), r.returncode, r.stderr.strip()[-2000:]))
    out = r.stdout
    start = out.find('[') if out.lstrip().startswith('[') else out.find('{')
    return json.loads(out[start:])


def modu_bench(a, pp, tg, depth):
    cmd = [a.modu, 'bench', '-m', a.model, '-p', str(pp), '-n', str(tg), '-d', str(depth), '-r', str(a.reps), '--json',
           '--beyond-ctx']  # (llama-bench does not stop at the training context either)
    if a.threads:
        cmd += ['-t', str(a.threads)]
    j = run_json(cmd)
    return j['prefill_tokens_per_s'] if pp else j['decode_tokens_per_s']


def llama_bench(a, pp, tg, depth):
    cmd = [os.path.join(a.llama, 'bin', 'llama-bench'), '-m', a.model, '-p', str(pp), '-n', str(tg), '-d', str(depth),
           '-r', str(a.reps), '-o', 'json']
    if a.threads:
        cmd += ['-t', str(a.threads)]
    rows = run_json(cmd)
    for r in rows:
        if r.get('n_prompt') == pp and r.get('n_gen') == tg:
            return r['avg_ts'], r.get('build_commit', '?')
    raise RuntimeError('llama-bench gave no row for pp %d tg %d: %s' % (pp, tg, rows))


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_up(url, proc, seconds=300):
    import urllib.request
    t0 = time.time()
    while time.time() - t0 < seconds:
        if proc.poll() is not None:
            raise RuntimeError('the server exited with %s' % proc.returncode)
        try:
            with urllib.request.urlopen(url + '/health', timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(0.5)
    raise RuntimeError('the server did not come up: ' + url)


def serve(a, engine):
    port = free_port()
    if engine == 'modu':
        cmd = [a.modu, 'serve', '-m', a.model, '--port', str(port), '--parallel', str(a.parallel), '--ctx', str(a.ctx)]
        if a.threads:
            cmd += ['-t', str(a.threads)]
    else:
        cmd = [os.path.join(a.llama, 'bin', 'llama-server'), '-m', a.model, '--port', str(port), '--parallel',
               str(a.parallel), '-c', str(a.ctx * a.parallel), '--cont-batching']
        if a.threads:
            cmd += ['-t', str(a.threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = 'http://127.0.0.1:%d' % port
    try:
        wait_up(url, proc)
        load = ['node', os.path.join(ROOT, 'bench', 'serve', 'serve_load.mjs'), '--url', url, '--levels', a.serve,
                '--tokens', str(a.serve_tokens), '--requests', str(a.serve_requests), '--json', '1']
        r = subprocess.run(load, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError('%s: serve_load failed (%d):\n%s' % (engine, r.returncode, (r.stderr or r.stdout)[-2000:]))
        return json.loads(r.stdout.strip().splitlines()[-1])['rows']
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def mean(xs):
    return sum(xs) / len(xs) if xs else float('nan')


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--llama', required=True, help='llama.cpp build directory (bin/llama-bench, bin/llama-server)')
    p.add_argument('--model', required=True)
    p.add_argument('--modu', default=os.path.join(ROOT, 'build', 'release', 'src', 'cli', 'modu'))
    p.add_argument('--threads', type=int, default=0)
    p.add_argument('--rounds', type=int, default=2)
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--pp', default='128,512')
    p.add_argument('--tg', default='64')
    p.add_argument('--depth', default='0')
    p.add_argument('--serve', default='1,4,8,16', help="client counts ('' : no server test)")
    p.add_argument('--parallel', type=int, default=8)
    p.add_argument('--ctx', type=int, default=1024, help='context per slot')
    p.add_argument('--serve-tokens', type=int, default=64)
    p.add_argument('--serve-requests', type=int, default=2)
    p.add_argument('--json', help='also write the results here')
    p.add_argument('--llama-commit', default='', help="the llama.cpp commit, when its build does not know it (built outside git)")
    a = p.parse_args()
    for tool in [a.modu, os.path.join(a.llama, 'bin', 'llama-bench')]:
        if not os.path.exists(tool):
            sys.exit('compare: %s not found' % tool)
    tests = [(int(n), 0, int(d)) for d in a.depth.split(',') for n in a.pp.split(',') if n] + \
            [(0, int(n), int(d)) for d in a.depth.split(',') for n in a.tg.split(',') if n]
    res = {t: {'modu': [], 'llama': []} for t in tests}
    commit = '?'
    for r in range(a.rounds):
        for t in tests:
            order = ['modu', 'llama'] if r % 2 == 0 else ['llama', 'modu']
            for e in order:
                if e == 'modu':
                    res[t]['modu'].append(modu_bench(a, *t))
                else:
                    v, commit = llama_bench(a, *t)
                    res[t]['llama'].append(v)
    if a.llama_commit and commit in ('?', 'unknown'):
        commit = a.llama_commit
    cpu = subprocess.run(['sh', '-c', "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
    print('model %s, llama.cpp %s, %s, threads %s, %d rounds' % (a.model, commit, cpu, a.threads or 'all', a.rounds))
    print('| test | modu tok/s | llama.cpp tok/s | modu / llama.cpp |')
    print('|---|---:|---:|---:|')
    out = {'model': a.model, 'llama_commit': commit, 'cpu': cpu, 'bench': [], 'serve': {}}
    for t in tests:
        pp, tg, d = t
        name = ('pp%d' % pp if pp else 'tg%d' % tg) + (' @ d%d' % d if d else '')
        m, l = mean(res[t]['modu']), mean(res[t]['llama'])
        print('| %s | %.2f | %.2f | %.2fx |' % (name, m, l, m / l))
        out['bench'].append({'test': name, 'modu': res[t]['modu'], 'llama': res[t]['llama']})
    if a.serve and shutil.which('node'):
        rows = {'modu': [], 'llama': []}
        for r in range(a.rounds):
            for e in (['modu', 'llama'] if r % 2 == 0 else ['llama', 'modu']):
                rows[e].append(serve(a, e))
        print('\nserver, --parallel %d, %d tokens per request, %d requests per client' %
              (a.parallel, a.serve_tokens, a.serve_requests))
        print('| clients | modu tok/s | llama.cpp tok/s | ratio | modu TTFT p50 ms | llama.cpp TTFT p50 ms | ratio |')
        print('|---:|---:|---:|---:|---:|---:|---:|')
        for i, c in enumerate(a.serve.split(',')):
            mt = mean([x[i]['tps'] for x in rows['modu']])
            lt = mean([x[i]['tps'] for x in rows['llama']])
            mf = mean([x[i]['p50'] for x in rows['modu']])
            lf = mean([x[i]['p50'] for x in rows['llama']])
            print('| %s | %.1f | %.1f | %.2fx | %.0f | %.0f | %.2fx |' % (c, mt, lt, mt / lt, mf, lf, mf / lf))
        out['serve'] = rows
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(out, f, indent=1)


if __name__ == '__main__':
    main()
