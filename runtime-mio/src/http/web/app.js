// chorus web chat: one WebSocket to a node's /ws carrying the JSON-line client
// protocol (runtime-mio/PROTOCOL.md: HELLO, CHAT, HISTORY, SUBSCRIBE, STATUS,
// and the rooms dialect: JOIN, PART, TOPIC, NICK, WHO, LIST, ROOM_EVENT).
//
// What it keeps true:
// - A room's messages are shown in room_seq order (the cluster's one order),
//   each once: they are keyed by room_seq, so a message seen twice (history
//   and push, or again after a failover) replaces itself.
// - A message is "pending" until its CHAT_ACK (or its SEQ_CHAT) arrives. The
//   outbox keeps every unacknowledged request and resends it with the same
//   msg_id after a reconnect (the node applies a msg_id once), so nothing is
//   lost or doubled when a node dies.
// - A lost connection is retried on the next node learned from STATUS
//   (`http_members`), with a capped backoff.
// - Memory is bounded: MAX_ROOM_ITEMS messages per room, MAX_OUTBOX unsent.
'use strict';

const MAX_ROOM_ITEMS = 2000;
const MAX_OUTBOX = 200;
const PAGE = 50;
const MAX_HISTORY_IN_FLIGHT = 8; // the node allows 16 queued per connection
const WHO_EVERY_MS = 4000;
const LIST_EVERY_MS = 8000;
const STATUS_EVERY_MS = 10000;
const RESEND_AFTER_MS = 5000;
const BACKOFF_MIN_MS = 200;
const BACKOFF_MAX_MS = 4000;
const HELLO_TIMEOUT_MS = 5000;
const SILENT_MS = 15000;

const $ = (id) => document.getElementById(id);

const state = {
  name: '',
  ws: null,
  ready: false, // the node's HELLO came back
  nodeId: null,
  nodes: [location.host], // HTTP host:port of every node known
  nodeIndex: 0,
  backoff: BACKOFF_MIN_MS,
  rooms: new Map(), // room_id -> Room
  joined: [], // rooms this page follows, in join order
  current: null,
  listed: [], // the last ROOMS answer
  outbox: new Map(), // msg_id -> {line, sentAt, kind, room}
  historyQueue: [], // HISTORY requests not yet sent
  historyInFlight: [], // sent, waiting for HISTORY_END (FIFO)
  lastSeq: 0, // highest global seq_no pushed to this page
  lastHeard: 0, // when the node last sent a line
  events: 0, // room events shown (orders events with one seq_no)
  timers: [],
};

// ---- small helpers -------------------------------------------------------

