// Tenants: API keys (401 without or with a wrong key, via the openai SDK), requests-per-minute
// limits (429 + Retry-After), and fair sharing of saturated slots between tenants.
import fs from 'node:fs';
import path from 'node:path';
import { assert, loadOpenAI, main, startServer, sse, metrics, sleep, TMP, GREEDY } from './lib.mjs';

main('tenants', 150, async () => {
  const OpenAI = loadOpenAI();
  const keys = path.join(TMP, 'tenants_keys.txt');
  fs.writeFileSync(keys, '# test keys\nsk-alice alice\nsk-bob bob\nsk-carol carol rpm=2\n');
  const srv = await startServer(['--parallel', '2', '--ctx', '256', '--api-keys', keys]);
  try {
    const sdk = (key) => new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: key, maxRetries: 0, timeout: 60000 });
    const req = { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };
    for (const key of ['', 'sk-wrong', 'sk-alic']) {
      await assert.rejects(sdk(key || 'none').chat.completions.create(req), (e) => e.status === 401 && e.error?.code !== undefined);
    }
    const noAuth = await fetch(`${srv.url}/v1/models`);
    assert.equal(noAuth.status, 401);
    assert.equal((await noAuth.json()).error.code, 'missing_api_key');
    assert.equal((await sdk('sk-alice').models.list()).data.length, 1);

    // Rate limit: carol may send 2 requests a minute.
    await sdk('sk-carol').chat.completions.create(req);
    await sdk('sk-carol').chat.completions.create(req);
    await assert.rejects(sdk('sk-carol').chat.completions.create(req), (e) => e.status === 429 && e.code === 'rate_limit_exceeded');
    const raw = await fetch(`${srv.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: 'Bearer sk-carol', 'content-type': 'application/json' }, body: JSON.stringify(req),
    });
    assert.equal(raw.status, 429);
    assert.ok(Number(raw.headers.get('retry-after')) >= 1);
    await sdk('sk-bob').chat.completions.create(req);  // other tenants are unaffected

    // Fairness: alice floods 8 requests into 2 slots; bob's 2 requests, sent later, are admitted
    // before most of alice's backlog instead of behind all of it.
    const t0 = Date.now();
    const first = {};
    const run = (key, name) =>
      sse(`${srv.url}/v1/completions`, { prompt: `${name} request`, max_tokens: 100, ...GREEDY }, {
        headers: { authorization: `Bearer ${key}` },
        onEvent: () => {
          first[name] ??= Date.now() - t0;
        },
      });
    const alice = Array.from({ length: 8 }, (_, i) => run('sk-alice', `alice${i}`));
    // Wait until alice holds both slots and a backlog is queued (at least 3: then at most 5 of her
    // requests have started, so aliceStarts[5] is still ahead of bob under fair sharing). Polling
    // for an exact depth races with her first requests finishing on a fast or loaded machine.
    for (let t = Date.now(); !((await metrics(srv.url))['modu_queue_depth'] >= 3); await sleep(5))
      assert.ok(Date.now() - t < 20000, 'alice did not fill the queue');
    const bob = [run('sk-bob', 'bob0'), run('sk-bob', 'bob1')];
    for (const r of await Promise.all([...alice, ...bob])) assert.equal(r.events.at(-1), '[DONE]');
    const aliceStarts = Object.entries(first).filter(([k]) => k.startsWith('alice')).map(([, v]) => v).sort((a, b) => a - b);
    const bobLast = Math.max(first.bob0, first.bob1);
    // FIFO would start bob after all 8 of alice's; fair sharing starts both within alice's first 5.
    assert.ok(bobLast < aliceStarts[5], `bob waited behind alice: bob ${bobLast} ms, alice starts ${aliceStarts}`);
    console.log(`fairness: bob started by ${bobLast} ms; alice starts ${aliceStarts.join(', ')} ms`);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});
