// A small Markdown renderer for model replies that builds DOM nodes only (createElement and text
// nodes, never innerHTML), so nothing a model writes can become markup or script. Covers what chat
// models use: fenced code, headings, lists, block quotes, rules, tables, paragraphs, inline code,
// bold, italic, strike-through and links (http, https and mailto only).

function el(doc, tag, cls) {
  const e = doc.createElement(tag);
  if (cls) e.className = cls;
  return e;
}

const SAFE_URL = /^(https?:\/\/|mailto:)/i;

// Inline spans: `code`, **bold**, __bold__, *em*, _em_, ~~del~~, [text](url), bare https:// links.
const INLINE = /(`+)([\s\S]*?[^`])\1(?!`)|\*\*([\s\S]+?)\*\*|(?<![\w])__([\s\S]+?)__(?![\w])|~~([\s\S]+?)~~|\*([^*\s][^*]*?)\*|(?<![\w])_([^_\s][^_]*?)_(?![\w])|\[([^\]\n]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/g;

export function renderInline(doc, parent, text) {
  let last = 0;
  // matchAll iterates over its own copy of the regex: the recursive calls below cannot disturb it.
  for (const m of text.matchAll(INLINE)) {
    if (m.index > last) parent.appendChild(doc.createTextNode(text.slice(last, m.index)));
    last = m.index + m[0].length;
    if (m[1]) {
      const c = el(doc, 'code');
      c.textContent = m[2].replace(/^ (.*) $/, '$1');
      parent.appendChild(c);
    } else if (m[3] !== undefined || m[4] !== undefined) {
      renderInline(doc, parent.appendChild(el(doc, 'strong')), m[3] ?? m[4]);
    } else if (m[5] !== undefined) {
      renderInline(doc, parent.appendChild(el(doc, 'del')), m[5]);
    } else if (m[6] !== undefined || m[7] !== undefined) {
      renderInline(doc, parent.appendChild(el(doc, 'em')), m[6] ?? m[7]);
    } else if (m[8] !== undefined) {
      if (SAFE_URL.test(m[9])) {
        const a = el(doc, 'a');
        a.href = m[9];
        a.rel = 'noopener noreferrer nofollow';
        a.target = '_blank';
        renderInline(doc, a, m[8]);
        parent.appendChild(a);
      } else {
        parent.appendChild(doc.createTextNode(m[0]));
      }
    } else if (m[10]) {
      const a = el(doc, 'a');
      a.href = a.textContent = m[10];
      a.rel = 'noopener noreferrer nofollow';
      a.target = '_blank';
      parent.appendChild(a);
    }
  }
  if (last < text.length) parent.appendChild(doc.createTextNode(text.slice(last)));
}

function splitRow(line) {
  let s = line.trim();
  if (s.startsWith('|')) s = s.slice(1);
  if (s.endsWith('|')) s = s.slice(0, -1);
  return s.split('|').map((c) => c.trim());
}

// Renders markdown into a DocumentFragment. An unclosed code fence (a reply still streaming) is
// shown as code up to the end.
export function renderMarkdown(doc, text, { onCopy } = {}) {
  const frag = doc.createDocumentFragment();
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  let i = 0;
  let para = [];
  const flush = () => {
    if (!para.length) return;
    const p = el(doc, 'p');
    para.forEach((l, k) => {
      if (k) p.appendChild(el(doc, 'br'));
      renderInline(doc, p, l);
    });
    frag.appendChild(p);
    para = [];
  };
  while (i < lines.length) {
    const line = lines[i];
    const fence = /^\s{0,3}(```+|~~~+)\s*([\w+#.-]*)/.exec(line);
    if (fence) {
      flush();
      const body = [];
      for (++i; i < lines.length && !lines[i].trimStart().startsWith(fence[1]); ++i) body.push(lines[i]);
      ++i;
      const wrap = el(doc, 'div', 'code');
      const head = el(doc, 'div', 'code-head');
      const lang = el(doc, 'span');
      lang.textContent = fence[2] || 'text';
      head.appendChild(lang);
      const pre = el(doc, 'pre');
      const code = el(doc, 'code');
      code.textContent = body.join('\n');
      if (onCopy) {
        const b = el(doc, 'button', 'copy');
        b.type = 'button';
        b.addEventListener('click', () => onCopy(code.textContent, b));
        head.appendChild(b);
      }
      pre.appendChild(code);
      wrap.append(head, pre);
      frag.appendChild(wrap);
      continue;
    }
    const h = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (h) {
      flush();
      const e = el(doc, 'h' + Math.min(6, h[1].length + 2));
      renderInline(doc, e, h[2]);
      frag.appendChild(e);
      ++i;
      continue;
    }
    if (/^\s{0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) {
      flush();
      frag.appendChild(el(doc, 'hr'));
      ++i;
      continue;
    }
    if (/^\s{0,3}>/.test(line)) {
      flush();
      const body = [];
      for (; i < lines.length && /^\s{0,3}>/.test(lines[i]); ++i) body.push(lines[i].replace(/^\s{0,3}>\s?/, ''));
      const q = el(doc, 'blockquote');
      q.appendChild(renderMarkdown(doc, body.join('\n'), { onCopy }));
      frag.appendChild(q);
      continue;
    }
    const li = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/.exec(line);
    if (li) {
      flush();
      const ordered = /\d/.test(li[2]);
      const list = el(doc, ordered ? 'ol' : 'ul');
      if (ordered && parseInt(li[2], 10) !== 1) list.start = parseInt(li[2], 10);
      for (; i < lines.length; ++i) {
        const m = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/.exec(lines[i]);
        if (m && /\d/.test(m[2]) === ordered) {
          const item = el(doc, 'li');
          renderInline(doc, item, m[3]);
          list.appendChild(item);
        } else if (lines[i].trim() && /^\s{2,}/.test(lines[i]) && list.lastChild) {
          list.lastChild.appendChild(el(doc, 'br'));
          renderInline(doc, list.lastChild, lines[i].trim());
        } else {
          break;
        }
      }
      frag.appendChild(list);
      continue;
    }
    if (line.includes('|') && i + 1 < lines.length && /^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/.test(lines[i + 1])) {
      flush();
      const table = el(doc, 'table');
      const head = splitRow(line);
      const tr = el(doc, 'tr');
      for (const c of head) renderInline(doc, tr.appendChild(el(doc, 'th')), c);
      table.appendChild(el(doc, 'thead')).appendChild(tr);
      const tbody = table.appendChild(el(doc, 'tbody'));
      for (i += 2; i < lines.length && lines[i].includes('|') && lines[i].trim(); ++i) {
        const row = tbody.appendChild(el(doc, 'tr'));
        const cells = splitRow(lines[i]);
        for (let k = 0; k < head.length; ++k) renderInline(doc, row.appendChild(el(doc, 'td')), cells[k] ?? '');
      }
      const wrap = el(doc, 'div', 'table');
      wrap.appendChild(table);
      frag.appendChild(wrap);
      continue;
    }
    if (!line.trim()) {
      flush();
      ++i;
      continue;
    }
    para.push(line);
    ++i;
  }
  flush();
  return frag;
}
