// The step-through page (rmapkit html): reads the data rmapkit embedded in #data and
// shows one moment of the scenario at a time. Moment 0 is before the first statement;
// moment N is after statement N. Each moment is [line, picture, frame table, report?],
// indexes into data.pictures (each a list of indexes into data.lines) and data.tables;
// a frame table row is [frame id, mapping, map count, walk index or -1,
// [P:REGION:IDX ...]]; a walk's steps are indexes into data.steps ([kind, words]).
// URL hash: #step=N&walk=K opens moment N and frame K's walk; #test runs a self-test
// and writes its verdict into #selftest (tests/browser/html_page_test.py reads it).
'use strict';

const errors = [];
window.addEventListener('error', (e) => errors.push('error: ' + e.message));
window.addEventListener('unhandledrejection', (e) => errors.push('unhandled rejection: ' + e.reason));
const consoleError = console.error.bind(console);
console.error = (...args) => { errors.push('console.error: ' + args.join(' ')); consoleError(...args); };

const $ = (id) => document.getElementById(id);
let data = null;
let cur = 0;
let openFrame = null;  // the frame whose walk is open

async function loadData() {
  const el = $('data');
  if (el.type === 'application/json') return JSON.parse(el.textContent);
  const bytes = Uint8Array.from(atob(el.textContent.trim()), (c) => c.charCodeAt(0));
  const inflated = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  return JSON.parse(await new Response(inflated).text());
}

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const c of children) e.append(c);
  return e;
}

function statementText(m) {
  const line = data.moments[m][0];
  return line > 0 ? (data.source[line - 1] || '').trim() : '';
}

function buildSource() {
  const stmtLines = new Set(data.moments.map((m) => m[0]));
  const ol = $('source');
  data.source.forEach((text, i) => {
    const li = el('li', { id: 'L' + (i + 1), textContent: text || ' ' });
    if (stmtLines.has(i + 1)) {
      li.className = 'stmt';
      li.title = 'Go to after this statement';
      li.addEventListener('click', () => show(momentOfLine(i + 1)));
    } else if (text.trim().startsWith('#')) {
      li.className = 'comment';
    }
    ol.append(li);
  });
}

function momentOfLine(line) {
  const m = data.moments.findIndex((x) => x[0] === line);
  return m < 0 ? cur : m;
}

function showSource(m) {
  document.querySelectorAll('#source li.cur').forEach((li) => li.classList.remove('cur'));
  const line = data.moments[m][0];
  if (line > 0) {
    const li = $('L' + line);
    li.classList.add('cur');
    li.scrollIntoView({ block: 'nearest' });
  }
}

function showReports(m) {
  const pre = $('reports');
  pre.textContent = '';
  for (let i = 1; i <= m; i++) {
    const r = data.moments[i][3];
    if (!r) continue;
    const span = el('span', { textContent: r[0] });
    if (r[1]) span.classList.add('error');
    if (i === m) span.classList.add('cur');
    pre.append(span);
  }
  if (!pre.textContent) pre.textContent = '(no check has run yet)';
  pre.lastChild.scrollIntoView?.({ block: 'nearest' });
}

function showFrames(m) {
  const body = $('frames').tBodies[0];
  body.textContent = '';
  for (const [id, mapping, mapcount, walk, maps] of data.tables[data.moments[m][2]]) {
    const first = el('td');
    if (walk >= 0) {
      const b = el('button', { type: 'button', textContent: String(id), className: 'walk-button' });
      b.setAttribute('aria-label', 'Open the walk of frame ' + id);
      b.addEventListener('click', () => openWalk(id));
      first.append(b);
    } else {
      first.textContent = String(id);
    }
    const tr = el('tr', {}, first, el('td', { textContent: mapping }), el('td', { textContent: String(mapcount) }),
                  el('td', { textContent: maps.join(' ') }));
    tr.dataset.frame = id;
    if (id === openFrame) tr.classList.add('open');
    body.append(tr);
  }
  if (!body.rows.length) body.append(el('tr', {}, el('td', { colSpan: 4, textContent: '(no frame in use)' })));
}

