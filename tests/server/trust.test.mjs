// Trust (Korea's AI Basic Act) through the official clients: every generated output of chat
// completions, completions, Responses and Messages, streamed and not, carries the provenance
// label (JSON body or final event, and the X-AI-Generated / X-AI-Provenance headers) with the
// model file's SHA-256; the watermark key id appears exactly when a tenant's output is
// watermarked; /v1/models and the start page say this is AI and who operates it; the audit log
// records every request (errors too) and verifies after the server stops; --high-impact refuses
// to start without tenant keys and the audit log, and keeps full contents.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { assert, loadAnthropic, loadOpenAI, main, MODEL, MODU_BIN, postJson, sse, startServer, TMP } from './lib.mjs';

const SHA = createHash('sha256').update(fs.readFileSync(MODEL)).digest('hex');

function checkProvenance(p, { watermarked } = {}) {
  assert.ok(p, 'provenance is present');
  assert.equal(p.ai_generated, true);
  assert.equal(p.model_sha256, SHA);
  assert.match(p.generator, /^modu\/\d+\.\d+\.\d+$/);
  assert.equal(p.operator, 'Test Ministry');
  assert.match(p.notice, /인공지능/);
  assert.match(p.notice, /artificial intelligence/);
  assert.ok(!Number.isNaN(Date.parse(p.created)), p.created);
  if (watermarked) assert.match(p.watermark_key_id ?? '', /^wm-[0-9a-f]{8}$/);
  else assert.equal(p.watermark_key_id, null);
}

function checkHeaders(h) {
  assert.equal(h.get('x-ai-generated'), 'true');
  assert.ok(h.get('x-ai-provenance').includes(`sha256=${SHA}`), h.get('x-ai-provenance'));
}

function runModu(args) {
  return spawnSync(MODU_BIN, args, { encoding: 'utf8' });
}

