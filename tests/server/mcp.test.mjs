// MCP tools in the Responses API: `modu serve --mcp ...` connects the reference everything server
// (from npm); a request with {"type": "mcp"} tools gets mcp_list_tools and mcp_call items, the
// call forced with tool_choice so the random weights do not matter, its output produced by the
// real server and fed back to the model; the action log records it. Misuse is a clear 400.
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

    // Misuse: a label the server does not have, streaming, approval requests.
    const unknown = await postJson(`${srv.url}/v1/responses`, { model: 'm', input: 'x', tools: [{ ...tools[0], server_label: 'nope' }] });
    assert.equal(unknown.status, 400);
    assert.match(unknown.json.error.message, /No MCP server 'nope'/);
    const stream = await postJson(`${srv.url}/v1/responses`, { model: 'm', input: 'x', tools, stream: true });
    assert.equal(stream.status, 400);
    assert.equal(stream.json.error.param, 'stream');
    const ask = await postJson(`${srv.url}/v1/responses`, { model: 'm', input: 'x', tools: [{ type: 'mcp', server_label: 'mcp1' }] });
    assert.equal(ask.status, 400);
    assert.equal(ask.json.error.param, 'tools[0].require_approval');
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});