/// Each process's mapped pages, by region and index, each a button opening its frame's walk.
function showPages(m) {
  const byProcess = new Map();
  for (const [id, , , walk, maps] of data.tables[data.moments[m][2]]) {
    for (const page of maps) {
      const [proc, region, index] = page.split(':');
      if (!byProcess.has(proc)) byProcess.set(proc, []);
      byProcess.get(proc).push({ region, index: Number(index), id, walk });
    }
  }
  const div = $('pages');
  div.textContent = '';
  for (const proc of [...byProcess.keys()].sort()) {
    const pages = byProcess.get(proc).sort((a, b) => (a.region < b.region ? -1 : a.region > b.region ? 1 : a.index - b.index));
    const line = el('div', { className: 'proc' }, el('span', { className: 'name', textContent: proc + ' ' }));
    for (const p of pages) {
      const label = `${p.region}[${p.index}]\u2192${p.id}`;
      if (p.walk < 0) {
        line.append(el('span', { textContent: label + ' ' }));
        continue;
      }
      const b = el('button', { type: 'button', textContent: label, className: 'page-button' });
      b.setAttribute('aria-label', `Open the walk of ${proc}'s page ${p.region}[${p.index}], frame ${p.id}`);
      b.addEventListener('click', () => openWalk(p.id));
      line.append(b, ' ');
    }
    div.append(line);
  }
  if (!byProcess.size) div.textContent = '(no page is mapped)';
}

/// Picture @i: its lines, each stored once in data.lines.
function picture(i) {
  return data.pictures[i].map((j) => data.lines[j]).join('\n');
}

function walkOf(m, frame) {
  const row = data.tables[data.moments[m][2]].find((r) => r[0] === frame);
  return row && row[3] >= 0 ? data.walks[row[3]] : null;
}

/// The walk of @frame at the current moment, as `rmapkit walk --op none` prints it.
function openWalk(frame, focus = true) {
  const w = walkOf(cur, frame);
  if (!w) return closeWalk();
  openFrame = frame;
  const div = $('walk');
  div.textContent = '';
  const where = cur === 0 ? 'before the first statement'
                          : `after statement ${cur} (line ${data.moments[cur][0]}: ${statementText(cur)})`;
  div.append(el('div', { className: 'head', textContent: `walk frame ${frame} --op none, ${where}` }));
  const nested = new Set(['candidate', 'skip', 'pte', 'rmap_one', 'done', 'entry']);
  const ol = el('ol');
  for (const [kind, text] of w.s.map((i) => data.steps[i])) {
    const li = el('li', { textContent: text });
    li.classList.add(kind);
    if (nested.has(kind)) li.classList.add('nested');
    if (kind === 'pte' && !text.endsWith('this frame') && !/ this folio/.test(text)) li.classList.add('bad');
    ol.append(li);
  }
  div.append(ol);
  const [walks, entries, vmas, ptes, misses] = w.c;
  div.append(el('div', { className: 'result', textContent: 'result: ' + w.r }));
  div.append(el('div', {
    textContent: `counts: walks=${walks} entries=${entries} vmas_visited=${vmas} ptes_examined=${ptes} misses=${misses}`,
  }));
  $('walk-pane').hidden = false;
  document.querySelectorAll('#frames tr').forEach((tr) => tr.classList.toggle('open', Number(tr.dataset.frame) === frame));
  if (focus) $('walk-close').focus({ preventScroll: true });
}

function closeWalk() {
  openFrame = null;
  $('walk-pane').hidden = true;
  document.querySelectorAll('#frames tr.open').forEach((tr) => tr.classList.remove('open'));
}

function show(m) {
  const last = data.moments.length - 1;
  cur = Math.max(0, Math.min(last, m));
  const line = data.moments[cur][0];
  $('where').textContent = cur === 0 ? `before the first statement (of ${last})`
                                     : `statement ${cur} of ${last}, line ${line}: ${statementText(cur)}`;
  $('slider').value = String(cur);
  $('first').disabled = $('prev').disabled = cur === 0;
  $('last').disabled = $('next').disabled = cur === last;
  showSource(cur);
  $('picture').innerHTML = picture(data.moments[cur][1]);
  showFrames(cur);
  showPages(cur);
  showReports(cur);
  if (openFrame !== null) openWalk(openFrame, false);  // the same frame's walk here, or closed
  history.replaceState(null, '', location.hash === '#test' ? '#test' : '#step=' + cur);
}

