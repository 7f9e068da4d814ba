// Multi-LoRA serving: named adapters picked per request (model "BASE:NAME" or the "lora" field)
// share the batched forward pass; concurrent requests with different adapters (and none) each
// equal their solo runs; the prefix cache never hands KV computed under one adapter set to
// another; unknown adapters are a clear 400; /v1/models lists the adapters.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { assert, GREEDY, loadOpenAI, main, MODEL, MODU_BIN, postJson, startServer, TMP } from './lib.mjs';

main('lora', 170, async () => {
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
    const solo = {};
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
  } finally {
    assert.equal(await srv.stop(), 0);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});
