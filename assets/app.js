// vetter's only script besides htmx: keyboard shortcuts and small page
// behaviours that CSP forbids inline. Pages declare their shortcuts with
// data-key attributes; this file wires them up.
(function () {
  "use strict";

  function typing(e) {
    const t = e.target;
    return t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
  }

  function helpOverlay() {
    let el = document.getElementById("shortcut-help");
    if (el) return el;
    el = document.createElement("div");
    el.id = "shortcut-help";
    el.className = "help-overlay";
    el.hidden = true;
    const card = document.createElement("div");
    card.className = "card";
    const h = document.createElement("h2");
    h.textContent = "Keyboard shortcuts";
    card.appendChild(h);
    const table = document.createElement("table");
    const rows = [["?", "show or hide this help"], ["Esc", "close this help, dismiss messages"]];
    document.querySelectorAll("[data-key]").forEach(function (n) {
      rows.push([n.dataset.key, n.dataset.keyHelp || n.textContent.trim()]);
    });
    rows.forEach(function (r) {
      const tr = document.createElement("tr");
      const k = document.createElement("td");
      const kbd = document.createElement("kbd");
      kbd.textContent = r[0];
      k.appendChild(kbd);
      const d = document.createElement("td");
      d.textContent = r[1];
      tr.appendChild(k);
      tr.appendChild(d);
      table.appendChild(tr);
    });
    card.appendChild(table);
    el.appendChild(card);
    el.addEventListener("click", function () { el.hidden = true; });
    document.body.appendChild(el);
    return el;
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e)) return;
    if (e.key === "?") {
      const el = helpOverlay();
      el.hidden = !el.hidden;
      e.preventDefault();
      return;
    }
    if (e.key === "Escape") {
      const el = document.getElementById("shortcut-help");
      if (el) el.remove();
      document.querySelectorAll("#toasts .toast").forEach(function (t) { t.remove(); });
      return;
    }
    const target = document.querySelector('[data-key="' + CSS.escape(e.key) + '"]');
    if (target) {
      e.preventDefault();
      target.click();
    }
  });

  document.addEventListener("click", function (e) {
    const close = e.target.closest(".toast-close");
    if (close) close.parentElement.remove();
    const copy = e.target.closest("[data-copy]");
    if (copy) {
      const src = document.querySelector(copy.dataset.copy);
      const text = src ? (src.value !== undefined ? src.value : src.textContent).trim() : "";
      if (text && navigator.clipboard) {
        navigator.clipboard.writeText(text).then(function () {
          const was = copy.textContent;
          copy.textContent = "Copied";
          setTimeout(function () { copy.textContent = was; }, 1500);
        });
      } else if (src && src.select) {
        src.select();
      }
    }
  });
})();
