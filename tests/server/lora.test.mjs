// Multi-LoRA serving: named adapters picked per request (model "BASE:NAME" or the "lora" field)
// share the batched forward pass; concurrent requests with different adapters (and none) each
// equal their solo runs; the prefix cache never hands KV computed under one adapter set to
// another; unknown adapters are a clear 400; /v1/models lists the adapters. With --admin-key,
// /v1/admin/lora loads (GGUF or PEFT) and unloads adapters at run time: an adapter in use is not
// unloaded (409), and a freed slot's next adapter never sees KV computed under the old one.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { assert, GREEDY, loadOpenAI, main, MODEL, MODU_BIN, postJson, sse, startServer, TMP } from './lib.mjs';

async function call(url, method, body, key) {
  const r = await fetch(url, { method, headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
                               body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, json, text, headers: r.headers };
}

main('lora', 170, async () => {
  const solo = {};
  const dir = fs.mkdtempSync(path.join(TMP, 'lora-'));
  for (const [name, seed] of [['a', 1], ['b', 2]]) {
    const r = spawnSync(MODU_BIN, ['lora', 'init', '-m', MODEL, '-o', path.join(dir, `${name}.gguf`), '--rank', '8',
      '--strength', '1.5', '--seed', String(seed)], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
  const srv = await startServer(['--parallel', '4', '--lora', `a=${path.join(dir, 'a.gguf')}`,
    '--lora', `b=${path.join(dir, 'b.gguf')}:0.8`]);
  try {
    assert.match(srv.stderr(), /LoRA a = .*a\.gguf \(scale 1/);
    const id = path.basename(MODEL);
    const OpenAI = loadOpenAI();
    const openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
    const models = await openai.models.list();
    const ids = models.data.map((m) => m.id);
    assert.deepEqual(ids, [id, `${id}:a`, `${id}:b`]);
    assert.equal((await openai.models.retrieve(`${id}:b`)).lora, 'b');

    const prompt = 'The adapters of modu';
    const variants = [
      { name: 'none', body: { model: id } },
      { name: 'a', body: { model: `${id}:a` } },
      { name: 'b', body: { model: id, lora: 'b' } },
      { name: 'a+b', body: { model: id, lora: ['a', 'b'] } },
    ];
    const run = async (v) => {
      const r = await postJson(`${srv.url}/v1/completions`, { ...v.body, prompt, max_tokens: 16, ...GREEDY });
      assert.equal(r.status, 200, r.text);
      return r.json.choices[0].text;
    };
    for (const v of variants) solo[v.name] = await run(v);
    assert.equal(new Set(Object.values(solo)).size, 4, `each adapter set writes its own text: ${JSON.stringify(solo)}`);
    // All at once, twice: one batched forward pass serves four adapter sets.
    for (let round = 0; round < 2; ++round) {
      const got = await Promise.all(variants.map(run));
      variants.forEach((v, i) => assert.equal(got[i], solo[v.name], `${v.name} concurrent (round ${round})`));
    }
    // The same prompt again after the others filled the prefix cache: still the solo text.
    assert.equal(await run(variants[0]), solo.none);
    assert.equal(await run(variants[3]), solo['a+b']);
    // Chat completions take the adapter the same way.
    const chat = await postJson(`${srv.url}/v1/chat/completions`, { model: `${id}:a`, messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 4, ...GREEDY });
    assert.equal(chat.status, 200, chat.text);
    // Unknown adapters.
    const bad = await postJson(`${srv.url}/v1/completions`, { model: `${id}:zz`, prompt, max_tokens: 2 });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'lora_not_found');
    assert.match(bad.json.error.message, /this server has a, b/);
    const bad2 = await postJson(`${srv.url}/v1/chat/completions`, { model: id, lora: ['a', 7], messages: [{ role: 'user', content: 'x' }] });
    assert.equal(bad2.status, 400);
    // Without --admin-key the admin endpoints are off.
    const off = await call(`${srv.url}/v1/admin/lora`, 'GET');
    assert.equal(off.status, 404);
    assert.equal(off.json.error.code, 'admin_disabled');
  } finally {
    assert.equal(await srv.stop(), 0);
  }

  // --- Loading and unloading at run time.
  const peft = path.join(dir, 'a.peft');
  const ex = spawnSync(MODU_BIN, ['lora', 'export', MODEL, path.join(dir, 'a.gguf'), peft], { encoding: 'utf8' });
  assert.equal(ex.status, 0, ex.stderr);
  const audit = path.join(dir, 'audit.jsonl');
  const admin = await startServer(['--parallel', '2', '--lora', `a=${path.join(dir, 'a.gguf')}`, '--admin-key', 'sk-admin',
    '--audit-log', audit]);
  try {
    const id = path.basename(MODEL);
    const A = `${admin.url}/v1/admin/lora`;
    const run = async (model, extra = {}) => {
      const r = await postJson(`${admin.url}/v1/completions`, { model, prompt: 'The adapters of modu', max_tokens: 16, ...GREEDY, ...extra });
      assert.equal(r.status, 200, r.text);
      return r.json.choices[0].text;
    };
    assert.equal((await call(A, 'GET')).status, 401);
    assert.equal((await call(A, 'GET', undefined, 'sk-wrong')).status, 401);
    assert.deepEqual((await call(A, 'GET', undefined, 'sk-admin')).json.data.map((d) => d.name), ['a']);
    // Load b (GGUF, scale 0.8) and p (the PEFT export of a): they answer as at start-up.
    let r = await call(A, 'POST', { name: 'c', path: path.join(dir, 'b.gguf'), scale: 0.8 }, 'sk-admin');
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.id, `${id}:c`);
    assert.equal(r.json.rank, 8);
    r = await call(A, 'POST', { name: 'p', path: peft }, 'sk-admin');
    assert.equal(r.status, 201, r.text);
    const ids = (await (await fetch(`${admin.url}/v1/models`)).json()).data.map((m) => m.id);
    assert.deepEqual(ids, [id, `${id}:a`, `${id}:c`, `${id}:p`]);
    assert.equal(await run(`${id}:c`), solo.b, 'a run-time adapter equals the same file given at start-up');
    assert.equal(await run(`${id}:p`), solo.a, 'the PEFT export of a equals a');
    // Bad loads: a missing file, a taken name, a bad name.
    r = await call(A, 'POST', { name: 'x', path: path.join(dir, 'nope.gguf') }, 'sk-admin');
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'invalid_adapter');
    assert.equal((await call(A, 'POST', { name: 'c', path: path.join(dir, 'a.gguf') }, 'sk-admin')).status, 409);
    assert.equal((await call(A, 'POST', { name: '../x', path: path.join(dir, 'a.gguf') }, 'sk-admin')).status, 400);
    // Unloading an adapter a running request uses: 409 with Retry-After; afterwards it goes.
    let refused = null;
    const long = sse(`${admin.url}/v1/completions`, { model: `${id}:c`, prompt: 'Long', max_tokens: 900, ...GREEDY }, {
      onEvent: async () => {
        if (!refused) refused = await call(`${A}/c`, 'DELETE', undefined, 'sk-admin');
      },
    });
    await long;
    assert.equal(refused.status, 409, refused.text);
    assert.equal(refused.json.error.code, 'lora_in_use');
    assert.equal(refused.headers.get('retry-after'), '1');
    r = await call(`${A}/c`, 'DELETE', undefined, 'sk-admin');
    assert.equal(r.status, 200, r.text);
    assert.equal((await call(`${A}/c`, 'DELETE', undefined, 'sk-admin')).status, 404);
    const gone = await postJson(`${admin.url}/v1/completions`, { model: `${id}:c`, prompt: 'x', max_tokens: 2 });
    assert.equal(gone.status, 400);
    assert.equal(gone.json.error.code, 'lora_not_found');
    // d takes c's freed slot; the same prompt must not reuse KV cached under c.
    r = await call(A, 'POST', { name: 'd', path: path.join(dir, 'a.gguf') }, 'sk-admin');
    assert.equal(r.status, 201, r.text);
    assert.equal(await run(`${id}:d`), solo.a);
    assert.equal(await run(`${id}:d`), solo.a);
    assert.equal(await run(id), solo.none);
  } finally {
    assert.equal(await admin.stop(), 0);
  }
  // Every admin action is in the audit log.
  const actions = fs.readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.kind === 'admin');
  assert.ok(actions.length >= 8, `admin actions audited: ${actions.length}`);
  fs.rmSync(dir, { recursive: true, force: true });
});
