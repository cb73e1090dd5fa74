// The little the page needs beyond forms: selected cards and faces are highlighted, the buttons
// that act on a selection say how many are selected (and stay off while none is), "Select all",
// and drawing a box on a photo around a face the detector missed. The static export (no forms)
// uses this file too, for its one tool: the command that names a group follows the name typed.
(function () {
  // Naming a group in the static export: the command follows the name typed, quoted for a POSIX shell.
  function quoted(text) {
    if (/^[A-Za-z0-9_.,:+@%\/=-]+$/.test(text) && text[0] !== '-') return text;
    return "'" + text.replace(/'/g, "'\"'\"'") + "'";
  }
  function command() {
    var code = document.getElementById('cmd'), input = document.getElementById('name');
    var name = input ? input.value.trim() : '';
    var base = code.getAttribute('data-command');
    if (!name) return base + ' ';
    return base + (name[0] === '-' ? ' -- ' : ' ') + quoted(name);
  }
  document.addEventListener('input', function (event) {
    var code = document.getElementById('cmd');
    if (event.target.id !== 'name' || !code) return;  // the review's own name box names the group itself
    var text = command();
    code.textContent = text.trim() === code.getAttribute('data-command') ? text + 'NAME' : text;
  });
  document.addEventListener('click', function (event) {
    var button = event.target.closest('button.copy');
    if (!button || !document.getElementById('cmd')) return;
    var text = command();
    function done() { button.textContent = 'Copied'; setTimeout(function () { button.textContent = 'Copy'; }, 1500); }
    function fallback() {
      var area = document.createElement('textarea');
      area.value = text; document.body.appendChild(area); area.select();
      try { document.execCommand('copy'); done(); } catch (e) { button.textContent = 'Select and copy'; }
      document.body.removeChild(area);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, fallback);
    } else { fallback(); }
  });

  // form.elements, not querySelectorAll: a checkbox or button may belong to a form it is not
  // inside (form="..."), where a face's own yes/no forms sit between them.
  function controls(form, test) {
    return Array.prototype.filter.call(form.elements, test);
  }
  function refresh(form) {
    var ticked = controls(form, function (e) { return e.type === 'checkbox' && e.checked; }).length;
    controls(form, function (e) { return e.classList.contains('needs-selection'); }).forEach(function (button) {
      button.disabled = ticked === 0;
      button.textContent = button.getAttribute('data-label') + (ticked ? ' (' + ticked + ')' : '');
    });
  }
  function mark(box) {
    var item = box.closest('.card, .face');
    if (item) item.classList.toggle('selected', box.checked);
  }
  document.addEventListener('change', function (event) {
    var box = event.target;
    if (box.type !== 'checkbox' || !box.form) return;
    mark(box);
    refresh(box.form);
  });
  document.addEventListener('click', function (event) {
    var button = event.target.closest('button.select-all');
    if (!button || !button.form) return;
    var boxes = controls(button.form, function (e) { return e.type === 'checkbox'; });
    var all = boxes.every(function (b) { return b.checked; });
    boxes.forEach(function (b) { b.checked = !all; mark(b); });
    refresh(button.form);
  });
  document.querySelectorAll('form').forEach(refresh);

  // Draw a face: drag on the photo; the box goes into the form in the photo's own (full-size) pixels.
  var photo = document.getElementById('photo');
  var form = document.getElementById('draw-form');
  var band = document.getElementById('drawn-box');
  if (!photo || !form || !band) return;
  var start = null;
  var smallest = Number(form.getAttribute('data-smallest')) || 20;
  function point(event) {
    var r = photo.getBoundingClientRect();
    return {
      x: Math.min(Math.max(event.clientX - r.left, 0), r.width),
      y: Math.min(Math.max(event.clientY - r.top, 0), r.height)
    };
  }
  function rect(a, b) {
    return {x: Math.min(a.x, b.x), y: Math.min(a.y, b.y), w: Math.abs(a.x - b.x), h: Math.abs(a.y - b.y)};
  }
  function show(r) {
    band.hidden = false;
    band.style.left = (photo.offsetLeft + r.x) + 'px';
    band.style.top = (photo.offsetTop + r.y) + 'px';
    band.style.width = r.w + 'px';
    band.style.height = r.h + 'px';
  }
  function finish(r) {
    var scale = Number(photo.getAttribute('data-width')) / photo.getBoundingClientRect().width;
    var box = {x: Math.round(r.x * scale), y: Math.round(r.y * scale), w: Math.round(r.w * scale), h: Math.round(r.h * scale)};
    ['x', 'y', 'w', 'h'].forEach(function (k) { form.elements[k].value = box[k]; });
    var big = Math.min(box.w, box.h) >= smallest;
    document.getElementById('draw-save').disabled = !big;
    document.getElementById('draw-hint').textContent = big
      ? 'Box: ' + box.w + ' x ' + box.h + ' pixels at (' + box.x + ', ' + box.y + '). Add it, or drag again.'
      : 'Too small: a face must be at least ' + smallest + ' pixels a side in the photo. Drag again.';
  }
  photo.addEventListener('dragstart', function (event) { event.preventDefault(); });
  photo.addEventListener('pointerdown', function (event) {
    if (event.button !== 0) return;
    event.preventDefault();
    start = point(event);
    photo.setPointerCapture(event.pointerId);
    show(rect(start, start));
  });
  photo.addEventListener('pointermove', function (event) {
    if (start) show(rect(start, point(event)));
  });
  photo.addEventListener('pointerup', function (event) {
    if (!start) return;
    var r = rect(start, point(event));
    start = null;
    show(r);
    finish(r);
  });
})();
