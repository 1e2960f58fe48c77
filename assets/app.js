// vetter's only script besides htmx: keyboard shortcuts and small page
// behaviours that CSP forbids inline. Pages declare their shortcuts with
// data-key attributes; this file wires them up.
(function () {
  "use strict";

  // Keys are shortcuts except where they are text: a focused checkbox or
  // button must not swallow them.
  const TEXT_TYPES = ["text", "search", "number", "password", "email", "url", "tel", "date", "time"];
  function typing(e) {
    const t = e.target;
    if (!t) return false;
    if (t.isContentEditable || t.tagName === "TEXTAREA" || t.tagName === "SELECT") return true;
    return t.tagName === "INPUT" && TEXT_TYPES.includes((t.type || "text").toLowerCase());
  }

  // Keypress-to-paint timings for the rating flow (read by the browser test).
  window.__vetterPaints = window.__vetterPaints || [];
  let keyAt = null;
  document.addEventListener("htmx:afterSwap", function () {
    if (keyAt === null) return;
    const started = keyAt;
    keyAt = null;
    requestAnimationFrame(function () {
      window.__vetterPaints.push(performance.now() - started);
    });
  });

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
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (typing(e)) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
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
    if (!target || target.disabled) return;
    e.preventDefault();
    if (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && TEXT_TYPES.includes(target.type))) {
      target.focus();
      return;
    }
    if (target.hasAttribute("hx-get") || target.hasAttribute("hx-post") || target.type === "submit") {
      keyAt = performance.now();
    }
    // A key pressed the instant new content arrives must still be an htmx
    // request, not a full page load: make sure htmx has seen the element.
    if (window.htmx) window.htmx.process(target.closest("[hx-post], [hx-get], form") || target);
    target.click();
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
