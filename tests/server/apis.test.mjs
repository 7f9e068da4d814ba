// Tool calls through all three APIs with the official clients: `openai` (chat completions and
// the Responses API) and `@anthropic-ai/sdk` (Messages), against a modu-written model whose chat
// template is the real Qwen3-Coder one (XML calls). Calls are forced (tool_choice) so the random
// weights do not matter: the reply must still parse, match the tool's schema and stream as the
// SDKs expect (call header first, then argument fragments). Malformed requests get each API's
// own error shape.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { assert, loadAnthropic, loadOpenAI, main, postJson, reassembleToolCalls, startServer, MODU_BIN, TMP } from './lib.mjs';

const TEMPLATE = path.join(path.dirname(process.env.MODU_TEST_VOCAB), '..', 'templates', 'Qwen3-Coder.jinja');

// The arguments a forced get_weather call may have under its schema.
function checkWeather(args) {
  assert.equal(typeof args, 'object');
  assert.ok(Object.keys(args).includes('city'), JSON.stringify(args));
  for (const k of Object.keys(args)) assert.ok(['city', 'days'].includes(k), `unexpected key ${k}`);
  assert.equal(typeof args.city, 'string');
  assert.ok([...args.city].length <= 12);
  if ('days' in args) assert.ok(Number.isInteger(args.days), JSON.stringify(args));
}

