// Bad clients: a table of malformed requests each gets the right 4xx with an OpenAI error body
// and the server keeps serving; a client that disconnects mid-stream frees its slot; a full queue
// answers 503 with Retry-After.
import { assert, main, startServer, postJson, sse, metrics, sleep, GREEDY } from './lib.mjs';

const msgs = [{ role: 'user', content: 'hi' }];
const chat = (extra) => ({ messages: msgs, max_tokens: 2, ...extra });

// [name, path, body (object or raw string/bytes), expected status, expected param or null]
const CASES = [
  ['not json', '/v1/chat/completions', '{"messages": [', 400],
  ['json array', '/v1/chat/completions', '[1,2,3]', 400],
  ['json string', '/v1/chat/completions', '"hello"', 400],
  ['empty body', '/v1/chat/completions', '', 400],
  ['invalid utf-8', '/v1/chat/completions', new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 400],
  ['deep nesting', '/v1/chat/completions', '['.repeat(5000) + ']'.repeat(5000), 400],
  ['messages missing', '/v1/chat/completions', { model: 'm' }, 400, 'messages'],
  ['messages not array', '/v1/chat/completions', { messages: 'hi' }, 400, 'messages'],
  ['messages empty', '/v1/chat/completions', { messages: [] }, 400, 'messages'],
  ['message not object', '/v1/chat/completions', { messages: ['hi'] }, 400, 'messages[0]'],
  ['role missing', '/v1/chat/completions', { messages: [{ content: 'x' }] }, 400, 'messages[0].role'],
  ['role unknown', '/v1/chat/completions', { messages: [{ role: 'wizard', content: 'x' }] }, 400, 'messages[0].role'],
  ['content number', '/v1/chat/completions', { messages: [{ role: 'user', content: 42 }] }, 400, 'messages[0].content'],
  ['image to a text-only model', '/v1/chat/completions', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 400, 'messages'],
  ['audio part', '/v1/chat/completions', { messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'x' } }] }] }, 400, 'messages[0].content[0].type'],
  ['temperature string', '/v1/chat/completions', chat({ temperature: 'hot' }), 400, 'temperature'],
  ['temperature range', '/v1/chat/completions', chat({ temperature: 7 }), 400, 'temperature'],
  ['top_p range', '/v1/chat/completions', chat({ top_p: 2 }), 400, 'top_p'],
  ['max_tokens negative', '/v1/chat/completions', chat({ max_tokens: -1 }), 400, 'max_tokens'],
  ['max_tokens absurd', '/v1/chat/completions', chat({ max_tokens: 1e12 }), 400, 'max_tokens'],
  ['max_tokens string', '/v1/chat/completions', chat({ max_tokens: 'ten' }), 400, 'max_tokens'],
  ['max_completion_tokens absurd', '/v1/chat/completions', chat({ max_completion_tokens: 99999999 }), 400, 'max_completion_tokens'],
  ['n=2', '/v1/chat/completions', chat({ n: 2 }), 400, 'n'],
  ['stop number', '/v1/chat/completions', chat({ stop: 5 }), 400, 'stop'],
  ['too many stops', '/v1/chat/completions', chat({ stop: ['a', 'b', 'c', 'd', 'e'] }), 400, 'stop'],
  ['seed string', '/v1/chat/completions', chat({ seed: 'x' }), 400, 'seed'],
  ['penalty range', '/v1/chat/completions', chat({ frequency_penalty: -3 }), 400, 'frequency_penalty'],
  ['logit_bias array', '/v1/chat/completions', chat({ logit_bias: [1] }), 400, 'logit_bias'],
  ['logit_bias bad id', '/v1/chat/completions', chat({ logit_bias: { 99999999: 1 } }), 400, 'logit_bias'],
  ['logit_bias value', '/v1/chat/completions', chat({ logit_bias: { 5: 1000 } }), 400, 'logit_bias'],
  ['logprobs string', '/v1/chat/completions', chat({ logprobs: 'yes' }), 400, 'logprobs'],
  ['top_logprobs range', '/v1/chat/completions', chat({ logprobs: true, top_logprobs: 50 }), 400, 'top_logprobs'],
  ['stream string', '/v1/chat/completions', chat({ stream: 'yes' }), 400, 'stream'],
  ['stream_options without stream', '/v1/chat/completions', chat({ stream_options: { include_usage: true } }), 400, 'stream_options'],
  ['model number', '/v1/chat/completions', chat({ model: 7 }), 400, 'model'],
  ['user object', '/v1/chat/completions', chat({ user: {} }), 400, 'user'],
  ['tools object', '/v1/chat/completions', chat({ tools: {} }), 400, 'tools'],
  ['response_format unknown type', '/v1/chat/completions', chat({ response_format: { type: 'yaml' } }), 400, 'response_format.type'],
  ['json_schema not an object', '/v1/chat/completions', chat({ response_format: { type: 'json_schema', json_schema: 'x' } }), 400, 'response_format.json_schema'],
  ['json_schema unsupported keyword', '/v1/chat/completions', chat({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { allOf: [] } } } }), 400, 'response_format.json_schema.schema'],
  ['prompt too long', '/v1/chat/completions', { messages: [{ role: 'user', content: 'hello '.repeat(2100) }] }, 400],
  ['completion prompt missing', '/v1/completions', { max_tokens: 3 }, 400, 'prompt'],
  ['completion prompt object', '/v1/completions', { prompt: { a: 1 } }, 400, 'prompt'],
  ['completion token out of vocab', '/v1/completions', { prompt: [1, 2, 99999999] }, 400, 'prompt'],
  ['completion logprobs 6', '/v1/completions', { prompt: 'x', logprobs: 6 }, 400, 'logprobs'],
  ['completion batch', '/v1/completions', { prompt: ['a', 'b'] }, 400, 'prompt'],
  ['completion too long', '/v1/completions', { prompt: Array(2100).fill(11) }, 400],
  ['embeddings input missing', '/v1/embeddings', { model: 'm' }, 400, 'input'],
  ['embeddings empty string', '/v1/embeddings', { input: '' }, 400, 'input'],
  ['embeddings bad format', '/v1/embeddings', { input: 'x', encoding_format: 'hex' }, 400, 'encoding_format'],
  ['embeddings too long', '/v1/embeddings', { input: Array(2100).fill(11) }, 400],
  ['oversized body', '/v1/chat/completions', chat({ pad: 'x'.repeat(40000) }), 413],
  ['unknown endpoint', '/v1/nope', {}, 404],
];

