// Shared helpers for the server tests: start `modu serve` on a free loopback port, the openai SDK
// from the build tree, raw HTTP/SSE requests, metrics scraping, and a whole-test deadline.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import assert from 'node:assert/strict';

export { assert };

export const MODU_BIN = process.env.MODU_BIN;
export const MODEL = process.env.MODU_TEST_MODEL;
export const TMP = process.env.MODU_TEST_TMP || '/tmp';

export function loadOpenAI() {
  const dir = process.env.OPENAI_NODE_DIR;
  if (!dir) throw new Error('OPENAI_NODE_DIR is not set (run through ctest)');
  const require = createRequire(path.join(dir, 'node_modules', 'noop.js'));
  const mod = require('openai');
  return mod.default ?? mod;
}

// The official Anthropic SDK (@anthropic-ai/sdk), installed next to openai.
export function loadAnthropic() {
  const dir = process.env.OPENAI_NODE_DIR;
  if (!dir) throw new Error('OPENAI_NODE_DIR is not set (run through ctest)');
  const require = createRequire(path.join(dir, 'node_modules', 'noop.js'));
  const mod = require('@anthropic-ai/sdk');
  return mod.default ?? mod.Anthropic ?? mod;
}

// Reassembles streamed chat tool_calls deltas as OpenAI clients do: the first delta of a call
// (by index) carries id, type and name; later ones append argument fragments. Checks that order.
export function reassembleToolCalls(deltas) {
  const calls = [];
  for (const d of deltas) {
    assert.equal(typeof d.index, 'number', JSON.stringify(d));
    if (d.index === calls.length) {
      assert.ok(d.id && d.function?.name, `the first delta of call ${d.index} names it: ${JSON.stringify(d)}`);
      assert.equal(d.type, 'function');
      calls.push({ id: d.id, type: 'function', function: { name: d.function.name, arguments: d.function.arguments ?? '' } });
    } else {
      assert.ok(d.index < calls.length, `delta for call ${d.index} before its header`);
      assert.equal(d.function?.name, undefined, 'only the first delta names the call');
      calls[d.index].function.arguments += d.function?.arguments ?? '';
    }
  }
  return calls;
}

// Runs `body` with a hard deadline; any failure exits non-zero with the error.
export function main(name, seconds, body) {
  const timer = setTimeout(() => {
    console.error(`${name}: timed out after ${seconds} s`);
    process.exit(2);
  }, seconds * 1000);
  body().then(
    () => {
      clearTimeout(timer);
      console.log(`${name}: all checks passed`);
      process.exit(0);
    },
    (err) => {
      console.error(`${name}: FAILED`);
      console.error(err);
      process.exit(1);
    },
  );
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// Starts the server; resolves once /health answers. Returns {url, proc, stop(), stderr()}.
export async function startServer(args = [], { model = MODEL } = {}) {
  const proc = spawn(MODU_BIN, ['serve', '-m', model, '--port', '0', '-t', '1', ...args], {
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  let err = '';
  let exitCode = null;
  const exited = new Promise((resolve) =>
    proc.on('exit', (code, signal) => {
      exitCode = code ?? signal;
      resolve(exitCode);
    }),
  );
  const port = await new Promise((resolve, reject) => {
    proc.stderr.on('data', (d) => {
      err += d.toString();
      const m = err.match(/on http:\/\/[^:]+:(\d+)/);
      if (m) resolve(Number(m[1]));
    });
    exited.then((code) => reject(new Error(`modu serve exited (${code}) before listening:\n${err}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; ++i) {
    try {
      const r = await fetch(`${url}/health`);
      if (r.ok) break;
    } catch {}
    await sleep(50);
  }
  return {
    url,
    proc,
    exited,
    stderr: () => err,
    exitCode: () => exitCode,
    async stop() {
      if (exitCode !== null) return exitCode;
      proc.kill('SIGTERM');
      return await exited;
    },
  };
}

export async function postJson(url, body, headers = {}) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, headers: r.headers, text, json };
}

// Streams an SSE response; calls onEvent(parsed JSON or '[DONE]') and returns all events.
export async function sse(url, body, { headers = {}, signal, onEvent } = {}) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ ...body, stream: true }),
    signal,
  });
  if (r.status !== 200) return { status: r.status, events: [], text: await r.text() };
  const events = [];
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of r.body) {
    buf += decoder.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of block.split('\n')) {
        if (!line.startsWith('data: ')) continue;
        const data = line.slice(6);
        const ev = data === '[DONE]' ? '[DONE]' : JSON.parse(data);
        events.push(ev);
        if (onEvent) await onEvent(ev, events);
      }
    }
  }
  return { status: r.status, events };
}

// Prometheus text -> {name: value} for unlabeled samples (and name{labels} keys).
export async function metrics(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    out[line.slice(0, sp)] = Number(line.slice(sp + 1));
  }
  return out;
}

// Greedy, EOS ignored, so every request produces exactly max_tokens tokens.
export const GREEDY = { temperature: 0, ignore_eos: true };