function uuid() {
  // crypto.randomUUID needs a secure context; getRandomValues does not.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const utf8Len = (s) => new TextEncoder().encode(s).length;
const badId = (s) => s.length === 0 || utf8Len(s) > 64 || /[\s\u0000-\u001f\u007f]/.test(s);

function nameError(n) {
  if (badId(n)) return 'A name is 1 to 64 bytes, without spaces.';
  if (n.startsWith('#')) return 'A name may not start with #.';
  return null;
}

function cleanRoom(r) {
  const id = r.trim().replace(/^#/, '');
  return badId(id) ? null : id;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function notice(text) {
  $('notice').textContent = text;
}

// ---- rooms and their messages -------------------------------------------

function room(id) {
  let r = state.rooms.get(id);
  if (!r) {
    r = {
      id,
      items: [], // sorted by key: {key, el, roomSeq}
      bySeq: new Map(), // room_seq -> item
      pending: new Map(), // msg_id -> element (not yet committed)
      oldest: null, // lowest room_seq loaded
      newest: 0, // highest room_seq known
      lastRead: null,
      topic: '',
      members: [],
      loadingOlder: false,
      gapPending: false,
      // Its newest page: 'none', 'want' (waiting for LIST to say how many
      // messages it has), 'asked' (HISTORY sent), 'done'.
      first: 'none',
    };
    state.rooms.set(id, r);
  }
  return r;
}

function fmtTime(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function timeEl(ms) {
  const t = el('time', 'when', fmtTime(ms));
  t.dateTime = new Date(ms).toISOString();
  t.title = new Date(ms).toLocaleString();
  return t;
}

function mark(li, acked) {
  const m = li.querySelector('.mark');
  m.textContent = acked ? '✓' : 'sending…';
  m.title = acked ? 'delivered' : 'sending';
  m.setAttribute('aria-label', acked ? 'delivered' : 'sending');
  li.classList.toggle('pending', !acked);
  li.classList.toggle('acked', acked);
}

function chatEl(user, text, ts, msgId, mine) {
  const li = el('li', 'msg' + (mine ? ' mine' : ''));
  li.dataset.msgId = msgId;
  li.dataset.user = user;
  const head = el('div', 'msg-head');
  head.append(el('span', 'who', user), timeEl(ts));
  const m = el('span', 'mark');
  head.append(m);
  li.append(head, el('div', 'text', text));
  if (!mine) m.hidden = true;
  return li;
}

// Inserts an item in key order; returns its index.
function insertItem(r, item) {
  let lo = 0;
  let hi = r.items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (r.items[mid].key < item.key) lo = mid + 1;
    else hi = mid;
  }
  r.items.splice(lo, 0, item);
  if (r.id === state.current) {
    const list = $('messages');
    const next = r.items[lo + 1];
    const before = next ? next.el : firstPending(r);
    list.insertBefore(item.el, before);
  }
  return lo;
}

function firstPending(r) {
  const it = r.pending.values().next();
  return it.done ? null : it.value;
}

function trimRoom(r) {
  while (r.items.length > MAX_ROOM_ITEMS) {
    const gone = r.items.shift();
    gone.el.remove();
    if (gone.roomSeq) r.bySeq.delete(gone.roomSeq);
    const first = r.items.find((i) => i.roomSeq);
    r.oldest = first ? first.roomSeq : null;
  }
}

// A committed chat (SEQ_CHAT), from history or a push.
function onSeqChat(m) {
  const r = room(m.room_id);
  // The node pushes only after its pending HISTORY answers: with none in
  // flight this is a push, and a resubscription may start after it.
  const push = state.historyInFlight.length === 0;
  if (push && m.seq_no > state.lastSeq) state.lastSeq = m.seq_no;
  const out = state.outbox.get(m.msg_id);
  if (out) state.outbox.delete(m.msg_id); // committed: never resend
  if (r.bySeq.has(m.room_seq)) return;
  const user = m.user || `#${m.sender_id}`;
  let li = r.pending.get(m.msg_id);
  if (li) {
    r.pending.delete(m.msg_id);
  } else {
    li = chatEl(user, m.payload, m.ts_ms, m.msg_id, user === state.name);
  }
  if (li.classList.contains('mine')) mark(li, true);
  li.dataset.roomSeq = m.room_seq;
  li.dataset.seq = m.seq_no;
  const item = { key: m.seq_no * 2 + 1, el: li, roomSeq: m.room_seq };
  const atBottom = stuckToBottom();
  r.bySeq.set(m.room_seq, item);
  insertItem(r, item);
  if (r.oldest === null || m.room_seq < r.oldest) r.oldest = m.room_seq;
  if (m.room_seq > r.newest + 1 && r.newest > 0 && !r.gapPending) {
    // A hole between what we had and this one (a reconnect, a lagging
    // subscription start): fetch it.
    r.gapPending = true;
    requestHistory({ type: 'HISTORY', room_id: r.id, after: r.newest, before: m.room_seq, limit: 1000 }, { gap: r.id });
  }
  if (m.room_seq > r.newest) r.newest = m.room_seq;
  trimRoom(r);
  if (r.id === state.current) {
    if (atBottom) scrollToBottom();
    if (document.visibilityState === 'visible') r.lastRead = r.newest;
  }
  renderRooms();
}

function onRoomEvent(m) {
  const r = room(m.room_id);
  let text;
  switch (m.event) {
    case 'join': text = `${m.user} joined`; break;
    case 'leave': text = `${m.user} left`; break;
    case 'topic': text = `${m.user} set the topic: ${m.topic}`; r.topic = m.topic; break;
    case 'nick': text = `${m.user} is now ${m.name}`; break;
    default: return;
  }
  const id = m.msg_id || `${m.event}-${m.seq_no}-${m.user}`;
  if (r.items.some((i) => i.eventId === id)) return;
  state.events += 1;
  const li = el('li', 'event');
  li.dataset.event = m.event;
  li.append(el('span', 'text', text), timeEl(m.ts_ms || Date.now()));
  // An event comes before the chat numbered seq_no (key 2 * seq_no + 1),
  // after the one before it, and after the events already there.
  const item = { key: m.seq_no * 2 + 1 - 1 / (1 + state.events), el: li, roomSeq: 0, eventId: id };
  const atBottom = stuckToBottom();
  insertItem(r, item);
  if (r.id === state.current) {
    if (atBottom) scrollToBottom();
    renderTopic();
    send({ type: 'WHO', room_id: r.id });
  }
}

function onWho(m) {
  const r = room(m.room_id);
  r.topic = m.topic || '';
  r.members = m.members || [];
  if (m.room_id === state.current) {
    renderTopic();
    renderMembers();
  }
}

// ---- requests ------------------------------------------------------------

function send(obj) {
  if (state.ws && state.ready && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify(obj));
    return true;
  }
  return false;
}

// A request that changes something: kept until acknowledged, resent (same
// msg_id) after a reconnect or when no answer came for RESEND_AFTER_MS.
function sendReliable(obj, kind) {
  if (state.outbox.size >= MAX_OUTBOX) {
    notice(`${MAX_OUTBOX} messages are still unsent; wait for the connection.`);
    return null;
  }
  obj.msg_id = obj.msg_id || uuid();
  const entry = { line: obj, sentAt: Date.now(), kind, room: obj.room_id };
  state.outbox.set(obj.msg_id, entry);
  send(obj);
  return obj.msg_id;
}

function resendAll(olderThanMs) {
  const now = Date.now();
  for (const e of state.outbox.values()) {
    if (now - e.sentAt >= olderThanMs && send(e.line)) e.sentAt = now;
  }
}

function onAck(m) {
  const e = state.outbox.get(m.msg_id);
  if (!e) return;
  state.outbox.delete(m.msg_id);
  if (e.kind === 'chat') {
    const li = room(e.room).pending.get(m.msg_id);
    if (li) {
      li.dataset.seq = m.seq_no;
      mark(li, true);
    }
  } else if (e.kind === 'nick') {
    state.name = e.line.name;
    localStorage.setItem('chorus.name', state.name);
    $('me-name').textContent = state.name;
  } else if (e.kind === 'join' || e.kind === 'part' || e.kind === 'topic') {
    send({ type: 'LIST' });
    if (e.room === state.current) send({ type: 'WHO', room_id: e.room });
  }
}

function requestHistory(req, tag) {
  state.historyQueue.push({ req, tag: tag || {} });
  pumpHistory();
}

function pumpHistory() {
  while (state.historyInFlight.length < MAX_HISTORY_IN_FLIGHT && state.historyQueue.length) {
    const h = state.historyQueue[0];
    if (!send(h.req)) return;
    state.historyQueue.shift();
    state.historyInFlight.push(h);
  }
}

function onHistoryEnd() {
  const h = state.historyInFlight.shift();
  if (h) {
    if (h.tag.older) {
      const r = room(h.tag.older);
      r.loadingOlder = false;
      keepScroll(h.tag.height);
      renderOlderButton();
    }
    if (h.tag.gap) room(h.tag.gap).gapPending = false;
    if (h.tag.first) {
      const r = room(h.tag.first);
      firstDone(r);
      if (r.id === state.current) scrollToBottom();
      renderOlderButton();
      renderRooms();
    }
  }
  pumpHistory();
}

function roomFull(r) {
  return r.items.length >= MAX_ROOM_ITEMS;
}

function loadOlder() {
  const r = state.rooms.get(state.current);
  if (!r || r.loadingOlder || r.oldest === 1 || r.oldest === null || roomFull(r)) return;
  r.loadingOlder = true;
  const height = $('log').scrollHeight - $('log').scrollTop;
  requestHistory(
    { type: 'HISTORY', room_id: r.id, before: r.oldest, limit: PAGE },
    { older: r.id, height },
  );
  renderOlderButton();
}

function subscribe() {
  const req = { type: 'SUBSCRIBE', rooms: state.joined.slice(0, 64) };
  if (state.lastSeq > 0) req.from_seq = state.lastSeq + 1;
  send(req);
}

function followRoom(id) {
  if (!state.joined.includes(id)) {
    state.joined.push(id);
    localStorage.setItem('chorus.rooms', JSON.stringify(state.joined));
  }
  const r = room(id);
  if (state.ready) {
    subscribe();
    if (r.first === 'none') firstPage(id);
  }
}

// A room's newest page is HISTORY `before` its message count + 1, so LIST
// comes first (the count can only grow meanwhile; the subscription, started
// before, has anything newer).
function firstPage(id) {
  room(id).first = 'want';
  send({ type: 'LIST' });
}

function onRooms(m) {
  state.listed = m.rooms || [];
  const counts = new Map(state.listed.map((r) => [r.room_id, r.messages || 0]));
  for (const r of state.rooms.values()) {
    if (r.first !== 'want') continue;
    const n = counts.get(r.id) || 0;
    if (n === 0) {
      firstDone(r);
    } else {
      r.first = 'asked';
      requestHistory({ type: 'HISTORY', room_id: r.id, before: n + 1, limit: PAGE }, { first: r.id });
    }
  }
  renderRooms();
}

function firstDone(r) {
  r.first = 'done';
  if (r.lastRead === null) r.lastRead = r.newest;
}

function joinRoom(id) {
  sendReliable({ type: 'JOIN', room_id: id }, 'join');
  followRoom(id);
  selectRoom(id);
}

function leaveRoom() {
  const id = state.current;
  sendReliable({ type: 'PART', room_id: id }, 'part');
  state.joined = state.joined.filter((r) => r !== id);
  localStorage.setItem('chorus.rooms', JSON.stringify(state.joined));
  subscribe();
  selectRoom(state.joined[0] || null);
}

function sendChat(text) {
  const id = state.current;
  if (!id) return;
  const msgId = sendReliable({ type: 'CHAT', room_id: id, payload: text, user: state.name }, 'chat');
  if (!msgId) return;
  const r = room(id);
  const li = chatEl(state.name, text, Date.now(), msgId, true);
  mark(li, false);
  r.pending.set(msgId, li);
  if (id === state.current) {
    $('messages').append(li);
    scrollToBottom();
  }
}

// ---- the connection ------------------------------------------------------

function wsUrl(host) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${host}/ws`;
}

function setConn(text, ok) {
  $('conn').textContent = text;
  $('conn').classList.toggle('ok', !!ok);
}

function connect() {
  const host = state.nodes[state.nodeIndex % state.nodes.length];
  setConn(`Connecting to ${host}…`, false);
  let ws;
  try {
    ws = new WebSocket(wsUrl(host));
  } catch (e) {
    return retry();
  }
  state.ws = ws;
  state.ready = false;
  const helloTimer = setTimeout(() => {
    ws.close();
    lost(ws);
  }, HELLO_TIMEOUT_MS);
  ws.onopen = () => {
    ws.send(JSON.stringify({ type: 'HELLO', proto: 2, client: 'chorus-web/1', user: state.name }));
  };
  ws.onmessage = (ev) => {
    for (const line of String(ev.data).split('\n')) {
      if (!line) continue;
      let m;
      try {
        m = JSON.parse(line);
      } catch (e) {
        continue;
      }
      if (m.type === 'HELLO') clearTimeout(helloTimer);
      state.lastHeard = Date.now();
      onLine(m, host);
    }
  };
  ws.onclose = () => {
    clearTimeout(helloTimer);
    lost(ws);
  };
}

// The connection `ws` is gone (closed, or given up on): once per connection.
function lost(ws) {
  if (state.ws !== ws) return;
  state.ws = null;
  state.ready = false;
  // HISTORY requests die with the connection: first pages not finished are
  // asked again on the next one (onReady), older pages and gap fills when
  // the reader scrolls or the next message shows the gap.
  state.historyQueue = [];
  state.historyInFlight = [];
  for (const r of state.rooms.values()) {
    r.loadingOlder = false;
    r.gapPending = false;
  }
  retry();
}

function retry() {
  // Fail over: the next node, after a backoff that grows while none answers.
  state.nodeIndex = (state.nodeIndex + 1) % state.nodes.length;
  const wait = state.backoff;
  state.backoff = Math.min(state.backoff * 2, BACKOFF_MAX_MS);
  const next = state.nodes[state.nodeIndex];
  setConn(`Disconnected; trying ${next} in ${(wait / 1000).toFixed(1)} s`, false);
  setTimeout(connect, wait);
}

function onReady(m, host) {
  state.ready = true;
  state.backoff = BACKOFF_MIN_MS;
  state.nodeId = m.node_id;
  setConn(`Connected to node ${m.node_id} (${host})`, true);
  send({ type: 'STATUS' });
  send({ type: 'LIST' });
  subscribe();
  for (const id of state.joined) {
    if (room(id).first !== 'done') firstPage(id);
  }
  pumpHistory();
  resendAll(0);
  if (state.current) send({ type: 'WHO', room_id: state.current });
}

function onStatus(m) {
  const known = [];
  for (const addr of Array.isArray(m.http_members) ? m.http_members : []) {
    if (typeof addr !== 'string') continue;
    known.push(addr);
    // Behind published ports (containers) a node's own name may not resolve
    // here: also try its port on the host this page came from.
    const port = addr.slice(addr.lastIndexOf(':') + 1);
    if (/^[0-9]+$/.test(port)) known.push(`${location.hostname}:${port}`);
  }
  const current = state.nodes[state.nodeIndex];
  const all = [current, ...state.nodes, ...known].filter((h, i, a) => h && a.indexOf(h) === i);
  state.nodes = all.slice(0, 64);
  state.nodeIndex = 0;
}

function onLine(m, host) {
  switch (m.type) {
    case 'HELLO': return onReady(m, host);
    case 'SEQ_CHAT': return onSeqChat(m);
    case 'CHAT_ACK': return onAck(m);
    case 'HISTORY_END': return onHistoryEnd(m);
    case 'ROOM_EVENT': return onRoomEvent(m);
    case 'WHO': return onWho(m);
    case 'ROOMS': return onRooms(m);
    case 'STATUS': return onStatus(m);
    case 'ERROR': return notice(`The node says: ${m.message} (${m.code})`);
    default: return undefined;
  }
}

// ---- rendering -----------------------------------------------------------

function stuckToBottom() {
  const log = $('log');
  return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
}

function scrollToBottom() {
  const log = $('log');
  log.scrollTop = log.scrollHeight;
}

function keepScroll(heightFromBottom) {
  if (heightFromBottom === undefined) return;
  const log = $('log');
  log.scrollTop = log.scrollHeight - heightFromBottom;
}

function renderRooms() {
  const list = $('room-list');
  // Rebuilding the list must not take the keyboard focus away.
  const focused = list.contains(document.activeElement) ? document.activeElement.dataset.room : null;
  const counts = new Map(state.listed.map((r) => [r.room_id, r]));
  const ids = [...state.joined];
  for (const r of state.listed) if (!ids.includes(r.room_id)) ids.push(r.room_id);
  list.replaceChildren();
  for (const id of ids) {
    const r = room(id);
    const joined = state.joined.includes(id);
    const info = counts.get(id);
    const newest = Math.max(r.newest, info ? info.messages : 0);
    const unread = joined && id !== state.current && r.lastRead !== null ? newest - r.lastRead : 0;
    const li = el('li');
    const b = el('button', 'room' + (id === state.current ? ' current' : '') + (joined ? '' : ' unjoined'));
    b.type = 'button';
    b.dataset.room = id;
    b.append(el('span', 'room-name', `#${id}`));
    let label = `#${id}`;
    if (unread > 0) {
      b.append(el('span', 'badge', String(unread)));
      label += `, ${unread} unread`;
    } else if (!joined) {
      b.append(el('span', 'hint', 'join'));
      label += ', not joined: join';
    }
    if (id === state.current) b.setAttribute('aria-current', 'true');
    b.setAttribute('aria-label', label);
    b.addEventListener('click', () => (joined ? selectRoom(id) : joinRoom(id)));
    li.append(b);
    list.append(li);
    if (id === focused) b.focus();
  }
}