main('robustness', 150, async () => {
  const srv = await startServer(['--parallel', '1', '--queue', '1', '--ctx', '2048', '--max-body-mb', '0.03']);
  try {
    assert.ok(CASES.length >= 30);
    for (const [name, path, body, status, param] of CASES) {
      const r = await postJson(srv.url + path, body);
      assert.equal(r.status, status, `${name}: status ${r.status} body ${r.text.slice(0, 200)}`);
      assert.ok(r.json && r.json.error && typeof r.json.error.message === 'string', `${name}: OpenAI error body, got ${r.text.slice(0, 200)}`);
      assert.ok('type' in r.json.error && 'param' in r.json.error && 'code' in r.json.error, `${name}: error fields`);
      if (param) assert.equal(r.json.error.param, param, `${name}: param`);
    }
    const g = await fetch(`${srv.url}/v1/chat/completions`);
    assert.equal(g.status, 405);
    assert.ok((await g.json()).error);
    const ctx = await postJson(srv.url + '/v1/chat/completions', { messages: [{ role: 'user', content: 'hello '.repeat(2100) }] });
    assert.equal(ctx.json.error.code, 'context_length_exceeded');
    // Still alive and serving.
    assert.equal((await fetch(`${srv.url}/health`)).status, 200);
    const ok = await postJson(srv.url + '/v1/chat/completions', chat({ ...GREEDY }));
    assert.equal(ok.status, 200, ok.text);

    // Disconnect mid-stream: the slot frees quickly and the request stops generating.
    const before = (await metrics(srv.url))['modu_completion_tokens_total'];
    const ac = new AbortController();
    let seen = 0;
    await sse(`${srv.url}/v1/completions`, { prompt: 'Go on forever', max_tokens: 480, ...GREEDY }, {
      signal: ac.signal,
      onEvent: () => {
        if (++seen === 5) ac.abort();
      },
    }).catch((e) => assert.equal(e.name, 'AbortError'));
    const t0 = Date.now();
    let m;
    for (;;) {
      m = await metrics(srv.url);
      if (m['modu_slots_active'] === 0) break;
      assert.ok(Date.now() - t0 < 2000, 'slot not freed within 2 s of the disconnect');
      await sleep(10);
    }
    const generated = m['modu_completion_tokens_total'] - before;
    assert.ok(generated < 100, `the abandoned request kept generating (${generated} tokens)`);
    console.log(`disconnect: slot freed after ${Date.now() - t0} ms, ${generated} tokens generated`);

    // A non-streaming client that disconnects is noticed too (the engine watches its socket).
    const before2 = (await metrics(srv.url))['modu_completion_tokens_total'];
    const ac2 = new AbortController();
    const pending = fetch(`${srv.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, signal: ac2.signal,
      body: JSON.stringify({ prompt: 'Go on and on', max_tokens: 2000, ...GREEDY }),
    }).catch((e) => e);
    for (let t = Date.now(); (await metrics(srv.url))['modu_slots_active'] !== 1; await sleep(2))
      assert.ok(Date.now() - t < 5000, 'the non-streaming request never started');
    ac2.abort();
    assert.equal((await pending).name, 'AbortError');
    const t1 = Date.now();
    for (;;) {
      m = await metrics(srv.url);
      if (m['modu_slots_active'] === 0) break;
      assert.ok(Date.now() - t1 < 2000, 'non-streaming: slot not freed within 2 s of the disconnect');
      await sleep(5);
    }
    const generated2 = m['modu_completion_tokens_total'] - before2;
    assert.ok(generated2 < 1000, `the abandoned non-streaming request kept generating (${generated2} tokens)`);
    console.log(`non-streaming disconnect: slot freed after ${Date.now() - t1} ms, ${generated2} tokens generated`);

    // Queue full: one slot busy, one request waiting, the third is refused with 503 + Retry-After.
    const long = (p) => sse(`${srv.url}/v1/completions`, { prompt: p, max_tokens: 2000, ...GREEDY });
    const until = async (what, pred) => {
      const t = Date.now();
      while (!pred(await metrics(srv.url))) {
        assert.ok(Date.now() - t < 5000, `timed out waiting for ${what}`);
        await sleep(5);
      }
    };
    const a = long('first');
    await until('the first request to run', (m) => m['modu_slots_active'] === 1);
    const b = long('second');
    await until('the second request to queue', (m) => m['modu_queue_depth'] === 1);
    const c = await postJson(srv.url + '/v1/completions', { prompt: 'third', max_tokens: 5 });
    assert.equal(c.status, 503, c.text);
    assert.equal(c.json.error.code, 'queue_full');
    assert.ok(Number(c.headers.get('retry-after')) >= 1);
    const [ra, rb] = await Promise.all([a, b]);
    for (const r of [ra, rb]) {
      assert.equal(r.status, 200);
      assert.equal(r.events.at(-1), '[DONE]');
    }
    assert.equal((await postJson(srv.url + '/v1/completions', { prompt: 'after', max_tokens: 3 })).status, 200);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});
