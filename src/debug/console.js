// Herald's debug console: one app's live events (an event stream fetched with the admin
// token) and its channels (refreshed every two seconds). No build step, no dependencies.
'use strict';

const MAX_ROWS = 2000;
const $ = (id) => document.getElementById(id);
const KIND = {
  connection: 'connections', disconnection: 'connections',
  subscribed: 'subscriptions', unsubscribed: 'subscriptions', refused: 'subscriptions', signin: 'subscriptions',
  api_message: 'api', client_event: 'client', webhook: 'webhooks', missed: 'missed',
};
let live = null; // { abort, app }
let paused = false;
let shown = 0;
let missed = 0;

$('token').value = sessionStorage.getItem('herald-debug-token') || '';
const auth = () => ({ Authorization: `Bearer ${$('token').value}` });

function status(text, cls) {
  $('status').textContent = text;
  $('status').className = cls || '';
}

async function loadApps() {
  if (!$('token').value) return;
  const res = await fetch('/admin/debug/apps', { headers: auth() });
  if (!res.ok) return status(res.status === 401 ? 'wrong admin token' : `apps: HTTP ${res.status}`, 'down');
  sessionStorage.setItem('herald-debug-token', $('token').value);
  const { apps } = await res.json();
  const select = $('app');
  const keep = select.value;
  select.replaceChildren(new Option('app…', ''), ...apps.map((id) => new Option(id, id)));
  if (apps.includes(keep)) select.value = keep;
  else if (apps.length === 1) select.value = apps[0];
}

function summary(e) {
  switch (e.type) {
    case 'connection': return [e.socket_id, `${e.transport}${e.origin ? ` from ${e.origin}` : ''}`];
    case 'disconnection': return [e.socket_id, e.user_id ? `user ${e.user_id}` : ''];
    case 'signin': return [e.socket_id, `user ${e.user_id}`];
    case 'subscribed': return [e.socket_id, `${e.channel}${e.user_id ? ` as user ${e.user_id}` : ''}`];
    case 'unsubscribed': return [e.socket_id, e.channel];
    case 'refused': return [e.socket_id, `${e.what} ${e.channel || ''} — ${e.code}: ${e.reason}`];
    case 'api_message': return [e.event, `→ ${e.channels.join(', ')} · ${e.bytes} B${e.except ? ` · except ${e.except}` : ''}${e.preview != null ? ` · ${e.preview}` : ''}`];
    case 'client_event': return [e.event, `${e.socket_id} → ${e.channel} · ${e.bytes} B${e.preview != null ? ` · ${e.preview}` : ''}`];
    case 'webhook': return [e.outcome, `${e.events.join(', ')} → ${e.target}${e.status ? ` · HTTP ${e.status}` : ''}${e.error ? ` · ${e.error}` : ''} · attempt ${e.attempt}`];
    case 'missed': return ['', `${e.count} events not shown (over the console budget, or this page fell behind)`];
    default: return ['', JSON.stringify(e)];
  }
}

function visible(row) {
  const kinds = new Set([...document.querySelectorAll('.kind:checked')].map((c) => c.value));
  const q = $('filter').value.trim().toLowerCase();
  return (row.dataset.kind === 'missed' || kinds.has(row.dataset.kind)) && (!q || row.dataset.text.includes(q));
}

function add(e) {
  const row = document.createElement('tr');
  row.className = e.type;
  row.dataset.kind = KIND[e.type] || 'other';
  row.dataset.type = e.type;
  if (e.event) row.dataset.event = e.event;
  row.dataset.text = JSON.stringify(e).toLowerCase();
  const time = new Date(e.time || Date.now()).toISOString().slice(11, 23);
  const [what, details] = summary(e);
  for (const [text, cls] of [[time, 'time'], [e.type.replace('_', ' '), 'type'], [what, 'what'], [details, 'details']]) {
    const cell = document.createElement('td');
    cell.className = cls;
    cell.textContent = text;
    row.append(cell);
  }
  row.hidden = !visible(row);
  const body = $('events');
  body.prepend(row);
  while (body.rows.length > MAX_ROWS) body.lastElementChild.remove();
  $('no-events').hidden = true;
  shown += 1;
  $('counts').textContent = `${shown} events${missed ? ` · ${missed} missed` : ''}`;
}

