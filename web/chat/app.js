// The web chat page's controller: conversations, settings, sending and streaming, and rendering.
import { ApiError, getJson, streamChat, streamResponses } from './api.js';
import { applyStrings, initialLang, LANGS, t } from './i18n.js';
import { renderMarkdown } from './markdown.js';
import { newConversation, Store, titleFrom } from './store.js';
import { contentOf, imageFiles, readImage, responsesContentOf, thumbs } from './images.js';

const $ = (id) => document.getElementById(id);
const store = new Store(localStorage);
const S = {
  lang: initialLang(localStorage, navigator.languages || [navigator.language]),
  conv: null,
  models: [],
  nCtx: 0,
  info: {},
  pending: [],  // pictures attached to the message being written (data: URLs)
  controller: null,
  editing: -1,
};
const tr = (k, ...a) => t(S.lang, k, ...a);

// ---- settings and key ----------------------------------------------------------------------
function loadSettings() {
  let s = {};
  try {
    s = JSON.parse(localStorage.getItem('modu.settings') || '{}') || {};
  } catch { /* default */ }
  for (const k of ['temperature', 'top_p', 'max_tokens']) if (s[k] !== undefined) $(k).value = s[k];
  if (s.model) S.wantModel = s.model;
  const saved = localStorage.getItem('modu.key');
  $('api-key').value = saved || sessionStorage.getItem('modu.key') || '';
  $('remember-key').checked = !!saved;
}

function saveSettings() {
  const s = { temperature: $('temperature').value, top_p: $('top_p').value, max_tokens: $('max_tokens').value, model: $('model').value };
  localStorage.setItem('modu.settings', JSON.stringify(s));
  const key = $('api-key').value.trim();
  // The key is kept for this tab only unless the person asks to remember it.
  sessionStorage.setItem('modu.key', key);
  if ($('remember-key').checked && key) localStorage.setItem('modu.key', key);
  else localStorage.removeItem('modu.key');
}

function key() {
  return $('api-key').value.trim();
}

function numberOr(id, fallback) {
  const v = parseFloat($(id).value);
  return Number.isFinite(v) ? v : fallback;
}

// ---- status line ------------------------------------------------------------------------------
function setStatus(text, kind = 'info') {
  const s = $('status');
  s.textContent = text || '';
  s.dataset.kind = kind;
}

function explain(err) {
  if (err instanceof ApiError) {
    if (err.kind === 'auth') return tr('errKey');
    if (err.kind === 'busy') return tr('errBusy') + (err.retryAfter ? ' ' + tr('retryIn', err.retryAfter) : '');
    if (err.kind === 'network') return tr('errNetwork');
    if (err.kind === 'too_long') return tr('errTooLong') + ' (' + err.message + ')';
    return tr('errServer') + ': ' + err.message;
  }
  return String(err?.message || err);
}

function errorText(e) {
  if (typeof e === 'string') return e;
  if (e.kind === 'dropped') return tr('errDropped');
  return explain(new ApiError(e.kind, e.message));
}

// ---- conversations ------------------------------------------------------------------------------
function persist() {
  if (!S.conv || !S.conv.messages.length) return;
  try {
    store.save(S.conv);
  } catch {
    setStatus(tr('errStorage'), 'error');
  }
  renderList();
}