function wire() {
  $('first').addEventListener('click', () => show(0));
  $('prev').addEventListener('click', () => show(cur - 1));
  $('next').addEventListener('click', () => show(cur + 1));
  $('last').addEventListener('click', () => show(data.moments.length - 1));
  $('slider').max = String(data.moments.length - 1);
  $('slider').addEventListener('input', (e) => show(Number(e.target.value)));
  $('walk-close').addEventListener('click', closeWalk);
  document.addEventListener('keydown', (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey || e.target.tagName === 'INPUT') return;
    const go = { ArrowRight: cur + 1, j: cur + 1, ArrowLeft: cur - 1, k: cur - 1, Home: 0,
                 End: data.moments.length - 1 }[e.key];
    if (go !== undefined) {
      e.preventDefault();
      show(go);
    } else if (e.key === 'Escape') {
      closeWalk();
    }
  });
}

function fromHash() {
  const args = new URLSearchParams(location.hash.slice(1));
  show(Number(args.get('step') || 0));
  if (args.has('walk')) openWalk(Number(args.get('walk')));
}

/// Steps and opens a walk the way a user would, and says what it saw.
function selfTest() {
  const fails = [];
  const check = (ok, what) => { if (!ok) fails.push(what); };
  const seen = () => [$('where').textContent, $('picture').innerHTML, $('frames').innerHTML,
                      $('reports').textContent].join('\u0000');
  show(0);
  const before = seen();
  $('next').click();
  check(cur === 1, 'the Next button did not step');
  check(seen() !== before, 'stepping changed nothing shown');
  check(document.querySelector('#source li.cur') !== null, 'no source line is marked');
  document.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowRight' }));
  check(cur === 2 || data.moments.length < 3, 'the Right arrow did not step');
  const pic = data.moments.findIndex((m) => m[1] !== data.moments[0][1]);
  check(pic > 0, 'the picture never changes');
  show(pic);
  check($('picture').innerHTML !== picture(data.moments[0][1]), 'the picture shown did not change');
  const withWalk = data.moments.findIndex((m) => data.tables[m[2]].some((r) => r[3] >= 0));
  check(withWalk >= 0, 'no frame has a walk');
  if (withWalk >= 0) {
    show(withWalk);
    const button = document.querySelector('#frames .walk-button');
    check(button !== null, 'no walk button');
    button?.click();
    check(!$('walk-pane').hidden, 'the walk did not open');
    check(document.querySelectorAll('#walk li').length > 0, 'the walk has no steps');
    check($('walk').querySelector('.result') !== null, 'the walk has no result');
    closeWalk();
    const page = document.querySelector('#pages .page-button');
    check(page !== null, 'no page button');
    page?.click();
    check(!$('walk-pane').hidden, 'a page did not open its walk');
  }
  show(data.moments.length - 1);
  check(!/no check has run/.test($('reports').textContent), 'no report at the end');
  const out = $('selftest');
  out.textContent = (fails.length || errors.length ? 'SELFTEST FAIL\n' : 'SELFTEST PASS\n') +
                    fails.map((f) => 'fail: ' + f + '\n').join('') + errors.map((e) => e + '\n').join('') +
                    `moments=${data.moments.length} pictures=${data.pictures.length} walks=${data.walks.length}\n`;
  out.hidden = false;
}

async function main() {
  try {
    data = await loadData();
  } catch (e) {
    errors.push('cannot read the page data: ' + e);
    $('where').textContent = 'cannot read the page data: ' + e;
    throw e;
  }
  $('title').textContent = 'rmapkit: ' + data.file;
  $('design').textContent = 'design ' + data.design;
  buildSource();
  wire();
  if (location.hash === '#test') selfTest();
  else fromHash();
}

main().catch((e) => {
  const out = $('selftest');
  out.textContent = 'SELFTEST FAIL\n' + e + '\n' + errors.join('\n');
  out.hidden = location.hash !== '#test';
});
