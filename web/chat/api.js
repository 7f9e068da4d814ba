// Talking to modu serve from the page: relative URLs (so it works behind a reverse proxy under any
// path), the API key as a Bearer header, errors mapped to kinds the page explains, and the
// Server-Sent Events of a streamed chat completion parsed as they arrive.

export class ApiError extends Error {
  // kind: 'auth' | 'busy' | 'too_long' | 'network' | 'server'
  constructor(kind, message, { status = 0, retryAfter = 0 } = {}) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

function headers(key) {
  const h = { 'Content-Type': 'application/json' };
  if (key) h.Authorization = 'Bearer ' + key;
  return h;
}

async function errorFrom(res) {
  let msg = res.statusText || 'HTTP ' + res.status;
  let code = '';
  try {
    const j = await res.json();
    if (j?.error?.message) msg = j.error.message;
    code = j?.error?.code || '';
  } catch { /* not JSON */ }
  const retryAfter = parseInt(res.headers.get('Retry-After') || '0', 10) || 0;
  let kind = 'server';
  if (res.status === 401 || res.status === 403) kind = 'auth';
  else if (res.status === 429 || res.status === 503) kind = 'busy';
  else if (res.status === 400 && /context|too long|exceeds/i.test(msg + code)) kind = 'too_long';
  return new ApiError(kind, msg, { status: res.status, retryAfter });
}

export async function getJson(path, key) {
  let res;
  try {
    res = await fetch(path, { headers: headers(key) });
  } catch (e) {
    throw new ApiError('network', String(e?.message || e));
  }
  if (!res.ok) throw await errorFrom(res);
  return res.json();
}

// POSTs JSON; resolves with an ok Response, rejects with ApiError (or an AbortError when signal fires).
async function post(path, body, key, signal) {
  let res;
  try {
    res = await fetch(path, { method: 'POST', headers: headers(key), body: JSON.stringify(body), signal });
  } catch (e) {
    if (e?.name === 'AbortError') throw e;
    throw new ApiError('network', String(e?.message || e));
  }
  if (!res.ok) throw await errorFrom(res);
  return res;
}

// Reads Server-Sent Events from a response, calling onData with each event's data text; resolves
// when the body ends or onData returns true (the last event); network failures become ApiError.
async function readSse(res, onData) {
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  const handle = (block) => {
    const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
    return data ? onData(data) : false;
  };
  try {
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buf += dec.decode(value, { stream: true }).replace(/\r\n/g, '\n');
      for (let k; (k = buf.indexOf('\n\n')) >= 0; ) {
        const block = buf.slice(0, k);
        buf = buf.slice(k + 2);
        if (handle(block)) return true;
      }
    }
  } catch (e) {
    if (e?.name === 'AbortError' || e instanceof ApiError) throw e;
    throw new ApiError('network', String(e?.message || e));
  }
  return buf.trim() ? handle(buf) : false;
}

// Streams POST v1/chat/completions. onEvent gets each parsed chunk object. Resolves when the
// stream ends ([DONE] or close); rejects with ApiError (or an AbortError when signal fires).
export async function streamChat(body, { key, signal, onEvent, onOpen }) {
  const res = await post('v1/chat/completions', body, key, signal);
  onOpen?.(res);
  const done = await readSse(res, (data) => {
    if (data === '[DONE]') return true;
    let obj;
    try {
      obj = JSON.parse(data);
    } catch {
      return false;
    }
    if (obj.error) throw new ApiError('server', obj.error.message || JSON.stringify(obj.error));
    onEvent(obj);
    return false;
  });
  if (!done) throw new ApiError('network', 'the stream ended before [DONE]');
}

// Streams POST v1/responses (with the server's MCP tools: their calls arrive as items once they
// have run). onEvent gets each typed event; resolves with the final response object
// (response.completed / response.incomplete); an error event or response.failed rejects.
export async function streamResponses(body, { key, signal, onEvent }) {
  const res = await post('v1/responses', { ...body, stream: true }, key, signal);
  let last = null;
  await readSse(res, (data) => {
    let ev;
    try {
      ev = JSON.parse(data);
    } catch {
      return false;
    }
    if (ev.type === 'error') throw new ApiError('server', ev.message || 'the server failed');
    if (ev.type === 'response.failed') throw new ApiError('server', ev.response?.error?.message || 'the response failed');
    onEvent(ev);
    if (ev.type === 'response.completed' || ev.type === 'response.incomplete') {
      last = ev.response;
      return true;
    }
    return false;
  });
  if (!last) throw new ApiError('network', 'the stream ended before the response was complete');
  return last;
}
