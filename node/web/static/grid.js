/* Préau result-entry grid: spreadsheet keys and save-as-you-go on top of a plain HTML form.
 * Without this script (or without fetch) the form still works: one "Save" button posts the table.
 * Each row is saved whole (POST JSON + X-CSRF-Token) after every change; saves of one row never overlap,
 * so the last thing typed is the last thing stored. Every visible text comes from data-msg-* attributes. */
(function () {
  'use strict';
  var table = document.querySelector('table.grid[data-save-url]');
  if (!table || !window.fetch || !window.Promise || !window.JSON) { return; }
  var form = table.closest('form');
  var csrf = form.querySelector('input[name="csrf_token"]').value;
  var url = table.getAttribute('data-save-url');
  var kind = table.getAttribute('data-kind');
  var max = parseInt(table.getAttribute('data-max'), 10);
  var msg = function (name) { return table.getAttribute('data-msg-' + name) || ''; };
  document.documentElement.className += ' js';

  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var cells = rows.map(function (tr) { return Array.prototype.slice.call(tr.querySelectorAll('input')); });
  var state = rows.map(function () { return { busy: false, again: false, failed: false, saved: null, sent: null }; });
  rows.forEach(function (tr, r) {
    state[r].saved = state[r].sent = values(r).join('|');
    cells[r].forEach(function (input, c) {
      input.setAttribute('data-r', r);
      input.setAttribute('data-c', c);
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
  function next(r, c) { // right, then the start of the next row
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
    setStatus(r, 'saving', msg('saving'));
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
        setScore(r, res.body.score_text || '', res.body.group, res.body.group_label);
        if (s.again) { s.again = false; save(r); return; }
        setStatus(r, 'saved', msg('saved'));
      } else {
        s.again = false;
        s.failed = true;
        setStatus(r, 'error', msg('error') + (res.body && res.body.error ? ' : ' + res.body.error : ''), true);
      }
    }, function () {
      s.busy = false;
      s.again = false;
      s.failed = true;
      setStatus(r, 'error', msg('error'), true);
    });
  }

  function changed(r) {
    if (values(r).join('|') !== state[r].sent || state[r].failed) { save(r); }
  }

  function typeItem(input, key) {
    var p = pos(input), r = p[0], c = p[1], row = cells[r];
    if (key === 'a') {
      row.forEach(function (i) { i.value = 'a'; });
      changed(r);
      focusCell(r + 1, 0) || input.select();
      return;
    }
    if (row.some(function (i) { return i.value === 'a'; })) { row.forEach(function (i) { i.value = ''; }); }
    input.value = key;
    changed(r);
    next(r, c) || input.select();
  }

  function clear(input) {
    var p = pos(input), r = p[0];
    if (input.value.toLowerCase() === 'a') { cells[r].forEach(function (i) { i.value = ''; }); }
    else { input.value = ''; }
    changed(r);
  }

  function checkNumber(r) {
    var v = cells[r][0].value.trim().toLowerCase();
    if (v === '' || v === 'a' || (/^\d{1,4}$/.test(v) && parseInt(v, 10) <= max)) { return true; }
    setStatus(r, 'hint', msg('invalid'));
    return false;
  }

  table.addEventListener('keydown', function (e) {
    var input = e.target;
    if (input.tagName !== 'INPUT' || e.ctrlKey || e.metaKey || e.altKey) { return; }
    var p = pos(input), r = p[0], c = p[1], key = e.key;
    var moving = { ArrowUp: 1, ArrowDown: 1, ArrowLeft: 1, ArrowRight: 1, Enter: 1, Tab: 1 };
    if (kind === 'wpm' && moving[key]) {
      if (!checkNumber(r)) { e.preventDefault(); return; }
      changed(r);
    }
    var moved = true;
    switch (key) {
      case 'ArrowUp': focusCell(r - 1, c); break;
      case 'ArrowDown': focusCell(r + 1, c); break;
      case 'ArrowLeft': if (kind === 'items') { prev(r, c); } else { moved = false; } break;
      case 'ArrowRight': if (kind === 'items') { next(r, c); } else { moved = false; } break;
      case 'Enter': focusCell(e.shiftKey ? r - 1 : r + 1, c); break;
      case 'Tab': moved = e.shiftKey ? prev(r, c) : next(r, c); break;
      case 'Backspace': case 'Delete':
        if (kind === 'items') { clear(input); } else { moved = false; }
        break;
      default:
        moved = false;
        if (key.length !== 1) { return; }
        if (kind === 'items') {
          var k = key.toLowerCase();
          if (k === '1' || k === '0' || k === 'a') { typeItem(input, k); }
          else { setStatus(r, 'hint', msg('invalid')); }
          e.preventDefault();
        } else if (!/[0-9aA]/.test(key)) {
          e.preventDefault();
          setStatus(r, 'hint', msg('invalid'));
        }
        return;
    }
    if (moved || key === 'Enter' || (kind === 'items' && (key === 'Backspace' || key === 'Delete'))) { e.preventDefault(); }
  });

  // Paste, autofill or a mouse: whatever got into a cell is checked and saved like typing.
  table.addEventListener('change', function (e) {
    var input = e.target;
    if (input.tagName !== 'INPUT') { return; }
    var r = pos(input)[0];
    if (kind === 'items') {
      var v = input.value.trim().toLowerCase();
      if (v !== '' && v !== '1' && v !== '0' && v !== 'a') { input.value = ''; setStatus(r, 'hint', msg('invalid')); return; }
    } else if (!checkNumber(r)) { return; }
    changed(r);
  });

  window.addEventListener('beforeunload', function (e) {
    var pending = state.some(function (s, r) { return s.busy || s.failed || values(r).join('|') !== s.saved; });
    if (pending) { e.preventDefault(); e.returnValue = ''; }
  });

  form.addEventListener('submit', function (e) { e.preventDefault(); rows.forEach(function (_, r) { changed(r); }); });
})();
