// The official openai npm package against modu serve: models, chat (plain, streaming, logprobs),
// completions with logprobs and echo, embeddings, seeds, prefix-cache reuse and /metrics.
import { assert, loadOpenAI, main, startServer, metrics, GREEDY } from './lib.mjs';

main('openai_sdk', 120, async () => {
  const OpenAI = loadOpenAI();
  const srv = await startServer(['--parallel', '4', '--ctx', '512']);
  try {
    const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 30000 });

    const models = await client.models.list();
    assert.equal(models.data.length, 1);
    assert.equal(models.data[0].id, 'tiny.gguf');
    assert.equal(models.data[0].object, 'model');
    assert.equal((await client.models.retrieve('tiny.gguf')).id, 'tiny.gguf');
    await assert.rejects(client.models.retrieve('gpt-4'), (e) => e.status === 404 && e.code === 'model_not_found');
    // A browser's CORS preflight, then the real request carries Access-Control-Allow-Origin.
    const pre = await fetch(`${srv.url}/v1/chat/completions`, { method: 'OPTIONS', headers: {
      origin: 'http://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), '*');
    assert.match(pre.headers.get('access-control-allow-headers'), /Authorization/);
    assert.equal((await fetch(`${srv.url}/health`)).headers.get('access-control-allow-origin'), '*');

    const messages = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: [{ type: 'text', text: 'Say ' }, { type: 'text', text: 'hello.' }] },
    ];
    const chat = await client.chat.completions.create({ model: 'tiny.gguf', messages, max_tokens: 12, ...GREEDY });
    assert.equal(chat.object, 'chat.completion');
    assert.match(chat.id, /^chatcmpl-/);
    assert.equal(chat.choices.length, 1);
    assert.equal(chat.choices[0].message.role, 'assistant');
    assert.equal(typeof chat.choices[0].message.content, 'string');
    assert.equal(chat.choices[0].finish_reason, 'length');
    assert.equal(chat.usage.completion_tokens, 12);
    assert.ok(chat.usage.prompt_tokens > 5);
    assert.equal(chat.usage.total_tokens, chat.usage.prompt_tokens + 12);

    // Streaming gives the same greedy text, a role chunk first, finish_reason, then usage.
    const stream = await client.chat.completions.create({
      model: 'tiny.gguf', messages, max_tokens: 12, ...GREEDY, stream: true, stream_options: { include_usage: true },
    });
    let text = '';
    let finish = null;
    let usage = null;
    let first = true;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      if (first) assert.equal(chunk.choices[0].delta.role, 'assistant');
      first = false;
      if (chunk.usage) usage = chunk.usage;
      if (chunk.choices.length === 0) continue;
      text += chunk.choices[0].delta.content ?? '';
      if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
    }
    assert.equal(text, chat.choices[0].message.content);
    assert.equal(finish, 'length');
    assert.equal(usage.completion_tokens, 12);
    assert.ok(usage.prompt_tokens_details.cached_tokens > 0, 'second identical prompt reuses the prefix cache');

    // Chat logprobs.
    const lp = await client.chat.completions.create({
      model: 'm', messages, max_tokens: 5, ...GREEDY, logprobs: true, top_logprobs: 3,
    });
    const content = lp.choices[0].logprobs.content;
    assert.equal(content.length, 5);
    for (const t of content) {
      assert.ok(t.logprob <= 0);
      assert.equal(t.top_logprobs.length, 3);
      assert.ok(Array.isArray(t.bytes));
      assert.ok(t.top_logprobs[0].logprob >= t.logprob - 1e-6, 'greedy picks the most likely token');
    }

    // Completions with logprobs.
    const cmp = await client.completions.create({ model: 'm', prompt: 'Once upon a time', max_tokens: 6, logprobs: 3, ...GREEDY });
    assert.equal(cmp.object, 'text_completion');
    const L = cmp.choices[0].logprobs;
    assert.equal(L.tokens.length, 6);
    assert.equal(L.token_logprobs.length, 6);
    assert.equal(L.top_logprobs.length, 6);
    assert.equal(L.text_offset.length, 6);
    assert.equal(L.text_offset[0], 0);
    for (let i = 1; i < 6; ++i) assert.ok(L.text_offset[i] >= L.text_offset[i - 1]);
    for (const x of L.token_logprobs) assert.ok(x <= 0);
    for (const t of L.top_logprobs) assert.ok(Object.keys(t).length >= 1 && Object.keys(t).length <= 3);
    assert.equal(cmp.choices[0].finish_reason, 'length');

    // Echo + logprobs with max_tokens 0 scores the prompt.
    const echo = await client.completions.create({ model: 'm', prompt: 'The quick brown fox', max_tokens: 0, echo: true, logprobs: 1 });
    assert.equal(echo.choices[0].text, 'The quick brown fox');
    const E = echo.choices[0].logprobs;
    assert.equal(E.token_logprobs[0], null);
    assert.ok(E.token_logprobs.length >= 4);
    for (const x of E.token_logprobs.slice(1)) assert.ok(x < 0);
    assert.equal(E.tokens.join(''), 'The quick brown fox');

    // Token-array prompt equals the same text; streaming completions agree with non-streaming.
    const byTokens = await client.completions.create({ model: 'm', prompt: E.tokens.length ? [464, 2068, 7586, 21831] : [], max_tokens: 8, ...GREEDY });
    const byText = await client.completions.create({ model: 'm', prompt: 'The quick brown fox', max_tokens: 8, ...GREEDY });
    assert.equal(byTokens.choices[0].text, byText.choices[0].text);
    let streamed = '';
    for await (const c of await client.completions.create({ model: 'm', prompt: 'The quick brown fox', max_tokens: 8, ...GREEDY, stream: true }))
      streamed += c.choices[0]?.text ?? '';
    assert.equal(streamed, byText.choices[0].text);

    // Seeds make sampling reproducible.
    const s1 = await client.completions.create({ model: 'm', prompt: 'Seeded', max_tokens: 10, temperature: 1, seed: 42, ignore_eos: true });
    const s2 = await client.completions.create({ model: 'm', prompt: 'Seeded', max_tokens: 10, temperature: 1, seed: 42, ignore_eos: true });
    assert.equal(s1.choices[0].text, s2.choices[0].text);

    // Stop strings end the text before the stop.
    const full = byText.choices[0].text;
    if (full.length >= 6) {
      const stop = full.slice(3, 5);
      const st = await client.completions.create({ model: 'm', prompt: 'The quick brown fox', max_tokens: 8, ...GREEDY, stop: [stop] });
      assert.equal(st.choices[0].text, full.slice(0, full.indexOf(stop)));
      assert.equal(st.choices[0].finish_reason, 'stop');
    }

    // Embeddings (the SDK asks for base64 and decodes it).
    const emb = await client.embeddings.create({ model: 'm', input: ['hello world', 'something else', 'hello world'] });
    assert.equal(emb.data.length, 3);
    const v = emb.data[0].embedding;
    assert.equal(v.length, 64);
    const norm = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
    assert.ok(Math.abs(norm - 1) < 1e-3, `norm ${norm}`);
    assert.deepEqual(emb.data[2].embedding, v);
    assert.notDeepEqual(emb.data[1].embedding, v);
    assert.ok(emb.usage.prompt_tokens >= 6);
    const embFloat = await client.embeddings.create({ model: 'm', input: 'hello world', encoding_format: 'float' });
    for (let i = 0; i < 64; ++i) assert.ok(Math.abs(embFloat.data[0].embedding[i] - v[i]) < 1e-6);

    // Structured output through the SDK (response_format json_schema, plain and streaming): the
    // text parses and matches the schema; json_object gives an object; an unsupported schema is a 400.
    const schema = {
      type: 'object', additionalProperties: false, required: ['ok', 'color', 'n'],
      properties: { ok: { type: 'boolean' }, color: { enum: ['red', 'blue'] }, n: { type: 'integer' } },
    };
    const rf = { type: 'json_schema', json_schema: { name: 'answer', strict: true, schema } };
    const js = await client.chat.completions.create({ model: 'm', messages, max_tokens: 480, temperature: 0, response_format: rf });
    assert.equal(js.choices[0].finish_reason, 'stop', js.choices[0].message.content);
    const obj = JSON.parse(js.choices[0].message.content);
    assert.deepEqual(Object.keys(obj).sort(), ['color', 'n', 'ok']);
    assert.equal(typeof obj.ok, 'boolean');
    assert.ok(['red', 'blue'].includes(obj.color));
    assert.ok(Number.isInteger(obj.n));
    let jstreamed = '';
    for await (const c of await client.chat.completions.create({ model: 'm', messages, max_tokens: 480, temperature: 0, response_format: rf, stream: true }))
      jstreamed += c.choices[0]?.delta?.content ?? '';
    assert.equal(jstreamed, js.choices[0].message.content);
    const jo = await client.chat.completions.create({ model: 'm', messages, max_tokens: 480, temperature: 0, response_format: { type: 'json_object' } });
    if (jo.choices[0].finish_reason === 'stop') assert.equal(typeof JSON.parse(jo.choices[0].message.content), 'object');
    await assert.rejects(
      client.chat.completions.create({ model: 'm', messages, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', pattern: '^a' } } } }),
      (e) => e.status === 400 && e.code === 'invalid_json_schema' && /pattern/.test(e.message));

    // Metrics.
    const m = await metrics(srv.url);
    assert.ok(m['modu_completion_tokens_total'] >= 12 + 12 + 5 + 6);
    assert.ok(m['modu_prompt_tokens_cached_total'] > 0);
    assert.ok(m['modu_time_to_first_token_seconds_count'] >= 8);
    assert.ok(m['modu_time_per_output_token_seconds_count'] > 0);
    assert.equal(m['modu_queue_depth'], 0);
    assert.ok(m['modu_kv_cache_capacity_tokens'] > 0);
    assert.ok(m['modu_requests_total{endpoint="/v1/chat/completions",status="200"}'] >= 3);
    assert.ok(srv.stderr().includes('ChatML'), 'the log says the ChatML fallback template is used');
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});
