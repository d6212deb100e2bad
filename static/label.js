// Keyboard labelling, for every label page: a key clicks the control of the label form marked
// with it in data-key (1, 2, 3: the choices; e: a box to tick), s skips, v shows the model's view.
(function () {
  "use strict";
  const form = document.getElementById("label-form");
  if (!form) return;
  document.addEventListener("keydown", (event) => {
    // Typing in a field is typing, not labelling; a ticked box keeps the keys working.
    if (event.target.closest("input:not([type=checkbox]), textarea, select")) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const actions = {
      s: () => { window.location.href = document.getElementById("skip").href; },
      v: () => { const view = document.getElementById("ai-view"); view.open = !view.open; },
    };
    const marked = Array.from(form.querySelectorAll("[data-key]"))
      .find((el) => el.dataset.key === event.key);
    const action = actions[event.key] || (marked ? () => marked.click() : null);
    if (action) {
      event.preventDefault();
      action();
    }
  });
})();