function block(text) {
  let event = 'message';
  let data = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('event: ')) event = line.slice(7);
    else if (line.startsWith('data: ')) data += line.slice(6);
  }
  if (!data) return;
  const e = JSON.parse(data);
  if (event === 'ready') return status(`live: ${live?.app}`, 'live');
  if (event === 'missed') {
    missed += e.count;
    return add({ type: 'missed', count: e.count });
  }
  if (!paused) add(e);
}

async function stream(app, signal) {
  const res = await fetch(`/admin/debug/apps/${encodeURIComponent(app)}/events`, { headers: auth(), signal });
  if (!res.ok) throw new Error(res.status === 401 ? 'wrong admin token' : `HTTP ${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error('stream ended');
    buf += value;
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      block(buf.slice(0, i));
      buf = buf.slice(i + 2);
    }
  }
}

async function connect() {
  await loadApps();
  const app = $('app').value;
  if (!app) return status('pick an app', 'down');
  if (live) live.abort.abort();
  const abort = new AbortController();
  live = { abort, app };
  $('pause').disabled = false;
  status(`connecting to ${app}…`);
  refreshChannels();
  for (let wait = 1000; !abort.signal.aborted; wait = Math.min(wait * 2, 15000)) {
    try {
      await stream(app, abort.signal);
    } catch (err) {
      if (abort.signal.aborted) return;
      status(`${err.message}; retrying`, 'down');
      if (String(err.message).includes('token')) return;
    }
    await new Promise((r) => setTimeout(r, wait));
  }
}

async function refreshChannels() {
  if (!live) return;
  try {
    const res = await fetch(`/admin/debug/apps/${encodeURIComponent(live.app)}/channels`, { headers: auth() });
    if (!res.ok) return;
    const { channels } = await res.json();
    $('channel-total').textContent = `(${channels.length})`;
    const list = channels.map((c) => {
      const div = document.createElement('div');
      div.className = 'channel';
      div.dataset.channel = c.name;
      const name = document.createElement('div');
      name.className = 'name';
      name.textContent = c.name;
      const counts = document.createElement('div');
      counts.className = 'counts';
      counts.textContent = `${c.subscription_count} subscriber${c.subscription_count === 1 ? '' : 's'}` +
        (c.name.startsWith('presence-') ? ` · ${c.user_count} member${c.user_count === 1 ? '' : 's'}` : '');
      div.append(name, counts);
      if (c.users) {
        const users = document.createElement('div');
        users.className = 'users';
        users.textContent = c.users.join(', ');
        div.append(users);
      }
      return div;
    });
    const empty = document.createElement('div');
    empty.className = 'empty';
    empty.textContent = 'no occupied channels';
    $('channels').replaceChildren(...(list.length ? list : [empty]));
  } catch {
    // shown again on the next refresh
  }
}

setInterval(refreshChannels, 2000);
$('connect').addEventListener('click', connect);
$('token').addEventListener('change', loadApps);
$('pause').addEventListener('click', () => {
  paused = !paused;
  $('pause').textContent = paused ? 'Resume' : 'Pause';
});
$('clear').addEventListener('click', () => {
  $('events').replaceChildren();
  shown = 0;
  missed = 0;
  $('counts').textContent = '';
});
const refilter = () => {
  for (const row of $('events').rows) row.hidden = !visible(row);
};
$('filter').addEventListener('input', refilter);
for (const c of document.querySelectorAll('.kind')) c.addEventListener('change', refilter);
loadApps();