main('apis', 170, async () => {
  const OpenAI = loadOpenAI();
  const Anthropic = loadAnthropic();
  const model = path.join(TMP, 'apis_tiny.gguf');
  const mk = spawnSync(MODU_BIN, ['init-model', '-o', model, '--preset', 'tiny', '--vocab-from', process.env.MODU_TEST_VOCAB,
    '--d-model', '64', '--layers', '2', '--ff', '128', '--heads', '4', '--kv-heads', '2', '--ctx', '2048', '--type', 'f16',
    '--seed', '11', '--chat-template', TEMPLATE], { encoding: 'utf8' });
  assert.equal(mk.status, 0, mk.stderr);
  // The format the server picks for this template.
  const fm = spawnSync(MODU_BIN, ['toolcalls', 'formats', '-m', model], { encoding: 'utf8' });
  assert.equal(fm.status, 0, fm.stderr);
  assert.match(fm.stdout, /template: format qwen3-coder/);

  const srv = await startServer(['--parallel', '2', '--ctx', '2048'], { model });
  try {
    const weather = { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, days: { type: 'integer' } },
      required: ['city'], additionalProperties: false };
    const nowSchema = { type: 'object', properties: {}, additionalProperties: false };

    // --- OpenAI chat completions ---------------------------------------------------------------
    const openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
    const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: weather, strict: true } },
      { type: 'function', function: { name: 'now', description: 'The time', parameters: nowSchema } }];
    const messages = [{ role: 'user', content: '서울 날씨 알려줘' }];
    for (const [choice, names] of [[{ type: 'function', function: { name: 'get_weather' } }, ['get_weather']],
                                   ['required', ['get_weather', 'now']]]) {
      const r = await openai.chat.completions.create({ model: 'm', messages, tools, tool_choice: choice, max_tokens: 200, temperature: 0.8, seed: 1 });
      const c = r.choices[0];
      assert.equal(c.finish_reason, 'tool_calls', JSON.stringify(c));
      assert.equal(c.message.tool_calls.length, 1);
      const tc = c.message.tool_calls[0];
      assert.ok(names.includes(tc.function.name), tc.function.name);
      assert.ok(tc.id.startsWith('call_'));
      if (tc.function.name === 'get_weather') checkWeather(JSON.parse(tc.function.arguments));
      else assert.deepEqual(JSON.parse(tc.function.arguments), {});

      const deltas = [];
      let content = '';
      let finish = null;
      for await (const ch of await openai.chat.completions.create({ model: 'm', messages, tools, tool_choice: choice, max_tokens: 200, temperature: 0.8, seed: 1, stream: true })) {
        const d = ch.choices[0]?.delta ?? {};
        content += d.content ?? '';
        if (d.tool_calls) deltas.push(...d.tool_calls);
        finish = ch.choices[0]?.finish_reason ?? finish;
      }
      const calls = reassembleToolCalls(deltas);
      assert.equal(finish, 'tool_calls');
      assert.equal(content, '', 'no call markup leaks into content');
      assert.equal(calls.length, 1);
      // Same seed, same reply: the stream reassembles to the non-streamed call.
      assert.equal(calls[0].function.name, tc.function.name);
      assert.deepEqual(JSON.parse(calls[0].function.arguments), JSON.parse(tc.function.arguments));
      if (tc.function.name === 'get_weather') assert.ok(deltas.length > 2, 'arguments stream as fragments');
    }

    // --- OpenAI Responses API -------------------------------------------------------------------
    const rtools = [{ type: 'function', name: 'get_weather', description: 'Weather in a city', parameters: weather, strict: true }];
    const resp = await openai.responses.create({ model: 'm', instructions: 'Answer briefly.', input: 'Weather in Seoul?',
      tools: rtools, tool_choice: { type: 'function', name: 'get_weather' }, max_output_tokens: 200 });
    assert.ok(resp.id.startsWith('resp_'), resp.id);
    assert.equal(resp.object, 'response');
    assert.equal(resp.status, 'completed', JSON.stringify(resp));
    const fc = resp.output.find((o) => o.type === 'function_call');
    assert.ok(fc, JSON.stringify(resp.output));
    assert.equal(fc.name, 'get_weather');
    assert.ok(fc.call_id);
    checkWeather(JSON.parse(fc.arguments));
    assert.ok(resp.usage.input_tokens > 0 && resp.usage.output_tokens > 0);

    // Streaming: typed events with increasing sequence numbers; argument deltas add up.
    const types = [];
    let args = '';
    let seq = -1;
    let completed = null;
    const stream = await openai.responses.create({ model: 'm', input: [{ role: 'user', content: [{ type: 'input_text', text: 'Busan?' }] }],
      tools: rtools, tool_choice: 'required', max_output_tokens: 200, stream: true });
    for await (const ev of stream) {
      types.push(ev.type);
      assert.ok(ev.sequence_number > seq, `sequence numbers increase (${ev.type})`);
      seq = ev.sequence_number;
      if (ev.type === 'response.function_call_arguments.delta') args += ev.delta;
      if (ev.type === 'response.completed') completed = ev.response;
    }
    assert.equal(types[0], 'response.created');
    assert.equal(types[1], 'response.in_progress');
    assert.ok(types.includes('response.output_item.added'));
    assert.ok(types.includes('response.function_call_arguments.done'));
    assert.ok(types.includes('response.output_item.done'));
    assert.equal(types.at(-1), 'response.completed');
    assert.ok(types.filter((t) => t === 'response.function_call_arguments.delta').length > 1, 'arguments stream as fragments');
    const sfc = completed.output.find((o) => o.type === 'function_call');
    assert.equal(sfc.arguments, args);
    checkWeather(JSON.parse(args));

    // The conversation continues from the stored response with the tool's output.
    const next = await openai.responses.create({ model: 'm', previous_response_id: resp.id, max_output_tokens: 4,
      input: [{ type: 'function_call_output', call_id: fc.call_id, output: '{"temp_c": 3}' }] });
    assert.ok(['completed', 'incomplete'].includes(next.status), next.status);
    assert.equal(next.previous_response_id, resp.id);
    await assert.rejects(openai.responses.create({ model: 'm', previous_response_id: 'resp_nope', input: 'x' }),
      (e) => e.status === 400 && /previous response/i.test(e.message));
    const bad = await postJson(`${srv.url}/v1/responses`, { model: 'm', input: 42 });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.param, 'input');
    assert.equal(typeof bad.json.error.message, 'string');

    // --- Anthropic Messages ---------------------------------------------------------------------
    const anthropic = new Anthropic({ baseURL: srv.url, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
    const atools = [{ name: 'get_weather', description: 'Weather in a city', input_schema: weather }];
    const msg = await anthropic.messages.create({ model: 'm', max_tokens: 200, system: 'Be brief.',
      messages: [{ role: 'user', content: '부산 날씨?' }], tools: atools, tool_choice: { type: 'tool', name: 'get_weather' } });
    assert.equal(msg.type, 'message');
    assert.equal(msg.role, 'assistant');
    assert.equal(msg.stop_reason, 'tool_use', JSON.stringify(msg));
    const use = msg.content.find((b) => b.type === 'tool_use');
    assert.ok(use, JSON.stringify(msg.content));
    assert.equal(use.name, 'get_weather');
    assert.ok(use.id);
    checkWeather(use.input);

    // Streaming with the SDK's helper: raw events in order, the final message reassembled.
    const events = [];
    const ms = anthropic.messages.stream({ model: 'm', max_tokens: 200, messages: [{ role: 'user', content: 'Jeju?' }],
      tools: atools, tool_choice: { type: 'any' } });
    ms.on('streamEvent', (e) => events.push(e));
    const final = await ms.finalMessage();
    assert.equal(events[0].type, 'message_start');
    assert.equal(events.at(-1).type, 'message_stop');
    assert.ok(events.filter((e) => e.type === 'content_block_delta' && e.delta.type === 'input_json_delta').length > 1,
      'tool input streams as partial JSON');
    assert.equal(final.stop_reason, 'tool_use');
    const suse = final.content.find((b) => b.type === 'tool_use');
    checkWeather(suse.input);

    // The tool's result goes back as a tool_result block.
    const after = await anthropic.messages.create({ model: 'm', max_tokens: 4, tools: atools, messages: [
      { role: 'user', content: '부산 날씨?' }, { role: 'assistant', content: msg.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '맑음, 20도' }] }] });
    assert.ok(['end_turn', 'max_tokens'].includes(after.stop_reason), after.stop_reason);
    assert.ok(after.usage.input_tokens > 0);

    // Anthropic's error shape.
    await assert.rejects(anthropic.messages.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }),
      (e) => e.status === 400 && e.error?.type === 'error' && e.error?.error?.type === 'invalid_request_error');
    const abad = await postJson(`${srv.url}/v1/messages`, '{"model": "m", "max_tokens": 3, "messages": [', { 'anthropic-version': '2023-06-01' });
    assert.equal(abad.status, 400);
    assert.equal(abad.json.type, 'error');
    assert.equal(abad.json.error.type, 'invalid_request_error');
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});
