// Keyboard review: a approve, r reject, e correct, s/j next, k previous, ? keys, Esc leaves a box.
(function () {
  "use strict";
  const form = document.getElementById("review-form");
  if (!form) return;
  const click = (id) => { const el = document.getElementById(id); if (el) el.click(); };
  const go = (id) => { const el = document.getElementById(id); if (el) window.location.href = el.href; };
  const startCorrection = () => {
    const box = document.getElementById("correction");
    const text = document.getElementById("corrected-text");
    box.hidden = false;
    text.disabled = false;
    document.getElementById("correcting").disabled = false;
    text.focus();
  };
  document.getElementById("correct").addEventListener("click", startCorrection);
  const help = document.getElementById("keys-help");
  const button = document.getElementById("keys-button");
  if (button && help) button.addEventListener("click", () => { help.hidden = !help.hidden; });
  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest("input, textarea, select");
    if (typing) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const actions = {
      a: () => click("approve"),
      r: () => click("reject"),
      e: startCorrection,
      s: () => go("queue-next"),
      j: () => go("queue-next"),
      k: () => go("queue-prev"),
      "?": () => { if (help) help.hidden = !help.hidden; },
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });
})();
