// The preview's script in the page (bundled with morphdom by preview.ts, served as
// /__preview/client.js). It listens to /__preview/events:
//   page  {version, title, body}  → the body is morphed in place (no reload: scroll position,
//                                   open <details> and focus stay)
//   state {version, phase, cells, problems, last, error} → the bar, each running cell's
//                                   progress and stop button, each problem at its place.
// Everything it adds to the page carries data-preview, so a morph never mistakes it for
// the document's content.
import morphdom from 'morphdom';
import { applyPageEvent } from '../page-patch.ts';

const versionMeta = document.querySelector('meta[name="report-preview-version"]');
let version = Number(versionMeta?.getAttribute('content') ?? 0);
let state = { phase: 'building', cells: [], problems: [] };
let connected = false;

// The bar: a status pill at the top right; below it, cells that have no place in the page yet.
const bar = document.createElement('div');
bar.className = 'preview-bar';
bar.dataset.preview = 'bar';
const pill = document.createElement('div');
pill.setAttribute('role', 'status');
bar.append(pill);
document.body.append(bar);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === false) continue;
    if (name === 'className') node.className = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) if (child !== undefined && child !== null) node.append(child);
  return node;
}

function duration(ms) {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

function number(x) {
  if (!Number.isFinite(x) || Number.isInteger(x)) return String(x);
  const abs = Math.abs(x);
  return abs >= 1000 || abs < 0.001 ? x.toExponential(2) : x.toPrecision(3);
}

function post(action, id) {
  fetch(`/__preview/${action}/${encodeURIComponent(id)}`, { method: 'POST' }).catch(() => {});
}

// ---- the bar ------------------------------------------------------------------------------

function renderBar() {
  const running = state.cells.filter((c) => c.phase === 'running' || c.phase === 'stopping').length;
  const errors = state.problems.filter((p) => p.fatal).length;
  const warnings = state.problems.length - errors;
  let text;
  if (!connected) text = 'disconnected, retrying…';
  else if (state.error) text = 'cannot build';
  else if (running > 0) text = `running ${running} cell${running === 1 ? '' : 's'}`;
  else if (state.phase !== 'idle') text = 'building…';
  else if (state.last) text = `built in ${duration(state.last.ms)}${state.last.ran ? `, ran ${state.last.ran}` : ''}`;
  else text = 'live';
  const counts = [errors ? `${errors} error${errors === 1 ? '' : 's'}` : '', warnings ? `${warnings} warning${warnings === 1 ? '' : 's'}` : '']
    .filter(Boolean)
    .join(', ');
  const className = `preview-pill preview-${!connected ? 'offline' : state.error || errors ? 'failing' : state.phase}`;
  // Unchanged: left alone (state events come with every progress step; a button replaced under the pointer loses its click).
  if (pill.className === className && pill.dataset.text === text + counts) return;
  pill.className = className;
  pill.dataset.text = text + counts;
  pill.replaceChildren(
    el('span', { className: 'preview-dot', 'aria-hidden': 'true' }),
    el('span', { className: 'preview-text' }, text),
    counts ? el('button', { type: 'button', className: 'preview-count', onclick: nextProblem }, counts) : undefined,
  );
}

let problemCursor = -1;
function nextProblem() {
  const boxes = [...document.querySelectorAll('[data-preview="problem"]')];
  if (boxes.length === 0) return;
  problemCursor = (problemCursor + 1) % boxes.length;
  boxes[problemCursor].scrollIntoView({ block: 'center', behavior: 'smooth' });
}

// ---- problems at their place --------------------------------------------------------------

/** The top-level block of the page holding Markdown line `line` (or the last one before it). */
function blockAt(main, line) {
  let before;
  for (const child of main.children) {
    const range = child.getAttribute('data-line');
    if (!range) continue;
    const [start, end] = range.split('-').map(Number);
    if (start <= line && line <= end) return child;
    if (start <= line) before = child;
  }
  return before;
}

/** What the problem boxes show now: they are rebuilt only when it changes (state events come with every progress step). */
let shownProblems = '';

function renderProblems(force = false) {
  const key = JSON.stringify(state.problems);
  if (!force && key === shownProblems) return;
  shownProblems = key;
  for (const node of document.querySelectorAll('[data-preview="problem"]')) node.remove();
  const main = document.querySelector('main');
  if (!main) return;
  const groups = new Map();
  for (const problem of state.problems) {
    let anchor;
    let inside = false;
    if (problem.cell) {
      anchor = document.getElementById(`cell-${problem.cell}`);
      inside = anchor !== null;
    }
    if (!anchor && problem.line !== undefined) anchor = blockAt(main, problem.line);
    const key = anchor ?? main;
    if (!groups.has(key)) groups.set(key, { inside: inside || !anchor, items: [] });
    groups.get(key).items.push(problem);
  }
  for (const [anchor, group] of groups) {
    const box = el(
      'aside',
      { className: `preview-problems${group.items.some((p) => p.fatal) ? '' : ' preview-warning'}`, 'data-preview': 'problem', role: 'note' },
      el(
        'ul',
        {},
        group.items.map((p) =>
          el(
            'li',
            {},
            el('span', { className: 'preview-rule' }, p.ruleId),
            ' ',
            el('span', { className: 'preview-place' }, p.line !== undefined ? `line ${p.line}:${p.column}` : ''),
            ' ',
            el('span', { className: 'preview-message' }, p.message),
            p.fatal ? undefined : el('span', { className: 'preview-place' }, ' (warning)'),
          ),
        ),
      ),
    );
    if (group.inside) anchor.prepend(box);
    else anchor.after(box);
  }
}

// ---- running cells in place ---------------------------------------------------------------

const PHASES = { queued: 'queued', running: 'running', stopping: 'stopping…', stopped: 'stopped' };

/** A cell's status box: made once, then updated in place (a button replaced under the pointer would lose its click). */
function statusBox(id) {
  const button = el('button', { type: 'button' });
  button.addEventListener('click', () => post(button.dataset.action, id));
  return el(
    'div',
    { 'data-preview': 'cell', 'data-cell-status': id, role: 'status' },
    el('span', { className: 'preview-phase' }),
    ' ',
    el('span', { className: 'preview-progress' }),
    el('progress', { max: 1, value: 0 }),
    button,
    el('pre', { className: 'preview-last-line' }),
  );
}

function updateStatus(box, cell) {
  const parts = [];
  if (cell.step !== undefined) parts.push(`${cell.label ?? 'step'} ${cell.step}${cell.total === undefined ? '' : `/${cell.total}`}`);
  for (const [name, value] of Object.entries(cell.metrics ?? {})) parts.push(`${name} ${number(value)}`);
  if (cell.startedAt !== undefined && cell.phase === 'running') parts.push(duration(Date.now() - cell.startedAt));
  if (cell.etaMs !== undefined && cell.phase === 'running') parts.push(`ETA ${duration(cell.etaMs)}`);
  // A batch executor's job (Slurm): `pending (Priority) · job 1234`, `running on node17 · job 1234`.
  if (cell.where) parts.push(cell.where);
  box.className = `preview-cell preview-cell-${cell.phase}`;
  box.querySelector('.preview-phase').textContent = PHASES[cell.phase] ?? cell.phase;
  box.querySelector('.preview-progress').textContent = parts.join(' · ');
  const bar = box.querySelector('progress');
  bar.hidden = !cell.total;
  if (cell.total) {
    bar.max = cell.total;
    bar.value = cell.step ?? 0;
  }
  const button = box.querySelector('button');
  const action = cell.phase === 'running' || cell.phase === 'queued' ? 'stop' : cell.phase === 'stopped' ? 'run' : '';
  button.hidden = action === '';
  button.dataset.action = action;
  button.className = action === 'stop' ? 'preview-stop' : 'preview-run';
  button.textContent = action === 'stop' ? 'Stop' : 'Run';
  const last = box.querySelector('pre');
  last.hidden = !cell.lastLine;
  last.textContent = cell.lastLine ?? '';
}

function renderCells() {
  const live = new Set(state.cells.map((c) => c.id));
  for (const node of document.querySelectorAll('[data-preview="cell"]')) {
    if (!live.has(node.getAttribute('data-cell-status'))) node.remove();
  }
  for (const section of document.querySelectorAll('section.cell.preview-stale')) {
    if (!live.has(section.dataset.cell)) section.classList.remove('preview-stale');
  }
  for (const cell of state.cells) {
    const section = document.getElementById(`cell-${cell.id}`);
    let box = document.querySelector(`[data-cell-status="${CSS.escape(cell.id)}"]`);
    const home = section ?? bar;
    if (box === null || box.parentElement !== home) {
      box?.remove();
      box = statusBox(cell.id);
      const code = section?.querySelector(':scope > details.cell-code');
      if (code) code.after(box);
      else if (section) section.prepend(box);
      else bar.append(box);
    }
    updateStatus(box, cell);
    section?.classList.toggle('preview-stale', cell.phase !== 'stopped');
  }
}

function render(force = false) {
  renderBar();
  renderProblems(force);
  renderCells();
}

// ---- the new page -------------------------------------------------------------------------

/** The body as the preview last sent it (an edit applies to this text, not to the DOM). */
let body;
let bodyVersion = -1;

function applyPage(page) {
  if (page.version <= version && document.querySelector('main') && body !== undefined) return;
  const next = applyPageEvent(page, body === undefined ? undefined : { version: bodyVersion, body });
  if (next === undefined) {
    // An edit of a body this page does not hold: ask for the whole page.
    reconnect();
    return;
  }
  body = next;
  bodyVersion = page.version;
  version = page.version;
  versionMeta?.setAttribute('content', String(version));
  document.title = page.title;
  // What the preview added goes first: the new body must be compared with the document alone.
  for (const node of document.querySelectorAll('[data-preview="problem"], [data-preview="cell"]')) node.remove();
  morphdom(document.body, `<body>${next}</body>`, {
    onBeforeNodeDiscarded: (node) => !(node.nodeType === 1 && node.hasAttribute('data-preview')),
    onBeforeElUpdated: (from, to) => {
      if (from.hasAttribute('data-preview')) return false;
      // Keep what the reader opened (a cell's code) open.
      if (from.tagName === 'DETAILS' && from.open) to.setAttribute('open', '');
      // Identical subtrees (most of a prose edit's page) need no walk.
      return !from.isEqualNode(to);
    },
  });
  render(true);
}

let source;

function reconnect() {
  source?.close();
  body = undefined;
  connect();
}

function connect() {
  // Without the body's text, ask for the whole page even when the version is the one shown.
  const events = new EventSource(`/__preview/events?v=${body === undefined ? -1 : version}`);
  source = events;
  events.addEventListener('open', () => {
    connected = true;
    renderBar();
  });
  events.addEventListener('error', () => {
    connected = false;
    renderBar();
  });
  events.addEventListener('page', (event) => applyPage(JSON.parse(event.data)));
  events.addEventListener('state', (event) => {
    state = JSON.parse(event.data);
    connected = true;
    render();
  });
}

setInterval(() => {
  if (state.cells.some((c) => c.phase === 'running')) renderCells();
}, 1000);
render();
connect();
