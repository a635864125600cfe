/* Préau result-entry grid: spreadsheet keys and save-as-you-go on top of a plain HTML form.
 * Without this script (or without fetch) the form still works: one "Save" button posts the table.
 * Each row is saved whole (POST JSON + X-CSRF-Token) after every change; saves of one row never overlap,
 * so the last thing typed is the last thing stored. Every visible text comes from data-msg-* attributes.
 * Safety first: arrows never leave a pupil's row (only ↑ ↓ Enter change pupil), a refused value is put
 * back to what the cell held and selected whole (later keys replace it, never append to it), and a hint
 * goes away by itself. */
(function () {
  'use strict';
  var table = document.querySelector('table.grid[data-save-url]');
  if (!table || !window.fetch || !window.Promise || !window.JSON) { return; }
  var form = table.closest('form');
  var csrf = form.querySelector('input[name="csrf_token"]').value;
  var url = table.getAttribute('data-save-url');
  var kind = table.getAttribute('data-kind');
  var max = parseInt(table.getAttribute('data-max'), 10);
  var nextLink = document.querySelector('a[data-grid-next]');
  var HINT_MS = 4000;
  var msg = function (name, params) {
    var text = table.getAttribute('data-msg-' + name) || '';
    Object.keys(params || {}).forEach(function (k) { text = text.split('{' + k + '}').join(String(params[k])); });
    return text;
  };
  document.documentElement.className += ' js';

  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var cells = rows.map(function (tr) { return Array.prototype.slice.call(tr.querySelectorAll('input')); });
  var state = rows.map(function () {
    return { busy: false, again: false, failed: false, saved: null, sent: null, shown: null, timer: null };
  });
  rows.forEach(function (tr, r) {
    state[r].saved = state[r].sent = values(r).join('|');
    cells[r].forEach(function (input, c) {
      input.setAttribute('data-r', r);
      input.setAttribute('data-c', c);
      input.setAttribute('data-before', input.value);
      if (kind === 'items') { input.setAttribute('maxlength', '1'); }
      else { input.setAttribute('inputmode', 'numeric'); }
    });
  });

  function values(r) { return cells[r].map(function (i) { return i.value.trim().toLowerCase(); }); }
  function pos(el) { return [parseInt(el.getAttribute('data-r'), 10), parseInt(el.getAttribute('data-c'), 10)]; }
  function focusCell(r, c) {
    if (r < 0 || r >= rows.length) { return false; }
    var row = cells[r];
    var input = row[Math.max(0, Math.min(c, row.length - 1))];
    input.focus();
    input.select();
    return true;
  }
  function afterLast() { // the whole table is typed: go to "next exercise" if there is one
    if (nextLink) { nextLink.focus(); return true; }
    return false;
  }
  function next(r, c) { // right, then the start of the next row (typing and Tab only, never an arrow)
    if (c + 1 < cells[r].length) { return focusCell(r, c + 1); }
    return focusCell(r + 1, 0);
  }
  function prev(r, c) {
    if (c > 0) { return focusCell(r, c - 1); }
    return r > 0 && focusCell(r - 1, cells[r - 1].length - 1);
  }

  function setStatus(r, cls, text, retry) {
    var td = rows[r].querySelector('td.status');
    td.className = 'status ' + cls;
    td.textContent = text;
    if (retry) {
      var b = document.createElement('button');
      b.type = 'button';
      b.textContent = msg('retry');
      b.addEventListener('click', function () { save(r); focusCell(r, 0); });
      td.appendChild(b);
    }
  }
  // A save's outcome is remembered so that a hint drawn over it can give the cell back.
  function showOutcome(r, cls, text, retry) {
    clearTimeout(state[r].timer);
    state[r].shown = [cls, text, retry];
    setStatus(r, cls, text, retry);
  }
  function hint(r, text) {
    var s = state[r];
    clearTimeout(s.timer);
    setStatus(r, 'hint', text);
    s.timer = setTimeout(function () { unhint(r); }, HINT_MS);
  }
  function unhint(r) {
    var s = state[r];
    clearTimeout(s.timer);
    s.timer = null;
    if (rows[r].querySelector('td.status.hint')) {
      if (s.shown) { setStatus(r, s.shown[0], s.shown[1], s.shown[2]); } else { setStatus(r, '', ''); }
    }
  }
  function setScore(r, text, group, label) {
    var td = rows[r].querySelector('td.score');
    td.textContent = text + ' ';
    if (group) {
      var span = document.createElement('span');
      span.className = 'grp g-' + group;
      span.textContent = label;
      td.appendChild(span);
    }
  }

  function save(r) {
    var s = state[r];
    if (s.busy) { s.again = true; return; }
    var vals = values(r);
    s.sent = vals.join('|');
    s.busy = true;
    showOutcome(r, 'saving', msg('saving'));
    fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'Accept': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify({ pupil: rows[r].getAttribute('data-pupil'), cells: vals })
    }).then(function (resp) {
      return resp.json().then(function (body) { return { ok: resp.ok && body && body.ok, body: body }; },
                              function () { return { ok: false, body: null }; });
    }).then(function (res) {
      s.busy = false;
      if (res.ok) {
        s.failed = false;
        s.saved = vals.join('|');
        cells[r].forEach(function (i, c) { i.setAttribute('data-before', vals[c]); });
        setScore(r, res.body.score_text || '', res.body.group, res.body.group_label);
        if (s.again) { s.again = false; save(r); return; }
        showOutcome(r, 'saved', msg('saved'));
      } else {
        s.again = false;
        s.failed = true;
        showOutcome(r, 'error', msg('error') + (res.body && res.body.error ? ' : ' + res.body.error : ''), true);
      }
    }, function () {
      s.busy = false;
      s.again = false;
      s.failed = true;
      showOutcome(r, 'error', msg('error'), true);
    });
  }

  function changed(r) {
    if (values(r).join('|') !== state[r].sent || state[r].failed) { save(r); }
  }

  function typeItem(input, key) {
    var p = pos(input), r = p[0], c = p[1], row = cells[r];
    unhint(r);
    if (key === 'a') {
      row.forEach(function (i) { i.value = 'a'; });
      changed(r);
      focusCell(r + 1, 0) || afterLast() || input.select();
      return;
    }
    if (row.some(function (i) { return i.value === 'a'; })) { row.forEach(function (i) { i.value = ''; }); }
    input.value = key;
    changed(r);
    next(r, c) || afterLast() || input.select();
  }

  function clear(input) {
    var p = pos(input), r = p[0];
    unhint(r);
    if (input.value.toLowerCase() === 'a') { cells[r].forEach(function (i) { i.value = ''; }); }
    else { input.value = ''; }
    changed(r);
  }

  // A number cell: '' (not entered), 'a' (absent) or 0..max. Returns the reason it is refused, or ''.
  function numberProblem(v) {
    if (v === '' || v === 'a') { return ''; }
    if (!/^\d+$/.test(v)) { return msg('bad-number', { value: v, max: max }); }
    if (v.length > 4 || parseInt(v, 10) > max) { return msg('too-high', { value: v.replace(/^0+(?=\d)/, ''), max: max }); }
    return '';
  }
  // Refuse what is in a number cell: the cell gets back what it held, selected whole, so the next
  // digits replace it instead of being added to the refused ones.
  function refuseNumber(input, reason) {
    var r = pos(input)[0];
    input.value = input.getAttribute('data-before') || '';
    input.select();
    input.setAttribute('data-refused', reason);
    hint(r, reason);
  }
  function checkNumber(input) {
    var reason = numberProblem(input.value.trim().toLowerCase());
    if (reason) { refuseNumber(input, reason); return false; }
    return true;
  }

  table.addEventListener('keydown', function (e) {
    var input = e.target;
    if (input.tagName !== 'INPUT' || e.ctrlKey || e.metaKey || e.altKey) { return; }
    var p = pos(input), r = p[0], c = p[1], key = e.key, last = cells[r].length - 1;
    var moving = { ArrowUp: 1, ArrowDown: 1, Enter: 1, Tab: 1 };
    if (kind === 'wpm' && moving[key]) {
      // The first move after a refusal stays put, so a quick "200, Enter" does not leave the pupil unnoticed.
      var refused = input.getAttribute('data-refused');
      if (refused) { input.removeAttribute('data-refused'); hint(r, refused); e.preventDefault(); return; }
      if (!checkNumber(input)) { e.preventDefault(); return; }
      changed(r);
    }
    switch (key) {
      case 'ArrowUp': focusCell(r - 1, c); break;
      case 'ArrowDown': focusCell(r + 1, c); break;
      case 'ArrowLeft': // never onto another pupil: at the row's start it stays
        if (kind !== 'items') { return; }
        focusCell(r, c - 1 < 0 ? 0 : c - 1);
        break;
      case 'ArrowRight':
        if (kind !== 'items') { return; }
        focusCell(r, c + 1 > last ? last : c + 1);
        break;
      case 'Home': if (kind !== 'items') { return; } focusCell(r, 0); break;
      case 'End': if (kind !== 'items') { return; } focusCell(r, last); break;
      case 'Enter':
        if (!focusCell(e.shiftKey ? r - 1 : r + 1, c) && !e.shiftKey) { afterLast(); }
        break;
      case 'Tab':
        if (!(e.shiftKey ? prev(r, c) : next(r, c))) { return; } // leave the table the usual way
        break;
      case 'Backspace': case 'Delete':
        if (kind !== 'items') { input.removeAttribute('data-refused'); unhint(r); return; }
        clear(input);
        break;
      default:
        if (key.length !== 1) { return; }
        e.preventDefault();
        var k = key.toLowerCase();
        if (kind === 'items') {
          if (k === '1' || k === '0' || k === 'a') { typeItem(input, k); }
          else { hint(r, msg('bad-key', { key: key })); }
          return;
        }
        if (!/[0-9a]/.test(k)) { hint(r, msg('bad-key', { key: key })); return; }
        var v = input.value, s = input.selectionStart, end = input.selectionEnd;
        if (s === null || end === null) { s = 0; end = v.length; }
        var proposed = (v.slice(0, s) + k + v.slice(end)).trim().toLowerCase();
        var reason = numberProblem(proposed);
        if (reason) { refuseNumber(input, reason); return; }
        unhint(r);
        input.removeAttribute('data-refused');
        input.value = proposed;
        input.setSelectionRange(s + 1, s + 1);
        return;
    }
    e.preventDefault();
  });

  // Paste, autofill or a mouse: whatever got into a cell is checked and saved like typing.
  table.addEventListener('change', function (e) {
    var input = e.target;
    if (input.tagName !== 'INPUT') { return; }
    var r = pos(input)[0];
    if (kind === 'items') {
      var v = input.value.trim().toLowerCase();
      if (v !== '' && v !== '1' && v !== '0' && v !== 'a') {
        input.value = input.getAttribute('data-before') || '';
        hint(r, msg('bad-key', { key: v }));
        return;
      }
    } else if (!checkNumber(input)) { return; }
    changed(r);
  });
  // Digits typed into a number cell are written by the script (no change event): leaving the cell
  // any other way (a click elsewhere) saves it too.
  if (kind === 'wpm') {
    table.addEventListener('focusout', function (e) {
      var input = e.target;
      if (input.tagName !== 'INPUT') { return; }
      if (checkNumber(input)) { changed(pos(input)[0]); }
    });
  }

  function pending() {
    return state.some(function (s, r) { return s.busy || s.failed || values(r).join('|') !== s.saved; });
  }
  window.addEventListener('beforeunload', function (e) {
    if (pending()) { e.preventDefault(); e.returnValue = ''; }
  });
  // "Next exercise" waits for the last row's save instead of asking to leave unsaved work.
  if (nextLink) {
    nextLink.addEventListener('click', function (e) {
      if (!state.some(function (s) { return s.busy; })) { return; }
      e.preventDefault();
      var wait = setInterval(function () {
        if (state.some(function (s) { return s.busy; })) { return; }
        clearInterval(wait);
        if (!pending()) { window.location.href = nextLink.href; }
      }, 100);
    });
  }

  form.addEventListener('submit', function (e) { e.preventDefault(); rows.forEach(function (_, r) { changed(r); }); });

  // The cursor starts where the work is: the first cell not entered yet (or the very first one).
  var firstEmpty = null;
  cells.some(function (row) {
    return row.some(function (i) { if (i.value.trim() === '') { firstEmpty = i; return true; } return false; });
  });
  var start = firstEmpty || (cells[0] && cells[0][0]);
  if (start && (!document.activeElement || document.activeElement === document.body)) { start.focus(); start.select(); }
})();