function renderTopic() {
  const r = state.current ? room(state.current) : null;
  $('room-title').textContent = r ? `#${r.id}` : 'No room';
  $('topic').textContent = r && r.topic ? r.topic : 'No topic';
  $('compose-text').placeholder = r ? `Message #${r.id}` : 'Join a room first';
}

function renderMembers() {
  const r = state.current ? room(state.current) : null;
  const list = $('member-list');
  list.replaceChildren();
  for (const m of r ? r.members : []) {
    const li = el('li', m.online ? 'online' : 'offline');
    li.dataset.user = m.user;
    li.append(el('span', 'dot'), el('span', 'who', m.user), el('span', 'visually-hidden', m.online ? ' (online)' : ' (offline)'));
    list.append(li);
  }
  $('members-title').textContent = r ? `People (${r.members.filter((m) => m.online).length} online)` : 'People';
}

function renderOlderButton() {
  const r = state.current ? room(state.current) : null;
  const b = $('older');
  // A room keeps its newest MAX_ROOM_ITEMS messages: no paging past them.
  const none = !r || r.oldest === null || r.oldest <= 1 || roomFull(r);
  b.hidden = none;
  b.disabled = !!(r && r.loadingOlder);
  b.textContent = r && r.loadingOlder ? 'Loading…' : 'Load older messages';
}

