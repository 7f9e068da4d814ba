// Pictures for a vision model: picked, pasted or dropped into the composer, kept as data: URLs,
// shown as removable thumbnails, and sent as OpenAI image_url content parts with the message.
const MAX_BYTES = 10 * 1024 * 1024;

export function readImage(file) {
  return new Promise((resolve, reject) => {
    if (!file.type.startsWith('image/')) return reject(new Error('type'));
    if (file.size > MAX_BYTES) return reject(new Error('size'));
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(new Error('read'));
    r.readAsDataURL(file);
  });
}

// The content of a user message: a string, or image parts then the text.
export function contentOf(m) {
  if (!m.images || !m.images.length) return m.content;
  return [...m.images.map((url) => ({ type: 'image_url', image_url: { url } })), { type: 'text', text: m.content }];
}

// The same message as Responses API input content (input_image parts, then the text).
export function responsesContentOf(m) {
  if (!m.images || !m.images.length) return m.content;
  return [...m.images.map((url) => ({ type: 'input_image', image_url: url })), { type: 'input_text', text: m.content }];
}

// Thumbnails of a message's pictures (alt text numbered in the page's language).
export function thumbs(doc, urls, alt, onRemove, removeLabel) {
  const box = doc.createElement('div');
  box.className = 'thumbs';
  urls.forEach((url, i) => {
    const fig = doc.createElement('figure');
    const img = doc.createElement('img');
    img.src = url;  // data: only (CSP img-src 'self' data: blob:)
    img.alt = `${alt} ${i + 1}`;
    fig.appendChild(img);
    if (onRemove) {
      const b = doc.createElement('button');
      b.type = 'button';
      b.className = 'remove';
      b.textContent = '×';
      b.setAttribute('aria-label', `${removeLabel} ${i + 1}`);
      b.addEventListener('click', () => onRemove(i));
      fig.appendChild(b);
    }
    box.appendChild(fig);
  });
  return box;
}

// Files from a paste or drop event's data transfer.
export function imageFiles(dt) {
  return Array.from(dt?.files || []).filter((f) => f.type.startsWith('image/'));
}
