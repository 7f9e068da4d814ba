// Tool calls end to end: a model whose chat template teaches the Llama 3 convention (a JSON call as
// the whole reply), with the reply forced by a json_schema const so the random weights do not
// matter. The official SDK sees tool_calls (plain and streaming) and finish_reason "tool_calls";
// tool_choice "none" leaves the same text as content; tool results render back through the template.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { assert, loadOpenAI, main, reassembleToolCalls, startServer, MODU_BIN, TMP } from './lib.mjs';

const TEMPLATE = `{#- Replies that call a tool are <|python_tag|>{"name": ..., "parameters": {...}} -#}
{%- for m in messages %}<|start|>{{ m.role }}
{% if tools and loop.first %}Tools: {{ tools | tojson }}
{% endif %}{% if m.tool_calls %}{{ m.tool_calls | tojson }}{% else %}{{ m.content }}{% endif %}<|end|>
{% endfor %}{% if add_generation_prompt %}<|start|>assistant
{% endif %}`;

main('tools', 120, async () => {
  const OpenAI = loadOpenAI();
  const tmpl = path.join(TMP, 'tools_template.jinja');
  const model = path.join(TMP, 'tools_tiny.gguf');
  writeFileSync(tmpl, TEMPLATE);
  const mk = spawnSync(MODU_BIN, ['init-model', '-o', model, '--preset', 'tiny', '--vocab-from', process.env.MODU_TEST_VOCAB,
    '--d-model', '64', '--layers', '2', '--ff', '128', '--heads', '4', '--kv-heads', '2', '--ctx', '1024', '--type', 'f16',
    '--seed', '5', '--chat-template', tmpl], { encoding: 'utf8' });
  assert.equal(mk.status, 0, mk.stderr);
  const srv = await startServer(['--parallel', '2', '--ctx', '1024'], { model });
  try {
    const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 30000 });
    const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 12 } }, required: ['city'] } } },
      { type: 'function', function: { name: 'now', parameters: { type: 'object', properties: {} } } }];
    const call = { name: 'get_weather', parameters: { city: '서울' } };
    const force = { type: 'json_schema', json_schema: { name: 'call', schema: { const: call } } };
    const messages = [{ role: 'user', content: 'What is the weather in Seoul?' }];

    const r = await client.chat.completions.create({ model: 'm', messages, tools, response_format: force, max_tokens: 1000 });
    const c = r.choices[0];
    assert.equal(c.finish_reason, 'tool_calls', JSON.stringify(c));
    assert.equal(c.message.content, null);
    assert.equal(c.message.tool_calls.length, 1);
    const tc = c.message.tool_calls[0];
    assert.equal(tc.type, 'function');
    assert.ok(tc.id.startsWith('call_'));
    assert.equal(tc.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(tc.function.arguments), { city: '서울' });

    // Streaming: the call arrives as a tool_calls delta with an index; no call text leaks as content.
    let content = '';
    const deltas = [];
    let finish = null;
    for await (const ch of await client.chat.completions.create({ model: 'm', messages, tools, response_format: force, max_tokens: 1000, stream: true })) {
      const d = ch.choices[0]?.delta ?? {};
      content += d.content ?? '';
      if (d.tool_calls) deltas.push(...d.tool_calls);
      finish = ch.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, 'tool_calls');
    assert.equal(content.trim(), '');
    const streamed = reassembleToolCalls(deltas);
    assert.equal(streamed.length, 1);
    assert.ok(deltas.length > 1, 'arguments stream in fragments, not held to the end');
    assert.equal(streamed[0].function.name, 'get_weather');
    assert.deepEqual(JSON.parse(streamed[0].function.arguments), { city: '서울' });

    // tool_choice "none": no parsing, the JSON is the content.
    const none = await client.chat.completions.create({ model: 'm', messages, tools, tool_choice: 'none', response_format: force, max_tokens: 1000 });
    assert.equal(none.choices[0].finish_reason, 'stop');
    assert.deepEqual(JSON.parse(none.choices[0].message.content), call);
    assert.equal(none.choices[0].message.tool_calls, undefined);

    // The conversation continues with the tool's result (assistant tool_calls + tool message).
    const follow = await client.chat.completions.create({ model: 'm', tools, max_tokens: 5, temperature: 0, messages: [
      ...messages, c.message, { role: 'tool', tool_call_id: tc.id, content: '{"temp_c": 3}' }] });
    assert.equal(follow.choices[0].message.role, 'assistant');

    // Forced calls: a named function, "required" with one tool and with both, whatever the
    // weights prefer; each call's arguments follow that function's parameters schema.
    for (const [choice, names, ts] of [[{ type: 'function', function: { name: 'get_weather' } }, ['get_weather'], tools],
                                       ['required', ['get_weather'], tools.slice(0, 1)],
                                       ['required', ['get_weather', 'now'], tools]]) {
      for (const stream of [false, true]) {
        let calls = [];
        let fin = null;
        if (stream) {
          for await (const ch of await client.chat.completions.create({ model: 'm', messages, tools: ts, tool_choice: choice, max_tokens: 1000, temperature: 0, stream })) {
            calls.push(...(ch.choices[0]?.delta?.tool_calls ?? []));
            fin = ch.choices[0]?.finish_reason ?? fin;
          }
        } else {
          const f = await client.chat.completions.create({ model: 'm', messages, tools: ts, tool_choice: choice, max_tokens: 1000, temperature: 0 });
          calls = f.choices[0].message.tool_calls ?? [];
          fin = f.choices[0].finish_reason;
        }
        if (stream) calls = reassembleToolCalls(calls);
        assert.equal(fin, 'tool_calls', `${JSON.stringify(choice)} stream=${stream}`);
        assert.equal(calls.length, 1);
        assert.ok(names.includes(calls[0].function.name), calls[0].function.name);
        const args = JSON.parse(calls[0].function.arguments);
        if (calls[0].function.name === 'get_weather') {
          assert.deepEqual(Object.keys(args), ['city']);
          assert.ok([...args.city].length <= 12);
        } else {
          assert.deepEqual(args, {});
        }
      }
    }
    await assert.rejects(client.chat.completions.create({ model: 'm', messages, tools, tool_choice: { type: 'function', function: { name: 'nope' } } }),
      (e) => e.status === 400 && e.param === 'tool_choice');
    await assert.rejects(client.chat.completions.create({ model: 'm', messages, tools, tool_choice: 'required', response_format: force }),
      (e) => e.status === 400 && e.param === 'tool_choice');

    // Bad tool_choice values are a 400.
    await assert.rejects(client.chat.completions.create({ model: 'm', messages, tools, tool_choice: 'sometimes' }),
      (e) => e.status === 400 && e.param === 'tool_choice');
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});