function selectRoom(id) {
  state.current = id;
  const list = $('messages');
  list.replaceChildren();
  if (id) {
    const r = room(id);
    for (const it of r.items) list.append(it.el);
    for (const li of r.pending.values()) list.append(li);
    r.lastRead = r.newest;
    send({ type: 'WHO', room_id: id });
    history.replaceState(null, '', `#${encodeURIComponent(id)}`);
  }
  renderTopic();
  renderMembers();
  renderRooms();
  renderOlderButton();
  scrollToBottom();
  closePanels();
}

function closePanels() {
  for (const [btn, panel] of [['toggle-rooms', 'rooms'], ['toggle-members', 'members']]) {
    $(panel).classList.remove('open');
    $(btn).setAttribute('aria-expanded', 'false');
  }
}

function togglePanel(btn, panel) {
  const open = !$(panel).classList.contains('open');
  closePanels();
  $(panel).classList.toggle('open', open);
  $(btn).setAttribute('aria-expanded', String(open));
  if (open) $(panel).querySelector('button, input')?.focus();
}

// ---- start ---------------------------------------------------------------

function defaultName() {
  const saved = localStorage.getItem('chorus.name');
  if (saved && !nameError(saved)) return saved;
  const n = crypto.getRandomValues(new Uint16Array(1))[0] % 10000;
  return `guest${String(n).padStart(4, '0')}`;
}

