// Conversations kept in the browser's localStorage: one key per conversation plus an index, so a
// save rewrites one conversation, not all. Nothing is sent anywhere but the chat request itself.
const INDEX = 'modu.conv.index';
const PREFIX = 'modu.conv.';

export class Store {
  constructor(storage) {
    this.s = storage;
  }

  // [{id, title, updated}], newest first.
  list() {
    try {
      const v = JSON.parse(this.s.getItem(INDEX) || '[]');
      return Array.isArray(v) ? v.filter((c) => c && typeof c.id === 'string') : [];
    } catch {
      return [];
    }
  }

  get(id) {
    try {
      const c = JSON.parse(this.s.getItem(PREFIX + id) || 'null');
      return c && Array.isArray(c.messages) ? c : null;
    } catch {
      return null;
    }
  }

  // Throws (QuotaExceededError) when the browser's storage is full; the caller says so.
  save(conv) {
    conv.updated = Date.now();
    this.s.setItem(PREFIX + conv.id, JSON.stringify(conv));
    const rest = this.list().filter((c) => c.id !== conv.id);
    rest.unshift({ id: conv.id, title: conv.title, updated: conv.updated });
    this.s.setItem(INDEX, JSON.stringify(rest));
  }

  remove(id) {
    this.s.removeItem(PREFIX + id);
    this.s.setItem(INDEX, JSON.stringify(this.list().filter((c) => c.id !== id)));
  }

  exportAll() {
    return { format: 'modu-chat-export', version: 1, exported: new Date().toISOString(),
             conversations: this.list().map((c) => this.get(c.id)).filter(Boolean) };
  }
}

export function newConversation() {
  const id = (globalThis.crypto?.randomUUID?.() ?? String(Date.now()) + Math.random().toString(16).slice(2));
  return { id, title: '', created: Date.now(), updated: Date.now(), messages: [] };
}

// A title from the first user message: its first line, at most 40 characters (code points, so
// Hangul is never cut mid-character).
export function titleFrom(text) {
  const first = text.trim().split('\n')[0];
  const chars = Array.from(first);
  return chars.length > 40 ? chars.slice(0, 39).join('') + '…' : first;
}
