"""The CSS and JavaScript inlined into the HTML reports (reports/html.py).

Kept apart from the Python that builds the pages so each reads as what it is. Both are inlined, never
linked: a report is one file a reader can mail or archive, and its Content-Security-Policy forbids
every fetch. The script only enhances a page that is complete without it (sorting, filtering, the
cell detail drawer), and builds every node with textContent, never innerHTML: strings in the data
come from users' models.
"""

from __future__ import annotations

#: Status colours: text colour on a light tint, so the status reads in greyscale too (the text says it).
CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#ffffff; --soft:#f6f8fa;
  --pass:#1a7f37; --pass-bg:#dafbe1; --fail:#c4232d; --fail-bg:#ffebe9; --warn:#9a6700; --warn-bg:#fff8c5;
  --unsup:#8250df; --unsup-bg:#fbefff; --skip:#59636e; --skip-bg:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", "Segoe UI Symbol",
  "Noto Sans Symbols 2", "Noto Color Emoji", sans-serif;
  color: var(--fg); background: var(--bg); margin: 0; padding: 0 24px 48px; }
h1 { font-size: 22px; margin: 18px 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 18px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 6px; overflow-wrap: anywhere; }
h4 { font-size: 13px; margin: 10px 0 4px; }
a { color: #0550ae; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace;
  font-size: 12.5px; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: var(--soft); border: 1px solid var(--line);
  border-radius: 6px; padding: 8px 10px; margin: 6px 0; max-height: 320px; overflow: auto; }
.muted { color: var(--muted); }
.small { font-size: 12px; }
.meta { color: var(--muted); margin: 0 0 10px; }
.meta span + span::before { content: " · "; }
nav.toc { margin: 8px 0 0; font-size: 13px; }
nav.toc a { margin-right: 14px; }
.chips { display: flex; flex-wrap: wrap; gap: 6px; margin: 10px 0; }
.chip { border-radius: 12px; padding: 2px 10px; font-size: 13px; border: 1px solid transparent; }
.badge { border-radius: 4px; padding: 1px 7px; font-size: 12.5px; font-weight: 600; white-space: nowrap; }
.s-pass { color: var(--pass); background: var(--pass-bg); }
.s-fail { color: var(--fail); background: var(--fail-bg); }
.s-warn { color: var(--warn); background: var(--warn-bg); }
.s-unsup { color: var(--unsup); background: var(--unsup-bg); }
.s-skip { color: var(--skip); background: var(--skip-bg); }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 12.5px; color: var(--muted); margin: 6px 0; }
.legend .mark { font-weight: 700; }
.controls { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; margin: 10px 0; }
.controls input[type=search] { width: 280px; padding: 5px 8px; border: 1px solid var(--line); border-radius: 6px; }
.controls select { padding: 4px 6px; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
.wrap { overflow: auto; max-height: 78vh; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; }
table.grid th, table.grid td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left;
  vertical-align: top; }
table.grid th { background: var(--soft); font-weight: 600; font-size: 13px; }
table.grid td.num, table.grid th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.matrix { border-collapse: separate; border-spacing: 0; }
table.matrix thead th { position: sticky; top: 0; z-index: 2; background: var(--soft); vertical-align: bottom;
  border-bottom: 1px solid var(--line); padding: 6px 6px; font-size: 12.5px; text-align: left; }
table.matrix th.rowhead { position: sticky; left: 0; z-index: 1; background: #fff; white-space: nowrap; text-align: left;
  font-weight: 600; font-size: 12.5px; border-right: 1px solid var(--line); padding: 4px 8px;
  font-family: ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace; }
