// Images through the server (modu serve --mmproj): the official openai client sends image_url
// content parts as data: URLs, streaming and not, and gets the same greedy text both ways and for
// a repeated request (whose image KV then comes from the prefix cache). Images bigger than the
// prefill batch go whole into one pass; two concurrent requests with different images each equal
// their solo runs. Bad images, remote URLs, a text-only server and too many images are clear 400s;
// with --allow-image-urls an http URL (redirects followed) gives what the same bytes inline give.
// The Responses API takes input_image parts, also across a stored conversation; the Anthropic
// Messages API takes image blocks.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { assert, GREEDY, loadOpenAI, main, MODEL, MODU_BIN, postJson, startServer, TMP } from './lib.mjs';

const TESTDATA = path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'src', 'vision', 'testdata');
const dataUrl = (file, mime = 'image/png') => `data:${mime};base64,${fs.readFileSync(path.join(TESTDATA, file)).toString('base64')}`;
const ask = (text, ...urls) => [{ role: 'user', content: [...urls.map((url) => ({ type: 'image_url', image_url: { url } })),
                                                        { type: 'text', text }] }];

main('vision', 170, async () => {
  const dir = fs.mkdtempSync(path.join(TMP, 'vision-'));
  const mmproj = path.join(dir, 'mmproj.gguf');
  const mk = spawnSync(MODU_BIN, ['init-mmproj', '-o', mmproj, '--projector', 'gemma3', '--text-width', '64', '--image-size', '56',
    '--patch', '7', '--width', '32', '--ff', '64', '--layers', '2', '--heads', '4', '--scale-factor', '2'], { encoding: 'utf8' });
  assert.equal(mk.status, 0, mk.stderr);
  // --batch 8: an image (16 tokens) is longer than a prefill chunk.
  const srv = await startServer(['--mmproj', mmproj, '--parallel', '2', '--batch', '8']);
  try {
    assert.match(srv.stderr(), /images through .*mmproj\.gguf \(Gemma 3.*16 tokens per image\)/);
    const OpenAI = loadOpenAI();
    const openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
    const models = await openai.models.list();
    assert.deepEqual(models.data[0].modalities, ['text', 'image']);

    const png = dataUrl('src_37x23.png'), jpg = dataUrl('orient_6.jpg', 'image/jpeg'), webp = dataUrl('src_37x23.webp', 'image/webp');
    const req = { model: 'm', messages: ask('What is in the picture?', png), max_tokens: 8, ...GREEDY };
    const a = await openai.chat.completions.create(req);
    assert.equal(a.choices[0].message.content.length > 0, true);
    assert.ok(a.usage.prompt_tokens > 16, JSON.stringify(a.usage));
    let streamed = '';
    for await (const ch of await openai.chat.completions.create({ ...req, stream: true })) streamed += ch.choices[0]?.delta?.content ?? '';
    assert.equal(streamed, a.choices[0].message.content);
    const again = await openai.chat.completions.create(req);
    assert.equal(again.choices[0].message.content, a.choices[0].message.content);
    assert.ok(again.usage.prompt_tokens_details.cached_tokens >= 16, `the image's KV is reused: ${JSON.stringify(again.usage)}`);

    // Several images per message, and two requests at once with different images equal their solo runs.
    const two = { model: 'm', messages: ask('Compare them.', jpg, webp), max_tokens: 8, ...GREEDY };
    const soloTwo = (await openai.chat.completions.create(two)).choices[0].message.content;
    const other = { ...req, messages: ask('What is in the picture?', webp) };
    const soloOther = (await openai.chat.completions.create(other)).choices[0].message.content;
    const [x, y] = await Promise.all([openai.chat.completions.create(two), openai.chat.completions.create(other)]);
    assert.equal(x.choices[0].message.content, soloTwo);
    assert.equal(y.choices[0].message.content, soloOther);
    assert.equal(x.usage.prompt_tokens > a.usage.prompt_tokens + 16 - 8, true, 'two images take more tokens');

    // The Responses API: input_image parts give what the same chat request gives; a stored
    // conversation sends its image again with the next turn (whose KV the prefix cache holds).
    const plain = { model: 'm', messages: ask('What is in the picture?', png), max_tokens: 8, temperature: 0 };
    const chatText = (await openai.chat.completions.create(plain)).choices[0].message.content;
    const resp = await openai.responses.create({ model: 'm', max_output_tokens: 8, temperature: 0,
      input: [{ role: 'user', content: [{ type: 'input_image', image_url: png, detail: 'auto' }, { type: 'input_text', text: 'What is in the picture?' }] }] });
    assert.equal(resp.output_text, chatText);
    const follow = await openai.responses.create({ model: 'm', max_output_tokens: 4, temperature: 0, previous_response_id: resp.id,
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'And this one?' }, { type: 'input_image', image_url: webp }] }] });
    assert.ok(['completed', 'incomplete'].includes(follow.status), follow.status);
    assert.ok(follow.usage.input_tokens > resp.usage.input_tokens + 16, JSON.stringify(follow.usage));
    assert.ok(follow.usage.input_tokens_details.cached_tokens >= 16, JSON.stringify(follow.usage));

    // The Anthropic Messages API: a base64 image block, and the prompt holds the image's tokens.
    const b64 = fs.readFileSync(path.join(TESTDATA, 'src_37x23.png')).toString('base64');
    const am = await postJson(`${srv.url}/v1/messages`, { model: 'm', max_tokens: 4, temperature: 0, messages: [{ role: 'user',
      content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: b64 } }, { type: 'text', text: 'What is in the picture?' }] }] });
    assert.equal(am.status, 200, JSON.stringify(am.json));
    const inTokens = (u) => u.input_tokens + (u.cache_read_input_tokens ?? 0);  // cached tokens are counted apart
    assert.ok(inTokens(am.json.usage) > 16, JSON.stringify(am.json.usage));
    const amText = await postJson(`${srv.url}/v1/messages`, { model: 'm', max_tokens: 4, temperature: 0,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'What is in the picture?' }] }] });
    assert.ok(inTokens(am.json.usage) - inTokens(amText.json.usage) >= 16,
      `the image adds its tokens: ${JSON.stringify(am.json.usage)} vs ${JSON.stringify(amText.json.usage)}`);

    // Bad input: a clear 400 each, and the server keeps serving.
    const bad = async (messages, re, code) => {
      const r = await postJson(`${srv.url}/v1/chat/completions`, { model: 'm', messages, max_tokens: 2 });
      assert.equal(r.status, 400, JSON.stringify(r.json));
      assert.match(r.json.error.message, re);
      if (code) assert.equal(r.json.error.code, code);
    };
    await bad(ask('hi', 'https://example.com/cat.png'), /remote image URLs are not fetched.*data: URL/);
    await bad(ask('hi', 'data:image/png;base64,@@@not base64@@@'), /base64 data is malformed/);
    await bad(ask('hi', `data:image/png;base64,${Buffer.from('\x89PNG\r\n\x1a\n broken').toString('base64')}`), /Image 1 of 1: /, 'invalid_image');
    const head = fs.readFileSync(path.join(TESTDATA, 'src_37x23.png')).subarray(0, 33);
    head.writeUInt32BE(10000, 16);
    head.writeUInt32BE(10000, 20);
    await bad(ask('hi', `data:image/png;base64,${head.toString('base64')}`), /decompression bomb/, 'invalid_image');
    await bad(ask('hi', 'data:image/png;base64,'), /Image 1 of 1: image is empty/, 'invalid_image');
    await bad([{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }], /image_url\.url/);
    await bad(ask('hi', ...Array(70).fill(png)), /context|tokens/);
    const ok = await openai.chat.completions.create(req);
    assert.equal(ok.choices[0].message.content, a.choices[0].message.content);
  } finally {
    await srv.stop();
  }
  // --allow-image-urls: an http URL gives what the same bytes inline give; a 404 and an oversized
  // or unreachable URL are 400s naming the image.
  const http = await import('node:http');
  const pngBytes = fs.readFileSync(path.join(TESTDATA, 'src_37x23.png'));
  const web = http.createServer((q, r) => {
    if (q.url === '/cat.png') {
      r.writeHead(200, { 'content-type': 'image/png' });
      r.end(pngBytes);
    } else if (q.url === '/moved.png') {
      r.writeHead(302, { location: '/cat.png' });
      r.end();
    } else {
      r.writeHead(404);
      r.end('no');
    }
  });
  await new Promise((ok) => web.listen(0, '127.0.0.1', ok));
  const base = `http://127.0.0.1:${web.address().port}`;
  const fetching = await startServer(['--mmproj', mmproj, '--allow-image-urls']);
  try {
    const OpenAI = loadOpenAI();
    const openai = new OpenAI({ baseURL: `${fetching.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
    const inline = await openai.chat.completions.create({ model: 'm', messages: ask('What is in the picture?', dataUrl('src_37x23.png')),
                                                          max_tokens: 8, ...GREEDY });
    for (const u of [`${base}/cat.png`, `${base}/moved.png`]) {
      const r = await openai.chat.completions.create({ model: 'm', messages: ask('What is in the picture?', u), max_tokens: 8, ...GREEDY });
      assert.equal(r.choices[0].message.content, inline.choices[0].message.content, u);
    }
    const missing = await postJson(`${fetching.url}/v1/chat/completions`, { model: 'm', messages: ask('hi', `${base}/nope.png`), max_tokens: 2 });
    assert.equal(missing.status, 400);
    assert.match(missing.json.error.message, /Image 1 of 1: fetching the image URL returned HTTP 404/);
    const closed = await postJson(`${fetching.url}/v1/chat/completions`, { model: 'm', messages: ask('hi', 'http://127.0.0.1:1/x.png'), max_tokens: 2 });
    assert.equal(closed.status, 400);
    assert.match(closed.json.error.message, /fetching the image URL failed/);
  } finally {
    await fetching.stop();
    web.close();
  }
  const text = await startServer([]);
  try {
    const r = await postJson(`${text.url}/v1/chat/completions`, { model: 'm', messages: ask('hi', dataUrl('src_37x23.png')), max_tokens: 2 });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /does not take images.*--mmproj/);
    const models = await (await fetch(`${text.url}/v1/models`)).json();
    assert.deepEqual(models.data[0].modalities, ['text']);
  } finally {
    await text.stop();
  }
});
