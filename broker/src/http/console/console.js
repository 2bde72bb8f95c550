// txmq's web console: plain DOM, no framework. Everything shown comes from
// the JSON API (console_api.h) and is put into the page as text
// (textContent), never as markup: ids, keys, bodies and reasons are
// written by producers and operators.
//
// The token and the operator's name live in sessionStorage: this tab only,
// gone when it closes. Actions are POSTs with the token in a header and a
// JSON body, which no other site's page can forge.
'use strict';

const $ = (id) => document.getElementById(id);
const session = window.sessionStorage;

// el('td', {className: 'num'}, 'text', childNode, ...)
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function age(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
  return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
}

function when(ms) {
  return ms > 0 ? new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : '-';
}

function notice(text, isError) {
  const n = $('notice');
  n.textContent = text;
  n.className = isError ? 'error' : '';
  n.hidden = false;
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = {Authorization: 'Bearer ' + (session.getItem('txmq.token') || '')};
  const init = {method, headers, cache: 'no-store', credentials: 'omit'};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let data;
  try {
    data = await res.json();
  } catch (e) {
    data = {error: 'HTTP ' + res.status + ' without a JSON answer'};
  }
  if (res.status === 401 || (res.status === 403 && /token/.test(data.error || ''))) {
    session.removeItem('txmq.token');
    showSignIn(data.error);
    throw new ApiError(res.status, data.error);
  }
  if (!res.ok) throw new ApiError(res.status, data.error || 'HTTP ' + res.status);
  return data;
}

// ---- sign in ----

function showSignIn(why) {
  for (const v of document.querySelectorAll('.view')) v.hidden = true;
  $('sign-in').hidden = false;
  $('sign-out').hidden = true;
  $('who').textContent = '';
  $('operator-input').value = session.getItem('txmq.operator') || '';
  if (why) notice(why, true);
}

function signedIn() {
  return session.getItem('txmq.token') && session.getItem('txmq.operator');
}

$('sign-in-form').addEventListener('submit', (event) => {
  event.preventDefault();
  session.setItem('txmq.token', $('token-input').value.trim());
  session.setItem('txmq.operator', $('operator-input').value.trim());
  $('token-input').value = '';
  $('notice').hidden = true;
  route();
});

$('sign-out').addEventListener('click', () => {
  session.removeItem('txmq.token');
  showSignIn();
});

// ---- confirmation with a reason ----

let pendingAction = null;

function confirmAction(title, text, run) {
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-reason').value = '';
  $('confirm-error').textContent = '';
  $('confirm-ok').disabled = false;
  pendingAction = run;
  $('confirm').showModal();
  $('confirm-reason').focus();
}

$('confirm-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const reason = $('confirm-reason').value.trim();
  if (!reason) {
    $('confirm-error').textContent = 'Say why: the reason goes into the audit log.';
    return;
  }
  $('confirm-ok').disabled = true;
  try {
    const message = await pendingAction(reason);
    $('confirm').close();
    notice(message, false);
    route();
  } catch (e) {
    $('confirm-error').textContent = e.message;
    $('confirm-ok').disabled = false;
  }
});

$('confirm-cancel').addEventListener('click', () => $('confirm').close());

// ---- transactions ----

function txQuery() {
  const q = new URLSearchParams({filter: $('filter-state').value});
  for (const [name, id] of [['group', 'filter-group'], ['topic', 'filter-topic'],
                            ['older_than', 'filter-age']]) {
    const v = $(id).value.trim();
    if (v) q.set(name, v);
  }
  return q.toString();
}

async function showTransactions() {
  const data = await api('GET', '/api/transactions?' + txQuery());
  const rows = data.transactions.map((t) => {
    const link = el('a', {href: '#tx/' + encodeURIComponent(t.id)}, t.id);
    const topics = [...new Set(t.messages.map((m) => m.topic))].join(', ');
    const tr = el('tr', {},
        el('td', {}, link), el('td', {}, t.producer_group), el('td', {}, topics),
        el('td', {className: 'num'}, age(t.age_ms)),
        el('td', {className: t.condition}, t.condition),
        el('td', {className: 'num'}, t.checks.count), el('td', {}, t.checks.last_answer));
    tr.dataset.txId = t.id;
    return tr;
  });
  $('tx-table').tBodies[0].replaceChildren(...rows);
  $('tx-empty').hidden = rows.length > 0;
  $('tx-more').hidden = !data.more;
  $('view-transactions').hidden = false;
}

