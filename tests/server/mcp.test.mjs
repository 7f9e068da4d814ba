// MCP tools in the Responses API: `modu serve --mcp ...` connects the reference everything server
// (from npm); a request with {"type": "mcp"} tools gets mcp_list_tools and mcp_call items, the
// call forced with tool_choice so the random weights do not matter, its output produced by the
// real server and fed back to the model; the action log records it. With require_approval the call
// waits for an mcp_approval_response (approved: it runs; denied: the model is told). Streamed, the
// same response arrives as typed events (mcp_list_tools, mcp_call with its argument events, the
// answer's text deltas) and its final object equals the whole one; a client that leaves mid-stream
// frees the server. Misuse is a clear 400.
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { assert, loadOpenAI, main, postJson, startServer, TMP } from './lib.mjs';

const EVERYTHING = path.join(process.env.OPENAI_NODE_DIR, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');

main('mcp', 120, async () => {
  const OpenAI = loadOpenAI();
  const log = path.join(TMP, 'serve_actions.jsonl');
  rmSync(log, { force: true });
  const srv = await startServer(['--ctx', '1024', '--tool-format', 'hermes', '--mcp', `node ${EVERYTHING} stdio`, '--action-log', log]);
  try {
    assert.match(srv.stderr(), /MCP server 'mcp1': \d+ tools/);
    const openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
    const tools = [{ type: 'mcp', server_label: 'mcp1', server_url: 'http://ignored.example', require_approval: 'never',
      allowed_tools: ['get-sum', 'echo'] }];
    const r = await openai.responses.create({ model: 'm', input: 'Add two numbers.', tools, max_output_tokens: 200,
      tool_choice: { type: 'mcp', server_label: 'mcp1', name: 'get-sum' } });
    assert.ok(['completed', 'incomplete'].includes(r.status), r.status);
    assert.equal(r.output[0].type, 'mcp_list_tools');
    assert.deepEqual(r.output[0].tools.map((t) => t.name).sort(), ['echo', 'get-sum']);
    const call = r.output[1];
    assert.equal(call.type, 'mcp_call', JSON.stringify(r.output));
    assert.equal(call.server_label, 'mcp1');
    assert.equal(call.name, 'get-sum');
    const args = JSON.parse(call.arguments);
    assert.equal(typeof args.a, 'number');
    assert.match(call.output, /The sum of/);
    assert.equal(call.error, null);
    assert.equal(r.provenance?.ai_generated, true, "the MCP loop's answer is labelled too");
    const acts = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(acts[0].tool, 'mcp1.get-sum');
    assert.ok(acts[0].approved);

    // Streamed: the same loop, as events. Greedy, so the whole response is the reference.
    const greedy = { model: 'm', input: 'Add two numbers.', tools, max_output_tokens: 60, temperature: 0,
      tool_choice: { type: 'mcp', server_label: 'mcp1', name: 'get-sum' } };
    const whole = await openai.responses.create(greedy);
    const types = [];
    let done = null;
    let seq = -1;
    let text = '';
    const added = [];
    for await (const ev of await openai.responses.create({ ...greedy, stream: true })) {
      types.push(ev.type);
      assert.equal(ev.sequence_number, seq + 1, 'sequence numbers count up');
      seq = ev.sequence_number;
      if (ev.type === 'response.output_item.added') added.push(ev.item.type);
      if (ev.type === 'response.output_text.delta') text += ev.delta;
      if (ev.type === 'response.completed' || ev.type === 'response.incomplete') done = ev.response;
    }
    assert.ok(done, types.join(' '));
    const order = (t) => types.indexOf(t);
    for (const t of ['response.created', 'response.mcp_list_tools.in_progress', 'response.mcp_list_tools.completed',
      'response.mcp_call.in_progress', 'response.mcp_call_arguments.delta', 'response.mcp_call_arguments.done',
      'response.mcp_call.completed'])
      assert.ok(order(t) >= 0, `${t} in ${types.join(' ')}`);
    assert.ok(order('response.mcp_list_tools.completed') < order('response.mcp_call.in_progress'));
    assert.deepEqual(added.slice(0, 2), ['mcp_list_tools', 'mcp_call']);
    const strip = (out) => out.map(({ id, ...rest }) => rest);  // ids are per response
    assert.deepEqual(strip(done.output), strip(whole.output), 'the streamed response equals the whole one');
    assert.match(done.output[1].output, /The sum of/);
    const msg = done.output.find((o) => o.type === 'message');
    if (msg) assert.equal(text, msg.content[0].text, 'the answer streamed as text deltas');
    assert.equal(done.provenance?.ai_generated, true);
    // Streamed with approval: the request item ends the stream; nothing ran.
    const beforeAsk = readFileSync(log, 'utf8').trim().split('\n').length;
    const askTypes = [];
    let asked = null;
    for await (const ev of await openai.responses.create({ ...greedy, tools: [{ ...tools[0], require_approval: 'always' }], stream: true })) {
      askTypes.push(ev.type);
      if (ev.type === 'response.output_item.done' && ev.item.type === 'mcp_approval_request') asked = ev.item;
    }
    assert.ok(asked, askTypes.join(' '));
    assert.equal(asked.name, 'get-sum');
    assert.ok(!askTypes.includes('response.mcp_call.in_progress'));
    assert.equal(readFileSync(log, 'utf8').trim().split('\n').length, beforeAsk);
    // A client that leaves mid-stream: the server cancels and goes on serving.
    const ac = new AbortController();
    const gone = await fetch(`${srv.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...greedy, max_output_tokens: 400, stream: true }), signal: ac.signal });
    const reader = gone.body.getReader();
    await reader.read();
    ac.abort();
    await reader.read().catch(() => {});
    const after = await openai.responses.create(greedy);
    assert.equal(after.output[1].type, 'mcp_call');

    // Misuse: a label the server does not have, an unknown approval mode.
    const unknown = await postJson(`${srv.url}/v1/responses`, { model: 'm', input: 'x', tools: [{ ...tools[0], server_label: 'nope' }] });
    assert.equal(unknown.status, 400);
    assert.match(unknown.json.error.message, /No MCP server 'nope'/);
    const unknownStream = await postJson(`${srv.url}/v1/responses`, { model: 'm', input: 'x', stream: true,
      tools: [{ ...tools[0], server_label: 'nope' }] });
    assert.equal(unknownStream.status, 400, 'a streamed request is refused before the stream starts');
    const badMode = await postJson(`${srv.url}/v1/responses`, { model: 'm', input: 'x',
      tools: [{ type: 'mcp', server_label: 'mcp1', require_approval: 'sometimes' }] });
    assert.equal(badMode.status, 400);
    assert.equal(badMode.json.error.param, 'tools[0].require_approval');

    // Approval (require_approval "always", the default): the call waits for a person's answer.
    const countActs = () => readFileSync(log, 'utf8').trim().split('\n').length;
    const askTools = [{ type: 'mcp', server_label: 'mcp1', allowed_tools: ['get-sum', 'echo'] }];
    const forced = { tool_choice: { type: 'mcp', server_label: 'mcp1', name: 'get-sum' } };
    const before = countActs();
    const r1 = await openai.responses.create({ model: 'm', input: 'Add two numbers.', tools: askTools, max_output_tokens: 200, ...forced });
    const req1 = r1.output.find((o) => o.type === 'mcp_approval_request');
    assert.ok(req1, JSON.stringify(r1.output));
    assert.equal(req1.name, 'get-sum');
    assert.equal(req1.server_label, 'mcp1');
    assert.equal(typeof JSON.parse(req1.arguments).a, 'number');
    assert.ok(!r1.output.some((o) => o.type === 'mcp_call'), 'nothing runs before the answer');
    assert.equal(countActs(), before);
    // Approved: it runs now, with the arguments the person saw, and the model gets its output.
    const r2 = await openai.responses.create({ model: 'm', previous_response_id: r1.id, tools: askTools, max_output_tokens: 40,
      input: [{ type: 'mcp_approval_response', approval_request_id: req1.id, approve: true }] });
    const call2 = r2.output.find((o) => o.type === 'mcp_call');
    assert.ok(call2, JSON.stringify(r2.output));
    assert.equal(call2.id, req1.id);
    assert.equal(call2.arguments, req1.arguments);
    assert.match(call2.output, /The sum of/);
    let acts2 = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(acts2[before].tool, 'mcp1.get-sum');
    assert.ok(acts2[before].approved);
    assert.match(acts2[before].decided_by, /a person, through mcp_approval_response/);
    // Denied: nothing runs, and the model is told so.
    const r3 = await openai.responses.create({ model: 'm', input: 'Add two numbers.', tools: askTools, max_output_tokens: 200, ...forced });
    const req3 = r3.output.find((o) => o.type === 'mcp_approval_request');
    const r4 = await openai.responses.create({ model: 'm', previous_response_id: r3.id, tools: askTools, max_output_tokens: 20,
      input: [{ type: 'mcp_approval_response', approval_request_id: req3.id, approve: false, reason: 'not now' }] });
    const call4 = r4.output.find((o) => o.type === 'mcp_call');
    assert.equal(call4.output, null);
    assert.match(call4.error, /not approved.*not now/);
    acts2 = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(acts2.at(-1).approved, false);
    // An answer to a request that does not exist, or without the mcp tools, is a clear 400.
    const stray = await postJson(`${srv.url}/v1/responses`, { model: 'm', previous_response_id: r3.id, tools: askTools,
      input: [{ type: 'mcp_approval_response', approval_request_id: 'mcpr_nope', approve: true }] });
    assert.equal(stray.status, 400);
    assert.match(stray.json.error.message, /No pending MCP approval request 'mcpr_nope'/);
    const noTools = await postJson(`${srv.url}/v1/responses`, { model: 'm', previous_response_id: r3.id,
      input: [{ type: 'mcp_approval_response', approval_request_id: req3.id, approve: true }] });
    assert.equal(noTools.status, 400);
    // Per-tool lists: get-sum listed under "never" runs without asking.
    const r5 = await openai.responses.create({ model: 'm', input: 'Add.', max_output_tokens: 200, ...forced,
      tools: [{ ...askTools[0], require_approval: { never: { tool_names: ['get-sum'] } } }] });
    assert.ok(r5.output.some((o) => o.type === 'mcp_call'), JSON.stringify(r5.output));
    assert.ok(!r5.output.some((o) => o.type === 'mcp_approval_request'));
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});
