// The web chat page in a real browser: Debian's chromium, headless, driven by puppeteer-core.
// Sends Korean and English messages and watches the replies stream, stops one mid-stream, reloads
// and finds the conversation, switches language, checks Hangul IME composition, shows a reply
// carrying <script> as text, regenerates, edits and resends, renames and exports, explains a wrong
// key, a busy server and a dropped connection without losing the typed text; pictures for a vision
// model (file picker, paste, remove, sent as image_url parts); saves screenshots at
// desktop and phone widths; runs a server MCP tool after the person approves it; and checks the
// page makes no console errors, no request off its origin, and states its weight.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { assert, main, sleep, startServer, TMP } from './lib.mjs';

const ART = path.join(TMP, 'webchat-artifacts');

function loadPuppeteer() {
  const require = createRequire(path.join(process.env.OPENAI_NODE_DIR, 'node_modules', 'noop.js'));
  return require('puppeteer-core');
}

function chromiumPath() {
  for (const p of [process.env.CHROMIUM_BIN, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'])
    if (p && fs.existsSync(p)) return p;
  throw new Error('chromium not found: install it (apt-get install chromium) or set CHROMIUM_BIN');
}

const bodies = (page) => page.$$eval('#messages .msg', (ns) => ns.map((n) => ({ role: n.classList.contains('user') ? 'user' : 'assistant',
  text: n.querySelector('.body').textContent, foot: n.querySelector('footer')?.textContent ?? '' })));

async function waitIdle(page, timeout = 60000) {
  await page.waitForFunction(() => document.getElementById('stop').hidden && !document.getElementById('send').hidden, { timeout });
}

async function setField(page, sel, value) {
  await page.$eval(sel, (e, v) => {
    e.value = v;
    e.dispatchEvent(new Event('change', { bubbles: true }));
  }, String(value));
}

// Records how the last reply's text grows until the page is idle again.
async function watchGrowth(page) {
  await page.evaluate(() => {
    window.__lengths = [];
    const box = document.getElementById('messages');
    window.__obs?.disconnect();
    window.__obs = new MutationObserver(() => {
      const last = box.querySelector('.msg.assistant:last-of-type .body');
      const n = last ? last.textContent.length : 0;
      if (n && window.__lengths.at(-1) !== n) window.__lengths.push(n);
    });
    window.__obs.observe(box, { childList: true, subtree: true, characterData: true });
  });
}

async function sendViaKeyboard(page, text) {
  await page.focus('#input');
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

// A reverse proxy that mounts modu serve under `prefix` (so the page must use relative URLs), and
// can answer the chat endpoint itself: 'evil' streams a reply full of markup, 'busy' answers 429,
// 'drop' closes the connection before answering, 'cut' drops it in the middle of a reply.
async function startProxy(target, prefix) {
  const state = { mode: 'pass', evil: '' };
  const t = new URL(target);
  const chunk = (o) => `data: ${JSON.stringify(o)}\n\n`;
  const delta = (c) => chunk({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: c } }] });
  const server = http.createServer((req, res) => {
    if (req.url === prefix) {
      res.writeHead(301, { Location: prefix + '/' });
      return res.end();
    }
    if (!req.url.startsWith(prefix + '/')) {
      res.writeHead(404);
      return res.end('not under ' + prefix);
    }
    const upstreamPath = req.url.slice(prefix.length);
    if (req.method === 'POST' && upstreamPath === '/v1/chat/completions' && state.mode !== 'pass') {
      req.resume();
      if (state.mode === 'drop') return req.socket.destroy();
      if (state.mode === 'busy') {
        res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '7' });
        return res.end(JSON.stringify({ error: { message: 'Rate limit reached', type: 'rate_limit_error' } }));
      }
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      if (state.mode === 'cut') {
        res.write(delta('partial reply '));
        return setTimeout(() => req.socket.destroy(), 300);
      }
      for (let i = 0; i < state.evil.length; i += 9) res.write(delta(state.evil.slice(i, i + 9)));
      res.write(chunk({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }));
      return res.end('data: [DONE]\n\n');
    }
    const forward = (body) => {
      const headers = { ...req.headers, host: t.host };
      if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
      const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: upstreamPath, headers }, (ur) => {
        res.writeHead(ur.statusCode, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      if (body !== undefined) up.end(body);
      else req.pipe(up);
      res.on('close', () => up.destroy());  // the browser stopped: so does the upstream request
    };
    // 'rewrite' edits request bodies on their way (the tools test uses it to make the random model
    // call a tool, as a real model would decide to).
    if (state.rewrite && req.method === 'POST') {
      let raw = '';
      req.on('data', (d) => (raw += d));
      req.on('end', () => forward(JSON.stringify(state.rewrite(upstreamPath, JSON.parse(raw)))));
      return;
    }
    forward();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${server.address().port}`;
  state.close = () => new Promise((r) => {
    server.closeAllConnections();
    server.close(r);
  });
  return state;
}

const T0 = Date.now();
const step = (what) => console.log(`[${((Date.now() - T0) / 1000).toFixed(1)} s] ${what}`);

main('webchat', 170, async () => {
  fs.mkdirSync(ART, { recursive: true });
  const srv = await startServer(['--parallel', '2', '--operator', 'Test Ministry']);
  const proxy = await startProxy(srv.url, '/modu');
  const base = proxy.url + '/modu/';
  const puppeteer = loadPuppeteer();
  const browser = await puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--lang=ko-KR',
           '--disable-background-networking', '--disable-component-update'],
  });
  const origin = proxy.url;
  const consoleErrors = [];
  const offOrigin = [];
  let expectErrors = false;  // failed loads (401, 429) log console errors by design while testing them
  let page = null;
  try {
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 800 });
    page.on('console', (m) => {
      if (m.type() === 'error' && !(expectErrors && /Failed to load resource/.test(m.text()))) consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push('pageerror: ' + e.message));
    page.on('request', (r) => {
      const u = r.url();
      if (!u.startsWith(origin + '/') && !u.startsWith('data:') && !u.startsWith('blob:')) offOrigin.push(u);
    });
    const cdp = await page.createCDPSession();
    await cdp.send('Network.enable');
    let weight = 0;
    cdp.on('Network.loadingFinished', (e) => (weight += e.encodedDataLength));
    const dl = path.join(ART, 'downloads');
    fs.rmSync(dl, { recursive: true, force: true });
    fs.mkdirSync(dl);
    await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: dl });
    // A Korean browser (navigator.languages follows Accept-Language).
    await cdp.send('Network.setUserAgentOverride', { userAgent: await browser.userAgent(), acceptLanguage: 'ko-KR,ko' });

    // --- First load: Korean UI from the browser's language, the AI notice, the model list.
    step("First load: Korean UI from the browser's language, the AI notice, the model list.");
    await page.goto(proxy.url + '/modu', { waitUntil: 'networkidle0' });  // redirected to /modu/
    const pageWeight = weight;
    console.log(`page weight (first load, all requests, compressed as sent): ${pageWeight} bytes`);
    assert.ok(pageWeight < 120 * 1024, `page weight ${pageWeight} bytes is over the 120 KiB budget`);
    assert.equal(await page.$eval('html', (h) => h.lang), 'ko');
    assert.equal(await page.$eval('#send', (b) => b.textContent), '보내기');
    const notice = await page.$eval('#notice', (n) => n.textContent);
    assert.match(notice, /인공지능\(AI\)/);
    assert.match(notice, /generated by AI/);
    assert.match(notice, /Test Ministry/);
    await page.waitForFunction(() => document.querySelectorAll('#model option').length > 0);
    assert.equal(await page.$eval('#attach', (b) => b.hidden), true, 'a text-only model offers no picture attach');
    await page.click('#settings-btn');
    await setField(page, '#max_tokens', 24);
    await page.click('#settings-close');

    // Streams arrive slowly enough to watch (and to stop) under a throttled network.
    const throttle = (bytesPerSec) => cdp.send('Network.emulateNetworkConditions', {
      offline: false, latency: 0, downloadThroughput: bytesPerSec, uploadThroughput: -1 });

    // --- A Korean and an English message, each reply streamed and labelled.
    step('A Korean and an English message, each reply streamed and labelled.');
    await throttle(6000);
    for (const text of ['안녕하세요, 오늘 날씨를 알려 주세요.', 'Hello, please tell me a short story.']) {
      await watchGrowth(page);
      await sendViaKeyboard(page, text);
      await page.waitForFunction(() => !document.getElementById('stop').hidden);
      await waitIdle(page);
      const lengths = await page.evaluate(() => window.__lengths);
      assert.ok(lengths.length >= 3, `the reply grew in ${lengths.length} steps (streamed): ${lengths}`);
      const msgs = await bodies(page);
      const user = msgs.at(-2), reply = msgs.at(-1);
      assert.equal(user.text, text);
      assert.ok(reply.text.length > 0, 'a reply arrived');
      assert.match(reply.foot, /AI 생성/);
      assert.match(reply.foot, /tok\/s/);
      assert.equal(await page.$eval('#input', (i) => i.value), '', 'the box is cleared after sending');
    }
    const label = await page.$eval('.msg.assistant .ai-label', (n) => n.title);
    assert.equal(JSON.parse(label).ai_generated, true, 'each reply carries the provenance from the server');

    // --- Stop mid-stream.
    step('Stop mid-stream.');
    await setField(page, '#max_tokens', 600);
    await throttle(1500);
    await sendViaKeyboard(page, 'Write a very long essay.');
    await page.waitForFunction(() => (document.querySelector('.msg.assistant:last-of-type .body')?.textContent.length ?? 0) > 3);
    await page.click('#stop');
    await waitIdle(page, 10000);
    const stoppedAt = (await bodies(page)).at(-1);
    assert.match(stoppedAt.foot, /중지됨/);
    await sleep(700);
    assert.equal((await bodies(page)).at(-1).text, stoppedAt.text, 'nothing arrives after stop');
    await throttle(-1);
    await setField(page, '#max_tokens', 24);

    // --- Reload: the conversation is still there, with its title from the first message.
    step('Reload: the conversation is still there, with its title from the first message.');
    await page.reload({ waitUntil: 'networkidle0' });
    const titles = await page.$$eval('#conv-list .conv-title', (b) => b.map((x) => x.textContent));
    assert.deepEqual(titles, ['안녕하세요, 오늘 날씨를 알려 주세요.']);
    assert.equal((await bodies(page)).length, 6);

    // --- Hangul IME: Enter that ends a composition does not send; a real Enter afterwards does.
    step('Hangul IME: Enter that ends a composition does not send; a real Enter afterwards does.');
    await page.focus('#input');
    await cdp.send('Input.imeSetComposition', { text: 'ㅎ', selectionStart: 1, selectionEnd: 1 });
    await cdp.send('Input.imeSetComposition', { text: '한', selectionStart: 1, selectionEnd: 1 });
    await page.$eval('#input', (i) => {
      for (const init of [{ isComposing: true }, { keyCode: 229 }])
        i.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true, ...init }));
    });
    await cdp.send('Input.insertText', { text: '한' });
    await sleep(200);
    assert.equal((await bodies(page)).length, 6, 'Enter while composing did not send');
    assert.equal(await page.$eval('#input', (i) => i.value), '한');
    await page.keyboard.type('글 입력 시험');
    await page.keyboard.press('Enter');
    await waitIdle(page);
    const afterIme = await bodies(page);
    assert.equal(afterIme.length, 8);
    assert.equal(afterIme.at(-2).text, '한글 입력 시험');

    // --- Regenerate the last reply; edit the first message and resend (the rest is dropped).
    step('Regenerate the last reply; edit the first message and resend (the rest is dropped).');
    await page.click('.msg.assistant:last-of-type .regen');
    await waitIdle(page);
    assert.equal((await bodies(page)).length, 8);
    await page.click('.msg.user .edit-btn');
    await page.waitForSelector('.msg textarea.edit');
    await page.$eval('.msg textarea.edit', (t) => (t.value = '고친 첫 질문입니다.'));
    await page.evaluate(() => [...document.querySelectorAll('.msg button')].find((b) => /저장 후 보내기/.test(b.textContent)).click());
    await waitIdle(page);
    const edited = await bodies(page);
    assert.equal(edited.length, 2);
    assert.equal(edited[0].text, '고친 첫 질문입니다.');

    // --- Model output with markup is shown as text, never run.
    step('Model output with markup is shown as text, never run.');
    const evil = 'Look: <script>window.__pwned=1</script> <img src=x onerror="window.__pwned=2"> **bold** [x](javascript:alert(1))\n\n```html\n<b>hi</b>\n```';
    proxy.mode = 'evil';
    proxy.evil = evil;
    await sendViaKeyboard(page, 'show me html');
    await waitIdle(page);
    const shown = await page.$eval('.msg.assistant:last-of-type .body', (b) => ({
      text: b.textContent, scripts: b.querySelectorAll('script,img,iframe').length, strong: b.querySelectorAll('strong').length,
      links: [...b.querySelectorAll('a')].map((a) => a.getAttribute('href')), code: b.querySelector('pre code')?.textContent }));
    assert.ok(shown.text.includes('<script>window.__pwned=1</script>'), shown.text);
    assert.ok(shown.text.includes('<img src=x onerror="window.__pwned=2">'));
    assert.equal(shown.scripts, 0);
    assert.equal(shown.strong, 1);
    assert.deepEqual(shown.links, [], 'a javascript: link stays text');
    assert.equal(shown.code, '<b>hi</b>');
    assert.equal(await page.evaluate(() => window.__pwned), undefined);

    // --- The Markdown renderer on random input (a fuzz pass in the page): never throws, never
    // makes an element that runs or loads anything nor a link other than http(s)/mailto, and stays fast on
    // long adversarial lines (no catastrophic regex backtracking).
    const fuzz = await page.evaluate(async () => {
      const { renderMarkdown } = await import('./ui/markdown.js');
      const alphabet = ['*', '_', '`', '~', '[', ']', '(', ')', '#', '>', '-', '|', '\n', ' ', 'a', '한', '<', '>', '"', '1.', 'http://x.y/', 'javascript:', '```', '<script>', '&amp;'];
      let seed = 12345;
      const rnd = (n) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
      let bad = 0, worst = 0;
      for (let i = 0; i < 1500; ++i) {
        let text = '';
        for (let k = rnd(200); k--; ) text += alphabet[rnd(alphabet.length)];
        const t0 = performance.now();
        const div = document.createElement('div');
        div.appendChild(renderMarkdown(document, text));
        worst = Math.max(worst, performance.now() - t0);
        if (div.querySelector('script,img,iframe,object,embed,style,link,[onerror],[onclick]')) ++bad;
        for (const a of div.querySelectorAll('a')) if (!/^(https?:|mailto:)/.test(a.getAttribute('href'))) ++bad;
      }
      const long = ['`'.repeat(4000), '*'.repeat(4000), '_a'.repeat(3000), '[x]('.repeat(1000), '~~'.repeat(2000), 'http://a' + '.'.repeat(5000)];
      let slowest = 0;
      for (const text of long) {
        const t0 = performance.now();
        const div = document.createElement('div');
        div.appendChild(renderMarkdown(document, text + '\n' + text));
        slowest = Math.max(slowest, performance.now() - t0);
      }
      return { bad, worst, slowest };
    });
    assert.equal(fuzz.bad, 0, 'no active element or unsafe link from random Markdown');
    assert.ok(fuzz.slowest < 2000, `long adversarial lines render in ${fuzz.slowest.toFixed(0)} ms`);
    console.log(`markdown fuzz: 1500 random texts (worst ${fuzz.worst.toFixed(1)} ms), adversarial lines ${fuzz.slowest.toFixed(0)} ms`);

    // --- A busy server and a dropped connection: clear messages, and the typed text comes back.
    step('A busy server and a dropped connection: clear messages, and the typed text comes back.');
    expectErrors = true;
    for (const [m, re] of [['busy', /서버가 바쁩니다.*7초/], ['drop', /연결할 수 없습니다/]]) {
      proxy.mode = m;
      const before = (await bodies(page)).length;
      await sendViaKeyboard(page, `retry me (${m})`);
      await page.waitForFunction(() => document.getElementById('status').dataset.kind === 'error');
      await waitIdle(page);
      assert.match(await page.$eval('#status', (s) => s.textContent), re);
      assert.equal(await page.$eval('#input', (i) => i.value), `retry me (${m})`);
      assert.equal((await bodies(page)).length, before, 'the failed turn is taken back');
      await page.$eval('#input', (i) => (i.value = ''));
    }
    // A connection that drops mid-reply: what arrived is kept, and the reply says so.
    proxy.mode = 'cut';
    await sendViaKeyboard(page, 'cut me off');
    await waitIdle(page);
    const cut = (await bodies(page)).at(-1);
    assert.ok(cut.text.length > 0, 'the part before the drop is kept');
    assert.match(cut.foot, /연결이 끊겼습니다/);
    proxy.mode = 'pass';
    expectErrors = false;

    // --- Rename and export.
    step('Rename and export.');
    page.once('dialog', (d) => d.accept('이름 바꾼 대화'));
    await page.click('#conv-list li[aria-current] .conv-actions button');
    await page.waitForFunction(() => document.querySelector('#conv-list li[aria-current] .conv-title').textContent === '이름 바꾼 대화');
    await page.click('#export');
    let exported = null;
    for (let i = 0; i < 50 && !exported; ++i) {
      await sleep(100);
      const f = fs.readdirSync(dl).find((n) => n.endsWith('.json'));
      if (f) exported = JSON.parse(fs.readFileSync(path.join(dl, f), 'utf8'));
    }
    assert.ok(exported, 'the export was downloaded');
    assert.equal(exported.format, 'modu-chat-export');
    assert.equal(exported.conversations[0].title, '이름 바꾼 대화');
    // A second conversation, then deleting it (after a confirm) leaves the first.
    await page.click('#new-chat');
    await sendViaKeyboard(page, '두 번째 대화');
    await waitIdle(page);
    assert.equal((await page.$$('#conv-list li')).length, 2);
    page.once('dialog', (d) => d.accept());
    await page.click('#conv-list li[aria-current] .conv-actions button:last-child');
    await page.waitForFunction(() => document.querySelectorAll('#conv-list li').length === 1);
    assert.equal(await page.$eval('#conv-list .conv-title', (b) => b.textContent), '이름 바꾼 대화');
    assert.equal((await bodies(page)).length, 0, 'the deleted conversation is not shown');
    await page.click('#conv-list .conv-title');
    assert.ok((await bodies(page)).length > 0, 'the remaining one opens');

    // --- Switch language; it sticks across a reload.
    step('Switch language; it sticks across a reload.');
    await page.click('#lang');
    assert.equal(await page.$eval('#send', (b) => b.textContent), 'Send');
    assert.equal(await page.$eval('html', (h) => h.lang), 'en');
    await page.reload({ waitUntil: 'networkidle0' });
    assert.equal(await page.$eval('#send', (b) => b.textContent), 'Send');
    assert.match((await bodies(page)).at(-1).foot, /AI-generated/);
    await page.screenshot({ path: path.join(ART, 'desktop.png') });

    // --- Keyboard only: Tab reaches the message box, Enter sends.
    step('Keyboard only: Tab reaches the message box, Enter sends.');
    await page.$eval('#input', (i) => i.blur());
    let reached = false;
    for (let i = 0; i < 40 && !reached; ++i) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement?.id === 'input');
    }
    assert.ok(reached, 'Tab reaches the message box');
    const nBefore = (await bodies(page)).length;
    await page.keyboard.type('keyboard only');
    await page.keyboard.press('Enter');
    await waitIdle(page);
    assert.equal((await bodies(page)).length, nBefore + 2);

    // --- Phone width: the list slides over, the chat column fills the screen.
    step('Phone width: the list slides over, the chat column fills the screen.');
    await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
    await sleep(200);
    assert.equal(await page.$eval('#sidebar', (s) => getComputedStyle(s).visibility), 'hidden');
    const w = await page.$eval('#messages', (m) => m.getBoundingClientRect().width);
    assert.ok(w > 350, `the chat column fills a phone screen (${w}px)`);
    await page.screenshot({ path: path.join(ART, 'phone.png') });
    await page.click('#toggle-side');
    await sleep(300);
    assert.equal(await page.$eval('#sidebar', (s) => getComputedStyle(s).visibility), 'visible');
    await page.screenshot({ path: path.join(ART, 'phone-list.png') });

    assert.deepEqual(consoleErrors, [], 'no console errors');
    assert.deepEqual(offOrigin, [], 'no request leaves the server origin');
    await page.close();

    // --- With API keys: the page asks for one, says when it is wrong, and works once given.
    step('With API keys: the page asks for one, says when it is wrong, and works once given.');
    const keys = path.join(TMP, 'webchat-keys.txt');
    fs.writeFileSync(keys, 'sk-web-test web\n');
    const srv2 = await startServer(['--api-keys', keys]);
    try {
      const p2 = await browser.newPage();
      p2.on('pageerror', (e) => consoleErrors.push('pageerror: ' + e.message));
      await p2.goto(srv2.url + '/', { waitUntil: 'networkidle0' });
      await p2.waitForFunction(() => document.getElementById('status').dataset.kind === 'error');
      assert.match(await p2.$eval('#status', (s) => s.textContent), /API key is missing or wrong/);
      assert.equal(await p2.$eval('#settings', (s) => s.hidden), false, 'settings open at the key field');
      await p2.$eval('#api-key', (k) => (k.value = 'sk-wrong'));
      await p2.$eval('#api-key', (k) => k.dispatchEvent(new Event('change')));
      await sleep(300);
      assert.match(await p2.$eval('#status', (s) => s.textContent), /API key is missing or wrong/);
      await p2.$eval('#api-key', (k) => (k.value = 'sk-web-test'));
      await p2.$eval('#api-key', (k) => k.dispatchEvent(new Event('change')));
      await p2.waitForFunction(() => document.querySelectorAll('#model option').length > 0);
      await p2.click('#settings-close');
      await sendViaKeyboard(p2, '키로 보냅니다');
      await waitIdle(p2);
      assert.ok((await bodies(p2)).at(-1).text.length > 0);
      // Not remembered unless asked: a new tab of the same browser does not know the key.
      assert.equal(await p2.evaluate(() => localStorage.getItem('modu.key')), null);
      await p2.close();
    } finally {
      await srv2.stop();
    }
    assert.deepEqual(consoleErrors, [], 'no page errors');

    // --- Pictures for a vision model (--mmproj): attach by the file picker and by paste, remove
    // one, send; the request carries image_url parts, the message shows thumbnails.
    step('Pictures: attach, paste, remove, send to a vision model');
    const testdata = path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'src', 'vision', 'testdata');
    const mmproj = path.join(TMP, 'webchat-mmproj.gguf');
    const mk = spawnSync(process.env.MODU_BIN, ['init-mmproj', '-o', mmproj, '--projector', 'gemma3', '--text-width', '64',
      '--image-size', '56', '--patch', '7', '--width', '32', '--ff', '64', '--layers', '2', '--heads', '4', '--scale-factor', '2'],
      { encoding: 'utf8' });
    assert.equal(mk.status, 0, mk.stderr);
    const srv4 = await startServer(['--mmproj', mmproj]);
    const proxy4 = await startProxy(srv4.url, '/see');
    const sent = [];
    proxy4.rewrite = (p, body) => {
      sent.push({ path: p, body });
      return body;
    };
    try {
      const p4 = await browser.newPage();
      p4.on('pageerror', (e) => consoleErrors.push('pageerror: ' + e.message));
      await p4.goto(proxy4.url + '/see/', { waitUntil: 'networkidle0' });
      await p4.waitForFunction(() => !document.getElementById('attach').hidden);
      const [chooser] = await Promise.all([p4.waitForFileChooser(), p4.click('#attach')]);
      await chooser.accept([path.join(testdata, 'src_37x23.png'), path.join(testdata, 'orient_6.jpg')]);
      await p4.waitForFunction(() => document.querySelectorAll('#attachments img').length === 2);
      const removed = await p4.$eval('#attachments img', (i) => i.src);
      const kept = await p4.$$eval('#attachments img', (x) => x[1].src);
      await p4.click('#attachments .remove');  // drop the first
      await p4.waitForFunction(() => document.querySelectorAll('#attachments img').length === 1);
      const pngB64 = fs.readFileSync(path.join(testdata, 'src_37x23.webp')).toString('base64');
      await p4.evaluate((b64) => {  // a pasted picture (clipboard file)
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'pasted.webp', { type: 'image/webp' }));
        document.getElementById('input').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
      }, pngB64);
      await p4.waitForFunction(() => document.querySelectorAll('#attachments img').length === 2);
      await sendViaKeyboard(p4, '사진에 무엇이 있나요?');
      await p4.waitForFunction(() => document.getElementById('stop').hidden && document.querySelector('.msg.assistant .body')?.textContent.length > 0);
      const req = sent.find((x) => x.path === '/v1/chat/completions');
      const user = req.body.messages.filter((m) => m.role === 'user').pop();
      assert.ok(Array.isArray(user.content), JSON.stringify(user).slice(0, 200));
      assert.deepEqual(user.content.map((c) => c.type), ['image_url', 'image_url', 'text']);
      assert.equal(user.content[0].image_url.url, kept);
      assert.notEqual(user.content[0].image_url.url, removed);
      assert.match(user.content[1].image_url.url, /^data:image\/webp;base64,/);
      assert.equal(user.content[2].text, '사진에 무엇이 있나요?');
      assert.equal(await p4.$$eval('.msg.user .thumbs img', (x) => x.length), 2);
      assert.equal(await p4.$eval('#attachments', (x) => x.hidden), true, 'sent pictures leave the composer');
      await p4.$eval('.msg.user', (e) => e.scrollIntoView());
      await p4.screenshot({ path: path.join(ART, 'images.png') });
      await p4.close();
    } finally {
      await proxy4.close();
      await srv4.stop();
    }

    // --- With the server's MCP tools: a call waits for the person's approval, then runs; a
    // picture sent with tools on goes as an input_image part of the Responses request.
    step('MCP tools with approval');
    const everything = path.join(process.env.OPENAI_NODE_DIR, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
    const srv3 = await startServer(['--tool-format', 'hermes', '--mcp', `node ${everything} stdio`, '--mmproj', mmproj]);
    const proxy3 = await startProxy(srv3.url, '/tools');
    const seen = [];
    proxy3.rewrite = (p, body) => {
      seen.push({ path: p, body });
      // The random weights would not choose a tool: the first turn is forced to call get-sum.
      if (p === '/v1/responses' && !body.previous_response_id) body.tool_choice = { type: 'mcp', server_label: 'mcp1', name: 'get-sum' };
      return body;
    };
    try {
      const p3 = await browser.newPage();
      p3.on('pageerror', (e) => consoleErrors.push('pageerror: ' + e.message));
      await p3.goto(proxy3.url + '/tools/', { waitUntil: 'networkidle0' });
      await p3.waitForFunction(() => !document.getElementById('tools-row').hidden);
      await p3.click('#settings-btn');
      await p3.click('#use-tools');
      await setField(p3, '#max_tokens', 200);  // room for the forced call's JSON
      await p3.click('#settings-close');
      await p3.waitForFunction(() => !document.getElementById('attach').hidden);  // a picture goes along (input_image)
      const [chooser3] = await Promise.all([p3.waitForFileChooser(), p3.click('#attach')]);
      await chooser3.accept([path.join(testdata, 'src_37x23.png')]);
      await p3.waitForFunction(() => document.querySelectorAll('#attachments img').length === 1);
      await sendViaKeyboard(p3, 'Add two numbers.');
      await p3.waitForSelector('.msg.assistant details.mcp .approval .approve');
      const ask = await p3.$eval('.msg.assistant details.mcp', (d) => d.textContent);
      assert.match(ask, /Approval needed to run a tool: mcp1\.get-sum/);
      assert.ok(!seen.some((x) => x.body.input?.some?.((i) => i.type === 'mcp_approval_response')), 'nothing approved yet');
      await p3.click('.msg.assistant details.mcp .approval .approve');
      await p3.waitForFunction(() => /The sum of/.test(document.querySelector('.msg.assistant details.mcp pre.out')?.textContent ?? ''));
      const first = seen.find((x) => x.path === '/v1/responses' && !x.body.previous_response_id);
      assert.equal(first.body.stream, true, 'a turn with the server\'s tools streams too');
      const userItem = first.body.input.filter((i) => i.role === 'user').pop();
      assert.deepEqual(userItem.content.map((c) => c.type), ['input_image', 'input_text'], JSON.stringify(userItem).slice(0, 200));
      assert.match(userItem.content[0].image_url, /^data:image\/png;base64,/);
      const answer = seen.find((x) => x.body.previous_response_id);
      assert.equal(answer.body.input[0].type, 'mcp_approval_response');
      assert.equal(answer.body.input[0].approve, true);
      assert.match(await p3.$eval('.msg.assistant details.mcp summary', (x) => x.textContent), /approved/);
      await p3.waitForFunction(() => document.getElementById('stop').hidden);  // the answer after the call streamed to its end
      assert.equal(await p3.$eval('#status', (x) => x.textContent), '', 'no error after the streamed answer');
      await p3.$eval('.msg.assistant details.mcp', (d) => d.scrollIntoView());
      await p3.screenshot({ path: path.join(ART, 'tools.png') });
      await p3.close();
    } finally {
      await proxy3.close();
      await srv3.stop();
    }
    assert.deepEqual(consoleErrors, [], 'no page errors');
    console.log(`screenshots in ${ART}`);
  } catch (e) {
    // What the page showed when it failed, for the CI log and artifacts.
    if (page && !page.isClosed()) {
      await page.screenshot({ path: path.join(ART, 'failure.png') }).catch(() => {});
      const state = await page.evaluate(() => ({ status: document.getElementById('status').textContent,
        stopHidden: document.getElementById('stop').hidden, last: document.querySelector('#messages')?.lastChild?.textContent }))
        .catch((x) => String(x));
      console.error('page state at failure:', JSON.stringify(state), '\nconsole errors:', consoleErrors);
    }
    throw e;
  } finally {
    await browser.close();
    await proxy.close();
    await srv.stop();
  }
});