function download(name, obj) {
  const blob = new Blob([JSON.stringify(obj, null, 2)], { type: 'application/json' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function button(label, onClick, cls = '') {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  if (cls) b.className = cls;
  b.addEventListener('click', onClick);
  return b;
}

function renderList() {
  const ul = $('conv-list');
  ul.replaceChildren();
  for (const c of store.list()) {
    const li = document.createElement('li');
    if (S.conv && c.id === S.conv.id) li.setAttribute('aria-current', 'true');
    const open = button(c.title || tr('untitled'), () => openConversation(c.id), 'conv-title');
    const actions = document.createElement('span');
    actions.className = 'conv-actions';
    const rename = button('✎', () => {
      const conv = store.get(c.id);
      const name = conv && prompt(tr('renamePrompt'), conv.title);
      if (conv && name && name.trim()) {
        conv.title = name.trim();
        store.save(conv);
        if (S.conv?.id === c.id) S.conv.title = conv.title;
        renderList();
      }
    });
    rename.setAttribute('aria-label', tr('rename') + ': ' + (c.title || tr('untitled')));
    rename.title = tr('rename');
    const exp = button('⇩', () => download(`modu-chat-${c.id}.json`, store.get(c.id)));
    exp.setAttribute('aria-label', tr('export') + ': ' + (c.title || tr('untitled')));
    exp.title = tr('export');
    const del = button('✕', () => {
      if (!confirm(tr('confirmDelete'))) return;
      store.remove(c.id);
      if (S.conv?.id === c.id) startNew();
      renderList();
    });
    del.setAttribute('aria-label', tr('delete') + ': ' + (c.title || tr('untitled')));
    del.title = tr('delete');
    actions.append(rename, exp, del);
    li.append(open, actions);
    ul.appendChild(li);
  }
}

function openConversation(id) {
  if (S.controller) return;
  const c = store.get(id);
  if (!c) return;
  S.conv = c;
  S.editing = -1;
  $('system').value = c.system || '';
  $('input').value = localStorage.getItem('modu.draft.' + c.id) || '';
  renderMessages();
  renderList();
  closeSidebarOnPhone();
}

function startNew() {
  if (S.controller) return;
  S.conv = newConversation();
  S.conv.system = $('system').value;
  S.editing = -1;
  $('input').value = localStorage.getItem('modu.draft.new') || '';
  renderMessages();
  renderList();
  closeSidebarOnPhone();
  $('input').focus();
}

function draftKey() {
  return 'modu.draft.' + (S.conv?.messages.length ? S.conv.id : 'new');
}

// ---- rendering messages ---------------------------------------------------------------------------
async function copyText(text, btn) {
  try {
    await navigator.clipboard.writeText(text);
    if (btn) {
      btn.textContent = tr('copied');
      setTimeout(() => (btn.textContent = tr('copy')), 1200);
    }
  } catch { /* clipboard refused (insecure origin): nothing to do */ }
}

function toolCard(call) {
  const d = document.createElement('details');
  d.className = 'tool';
  const s = document.createElement('summary');
  s.textContent = `${tr('toolCall')}: ${call.function?.name || '?'}`;
  const pre = document.createElement('pre');
  let args = call.function?.arguments || '';
  try {
    args = JSON.stringify(JSON.parse(args), null, 2);
  } catch { /* still streaming or not JSON */ }
  pre.textContent = args;
  d.append(s, pre);
  return d;
}

// A server-run MCP tool: a call with its output, or a request waiting for the person's approval.
function mcpCard(item, msgIndex) {
  const d = document.createElement('details');
  d.className = 'tool mcp';
  const s = document.createElement('summary');
  const pending = item.type === 'mcp_approval_request' && !item.decision;
  s.textContent = `${pending ? tr('approvalAsk') : tr('toolCall')}: ${item.server_label}.${item.name}` +
                  (item.decision ? ` (${tr(item.decision)})` : item.error ? ` (${tr('toolError')})` : '');
  const args = document.createElement('pre');
  try {
    args.textContent = JSON.stringify(JSON.parse(item.arguments || '{}'), null, 2);
  } catch {
    args.textContent = item.arguments || '';
  }
  d.append(s, args);
  if (item.type === 'mcp_call') {
    const out = document.createElement('pre');
    out.className = item.error ? 'err' : 'out';
    out.textContent = item.error ?? item.output ?? '';
    d.appendChild(out);
  }
  if (pending) {
    d.open = true;
    const row = document.createElement('div');
    row.className = 'approval';
    row.append(button(tr('approve'), () => answerApproval(msgIndex, item.id, true), 'approve'),
               button(tr('deny'), () => answerApproval(msgIndex, item.id, false), 'deny'));
    d.appendChild(row);
  }
  return d;
}

function statsText(m) {
  const parts = [];
  if (m.tokens) parts.push(`${m.tokens} ${tr('tokens')}`);
  if (m.tps) parts.push(`${m.tps.toFixed(1)} tok/s`);
  if (m.ctxUsed && S.nCtx) parts.push(`${tr('context')} ${m.ctxUsed}/${S.nCtx} (${Math.round((100 * m.ctxUsed) / S.nCtx)}%)`);
  if (m.stopped) parts.push(tr('stopped'));
  return parts.join(' · ');
}

function fillBody(body, m, idx) {
  body.replaceChildren();
  if (m.role === 'assistant') {
    for (const item of m.mcp || []) body.appendChild(mcpCard(item, idx));
    body.appendChild(renderMarkdown(document, m.content || '', {
      onCopy: (text, b) => copyText(text, b),
    }));
    for (const b of body.querySelectorAll('button.copy')) b.textContent = tr('copy');
    for (const call of m.tool_calls || []) body.appendChild(toolCard(call));
  } else {
    if (m.images?.length) body.appendChild(thumbs(document, m.images, tr('image')));
    body.appendChild(document.createTextNode(m.content));
  }
}

function renderPending() {
  const box = $('attachments');
  box.replaceChildren();
  box.hidden = !S.pending.length;
  if (S.pending.length)
    box.appendChild(thumbs(document, S.pending, tr('image'), (i) => {
      S.pending.splice(i, 1);
      renderPending();
    }, tr('removeImage')));
}

async function attach(files) {
  for (const f of files) {
    try {
      S.pending.push(await readImage(f));
    } catch (err) {
      setStatus(tr(err.message === 'size' ? 'errImageSize' : 'errImageType'), 'error');
    }
  }
  renderPending();
}

function messageNode(m, idx) {
  const art = document.createElement('article');
  art.className = 'msg ' + m.role;
  art.dataset.index = idx;
  const who = document.createElement('h3');
  who.className = 'who';
  who.textContent = m.role === 'user' ? tr('you') : tr('assistant');
  const body = document.createElement('div');
  body.className = 'body';
  if (S.editing === idx) {
    const ta = document.createElement('textarea');
    ta.value = m.content;
    ta.className = 'edit';
    ta.setAttribute('aria-label', tr('edit'));
    const save = button(tr('saveSend'), () => {
      const text = ta.value.trim();
      if (!text) return;
      S.pending = [...(m.images || [])];  // an edited message keeps its pictures
      S.conv.messages.splice(idx);
      S.editing = -1;
      send(text);
    });
    const cancel = button(tr('cancel'), () => {
      S.editing = -1;
      renderMessages();
    });
    ta.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') cancel.click();
    });
    body.append(ta, save, cancel);
    art.append(who, body);
    setTimeout(() => ta.focus(), 0);
    return art;
  }
  fillBody(body, m, idx);
  const foot = document.createElement('footer');
  if (m.role === 'assistant') {
    const label = document.createElement('span');
    label.className = 'ai-label';
    label.textContent = `${tr('aiLabel')} · ${m.model || ''}`;
    if (m.provenance) label.title = JSON.stringify(m.provenance, null, 2);
    const stats = document.createElement('span');
    stats.className = 'stats';
    stats.textContent = statsText(m);
    foot.append(label, stats);
    if (m.error) {
      const err = document.createElement('span');
      err.className = 'err';
      err.textContent = errorText(m.error);
      foot.appendChild(err);
    }
    foot.appendChild(button(tr('copy'), (e) => copyText(m.content, e.target)));
    if (idx === S.conv.messages.length - 1) foot.appendChild(button(tr('regenerate'), regenerate, 'regen'));
  } else {
    foot.appendChild(button(tr('edit'), () => {
      if (S.controller) return;
      S.editing = idx;
      renderMessages();
    }, 'edit-btn'));
  }
  art.append(who, body, foot);
  return art;
}

function renderMessages() {
  const box = $('messages');
  box.replaceChildren();
  if (!S.conv.messages.length) {
    const p = document.createElement('p');
    p.className = 'empty';
    p.textContent = tr('empty');
    box.appendChild(p);
  }
  S.conv.messages.forEach((m, i) => box.appendChild(messageNode(m, i)));
  box.scrollTop = box.scrollHeight;
}

// ---- sending ----------------------------------------------------------------------------------------
function setBusy(on) {
  $('send').hidden = on;
  $('stop').hidden = !on;
  $('new-chat').disabled = on;
  if (on) setStatus(tr('working'));
}

// An MCP item of a Responses answer becomes a card: an approval request, then (approved or not)
// its call; a streamed item replaces an earlier copy of itself.
function absorbItem(reply, o) {
  reply.mcp = reply.mcp || [];
  if (o.type !== 'mcp_call' && o.type !== 'mcp_approval_request') return;
  const same = reply.mcp.find((x) => x.id === o.id);
  if (same) Object.assign(same, o);  // an approved request is now its call
  else reply.mcp.push({ ...o });
}

// The final response object: its id (for the approval answers), provenance and usage.
function finishResponse(reply, r) {
  reply.responseId = r.id;
  if (r.provenance) reply.provenance = r.provenance;
  if (r.usage) {
    reply.tokens = (reply.tokens || 0) + (r.usage.output_tokens || 0);
    reply.ctxUsed = r.usage.input_tokens + r.usage.output_tokens;
  }
}

function toolsOn() {
  return (S.info.mcp || []).length > 0 && $('use-tools').checked;
}

function mcpTools() {
  return S.info.mcp.map((label) => ({ type: 'mcp', server_label: label, require_approval: 'always' }));
}

// With the server's tools: one streamed Responses request. The server runs the MCP calls; each
// arrives as a card once it has run, the answer's text as it is generated. Approval requests
// wait for the person's click (answerApproval), which sends the answer and streams what followed.
async function runWithTools(conv, reply, body) {
  S.controller = new AbortController();
  setBusy(true);
  let error = null;
  const idx = conv.messages.indexOf(reply);
  let frame = 0;
  const redraw = () => {
    frame = 0;
    if (S.conv !== conv) return;
    const b = $('messages').children[idx]?.querySelector('.body');
    if (!b) return renderMessages();
    fillBody(b, reply, idx);
    const box = $('messages');
    if (box.scrollHeight - box.scrollTop - box.clientHeight < 120) box.scrollTop = box.scrollHeight;
  };
  let paragraph = false;  // a new message item after earlier text starts a new paragraph
  try {
    const r = await streamResponses(body, {
      key: key(), signal: S.controller.signal,
      onEvent: (ev) => {
        if (ev.type === 'response.created') reply.responseId = ev.response.id;
        else if (ev.type === 'response.output_item.added' && ev.item.type === 'message') paragraph = !!reply.content;
        else if (ev.type === 'response.output_text.delta') {
          reply.content += (paragraph ? '\n\n' : '') + ev.delta;
          paragraph = false;
        } else if (ev.type === 'response.output_item.done') absorbItem(reply, ev.item);
        if (!frame) frame = requestAnimationFrame(redraw);
      },
    });
    finishResponse(reply, r);
  } catch (err) {
    if (err?.name === 'AbortError') reply.stopped = true;
    else error = err;
  }
  if (frame) cancelAnimationFrame(frame);
  S.controller = null;
  setBusy(false);
  if (error) {
    reply.error = { kind: error.kind || 'server', message: error.message || String(error) };
    setStatus(errorText(reply.error), 'error');
  } else {
    setStatus('');
  }
  persist();
  renderMessages();
}

async function answerApproval(msgIndex, id, approve) {
  if (S.controller) return;
  const reply = S.conv.messages[msgIndex];
  const item = reply?.mcp?.find((x) => x.id === id);
  if (!item || item.decision) return;
  item.decision = approve ? 'approved' : 'denied';
  renderMessages();
  await runWithTools(S.conv, reply, {
    model: reply.model, previous_response_id: reply.responseId, tools: mcpTools(),
    input: [{ type: 'mcp_approval_response', approval_request_id: id, approve }],
    max_output_tokens: Math.max(1, Math.round(numberOr('max_tokens', 512))),
  });
}

async function send(text) {
  if (S.controller) return;
  const images = text !== null ? S.pending.splice(0) : [];
  renderPending();
  if (toolsOn()) {  // the Responses API with the server's MCP tools; pictures as input_image parts
    const conv = S.conv;
    conv.system = $('system').value;
    if (text !== null) {
      conv.messages.push(images.length ? { role: 'user', content: text, images } : { role: 'user', content: text });
      if (!conv.title) conv.title = titleFrom(text);
    }
    const model = $('model').value || S.models[0] || 'default';
    const input = conv.messages.map((m) => ({ role: m.role, content: m.role === 'user' ? responsesContentOf(m) : m.content }));
    const reply = { role: 'assistant', content: '', model, mcp: [] };
    conv.messages.push(reply);
    renderMessages();
    const body = { model, input, tools: mcpTools(), temperature: numberOr('temperature', 0.7), top_p: numberOr('top_p', 0.95),
                   max_output_tokens: Math.max(1, Math.round(numberOr('max_tokens', 512))) };
    if (conv.system.trim()) body.instructions = conv.system;
    return runWithTools(conv, reply, body);
  }
  const conv = S.conv;
  conv.system = $('system').value;
  if (text !== null) {
    conv.messages.push(images.length ? { role: 'user', content: text, images } : { role: 'user', content: text });
    if (!conv.title) conv.title = titleFrom(text);
  }
  const history = conv.messages.map((m) => ({ role: m.role, content: m.role === 'user' ? contentOf(m) : m.content }));
  if (conv.system.trim()) history.unshift({ role: 'system', content: conv.system });
  const model = $('model').value || S.models[0] || 'default';
  const reply = { role: 'assistant', content: '', model, tool_calls: [] };
  conv.messages.push(reply);
  renderMessages();
  const node = $('messages').lastChild;
  const body = node.querySelector('.body');
  const stats = node.querySelector('.stats');
  S.controller = new AbortController();
  setBusy(true);
  const t0 = performance.now();
  let tFirst = 0;
  let pieces = 0;
  let frame = 0;
  const redraw = () => {
    frame = 0;
    fillBody(body, reply);
    stats.textContent = statsText(reply);
    const box = $('messages');
    if (box.scrollHeight - box.scrollTop - box.clientHeight < 120) box.scrollTop = box.scrollHeight;
  };
  let opened = false;
  try {
    await streamChat({
      model, messages: history, stream: true, stream_options: { include_usage: true },
      temperature: numberOr('temperature', 0.7), top_p: numberOr('top_p', 0.95),
      max_tokens: Math.max(1, Math.round(numberOr('max_tokens', 512))),
    }, {
      key: key(), signal: S.controller.signal,
      onOpen: () => {
        opened = true;
      },
      onEvent: (ev) => {
        const ch = ev.choices?.[0];
        const d = ch?.delta;
        if (d?.content) {
          if (!tFirst) tFirst = performance.now();
          reply.content += d.content;
          ++pieces;
        }
        for (const tc of d?.tool_calls || []) {
          const k = tc.index ?? reply.tool_calls.length;
          if (!reply.tool_calls[k]) reply.tool_calls[k] = { id: tc.id, type: 'function', function: { name: '', arguments: '' } };
          const f = reply.tool_calls[k].function;
          if (tc.function?.name) f.name = tc.function.name;
          if (tc.function?.arguments) f.arguments += tc.function.arguments;
        }
        if (ch?.finish_reason) reply.finish = ch.finish_reason;
        if (ev.provenance) reply.provenance = ev.provenance;
        if (ev.usage) {
          reply.tokens = ev.usage.completion_tokens;
          reply.ctxUsed = ev.usage.total_tokens;
        }
        if (!frame) frame = requestAnimationFrame(redraw);
      },
    });
  } catch (err) {
    if (err?.name === 'AbortError') {
      reply.stopped = true;
    } else if (!opened && !reply.content) {
      // Nothing was generated: take the turn back and give the text back to the box.
      conv.messages.pop();
      if (text !== null) {
        conv.messages.pop();
        if (!$('input').value.trim()) {
          $('input').value = text;
          localStorage.setItem(draftKey(), text);
        }
      }
      S.controller = null;
      setBusy(false);
      renderMessages();
      setStatus(explain(err), 'error');
      if (err.kind === 'auth') openSettings(true);
      return;
    } else {
      // Kept as a kind (shown in the page's language when drawn) plus the server's own words.
      reply.error = { kind: err.kind === 'network' ? 'dropped' : err.kind || 'server', message: err.message || String(err) };
    }
  }
  if (frame) cancelAnimationFrame(frame);
  const secs = (performance.now() - (tFirst || t0)) / 1000;
  if (!reply.tokens) reply.tokens = pieces;
  if (reply.tokens > 1 && secs > 0) reply.tps = (reply.tokens - 1) / secs;
  if (!reply.tool_calls.length) delete reply.tool_calls;
  S.controller = null;
  setBusy(false);
  setStatus(reply.error ? errorText(reply.error) : '', reply.error ? 'error' : 'info');
  $('stats').textContent = statsText(reply);
  persist();
  renderMessages();
  $('input').focus();
}

function regenerate() {
  if (S.controller) return;
  const msgs = S.conv.messages;
  if (msgs.length && msgs[msgs.length - 1].role === 'assistant') msgs.pop();
  if (!msgs.length) return;
  send(null);
}

// ---- chrome ---------------------------------------------------------------------------------------------
function openSettings(focusKey = false) {
  $('settings').hidden = false;
  $('settings-btn').setAttribute('aria-expanded', 'true');
  (focusKey ? $('api-key') : $('system')).focus();
}

function closeSettings() {
  $('settings').hidden = true;
  $('settings-btn').setAttribute('aria-expanded', 'false');
  saveSettings();
}

function closeSidebarOnPhone() {
  if (window.matchMedia('(max-width: 760px)').matches) {
    document.body.classList.remove('side-open');
    $('toggle-side').setAttribute('aria-expanded', 'false');
  }
}

function setLang(lang) {
  S.lang = lang;
  localStorage.setItem('modu.lang', lang);
  applyStrings(document, lang);
  const other = LANGS.find((l) => l !== lang);
  $('lang').textContent = t(other, 'langName');
  $('lang').lang = other;
  renderList();
  if (S.conv) renderMessages();
}

async function loadModels() {
  try {
    const r = await getJson('v1/models', key());
    S.models = (r.data || []).map((m) => m.id);
    S.nCtx = r.data?.[0]?.meta?.n_ctx || 0;
    const sel = $('model');
    sel.replaceChildren(...S.models.map((id) => new Option(id, id)));
    if (S.wantModel && S.models.includes(S.wantModel)) sel.value = S.wantModel;
    if (!$('status').dataset.kind || $('status').dataset.kind !== 'error') setStatus('');
  } catch (err) {
    setStatus(err.kind === 'auth' ? tr('errKey') : tr('noModels') + ' ' + explain(err), 'error');
    if (err.kind === 'auth') openSettings(true);
  }
}

function wire() {
  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('input').value.trim();
    if (!text || S.controller) return;
    localStorage.removeItem(draftKey());
    $('input').value = '';
    send(text);
  });
  // Enter sends, Shift+Enter is a new line, and Enter that ends a Hangul (IME) composition only
  // commits the syllable: isComposing, or keyCode 229 which some browsers send instead.
  $('input').addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' || e.shiftKey || e.isComposing || e.keyCode === 229) return;
    e.preventDefault();
    $('composer').requestSubmit();
  });
  $('input').addEventListener('input', () => localStorage.setItem(draftKey(), $('input').value));
  // Pictures (when the model takes them): the button, a paste, or a drop onto the composer.
  $('attach').addEventListener('click', () => $('file').click());
  $('file').addEventListener('change', () => {
    attach(Array.from($('file').files));
    $('file').value = '';
  });
  $('input').addEventListener('paste', (e) => {
    const files = S.info.images ? imageFiles(e.clipboardData) : [];
    if (!files.length) return;
    e.preventDefault();
    attach(files);
  });
  $('composer').addEventListener('dragover', (e) => {
    if (S.info.images) e.preventDefault();
  });
  $('composer').addEventListener('drop', (e) => {
    const files = S.info.images ? imageFiles(e.dataTransfer) : [];
    if (!files.length) return;
    e.preventDefault();
    attach(files);
  });
  $('stop').addEventListener('click', () => S.controller?.abort());
  $('new-chat').addEventListener('click', startNew);
  $('export').addEventListener('click', () => download('modu-chats.json', store.exportAll()));
  $('lang').addEventListener('click', () => setLang(S.lang === 'ko' ? 'en' : 'ko'));
  $('settings-btn').addEventListener('click', () => ($('settings').hidden ? openSettings() : closeSettings()));
  $('settings-close').addEventListener('click', () => {
    closeSettings();
    loadModels();
  });
  $('api-key').addEventListener('change', () => {
    saveSettings();
    loadModels();
  });
  for (const id of ['temperature', 'top_p', 'max_tokens', 'remember-key', 'model']) $(id).addEventListener('change', saveSettings);
  $('use-tools').addEventListener('change', () => localStorage.setItem('modu.tools', $('use-tools').checked ? '1' : '0'));
  $('system').addEventListener('change', () => {
    if (S.conv) S.conv.system = $('system').value;
    persist();
  });
  $('toggle-side').addEventListener('click', () => {
    const open = document.body.classList.toggle('side-open');
    $('toggle-side').setAttribute('aria-expanded', String(open));
  });
  // On a phone the open list covers the chat: a tap beside it closes it.
  $('main').addEventListener('click', (e) => {
    if (document.body.classList.contains('side-open') && !e.target.closest('#toggle-side')) closeSidebarOnPhone();
  });
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    if (S.controller) S.controller.abort();
    else if (!$('settings').hidden) closeSettings();
    else closeSidebarOnPhone();
  });
}

async function main() {
  loadSettings();
  wire();
  setLang(S.lang);
  try {
    S.info = await getJson('ui/info');
    $('attach').hidden = !S.info.images;
  } catch { /* older server or offline: the page still works */ }
  if ((S.info.mcp || []).length) {
    $('tools-row').hidden = false;
    $('use-tools').checked = localStorage.getItem('modu.tools') === '1';
  }
  await loadModels();
  const recent = store.list()[0];
  if (recent) openConversation(recent.id);
  else startNew();
}

main();