$('tx-filters').addEventListener('submit', (event) => {
  event.preventDefault();
  showTransactions().catch(failed);
});

function terms(dl, pairs) {
  dl.replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

let shownTx = null;

async function showTransaction(id) {
  const data = await api('GET', '/api/transactions/' + encodeURIComponent(id));
  const t = data.transaction;
  shownTx = t;
  $('tx-id').textContent = t.id;
  terms($('tx-summary'), [
    ['State', t.condition], ['Producer group', t.producer_group],
    ['Producer instance', t.producer_instance || '-'], ['Born', when(t.born_ms)],
    ['Age', age(t.age_ms)], ['Ended', when(t.resolved_ms)], ['Ended by', t.resolved_by || '-']]);
  terms($('tx-checks'), [
    ['Checks sent', t.checks.count], ['With no producer to ask', t.checks.no_producer],
    ['Last check', when(t.checks.last_ms)], ['Last answer', t.checks.last_answer],
    ['Last error', t.checks.last_error || '-'], ['Next check', when(t.checks.next_ms)]]);
  const open = t.state === 'PREPARED';
  for (const b of $('tx-actions').querySelectorAll('button')) b.disabled = !open;
  const messages = data.messages.length > 0 ? data.messages : t.messages;
  $('tx-messages').tBodies[0].replaceChildren(...messages.map((m) => {
    const props = Object.entries(m.properties || {}).map(([k, v]) => k + '=' + v).join('\n');
    const body = m.body === undefined ? '(ended: not kept)'
        : m.body === null ? '(' + m.body_bytes + ' bytes, not text)'
        : m.body + (m.body_truncated ? '\n… (' + m.body_bytes + ' bytes in all)' : '');
    return el('tr', {}, el('td', {}, m.id), el('td', {}, m.topic), el('td', {}, m.key || '-'),
        el('td', {}, el('pre', {className: 'body'}, props)),
        el('td', {}, el('pre', {className: 'body'}, body)));
  }));
  $('view-transaction').hidden = false;
}

const txActions = {
  commit: ['Commit', 'deliver its messages to consumers', 'committed'],
  rollback: ['Roll back', 'discard its messages', 'rolled back'],
  recheck: ['Check now', 'ask its producer group about it again now (a stuck one too)',
            'will be checked now'],
};

for (const b of document.querySelectorAll('#tx-actions button')) {
  b.addEventListener('click', () => {
    const t = shownTx;
    const [title, effect, done] = txActions[b.dataset.action];
    confirmAction(title + ' transaction ' + t.id + '?',
        title + ' transaction ' + t.id + ' of producer group ' + t.producer_group + ': ' +
            effect + '. You act as ' + session.getItem('txmq.operator') + '.',
        async (reason) => {
          const r = await api('POST', '/api/transactions/' + encodeURIComponent(t.id) + '/' +
              b.dataset.action, {operator: session.getItem('txmq.operator'), reason});
          if (r.already_final) return 'Transaction ' + t.id + ' was already ' + r.state;
          return 'Transaction ' + t.id + ' ' + done + ' by operator ' + r.operator + '.';
        });
  });
}

// ---- topics, groups, dead letters ----

async function showTopics() {
  const data = await api('GET', '/api/topics');
  $('topic-table').tBodies[0].replaceChildren(...data.topics.map((t) => el('tr', {},
      el('td', {}, t.name), el('td', {className: 'num'}, t.queues),
      el('td', {className: 'num'}, t.messages), el('td', {}, when(t.created_ms)))));
  $('view-topics').hidden = false;
}

async function showGroups() {
  const data = await api('GET', '/api/groups');
  $('group-table').tBodies[0].replaceChildren(...data.groups.map((g) => el('tr', {},
      el('td', {}, g.name), el('td', {}, g.topics.join(', ')),
      el('td', {className: 'num'}, g.members), el('td', {className: 'num'}, g.lag),
      el('td', {className: 'num'}, g.in_flight), el('td', {className: 'num'}, g.retrying),
      el('td', {className: 'num'},
          g.dead_letters > 0 ? el('a', {href: '#dlq/' + encodeURIComponent(g.name)},
                                  g.dead_letters) : '0'),
      el('td', {className: 'num'}, g.expired))));
  $('view-groups').hidden = false;
}

let dlqGroup = '';

async function showDeadLetters(group) {
  dlqGroup = group;
  $('dlq-group').value = group;
  $('view-dlq').hidden = false;
  $('dlq-table').tBodies[0].replaceChildren();
  $('dlq-summary').textContent = '';
  $('dlq-resend').disabled = true;
  if (!group) return;
  const data = await api('GET', '/api/dlq/' + encodeURIComponent(group));
  $('dlq-table').tBodies[0].replaceChildren(...data.messages.map((d) => {
    const box = el('input', {type: 'checkbox'});
    box.dataset.id = d.id;
    return el('tr', {}, el('td', {}, box), el('td', {}, d.id), el('td', {}, d.origin_topic),
        el('td', {className: 'num'}, d.deliveries), el('td', {}, when(d.stored_ms)),
        el('td', {}, d.key || '-'), el('td', {className: 'num'}, d.body_bytes));
  }));
  $('dlq-summary').textContent = data.total + ' dead letter(s) in group ' + group +
      (data.more ? '; the first ' + data.messages.length + ' are shown' : '');
  $('dlq-resend').disabled = data.messages.length === 0;
}

$('dlq-form').addEventListener('submit', (event) => {
  event.preventDefault();
  location.hash = '#dlq/' + encodeURIComponent($('dlq-group').value.trim());
});

$('dlq-all').addEventListener('change', () => {
  for (const b of $('dlq-table').tBodies[0].querySelectorAll('input')) b.checked = $('dlq-all').checked;
});

$('dlq-resend').addEventListener('click', () => {
  const ids = [...$('dlq-table').tBodies[0].querySelectorAll('input:checked')]
      .map((b) => b.dataset.id);
  if (ids.length === 0) return notice('Select the dead letters to resend first.', true);
  const group = dlqGroup;
  confirmAction('Resend ' + ids.length + ' dead letter(s)?',
      'Deliver ' + ids.join(', ') + ' to group ' + group + ' again.',
      async (reason) => {
        const r = await api('POST', '/api/dlq/' + encodeURIComponent(group) + '/resend',
            {operator: session.getItem('txmq.operator'), reason, message_ids: ids});
        return 'Resent ' + r.resent.length + ' to group ' + group +
            (r.missing.length ? '; not found: ' + r.missing.join(', ') : '') + '.';
      });
});

// ---- navigation ----

function failed(e) {
  if (!(e instanceof ApiError && e.status === 401)) notice(e.message, true);
}

function route() {
  if (!signedIn()) return showSignIn();
  $('sign-in').hidden = true;
  $('sign-out').hidden = false;
  $('who').textContent = 'operator: ' + session.getItem('txmq.operator');
  for (const v of document.querySelectorAll('.view')) v.hidden = true;
  const [view, arg] = (location.hash.slice(1) || 'transactions').split('/');
  const param = arg === undefined ? '' : decodeURIComponent(arg);
  for (const a of document.querySelectorAll('header nav a')) {
    a.classList.toggle('current', a.id === 'nav-' + (view === 'tx' ? 'transactions' : view));
  }
  const show = {
    transactions: showTransactions,
    tx: () => showTransaction(param),
    topics: showTopics,
    groups: showGroups,
    dlq: () => showDeadLetters(param),
  }[view] || showTransactions;
  show().catch(failed);
}

window.addEventListener('hashchange', () => {
  $('notice').hidden = true;
  route();
});

// Lists refresh by themselves; never under an open confirmation.
setInterval(() => {
  if (signedIn() && !$('confirm').open && !$('view-transactions').hidden) {
    showTransactions().catch(failed);
  }
}, 5000);

route();