function askName(first) {
  const dlg = $('login');
  $('name-input').value = state.name || defaultName();
  const fromHash = cleanRoom(decodeURIComponent(location.hash.slice(1)));
  $('room-input').value = state.current || fromHash || 'general';
  $('room-input').parentElement.hidden = !first;
  $('login-go').textContent = first ? 'Start chatting' : 'Change name';
  dlg.showModal();
  $('name-input').select();
}

function onLogin(ev) {
  ev.preventDefault();
  const name = $('name-input').value.trim();
  const err = nameError(name);
  if (err) {
    $('login-error').textContent = err;
    return;
  }
  const first = !state.name;
  if (first) {
    const r = cleanRoom($('room-input').value);
    if (!r) {
      $('login-error').textContent = 'A room name is 1 to 64 bytes, without spaces.';
      return;
    }
    state.name = name;
    localStorage.setItem('chorus.name', name);
    $('me-name').textContent = name;
    $('login').close();
    start(r);
  } else {
    $('login').close();
    if (name !== state.name) sendReliable({ type: 'NICK', name }, 'nick');
    $('compose-text').focus();
  }
}

// Once a second: resend what waits too long for its answer; give up on a
// node that said nothing for SILENT_MS although WHO is asked every few
// seconds (a frozen node keeps its TCP connection open).
function tick() {
  resendAll(RESEND_AFTER_MS);
  const ws = state.ws;
  if (ws && state.ready && Date.now() - state.lastHeard > SILENT_MS) {
    ws.close();
    lost(ws);
  }
}

