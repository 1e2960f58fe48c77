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

  // Keypress-to-paint timings for the rating flow (read by the browser
  // test and the bench): from the key to every picture of the next
  // candidate drawn.
  window.__vetterPaints = window.__vetterPaints || [];
  // And where that time went: for each paint, the milliseconds after the
  // key at which the response had arrived, was swapped in and settled.
  window.__vetterPaintSteps = window.__vetterPaintSteps || [];
  let keyAt = null;
  let steps = {};
  function step(name) { if (keyAt !== null && !(name in steps)) steps[name] = performance.now() - keyAt; }
  document.addEventListener("htmx:beforeSend", function () { step("sent"); });
  document.addEventListener("htmx:beforeSwap", function () { step("response"); });
  document.addEventListener("htmx:afterSwap", function () { step("swapped"); });
  document.addEventListener("htmx:afterSettle", function () { step("settled"); });

  // A candidate is painted once each of its pictures has drawn (or failed):
  // canvases tell with sky:drawn, images by loading. Until then, and for
  // the project's guard time after, verdict keys are dropped, so that a
  // double press cannot rate a candidate nobody has seen.
  function candidate() { return document.getElementById("candidate"); }
  // Pictures can also change under us (the movie player swaps its GIF for
  // a strip), so until painted this looks again a little later.
  let recheck = null;
  let ready = false; // see start()
  function checkPainted() {
    const root = candidate();
    if (!ready || !root || root.dataset.paintedAt) return;
    const waiting = Array.from(root.querySelectorAll("figure.sky")).some(function (f) {
      return !f.classList.contains("sky-ready") && !f.classList.contains("sky-failed");
    }) || Array.from(root.querySelectorAll(".figures img")).some(function (img) { return !img.complete; });
    if (waiting) {
      clearTimeout(recheck);
      recheck = setTimeout(checkPainted, 50);
      return;
    }
    step("drawn");
    requestAnimationFrame(function () {
      if (root.dataset.paintedAt) return;
      const now = performance.now();
      root.dataset.paintedAt = String(now);
      root.dispatchEvent(new CustomEvent("candidate:painted", { bubbles: true }));
      if (keyAt !== null) {
        window.__vetterPaints.push(now - keyAt);
        steps.painted = now - keyAt;
        window.__vetterPaintSteps.push(steps);
        keyAt = null;
      }
    });
  }
  document.addEventListener("sky:drawn", checkPainted);
  document.addEventListener("load", function (e) {
    if (e.target.tagName === "IMG") checkPainted();
  }, true);
  document.addEventListener("error", function (e) {
    if (e.target.tagName === "IMG") checkPainted();
  }, true);

  let inFlight = false;
  document.addEventListener("htmx:beforeRequest", function (e) {
    if (e.target.closest && e.target.closest("#rating-form")) inFlight = true;
  });
  document.addEventListener("htmx:afterRequest", function () { inFlight = false; });
  function verdictAllowed() {
    const root = candidate();
    if (!root || inFlight) return false;
    const at = parseFloat(root.dataset.paintedAt || "");
    if (!(at > 0)) return false;
    return performance.now() - at >= (parseInt(root.dataset.guardMs, 10) || 0);
  }
  function dropped() {
    const root = candidate();
    if (!root) return;
    root.classList.remove("key-dropped");
    void root.offsetWidth; // restart the animation
    root.classList.add("key-dropped");
  }

  // A reviewer who reads every candidate's details keeps them open; they
  // are fetched once the pictures are up.
  let keepDetailsOpen = false;
  document.addEventListener("candidate:painted", function () {
    const more = document.getElementById("more");
    if (keepDetailsOpen && more) more.open = true;
    keepDetailsOpen = false;
  });

  // A new candidate: at the top, its name focused and announced.
  document.addEventListener("htmx:afterSettle", function () {
    const root = candidate();
    if (!root || root.dataset.arrived) return;
    root.dataset.arrived = "1";
    window.scrollTo(0, 0);
    const title = document.getElementById("cand-title");
    if (title) title.focus({ preventScroll: true });
    const say = document.getElementById("announce");
    if (say) say.textContent = "Candidate " + (root.dataset.candidateName || "");
    checkPainted();
  });
  document.addEventListener("animationend", function (e) {
    if (e.target.classList && e.target.classList.contains("toast")) e.target.remove();
  });

  // The server describes its own failures with a toast it retargets to
  // #toasts. When it cannot be reached, or something in front of it (nginx)
  // answers instead, there is no such toast: say so here, in the same form,
  // rather than leaving the page unchanged or swapping in a blank or foreign
  // page. A pending paint timing belongs to no swap then, so it is dropped.
  const UNREACHABLE = "Could not reach the server; nothing was saved \u2014 try again.";
  function errorToast(message) {
    keyAt = null;
    inFlight = false;
    const area = document.getElementById("toasts");
    if (!area) return;
    // Pressing again while the server is away must not pile up copies.
    area.querySelectorAll(".toast").forEach(function (t) {
      if (t.firstChild && t.firstChild.nodeValue === message) t.remove();
    });
    // The same markup as templates/partials/toast.html, which the server cannot
    // send while it is unreachable.
    const el = document.createElement("div");
    el.className = "toast toast-error";
    el.setAttribute("role", "status");
    el.appendChild(document.createTextNode(message));
    const close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "\u00d7";
    el.appendChild(close);
    area.appendChild(el);
  }
  document.addEventListener("htmx:sendError", function () { errorToast(UNREACHABLE); });
  document.addEventListener("htmx:timeout", function () { errorToast(UNREACHABLE); });
  document.addEventListener("htmx:beforeSwap", function (e) {
    const xhr = e.detail.xhr;
    if (!xhr || xhr.status < 400 || xhr.getResponseHeader("HX-Retarget")) {
      // The next candidate replaces this one whole. Its old contents hold
      // nothing htmx must undo (no polling, no triggers from elsewhere), so
      // dropping them here spares htmx cleaning each element one by one,
      // about 5 ms of every rating.
      const t = e.detail.target;
      if (e.detail.shouldSwap && t && t.id === "candidate" && !xhr.getResponseHeader("HX-Retarget")) {
        const more = document.getElementById("more");
        keepDetailsOpen = !!(more && more.open);
        t.replaceChildren();
      }
      return;
    }
    // Our own 4xx fragments (a form with its problems) swap as designed;
    // any 5xx, a blank body or a whole page did not come from a handler.
    const body = xhr.responseText || "";
    if (xhr.status < 500 && body.trim() && !/<html[\s>]/i.test(body)) return;
    e.detail.shouldSwap = false;
    errorToast(xhr.status >= 502 && xhr.status <= 504
      ? UNREACHABLE
      : "The server could not finish this (HTTP " + xhr.status + "); nothing was saved \u2014 try again.");
  });

  // The reviewer's keys (/account; WCAG 2.1.4). Pages keep their default
  // keys in data-key; <body> maps default -> reviewer key, and with
  // single-key shortcuts off a character key only acts with Alt.
  const keyMap = new Map(Object.entries(JSON.parse(document.body.dataset.keyMap || "{}")));
  const keyOwner = new Map(Array.from(keyMap, function (kv) { return [kv[1], kv[0]]; }));
  const altKeys = document.body.dataset.singleKeys === "off";
  function isChar(k) { return Array.from(k).length === 1; }
  // The control a pressed key stands for: the one whose default it replaces
  // if this page has it (other pages' letters stay theirs), else its own,
  // unless that default was given another key.
  // While a panel that asks for a decision is open (rating many at once),
  // only its own keys act: a stray "n" must not rate the candidate behind it.
  function keyScope() { return document.querySelector("[data-modal]") || document; }
  function keyTarget(k) {
    const scope = keyScope();
    const find = function (d) { return scope.querySelector('[data-key="' + CSS.escape(d) + '"]'); };
    return (keyOwner.has(k) && find(keyOwner.get(k))) || (!keyMap.has(k) && find(k)) || null;
  }
  function keyLabel(d) {
    const k = keyMap.get(d) || d;
    return altKeys && isChar(k) ? "Alt+" + k : k;
  }
  // A control's <kbd> is inside it or its label; a hint in prose names its
  // default key in data-key-label.
  function relabel() {
    document.querySelectorAll("[data-key], kbd[data-key-label]").forEach(function (n) {
      const kbd = n.tagName === "KBD" ? n : n.querySelector("kbd") || (n.closest("label") || n).querySelector("kbd");
      if (kbd) kbd.textContent = keyLabel(n.dataset.key || n.dataset.keyLabel);
    });
  }
  relabel();
  document.addEventListener("htmx:afterSwap", relabel);

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
    const rows = [[keyLabel("?"), "show or hide this help"], ["Esc", "close this help, dismiss messages"]];
    document.querySelectorAll("[data-key]").forEach(function (n) {
      rows.push([keyLabel(n.dataset.key), n.dataset.keyHelp || n.textContent.trim()]);
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
    if (e.ctrlKey || e.metaKey || e.altKey !== (altKeys && isChar(e.key))) return;
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
      document.querySelectorAll("[data-modal]").forEach(function (m) { m.remove(); });
      const el = document.getElementById("shortcut-help");
      if (el) el.remove();
      document.querySelectorAll("#toasts .toast").forEach(function (t) { t.remove(); });
      return;
    }
    const target = keyTarget(e.key);
    if (!target) return;
    // A verdict key is refused visibly, also while the buttons are
    // disabled for the rating on its way.
    if (target.hasAttribute("data-verdict") && (target.disabled || !verdictAllowed())) {
      e.preventDefault();
      dropped();
      return;
    }
    if (target.disabled) return;
    e.preventDefault();
    if (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && TEXT_TYPES.includes(target.type))) {
      target.focus();
      return;
    }
    // Timed: keys that bring another candidate (not those that redraw a part).
    if (target.closest('[hx-target="#candidate"]')) { keyAt = performance.now(); steps = {}; }
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
  function start() {
    ready = true;
    const root = candidate();
    if (root) root.dataset.arrived = "1"; // a whole page starts at the top anyway
    checkPainted();
  }
  // After htmx has set the page up (its own DOMContentLoaded handler comes
  // first, as its script does): the paint event triggers requests (the
  // nearby list), which a listener htmx has not yet attached would miss.
  if (document.readyState === "complete") start();
  else document.addEventListener("DOMContentLoaded", start);
})();