main('trust', 170, async () => {
  const OpenAI = loadOpenAI();
  const Anthropic = loadAnthropic();
  const dir = fs.mkdtempSync(path.join(TMP, 'trust-'));
  const keys = path.join(dir, 'keys.txt');
  fs.writeFileSync(keys, 'sk-alice alice watermark=alice-secret\nsk-bob bob watermark=off\nsk-carol carol\n');
  const log = path.join(dir, 'audit.jsonl');

  const srv = await startServer(['--parallel', '2', '--api-keys', keys, '--audit-log', log, '--operator', 'Test Ministry',
    '--watermark-key', 'server-secret']);
  const counts = { alice: 0, bob: 0, carol: 0 };
  try {
    const alice = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'sk-alice', maxRetries: 0, timeout: 60000 });
    const bob = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'sk-bob', maxRetries: 0, timeout: 60000 });
    const messages = [{ role: 'user', content: '안녕하세요' }];

    // Chat completions, not streamed: the label in the body and the headers; alice's own key watermarks.
    const { data: chat, response } = await alice.chat.completions.create({ model: 'm', messages, max_tokens: 8, temperature: 1, seed: 1 }).withResponse();
    checkProvenance(chat.provenance, { watermarked: true });
    checkHeaders(response.headers);
    assert.match(response.headers.get('x-ai-provenance'), /watermark=wm-/);
    counts.alice++;
    // Greedy decoding is never watermarked, and bob has opted out.
    checkProvenance((await alice.chat.completions.create({ model: 'm', messages, max_tokens: 4, temperature: 0 })).provenance);
    counts.alice++;
    checkProvenance((await bob.chat.completions.create({ model: 'm', messages, max_tokens: 4, temperature: 1 })).provenance);
    counts.bob++;
    // The server's key applies to a tenant without its own; its id differs from alice's.
    const carol = await postJson(`${srv.url}/v1/chat/completions`, { model: 'm', messages, max_tokens: 4, temperature: 1 },
      { authorization: 'Bearer sk-carol' });
    assert.equal(carol.status, 200, carol.text);
    checkProvenance(carol.json.provenance, { watermarked: true });
    assert.notEqual(carol.json.provenance.watermark_key_id, chat.provenance.watermark_key_id);
    counts.carol++;

    // Chat completions, streamed: the final chunk (and the usage chunk) carry the label.
    const stream = await alice.chat.completions.create({ model: 'm', messages, max_tokens: 6, temperature: 0, stream: true,
      stream_options: { include_usage: true } });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    const fin = chunks.find((c) => c.choices?.[0]?.finish_reason);
    checkProvenance(fin.provenance);
    checkProvenance(chunks.at(-1).provenance);
    assert.ok(chunks.slice(0, -2).every((c) => c.provenance === undefined), 'only the final chunks carry it');
    counts.alice++;

    // Legacy completions, both ways.
    const cmpl = await alice.completions.create({ model: 'm', prompt: 'Seoul is', max_tokens: 4, temperature: 0 });
    checkProvenance(cmpl.provenance);
    const cchunks = [];
    for await (const c of await alice.completions.create({ model: 'm', prompt: 'Busan is', max_tokens: 4, temperature: 0, stream: true }))
      cchunks.push(c);
    assert.ok(cchunks.at(-1).choices[0].finish_reason, JSON.stringify(cchunks.at(-1)));
    checkProvenance(cchunks.at(-1).provenance);
    // The raw SSE stream, as a client without an SDK reads it: the label before [DONE].
    const cs = await sse(`${srv.url}/v1/completions`, { model: 'm', prompt: 'Busan is', max_tokens: 4, temperature: 0 },
      { headers: { authorization: 'Bearer sk-alice' } });
    assert.equal(cs.events.at(-1), '[DONE]');
    checkProvenance(cs.events.at(-2).provenance);
    counts.alice += 3;

    // Responses, both ways.
    const resp = await alice.responses.create({ model: 'm', input: 'Hello', max_output_tokens: 4, temperature: 0 });
    checkProvenance(resp.provenance);
    let completed = null;
    for await (const ev of await alice.responses.create({ model: 'm', input: 'Hi', max_output_tokens: 4, temperature: 0, stream: true }))
      if (ev.type === 'response.completed' || ev.type === 'response.incomplete') completed = ev.response;
    checkProvenance(completed.provenance);
    counts.alice += 2;

    // Messages, both ways.
    const anthropic = new Anthropic({ baseURL: srv.url, apiKey: 'sk-alice', maxRetries: 0, timeout: 60000 });
    const msg = await anthropic.messages.create({ model: 'm', max_tokens: 4, temperature: 0, messages: [{ role: 'user', content: '제주?' }] });
    checkProvenance(msg.provenance);
    const events = [];
    const ms = anthropic.messages.stream({ model: 'm', max_tokens: 4, temperature: 0, messages: [{ role: 'user', content: 'Jeju?' }] });
    ms.on('streamEvent', (e) => events.push(e));
    await ms.finalMessage();
    assert.equal(events.at(-1).type, 'message_stop');
    checkProvenance(events.at(-1).provenance);
    counts.alice += 2;

    // Embeddings are not generated content: no label.
    const emb = await postJson(`${srv.url}/v1/embeddings`, { model: 'm', input: 'x' }, { authorization: 'Bearer sk-alice' });
    assert.equal(emb.status, 200);
    assert.equal(emb.json.provenance, undefined);
    counts.alice++;

    // Notices: /v1/models and the start page.
    const models = await (await fetch(`${srv.url}/v1/models`, { headers: { authorization: 'Bearer sk-bob' } })).json();
    assert.equal(models.data[0].ai_generated, true);
    assert.equal(models.data[0].operator, 'Test Ministry');
    assert.equal(models.data[0].model_sha256, SHA);
    const page = await fetch(`${srv.url}/`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /인공지능\(AI\)/);
    assert.match(html, /generated by AI/);
    assert.match(html, /Test Ministry/);

    // Refused requests are audited too.
    const noKey = await postJson(`${srv.url}/v1/chat/completions`, { model: 'm', messages });
    assert.equal(noKey.status, 401);
    const badBody = await postJson(`${srv.url}/v1/chat/completions`, '{"model":', { authorization: 'Bearer sk-bob' });
    assert.equal(badBody.status, 400);
  } finally {
    assert.equal(await srv.stop(), 0);
  }

  // The log verifies against the key beside it, and holds what happened.
  const v = runModu(['audit', 'verify', log, '--json']);
  assert.equal(v.status, 0, v.stdout + v.stderr);
  const rep = JSON.parse(v.stdout);
  assert.equal(rep.ok, true);
  assert.equal(rep.last_signed_seq, rep.last_seq, 'a clean stop ends with a signed checkpoint');
  const show = (args) => {
    const r = runModu(['audit', 'show', log, '--json', ...args]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  };
  const aliceRecs = show(['--tenant', 'alice', '--kind', 'request']);
  assert.equal(aliceRecs.length, counts.alice, JSON.stringify(aliceRecs.map((r) => r.endpoint)));
  for (const r of aliceRecs) {
    assert.equal(r.model_sha256, SHA);
    assert.match(r.request_sha256, /^[0-9a-f]{64}$/);
    assert.equal(r.request, undefined, 'contents are kept only with --audit-content');
  }
  const first = aliceRecs.find((r) => r.endpoint === '/v1/chat/completions');
  assert.ok(first.completion_tokens > 0 && first.prompt_tokens > 0, JSON.stringify(first));
  assert.match(first.watermark_key_id, /^wm-/);
  assert.deepEqual(new Set(aliceRecs.map((r) => r.endpoint)),
    new Set(['/v1/chat/completions', '/v1/completions', '/v1/responses', '/v1/messages', '/v1/embeddings']));
  assert.equal(show(['--tenant', 'bob', '--kind', 'request']).filter((r) => r.status === 400).length, 1);
  const refused = show(['--kind', 'request']).filter((r) => r.status === 401);
  assert.equal(refused.length, 1);
  assert.equal(refused[0].tenant, '');
  assert.equal(show(['--kind', 'request', '--since', '2100-01-01']).length, 0);

  // A tampered copy fails and says where.
  const lines = fs.readFileSync(log, 'utf8').split('\n');
  const k = lines.findIndex((l) => l.includes('"tenant":"bob"'));
  lines[k] = lines[k].replace('"tenant":"bob"', '"tenant":"eve"');
  fs.writeFileSync(log, lines.join('\n'));
  const t = runModu(['audit', 'verify', log]);
  assert.equal(t.status, 1, t.stdout);
  assert.match(t.stdout, new RegExp(`TAMPERED edited at ${log.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${k + 1}`));

  // High-impact mode: refuses to start without keys and an audit log; keeps full contents.
  const noAudit = runModu(['serve', '-m', MODEL, '--port', '0', '--high-impact', '--api-keys', keys]);
  assert.notEqual(noAudit.status, 0);
  assert.match(noAudit.stderr, /--high-impact needs --audit-log/);
  const noKeys = runModu(['serve', '-m', MODEL, '--port', '0', '--high-impact', '--audit-log', path.join(dir, 'hi.jsonl')]);
  assert.notEqual(noKeys.status, 0);
  assert.match(noKeys.stderr, /--high-impact needs --api-keys/);
  const hiLog = path.join(dir, 'hi.jsonl');
  const hi = await startServer(['--high-impact', '--api-keys', keys, '--audit-log', hiLog]);
  try {
    const r = await postJson(`${hi.url}/v1/chat/completions`, { model: 'm', messages: [{ role: 'user', content: '비밀 아님' }], max_tokens: 3 },
      { authorization: 'Bearer sk-carol' });
    assert.equal(r.status, 200);
    assert.equal((await postJson(`${hi.url}/v1/chat/completions`, { model: 'm', messages: [{ role: 'user', content: 'x' }] })).status, 401);
    const models = await (await fetch(`${hi.url}/v1/models`, { headers: { authorization: 'Bearer sk-carol' } })).json();
    assert.equal(models.data[0].high_impact, true);
  } finally {
    assert.equal(await hi.stop(), 0);
  }
  const hiShow = runModu(['audit', 'show', hiLog, '--json', '--tenant', 'carol', '--kind', 'request']);
  assert.equal(hiShow.status, 0, hiShow.stderr);
  const hiRecs = hiShow.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(hiRecs.length, 1);
  assert.match(hiRecs[0].request, /비밀 아님/);
  assert.equal(typeof hiRecs[0].output, 'string');
  assert.equal(runModu(['audit', 'verify', hiLog]).status, 0);
  fs.rmSync(dir, { recursive: true, force: true });
});
