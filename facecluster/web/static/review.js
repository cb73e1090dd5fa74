// The little the page needs beyond forms: selected cards and faces are highlighted, and the
// buttons that act on a selection say how many are selected (and stay off while none is).
(function () {
  function refresh(form) {
    var ticked = form.querySelectorAll('input[type=checkbox]:checked').length;
    form.querySelectorAll('button.needs-selection').forEach(function (button) {
      button.disabled = ticked === 0;
      button.textContent = button.getAttribute('data-label') + (ticked ? ' (' + ticked + ')' : '');
    });
  }
  document.addEventListener('change', function (event) {
    var box = event.target;
    if (box.type !== 'checkbox' || !box.form) return;
    var item = box.closest('.card, .face');
    if (item) item.classList.toggle('selected', box.checked);
    refresh(box.form);
  });
  document.querySelectorAll('form').forEach(refresh);
})();
