// Keyboard labelling: 1 chooses A, 2 chooses B, 3 a tie, s skips, v shows the model's view.
(function () {
  "use strict";
  const form = document.getElementById("label-form");
  if (!form) return;
  const click = (id) => { const el = document.getElementById(id); if (el) el.click(); };
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, textarea, select")) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const actions = {
      "1": () => click("choose-a"),
      "2": () => click("choose-b"),
      "3": () => click("choose-tie"),
      s: () => { window.location.href = document.getElementById("skip").href; },
      v: () => { const view = document.getElementById("ai-view"); view.open = !view.open; },
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });
})();