table.matrix thead th.rowhead { z-index: 3; background: var(--soft); }
table.matrix td, table.matrix tbody th { border-bottom: 1px solid #eaeef2; }
table.matrix th .sort { all: unset; cursor: pointer; display: block; overflow-wrap: break-word; max-width: 150px; }
table.matrix th.nowrap .sort { white-space: nowrap; }
table.matrix th .sort:focus-visible { outline: 2px solid #0969da; }
table.matrix th .sort::after { content: " \\2195"; color: #afb8c1; font-weight: 400; }
table.matrix th[aria-sort=ascending] .sort::after { content: " \\25B2"; color: var(--fg); }
table.matrix th[aria-sort=descending] .sort::after { content: " \\25BC"; color: var(--fg); }
table.matrix th .page { font-weight: 400; font-size: 11.5px; }
td.cell { padding: 0; min-width: 92px; border-left: 2px solid #fff; }
td.cell a { display: block; padding: 3px 6px; color: inherit; text-decoration: none; line-height: 1.25; }
td.cell a:hover, td.cell a:focus-visible { outline: 2px solid #0969da; outline-offset: -2px; }
td.cell .st { font-size: 11.5px; font-weight: 600; white-space: nowrap; }
td.cell .fig { font-size: 12px; white-space: nowrap; font-variant-numeric: tabular-nums; color: var(--fg); }
td.cell.s-skip .st { font-weight: 400; }
td.cell.selected { outline: 3px solid #0969da; outline-offset: -3px; }
td.cell.dim { opacity: .18; }
td.empty { background: repeating-linear-gradient(45deg, #fff, #fff 4px, #f3f4f6 4px, #f3f4f6 8px); }
td.lock { min-width: 56px; font-variant-numeric: tabular-nums; white-space: nowrap; font-size: 12.5px;
  background: linear-gradient(90deg, #ffe2c6 var(--v, 0%), transparent var(--v, 0%)); }
td.ran { white-space: nowrap; font-size: 12.5px; font-variant-numeric: tabular-nums; }
.warnmark { color: var(--warn); font-weight: 700; }
tr.hidden, .hidden { display: none !important; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
#nomatch { padding: 8px; }
ul.fails { list-style: none; padding: 0; margin: 0; }
ul.fails li { padding: 3px 0; border-bottom: 1px solid #eaeef2; overflow-wrap: anywhere; }
ul.fails .why { color: var(--fg); }
details > summary { cursor: pointer; margin: 6px 0; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 14px 22px; }
figure { margin: 0; }
figure.panel figcaption { font-weight: 600; font-size: 13px; margin: 6px 0 2px; overflow-wrap: anywhere; }
figure.wide { max-width: 1100px; }
svg.chart { display: block; max-width: 100%; height: auto; font-family: system-ui, "DejaVu Sans", sans-serif; }
svg.chart text { font-size: 11px; fill: #1f2328; }
svg.chart text.bad { fill: #cf222e; }
svg.chart text.axis { fill: #59636e; font-size: 10px; }
svg.chart text.lbl { font-family: ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 10.5px; }
svg.chart .grid { stroke: #e5e8eb; stroke-width: 1; }
svg.chart .track { stroke: #eef1f4; stroke-width: 1; }
.note { font-size: 12.5px; color: var(--muted); max-width: 980px; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 6px 0; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; overflow-wrap: anywhere; font-variant-numeric: tabular-nums; }
ol.ladder { list-style: none; display: flex; flex-wrap: wrap; gap: 0; padding: 0; margin: 8px 0; }
ol.ladder li { padding: 4px 10px; margin-right: 18px; border-radius: 4px; position: relative; font-size: 13px;
  white-space: nowrap; }
ol.ladder li + li::before { content: "\\2192"; position: absolute; left: -15px; color: #8c959f; }
ol.ladder .secs { font-size: 11px; color: var(--muted); margin-left: 4px; }
.stopped { margin: 4px 0 8px; }
p.stopped.s-pass { display: inline-block; padding: 2px 10px; border-radius: 4px; }
section.cellsec { border: 1px solid var(--line); border-radius: 8px; padding: 4px 16px 12px; margin: 16px 0; }
section.cellsec > h3 { display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; }
.cols { display: flex; flex-wrap: wrap; gap: 8px 36px; }
.cols > div { min-width: 220px; }
aside#detail { position: fixed; top: 0; right: 0; bottom: 0; width: min(460px, 96vw); background: #fff;
  border-left: 1px solid var(--line); box-shadow: -6px 0 18px rgba(31,35,40,.12); padding: 10px 18px 24px;
  overflow: auto; z-index: 10; }
aside#detail h2 { margin-top: 8px; font-size: 16px; overflow-wrap: anywhere; }
aside#detail .close { float: right; font-size: 18px; border: 1px solid var(--line); background: #fff; border-radius: 6px;
  cursor: pointer; padding: 0 8px; }
aside#detail h4 { margin: 12px 0 2px; color: var(--muted); text-transform: uppercase; font-size: 11.5px;
  letter-spacing: .04em; }
footer { margin-top: 36px; font-size: 12px; color: var(--muted); }
@media print { aside#detail, .controls { display: none; } .wrap { max-height: none; overflow: visible; } }
"""

#: The matrix page's script: sorting, filtering, the detail drawer, the latency chart's model selector.
MATRIX_JS = r"""
(function () {
  'use strict';
  var dataNode = document.getElementById('cc-data');
  var table = document.getElementById('matrix');
  if (!dataNode || !table) { return; }
  var data = JSON.parse(dataNode.textContent);
  var tbody = table.tBodies[0];
  var rows = Array.prototype.slice.call(tbody.rows);
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var sortState = { col: -1, dir: 1 };

  function sortKey(row, col) {
    var cell = row.cells[col];
    var raw = cell ? cell.getAttribute('data-sort') : null;
    if (raw === null || raw === '') { return null; }
    var num = Number(raw);
    return isNaN(num) ? raw.toLowerCase() : num;
  }

  function sortBy(col) {
    sortState.dir = sortState.col === col ? -sortState.dir : 1;
    sortState.col = col;
    var dir = sortState.dir;
    var ordered = rows.slice().sort(function (a, b) {
      var ka = sortKey(a, col), kb = sortKey(b, col);
      if (ka === null && kb === null) { return a.rowIndex - b.rowIndex; }
      if (ka === null) { return 1; }   // empty cells stay last whichever the direction
      if (kb === null) { return -1; }
      if (ka < kb) { return -dir; }
      if (ka > kb) { return dir; }
      return Number(a.getAttribute('data-order')) - Number(b.getAttribute('data-order'));
    });
    ordered.forEach(function (row) { tbody.appendChild(row); });
    heads.forEach(function (th, i) {
      if (th.hasAttribute('data-sortable')) {
        if (i === col) { th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending'); }
        else { th.removeAttribute('aria-sort'); }
      }
    });
  }

  heads.forEach(function (th, i) {
    var button = th.querySelector('button.sort');
    if (button) { button.addEventListener('click', function () { sortBy(i); }); }
  });

  var filterBox = document.getElementById('filter');
  var statusBox = document.getElementById('status-filter');
  var shown = document.getElementById('shown');
  var noMatch = document.getElementById('nomatch');

  function statusMatches(td, wanted) {
    if (wanted === 'all') { return true; }
    return td.getAttribute('data-status') === wanted || td.getAttribute('data-group') === wanted;
  }

  function applyFilters() {
    var q = (filterBox.value || '').trim().toLowerCase();
    var wanted = statusBox.value;
    // The text matches route rows and model columns: "resnet" keeps a column, "tflite" keeps rows.
    var colOk = data.models.map(function (m) { return !q || m.name.toLowerCase().indexOf(q) >= 0; });
    var rowOk = rows.map(function (r) { return !q || r.getAttribute('data-label').toLowerCase().indexOf(q) >= 0; });
    var anyCol = colOk.some(Boolean), anyRow = rowOk.some(Boolean);
    if (q && anyCol && !anyRow) { rowOk = rows.map(function () { return true; }); }
    if (q && anyRow && !anyCol) { colOk = data.models.map(function () { return true; }); }
    if (q && !anyRow && !anyCol) { rowOk = rows.map(function () { return false; }); }
    var firstModelCol = data.firstModelColumn;
    heads.forEach(function (th, i) {
      if (i >= firstModelCol) { th.classList.toggle('hidden', !colOk[i - firstModelCol]); }
    });
    var visible = 0;
    rows.forEach(function (row, r) {
      var hit = false;
      for (var i = firstModelCol; i < row.cells.length; i++) {
        var td = row.cells[i];
        var colShown = colOk[i - firstModelCol];
        td.classList.toggle('hidden', !colShown);
        if (!td.classList.contains('cell')) { continue; }
        var ok = statusMatches(td, wanted);
        td.classList.toggle('dim', !ok);
        if (ok && colShown) { hit = true; }
      }
      var show = rowOk[r] && (wanted === 'all' || hit);
      row.classList.toggle('hidden', !show);
      if (show) { visible++; }
    });
    shown.textContent = 'showing ' + visible + ' of ' + rows.length + ' rows';
    noMatch.classList.toggle('hidden', visible > 0);
  }
  filterBox.addEventListener('input', applyFilters);
  statusBox.addEventListener('change', applyFilters);

  var drawer = document.getElementById('detail');
  var selected = null;

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }

  function closeDetail() {
    drawer.hidden = true;
    if (selected) { selected.classList.remove('selected'); selected = null; }
  }

  function showDetail(key, td) {
    var d = data.cells[key];
    if (!d) { return; }
    while (drawer.firstChild) { drawer.removeChild(drawer.firstChild); }
    var close = el('button', '\u00d7', 'close');
    close.type = 'button';
    close.setAttribute('aria-label', 'close the detail');
    close.addEventListener('click', closeDetail);
    drawer.appendChild(close);
    drawer.appendChild(el('h2', d.title));
    var status = el('p');
    status.appendChild(el('span', d.mark + ' ' + d.status, 'badge ' + d.css));
    if (d.headline) { status.appendChild(el('span', '  ' + d.headline, 'muted')); }
    drawer.appendChild(status);
    if (d.message) {
      drawer.appendChild(el('h4', 'why'));
      drawer.appendChild(el('pre', d.message));
    }
    d.sections.forEach(function (section) {
      drawer.appendChild(el('h4', section[0]));
      var dl = el('dl', null, 'kv');
      section[1].forEach(function (pair) {
        dl.appendChild(el('dt', pair[0]));
        dl.appendChild(el('dd', pair[1]));
      });
      drawer.appendChild(dl);
    });
    var more = el('p');
    var link = el('a', 'Full report of this cell on the model page \u2192');
    link.href = d.href;
    more.appendChild(link);
    drawer.appendChild(more);
    drawer.hidden = false;
    if (selected) { selected.classList.remove('selected'); }
    selected = td || null;
    if (selected) { selected.classList.add('selected'); }
    close.focus();
  }

  function onOpen(event) {
    var target = event.target.closest('[data-key]');
    if (!target) { return; }
    // Ctrl/Cmd/Shift/middle clicks keep their meaning: open the model page in a new tab or window.
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) { return; }
    event.preventDefault();
    var td = target.tagName === 'TD' ? target : null;
    showDetail(target.getAttribute('data-key'), td);
  }
  tbody.addEventListener('click', onOpen);
  var fails = document.getElementById('failures');
  if (fails) { fails.addEventListener('click', onOpen); }
  document.addEventListener('keydown', function (event) {
    if (event.key === 'Escape' && !drawer.hidden) { closeDetail(); }
  });

  var latSelect = document.getElementById('lat-model');
  if (latSelect) {
    latSelect.addEventListener('change', function () {
      var want = latSelect.value;
      document.querySelectorAll('#latency-panels figure.panel').forEach(function (fig) {
        fig.classList.toggle('hidden', want !== 'all' && fig.getAttribute('data-model') !== want);
      });
    });
  }
  applyFilters();
})();
"""
