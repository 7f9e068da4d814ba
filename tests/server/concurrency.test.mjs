// 16 concurrent streaming clients (more than the slots, so some queue) all complete, and each
// greedy output equals the same request run alone: batching does not change results. Every fourth
// client asks for structured output (json_schema), which must not change that either.
import { assert, loadOpenAI, main, startServer, metrics, sleep, GREEDY } from './lib.mjs';

main('concurrency', 150, async () => {
  const OpenAI = loadOpenAI();
  const srv = await startServer(['--parallel', '8', '--ctx', '512', '--batch', '64', '--no-prefix-cache']);
  try {
    const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'x', maxRetries: 0, timeout: 60000 });
    const prompts = Array.from({ length: 16 }, (_, i) => `Client ${i} asks: ` + 'tell me more '.repeat(1 + (i % 5) * 6));
    const schema = { type: 'object', additionalProperties: false, required: ['ok', 'pick'],
      properties: { ok: { type: 'boolean' }, pick: { enum: ['a', 'b', 'c'] } } };
    const structured = (i) => i % 4 === 3;
    const req = (i) => ({ model: 'm', messages: [{ role: 'user', content: prompts[i] }], max_tokens: 16 + (i % 4) * 4, ...GREEDY,
      ...(structured(i) ? { max_tokens: 480, response_format: { type: 'json_schema', json_schema: { name: 's', schema } } } : {}) });

    const solo = [];
    for (let i = 0; i < 16; ++i) solo.push((await client.chat.completions.create(req(i))).choices[0].message.content);

    const t0 = Date.now();
    const results = await Promise.all(
      prompts.map(async (_, i) => {
        let text = '';
        let finish = null;
        for await (const c of await client.chat.completions.create({ ...req(i), stream: true })) {
          text += c.choices[0]?.delta?.content ?? '';
          finish = c.choices[0]?.finish_reason ?? finish;
        }
        return { text, finish };
      }),
    );
    const secs = (Date.now() - t0) / 1000;
    for (let i = 0; i < 16; ++i) {
      assert.equal(results[i].finish, structured(i) ? 'stop' : 'length', `client ${i} finished`);
      if (structured(i)) assert.ok(['a', 'b', 'c'].includes(JSON.parse(results[i].text).pick), results[i].text);
      assert.equal(results[i].text, solo[i], `client ${i}: batched output differs from its solo run`);
    }
    // The engine refreshes its gauges after the step that finished the last stream, which can
    // come just after the client has read that stream's end: wait for it, with a bound.
    let m = await metrics(srv.url);
    for (const t0 = Date.now(); m['modu_slots_active'] !== 0 && Date.now() - t0 < 5000; m = await metrics(srv.url)) await sleep(5);
    assert.equal(m['modu_slots_active'], 0);
    assert.equal(m['modu_queue_depth'], 0);
    console.log(`16 concurrent streams in ${secs.toFixed(2)} s, ${m['modu_decode_steps']} batched steps`);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});