function start(firstRoom) {
  let saved = [];
  try {
    saved = JSON.parse(localStorage.getItem('chorus.rooms') || '[]');
  } catch (e) {
    saved = [];
  }
  state.joined = saved.filter((r) => typeof r === 'string' && cleanRoom(r)).slice(0, 64);
  joinRoom(firstRoom);
  // Learn the other nodes now, so a failover works even before STATUS.
  fetch('/status', { cache: 'no-store' })
    .then((r) => r.json())
    .then(onStatus)
    .catch(() => {});
  connect();
  state.timers.push(setInterval(() => state.current && send({ type: 'WHO', room_id: state.current }), WHO_EVERY_MS));
  state.timers.push(setInterval(() => send({ type: 'LIST' }), LIST_EVERY_MS));
  state.timers.push(setInterval(() => send({ type: 'STATUS' }), STATUS_EVERY_MS));
  state.timers.push(setInterval(tick, 1000));
  $('compose-text').focus();
}

function wire() {
  $('login-form').addEventListener('submit', onLogin);
  $('login').addEventListener('cancel', (ev) => {
    if (!state.name) ev.preventDefault(); // a name is needed to chat
  });
  $('rename').addEventListener('click', () => askName(false));
  $('compose').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = $('compose-text');
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    notice('');
    sendChat(text);
  });
  $('join-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = cleanRoom($('join-input').value);
    if (!id) return notice('A room name is 1 to 64 bytes, without spaces.');
    $('join-input').value = '';
    joinRoom(id);
    $('compose-text').focus();
  });
  $('edit-topic').addEventListener('click', () => {
    const f = $('topic-form');
    f.hidden = !f.hidden;
    $('edit-topic').setAttribute('aria-expanded', String(!f.hidden));
    if (!f.hidden) {
      $('topic-input').value = state.current ? room(state.current).topic : '';
      $('topic-input').focus();
    }
  });
  $('topic-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!state.current) return;
    const topic = $('topic-input').value.trim();
    if (utf8Len(topic) > 390) return notice('A topic is at most 390 bytes.');
    sendReliable({ type: 'TOPIC', room_id: state.current, topic }, 'topic');
    $('topic-form').hidden = true;
    $('edit-topic').setAttribute('aria-expanded', 'false');
    $('edit-topic').focus();
  });
  $('leave').addEventListener('click', leaveRoom);
  $('older').addEventListener('click', loadOlder);
  $('log').addEventListener('scroll', () => {
    if ($('log').scrollTop < 40) loadOlder();
  });
  $('toggle-rooms').addEventListener('click', () => togglePanel('toggle-rooms', 'rooms'));
  $('toggle-members').addEventListener('click', () => togglePanel('toggle-members', 'members'));
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') closePanels();
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && state.current) {
      room(state.current).lastRead = room(state.current).newest;
      renderRooms();
    }
  });
  askName(true);
}

wire();
