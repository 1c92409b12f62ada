// The demo API as the app calls it: JSON in and out, the headers a real single-page app sends
// (Accept, Content-Type, X-Client-Version, X-Feature-Flags), the `session` cookie for sign-in.
// Locale travels the way browsers send it: the browser's own Accept-Language.

export const CLIENT_VERSION = '1.4.0';

export function cookie(name) {
  for (const pair of document.cookie.split(';')) {
    const [k, ...v] = pair.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return null;
}

export function setCookie(name, value) {
  const encoded = encodeURIComponent(value);
  document.cookie = value === null
    ? `${name}=; path=/; max-age=0; SameSite=Lax`
    : `${name}=${encoded}; path=/; SameSite=Lax`;
}

/** Feature flags switched on for this browser (cookie `ff`, `|`-separated). */
export function flags() {
  return (cookie('ff') || '').split('|').map((f) => f.trim()).filter(Boolean);
}

export class ApiError extends Error {
  constructor(method, path, status, problem) {
    super(`${method} ${path} failed: ${status}${problem?.detail ? ` (${problem.detail})` : ''}`);
    this.status = status;
    this.problem = problem;
  }
}

/** One API call; resolves to the parsed JSON body, rejects with ApiError on 4xx/5xx. */
export async function api(method, path, { body, headers = {} } = {}) {
  const sent = { Accept: 'application/json', 'X-Client-Version': CLIENT_VERSION };
  const on = flags();
  if (on.length) sent['X-Feature-Flags'] = on.join(',');
  if (body !== undefined) sent['Content-Type'] = 'application/json';
  Object.assign(sent, headers);
  const resp = await fetch(path, {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!resp.ok) throw new ApiError(method, path, resp.status, data);
  return data;
}

/** A random Idempotency-Key (crypto.randomUUID needs a secure context; this does not). */
export function newKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * Follows an investment's status until it is final: the WebSocket (`/investments/{id}/ws`),
 * or the Server-Sent Events stream if the socket cannot open. `onStatus(investment)` gets
 * every status event; resolves with the final one.
 */
export function followInvestment(id, onStatus) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (inv) => { settled = true; resolve(inv); };
    const viaSse = () => {
      const es = new EventSource(`/investments/${id}/events`);
      es.addEventListener('status', (e) => {
        const inv = JSON.parse(e.data);
        onStatus(inv);
        if (inv.status === 'completed' || inv.status === 'failed') { es.close(); finish(inv); }
      });
      es.onerror = () => { if (!settled) { es.close(); reject(new Error('status stream failed')); } };
    };
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    let opened = false;
    const ws = new WebSocket(`${scheme}://${location.host}/investments/${id}/ws`);
    ws.onopen = () => { opened = true; };
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.event !== 'status') return;
      onStatus(msg.data);
      if (msg.data.status === 'completed' || msg.data.status === 'failed') { ws.close(); finish(msg.data); }
    };
    ws.onerror = () => { if (!opened && !settled) viaSse(); };
    ws.onclose = () => { if (opened && !settled) viaSse(); };
  });
}
