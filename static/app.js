// Confirm dialogs for plain forms: the question is the form's data-confirm text, read as text,
// so a name in it can never run as code (the CSP forbids inline handlers anyway).
// htmx forms use hx-confirm instead: htmx sends their request before this listener would run.
(function () {
  "use strict";
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
})();
