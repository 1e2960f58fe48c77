// Movie player for animated GIFs (templates/candidate/_gif_player.html).
// The server stores each GIF also as a strip of frames, one PNG with the
// frames stacked top to bottom; once the strip has loaded, the GIF is
// replaced by a box that shows one frame of it at a time, with play/pause
// and a slider. Without this script the GIF simply plays.
(function () {
  "use strict";

  const players = []; // live players: {fig, timer, frame, pause}
  const loading = new WeakSet();

  function wire(fig) {
    const frames = parseInt(fig.dataset.frames, 10);
    const ms = Math.max(20, parseInt(fig.dataset.frameMs, 10) || 100);
    const w = parseInt(fig.dataset.width, 10), h = parseInt(fig.dataset.height, 10);
    const old = fig.querySelector("img, .gp-screen");
    if (!(frames > 0 && w > 0 && h > 0) || !fig.dataset.strip || !old) return;
    loading.add(fig);
    const probe = new Image();
    probe.onerror = function () { loading.delete(fig); }; // keep the GIF
    probe.onload = function () {
      loading.delete(fig);
      if (!fig.isConnected) return;
      // A box like the other images' (CSS .gp-screen), holding a view of
      // exactly one frame, scaled to fit: whole pixels, so no neighbour
      // frame shows at the edges.
      const screen = document.createElement("div");
      screen.className = "gp-screen";
      const view = document.createElement("div");
      view.className = "gp-view";
      view.setAttribute("role", "img");
      view.setAttribute("aria-label", old.getAttribute("alt") || old.querySelector("[aria-label]")?.getAttribute("aria-label") || "");
      screen.appendChild(view);
      old.replaceWith(screen);
      const scale = Math.min((screen.clientWidth || 300) / w, (screen.clientHeight || 300) / h);
      const fw = Math.max(1, Math.floor(w * scale)), fh = Math.max(1, Math.floor(h * scale));
      view.style.width = fw + "px";
      view.style.height = fh + "px";
      view.style.backgroundImage = 'url("' + encodeURI(fig.dataset.strip) + '")';
      view.style.backgroundSize = fw + "px " + fh * frames + "px";
      view.style.backgroundRepeat = "no-repeat";
      fig.dataset.gpReady = "1";
      start(fig, view, frames, ms, fh);
    };
    probe.src = fig.dataset.strip;
  }

  function start(fig, view, frames, ms, fh) {
    const p = { fig: fig, timer: null, frame: 0 };
    const button = fig.querySelector(".gp-toggle");
    const scrub = fig.querySelector(".gp-scrub");
    const counter = fig.querySelector(".gp-frame");
    const controls = fig.querySelector(".gp-controls");
    if (controls) controls.hidden = false;

    function show(k) {
      p.frame = k;
      view.style.backgroundPosition = "0 " + -k * fh + "px";
      if (scrub) scrub.value = String(k);
      if (counter) counter.textContent = k + 1 + " / " + frames;
    }
    p.pause = function () {
      clearInterval(p.timer);
      p.timer = null;
      if (button) button.textContent = "Play";
    };
    function play() {
      if (p.timer || frames < 2) return;
      p.timer = setInterval(function () {
        if (!fig.isConnected) return stop(p);
        show((p.frame + 1) % frames);
      }, ms);
      if (button) button.textContent = "Pause";
    }
    function toggle() { if (p.timer) p.pause(); else play(); }

    if (button) button.addEventListener("click", toggle);
    if (scrub) scrub.addEventListener("input", function () { p.pause(); show(parseInt(scrub.value, 10) || 0); });
    fig.tabIndex = 0;
    fig.addEventListener("keydown", function (e) {
      // A focused button already clicks on Space.
      if (e.key !== " " || e.target.tagName === "BUTTON") return;
      e.preventDefault();
      toggle();
    });
    players.push(p);
    show(0);
    if (window.matchMedia && matchMedia("(prefers-reduced-motion: reduce)").matches) p.pause();
    else play();
  }

  function stop(p) {
    p.pause();
    const i = players.indexOf(p);
    if (i >= 0) players.splice(i, 1);
  }

  function init() {
    players.slice().forEach(function (p) { if (!p.fig.isConnected) stop(p); });
    document.querySelectorAll(".gif-player").forEach(function (fig) {
      // A figure marked ready but not live came back from htmx's history
      // cache without its timer: wire it again.
      const live = players.some(function (p) { return p.fig === fig; });
      if (!live && !loading.has(fig)) wire(fig);
    });
  }

  document.addEventListener("htmx:afterSettle", init);
  document.addEventListener("htmx:historyRestore", init);
  init();
})();
