// serve_load: load benchmark for `modu serve` over loopback. Starts the server (or uses --url),
// runs 1, 4 and 16 concurrent streaming clients and prints aggregate tokens/s and TTFT p50/p99.
//   node bench/serve/serve_load.mjs --modu build/release/src/cli/modu --model m.gguf [--parallel 16]
//        [--tokens 64] [--requests 3] [--prompt-words 40] [--levels 1,4,16] [--url http://host:port] [--json 1]
// With --url it measures any OpenAI-compatible server (llama-server too: bench/compare uses it so).
import { spawn } from 'node:child_process';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const tokens = Number(args.tokens ?? 64);
const perClient = Number(args.requests ?? 3);
const promptWords = Number(args['prompt-words'] ?? 40);
const levels = (args.levels ?? '1,4,16').split(',').map(Number);
const deadline = Date.now() + 1000 * Number(args['max-seconds'] ?? 600);

async function startServer() {
  if (args.url) return { url: args.url, stop: async () => {} };
  if (!args.modu || !args.model) throw new Error('give --modu BIN --model FILE, or --url');
  const extra = args['server-args'] ? args['server-args'].split(' ') : [];
  const proc = spawn(args.modu, ['serve', '-m', args.model, '--port', '0', '--parallel', args.parallel ?? '16',
    '--ctx', args.ctx ?? '1024', ...extra], { stdio: ['ignore', 'inherit', 'pipe'] });
  let err = '';
  const port = await new Promise((resolve, reject) => {
    proc.stderr.on('data', (d) => {
      err += d;
      const m = err.match(/on http:\/\/[^:]+:(\d+)/);
      if (m) resolve(Number(m[1]));
    });
    proc.on('exit', (c) => reject(new Error(`server exited ${c}: ${err}`)));
  });
  const exited = new Promise((r) => proc.on('exit', r));
  return { url: `http://127.0.0.1:${port}`, stop: async () => { proc.kill('SIGTERM'); await exited; } };
}

// One streaming completion; returns {ttft, tokens, seconds}.
async function one(url, id) {
  const t0 = performance.now();
  const words = Array.from({ length: promptWords }, (_, i) => `word${(i * 7 + id) % 97}`).join(' ');
  const r = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: `Request ${id}: ${words}`, max_tokens: tokens, temperature: 0, ignore_eos: true,
      stream: true, stream_options: { include_usage: true } }),
  });
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
  let ttft = null;
  let n = 0;
  let chunks = 0;  // servers that send no usage: one token per text chunk
  const dec = new TextDecoder();
  let buf = '';
  for await (const chunk of r.body) {
    buf += dec.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const ev = JSON.parse(line.slice(6));
      if (ttft === null && ev.choices?.length) ttft = performance.now() - t0;  // first token's event
      if (ev.choices?.[0]?.text) ++chunks;
      if (ev.usage) n = ev.usage.completion_tokens;
    }
  }
  return { ttft, tokens: n || chunks, seconds: (performance.now() - t0) / 1000 };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

const srv = await startServer();
try {
  await one(srv.url, 9999);  // warm-up
  const rows = [];
  for (const c of levels) {
    if (Date.now() > deadline) break;
    const t0 = performance.now();
    const results = (await Promise.all(Array.from({ length: c }, async (_, k) => {
      const out = [];
      for (let j = 0; j < perClient; ++j) out.push(await one(srv.url, k * 100 + j));
      return out;
    }))).flat();
    const secs = (performance.now() - t0) / 1000;
    const total = results.reduce((a, r) => a + r.tokens, 0);
    const ttfts = results.map((r) => r.ttft);
    rows.push({ c, n: results.length, total, secs, tps: total / secs, p50: pct(ttfts, 50), p99: pct(ttfts, 99),
      per: results.reduce((a, r) => a + r.tokens / r.seconds, 0) / results.length });
  }
  if (args.json) console.log(JSON.stringify({ tokens, requests_per_client: perClient, prompt_words: promptWords, rows }));
  else console.log(`\nserve_load: ${tokens} tokens per request, ${perClient} requests per client, prompt ~${promptWords} words`);
  if (!args.json) console.log('| clients | requests | tokens | seconds | aggregate tok/s | per-stream tok/s | TTFT p50 ms | TTFT p99 ms |');
  if (!args.json) console.log('|--------:|---------:|-------:|--------:|----------------:|-----------------:|------------:|------------:|');
  for (const r of args.json ? [] : rows)
    console.log(`| ${r.c} | ${r.n} | ${r.total} | ${r.secs.toFixed(2)} | ${r.tps.toFixed(1)} | ${r.per.toFixed(1)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} |`);
} finally {
  await srv.stop();
}
