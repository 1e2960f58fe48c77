// The decision screen's images (templates/candidate/_sky.html). Each
// <figure class="sky" data-sky="URL"> gets the image's values from the
// server (GET URL: JSON, see src/web/pages/sky.rs) and draws them on a
// canvas: nearest-neighbour pixels, a stretch and colour map shared by every
// image of the page, a colour bar in the file's unit, a crosshair at the
// candidate, N and E arrows, an angular scale and the beam. Hovering shows
// the sky position and value under the pointer; a cube plays as a movie
// whose frames carry their time. Values arrive north up, east left.
(function () {
  "use strict";

  const STRETCHES = ["linear", "log", "asinh", "zscale"];
  const MAPS = ["grey", "viridis"];
  // viridis at 0, 1/8, …, 1 (sRGB); between them, linear steps.
  const VIRIDIS = [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
    [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]];
  const NAN_RGB = [40, 60, 110]; // as the server's previews: "no data" is never "faint"
  const MARK = "#ff4fd8";
  const FRAME_MS = 250;
  // Small canvases drawn once per candidate: kept in main memory, they are
  // ready at once, where a GPU-backed one costs milliseconds to set up.
  const CPU = { willReadFrequently: true };

  const owner = document.getElementById("sky-prefs");
  const prefsKey = "vetter.sky." + (owner ? owner.dataset.user : "");
  const prefs = (function () {
    try { return JSON.parse(localStorage.getItem(prefsKey)) || {}; } catch (e) { return {}; }
  })();
  if (!STRETCHES.includes(prefs.stretch)) prefs.stretch = "linear";
  if (!MAPS.includes(prefs.map)) prefs.map = "grey";
  function savePrefs() {
    try { localStorage.setItem(prefsKey, JSON.stringify(prefs)); } catch (e) { /* private mode */ }
  }

  const cache = new Map(); // absolute url → Promise of decoded data
  function load(url) {
    url = new URL(url, location.href).href;
    if (!cache.has(url)) {
      const p = fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status)); })
        .then(decode);
      p.catch(function () { cache.delete(url); });
      cache.set(url, p);
      if (cache.size > 64) cache.delete(cache.keys().next().value);
    }
    return cache.get(url);
  }
  function decode(j) {
    const bin = atob(j.values);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    j.data = new Float32Array(bytes.buffer);
    return j;
  }

  // --- colour --------------------------------------------------------------
  function limits(d) { return prefs.stretch === "zscale" ? d.limits.zscale : d.limits.percentile; }
  function curve(t) {
    switch (prefs.stretch) {
      case "log": return Math.log10(1 + 1000 * t) / 3;
      case "asinh": return Math.asinh(10 * t) / Math.asinh(10);
      default: return t;
    }
  }
  function rgb(level, out, o) { // level in [0, 1]
    if (prefs.map === "viridis") {
      const x = level * 8, i = Math.min(7, Math.floor(x)), f = x - i, a = VIRIDIS[i], b = VIRIDIS[i + 1];
      out[o] = a[0] + f * (b[0] - a[0]); out[o + 1] = a[1] + f * (b[1] - a[1]); out[o + 2] = a[2] + f * (b[2] - a[2]);
    } else {
      out[o] = out[o + 1] = out[o + 2] = 255 * level;
    }
    out[o + 3] = 255;
  }
  function levelOf(v, lo, span) {
    const t = (v - lo) / span;
    return curve(t < 0 ? 0 : t > 1 ? 1 : t);
  }
  function paintPixels(d, plane) {
    const w = d.width, h = d.height, n = w * h, base = plane * n;
    const [lo, hi] = limits(d), span = hi - lo || 1;
    const img = new ImageData(w, h), px = img.data;
    for (let i = 0; i < n; i++) {
      const v = d.data[base + i];
      if (Number.isFinite(v)) rgb(levelOf(v, lo, span), px, 4 * i);
      else { px[4 * i] = NAN_RGB[0]; px[4 * i + 1] = NAN_RGB[1]; px[4 * i + 2] = NAN_RGB[2]; px[4 * i + 3] = 255; }
    }
    return img;
  }

  // --- numbers and positions -------------------------------------------------
  function num(v) {
    if (!Number.isFinite(v)) return "—";
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
    return Number(v.toPrecision(3)).toString();
  }
  // Jy values read better in mJy when they are small.
  function withUnit(v, unit) {
    if (unit && /^Jy/.test(unit) && Number.isFinite(v) && Math.abs(v) < 0.1 && v !== 0) {
      return num(v * 1000) + " m" + unit;
    }
    return num(v) + (unit ? " " + unit : "");
  }
  function sexa(deg, hours) {
    let v = hours ? ((deg % 360) + 360) % 360 / 15 : Math.abs(deg);
    const sign = hours ? "" : deg < 0 ? "−" : "+";
    const a = Math.floor(v); v = (v - a) * 60;
    const b = Math.floor(v); const c = (v - b) * 60;
    const p = function (x, d) { const s = x.toFixed(d); return (x < 10 ? "0" : "") + s; };
    return sign + p(a, 0) + ":" + p(b, 0) + ":" + p(c, hours ? 2 : 1);
  }
  // Pixel → sky for the shown grid (TAN or SIN), as src/fits/wcs.rs.
  function sky(w, x, y) {
    const R = Math.PI / 180, dx = x - w.crpix[0], dy = y - w.crpix[1];
    const xi = (w.cd[0][0] * dx + w.cd[0][1] * dy) * R, eta = (w.cd[1][0] * dx + w.cd[1][1] * dy) * R;
    const a0 = w.crval[0] * R, d0 = w.crval[1] * R, s0 = Math.sin(d0), c0 = Math.cos(d0);
    let ra, dec;
    if (w.projection === "TAN") {
      const den = c0 - eta * s0;
      ra = a0 + Math.atan2(xi, den); dec = Math.atan2(s0 + eta * c0, Math.hypot(xi, den));
    } else {
      const rho = Math.hypot(xi, eta);
      if (rho > 1) return null;
      if (rho === 0) { ra = a0; dec = d0; } else {
        const c = Math.asin(rho), sc = Math.sin(c), cc = Math.cos(c);
        ra = a0 + Math.atan2(xi * sc, rho * c0 * cc - eta * s0 * sc);
        dec = Math.asin(Math.max(-1, Math.min(1, cc * s0 + eta * sc * c0 / rho)));
      }
    }
    return [((ra / R) % 360 + 360) % 360, dec / R];
  }

  // --- decorations -------------------------------------------------------------
  function niceScale(arcsecPerPx, widthPx) {
    const steps = [1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];
    const want = widthPx * arcsecPerPx * 0.25;
    let best = steps[0];
    steps.forEach(function (s) { if (s <= want) best = s; });
    return { arcsec: best, label: best >= 3600 ? best / 3600 + "°" : best >= 60 ? best / 60 + "′" : best + "″" };
  }
  function decorate(ctx, d, W, H, k) {
    const sx = W / d.width, sy = H / d.height, dpr = k;
    ctx.lineWidth = 1.5 * dpr;
    function stroked(path) { // a dark halo under each mark, so it shows on any colour
      ctx.strokeStyle = "rgba(0,0,0,.7)"; ctx.lineWidth = 3.5 * dpr; path(); ctx.stroke();
      ctx.strokeStyle = MARK; ctx.lineWidth = 1.5 * dpr; path(); ctx.stroke();
    }
    if (d.target) {
      const x = (d.target[0] + 0.5) * sx, y = (d.target[1] + 0.5) * sy;
      const gap = Math.max(6 * dpr, 1.5 * sx), len = 9 * dpr;
      stroked(function () {
        ctx.beginPath();
        ctx.moveTo(x - gap - len, y); ctx.lineTo(x - gap, y);
        ctx.moveTo(x + gap, y); ctx.lineTo(x + gap + len, y);
        ctx.moveTo(x, y - gap - len); ctx.lineTo(x, y - gap);
        ctx.moveTo(x, y + gap); ctx.lineTo(x, y + gap + len);
      });
    }
    ctx.font = (11 * dpr) + "px system-ui, sans-serif";
    ctx.textBaseline = "middle"; ctx.textAlign = "center";
    function label(text, x, y) {
      ctx.lineWidth = 3 * dpr; ctx.strokeStyle = "rgba(0,0,0,.8)"; ctx.strokeText(text, x, y);
      ctx.fillStyle = "#fff"; ctx.fillText(text, x, y);
    }
    if (d.wcs) {
      // North up, east left: the grid is turned so by the server.
      const ax = W - 10 * dpr, ay = 30 * dpr, L = 18 * dpr;
      stroked(function () {
        ctx.beginPath();
        ctx.moveTo(ax, ay); ctx.lineTo(ax, ay - L); ctx.moveTo(ax - 3 * dpr, ay - L + 4 * dpr); ctx.lineTo(ax, ay - L); ctx.lineTo(ax + 3 * dpr, ay - L + 4 * dpr);
        ctx.moveTo(ax, ay); ctx.lineTo(ax - L, ay); ctx.moveTo(ax - L + 4 * dpr, ay - 3 * dpr); ctx.lineTo(ax - L, ay); ctx.lineTo(ax - L + 4 * dpr, ay + 3 * dpr);
      });
      label("N", ax, ay - L - 7 * dpr);
      label("E", ax - L - 7 * dpr, ay);
    }
    if (d.pixel_arcsec) {
      const s = niceScale(d.pixel_arcsec, d.width), len = s.arcsec / d.pixel_arcsec * sx;
      const x1 = W - 8 * dpr, y = H - 9 * dpr;
      stroked(function () { ctx.beginPath(); ctx.moveTo(x1 - len, y); ctx.lineTo(x1, y); });
      label(s.label, x1 - len / 2, y - 9 * dpr);
    }
    if (d.beam) {
      const rx = d.beam.major_px / 2 * sx, ry = d.beam.minor_px / 2 * sx, r = Math.max(rx, ry);
      const cx = 8 * dpr + r, cy = H - 8 * dpr - r;
      ctx.beginPath(); ctx.ellipse(cx, cy, rx, ry, d.beam.rotation_rad, 0, 2 * Math.PI);
      ctx.fillStyle = "rgba(255,255,255,.35)"; ctx.fill();
      ctx.strokeStyle = "#fff"; ctx.lineWidth = 1.2 * dpr; ctx.stroke();
    }
  }
  function paintBar(fig, d) {
    const bar = fig.querySelector(".sky-bar");
    if (!bar) return;
    const W = bar.width = Math.round(measure(fig).bar * devicePixelRatio) || 200, H = bar.height = 8;
    const ctx = bar.getContext("2d", CPU), img = ctx.createImageData(W, 1);
    for (let x = 0; x < W; x++) rgb(curve(x / (W - 1)), img.data, 4 * x);
    for (let y = 0; y < H; y++) ctx.putImageData(img, 0, y);
    const [lo, hi] = limits(d);
    fig.querySelector(".sky-lo").textContent = withUnit(lo, d.unit);
    fig.querySelector(".sky-hi").textContent = withUnit(hi, d.unit);
    fig.querySelector(".sky-stretch").textContent = prefs.stretch + (d.unit ? "" : " · no BUNIT");
  }

  // --- one figure ---------------------------------------------------------------
  // The widths a figure is drawn at, read once (all figures together, when
  // they arrive) rather than on each paint: each read after a change would
  // make the browser lay the page out again.
  function measure(fig) {
    if (!fig._size) {
      const c = fig.querySelector("canvas.sky-image"), b = fig.querySelector(".sky-bar");
      fig._size = { image: c ? c.clientWidth : 0, bar: b ? b.clientWidth : 0 };
    }
    return fig._size;
  }
  // How long each drawing takes (read by the browser bench, to weigh
  // drawing here against asking the server for a re-rendered image).
  window.__vetterSkyPaints = window.__vetterSkyPaints || [];
  function paint(fig) {
    const d = fig._sky;
    if (!d) return;
    const t0 = performance.now();
    const canvas = fig.querySelector("canvas.sky-image");
    const k = devicePixelRatio || 1;
    const cw = measure(fig).image;
    const W = canvas.width = Math.max(1, Math.round(cw * k));
    const H = canvas.height = Math.max(1, Math.round(cw * d.height / d.width * k));
    const off = fig._off || (fig._off = document.createElement("canvas"));
    off.width = d.width; off.height = d.height;
    off.getContext("2d", CPU).putImageData(paintPixels(d, fig._plane || 0), 0, 0);
    const ctx = canvas.getContext("2d", CPU);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, 0, 0, W, H);
    decorate(ctx, d, W, H, k);
    paintBar(fig, d);
    const t = fig.querySelector(".sky-time");
    if (t) t.textContent = d.planes[fig._plane || 0].label;
    const scrub = fig.querySelector(".sky-scrub");
    if (scrub) scrub.value = fig._plane || 0;
    window.__vetterSkyPaints.push(performance.now() - t0);
    if (window.__vetterSkyPaints.length > 1000) window.__vetterSkyPaints.splice(0, 500);
  }
  function setPlane(fig, p, quiet) {
    const d = fig._sky;
    if (!d) return;
    const n = d.planes.length;
    fig._plane = ((p % n) + n) % n;
    paint(fig);
    if (!quiet) {
      fig.dispatchEvent(new CustomEvent("sky:frame", { bubbles: true, detail: { index: fig._plane, time: d.planes[fig._plane].time, count: n } }));
    }
  }
  function play(fig, on) {
    clearInterval(fig._timer);
    fig._timer = null;
    const b = fig.querySelector(".sky-play");
    if (on) fig._timer = setInterval(function () {
      if (!fig.isConnected) { clearInterval(fig._timer); return; }
      setPlane(fig, (fig._plane || 0) + 1);
    }, FRAME_MS);
    if (b) b.textContent = on ? "Pause" : "Play";
  }
  function readout(fig, e) {
    const d = fig._sky, out = fig.querySelector(".sky-readout");
    if (!d || !out) return;
    const r = e.target.getBoundingClientRect();
    const x = Math.floor((e.clientX - r.left) / r.width * d.width), y = Math.floor((e.clientY - r.top) / r.height * d.height);
    if (x < 0 || y < 0 || x >= d.width || y >= d.height) { out.textContent = ""; return; }
    const v = d.data[(fig._plane || 0) * d.width * d.height + y * d.width + x];
    const p = d.wcs && sky(d.wcs, x, y);
    out.textContent = (p ? sexa(p[0], true) + " " + sexa(p[1], false) + "  " : "") + withUnit(v, d.unit);
  }

  function wire(fig) {
    if (fig._wired) return;
    fig._wired = true;
    measure(fig);
    const canvas = fig.querySelector("canvas.sky-image");
    canvas.addEventListener("mousemove", function (e) { readout(fig, e); });
    canvas.addEventListener("mouseleave", function () { const o = fig.querySelector(".sky-readout"); if (o) o.textContent = ""; });
    canvas.addEventListener("click", function () { openLarge(fig); });
    load(fig.dataset.sky).then(function (d) {
      fig._sky = d;
      fig._plane = 0;
      fig.classList.add("sky-ready");
      const movie = fig.querySelector(".sky-movie");
      if (movie && d.planes.length > 1) {
        movie.hidden = false;
        const scrub = movie.querySelector(".sky-scrub");
        scrub.max = d.planes.length - 1;
        scrub.addEventListener("input", function () { play(fig, false); setPlane(fig, +scrub.value); });
        movie.querySelector(".sky-play").addEventListener("click", function () { play(fig, !fig._timer); });
      }
      paint(fig);
      if (d.planes.length > 1) {
        markPoint(fig);
        // A movie plays, as a GIF would; a key or the slider stops it.
        play(fig, true);
      }
      painted(fig);
    }, function (err) {
      fig.classList.add("sky-failed");
      const o = fig.querySelector(".sky-readout");
      if (o) o.textContent = "could not load the image (" + err.message + ")";
      painted(fig);
    });
  }

  // app.js decides when the whole candidate is painted.
  function painted(fig) {
    fig.dispatchEvent(new CustomEvent("sky:drawn", { bubbles: true }));
  }

  // --- the large view ---------------------------------------------------------------
  function openLarge(fig) {
    closeLarge();
    if (!fig._sky) return;
    const over = document.createElement("div");
    over.className = "sky-large";
    over.setAttribute("role", "dialog");
    over.setAttribute("aria-label", fig.dataset.label || "image");
    const clone = fig.cloneNode(true);
    clone.classList.add("sky-big");
    clone.querySelectorAll(".sky-movie").forEach(function (m) { m.hidden = true; });
    clone._sky = fig._sky; clone._plane = fig._plane; clone._wired = true;
    const canvas = clone.querySelector("canvas.sky-image");
    canvas.addEventListener("mousemove", function (e) { readout(clone, e); });
    over.appendChild(clone);
    over.addEventListener("click", function (e) { if (e.target === over) closeLarge(); });
    document.body.appendChild(over);
    over._source = fig;
    paint(clone);
  }
  function closeLarge() {
    document.querySelectorAll(".sky-large").forEach(function (o) { o.remove(); });
  }
  function figures() { return Array.from(document.querySelectorAll("#candidate figure.sky.sky-ready")); }

  function repaintAll() {
    document.querySelectorAll("figure.sky").forEach(paint);
    document.querySelectorAll(".sky-large figure.sky").forEach(paint);
  }

  // Controls the page declares (buttons with data-key, so they are listed
  // in the key help and the keys can be remapped like every other).
  document.addEventListener("click", function (e) {
    const b = e.target.closest("[data-sky-action]");
    if (!b) return;
    const act = b.dataset.skyAction;
    if (act === "stretch") { prefs.stretch = STRETCHES[(STRETCHES.indexOf(prefs.stretch) + 1) % STRETCHES.length]; savePrefs(); repaintAll(); }
    else if (act === "map") { prefs.map = MAPS[(MAPS.indexOf(prefs.map) + 1) % MAPS.length]; savePrefs(); repaintAll(); }
    else if (act === "large") {
      const figs = figures(), open = document.querySelector(".sky-large");
      if (!figs.length) return;
      const at = open ? figs.indexOf(open._source) : -1;
      if (open && at === figs.length - 1) closeLarge(); else openLarge(figs[at + 1]);
    }
    else if (act === "play" || act === "prev-frame" || act === "next-frame") {
      const fig = document.querySelector("#candidate figure.sky.sky-ready .sky-movie:not([hidden])");
      const owner = fig && fig.closest("figure.sky");
      if (!owner) return;
      if (act === "play") play(owner, !owner._timer);
      else { play(owner, false); setPlane(owner, (owner._plane || 0) + (act === "next-frame" ? 1 : -1)); }
    }
    const s = document.querySelector("[data-sky-state]");
    if (s) s.textContent = prefs.stretch + " · " + prefs.map;
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && document.querySelector(".sky-large")) { closeLarge(); e.stopPropagation(); }
  }, true);

  // The movie and the light curve point at the same moment: hovering a
  // point shows the frame of its time (or the same index, when the frames
  // carry no time but are as many), and the current frame's point is marked.
  function movie() {
    const m = document.querySelector("#candidate figure.sky.sky-ready .sky-movie:not([hidden])");
    return m && m.closest("figure.sky");
  }
  function lcPoints() { return Array.from(document.querySelectorAll("#candidate .lc-box g.lc-pt")); }
  function markPoint(fig) {
    const pts = lcPoints(), d = fig._sky, p = d.planes[fig._plane || 0];
    pts.forEach(function (g) { g.classList.remove("lc-current"); });
    let best = -1;
    if (p.time) {
      const t = Date.parse(p.time);
      let gap = Infinity;
      pts.forEach(function (g, i) { const dt = Math.abs(+g.dataset.ms - t); if (dt < gap) { gap = dt; best = i; } });
    } else if (pts.length === d.planes.length) {
      best = fig._plane || 0;
    }
    if (best >= 0) pts[best].classList.add("lc-current");
  }
  document.addEventListener("sky:frame", function (e) {
    const fig = e.target.closest && e.target.closest("figure.sky");
    if (fig && fig === movie()) markPoint(fig);
  });
  document.addEventListener("mouseover", function (e) {
    const g = e.target.closest && e.target.closest("#candidate .lc-box g.lc-pt");
    const fig = g && movie();
    if (!fig) return;
    const d = fig._sky, pts = lcPoints(), ms = +g.dataset.ms;
    let best = -1;
    if (d.planes[0].time) {
      let gap = Infinity;
      d.planes.forEach(function (p, i) { const dt = Math.abs(Date.parse(p.time) - ms); if (dt < gap) { gap = dt; best = i; } });
    } else if (pts.length === d.planes.length) {
      best = pts.indexOf(g);
    }
    if (best >= 0) { play(fig, false); setPlane(fig, best); }
  });

  // The light curve zooms by dragging across it (the buttons and keys of
  // templates/light_curve/_chart.html do the rest), and a reviewer who chose
  // log flux gets it again on the next candidate.
  let drag = null;
  function lcBox() { return document.getElementById("light-curve"); }
  function plotX(svg, clientX) {
    const r = svg.getBoundingClientRect(), w = +svg.dataset.w;
    const x = (clientX - r.left) / r.width * w;
    return Math.min(+svg.dataset.x1, Math.max(+svg.dataset.x0, x));
  }
  function plotMs(svg, x) {
    const x0 = +svg.dataset.x0, x1 = +svg.dataset.x1, a = +svg.dataset.fromMs, b = +svg.dataset.toMs;
    return Math.round(a + (x - x0) / (x1 - x0) * (b - a));
  }
  document.addEventListener("mousedown", function (e) {
    const svg = e.button === 0 && e.target.closest && e.target.closest("#light-curve svg.lightcurve[data-from-ms]");
    if (!svg) return;
    e.preventDefault();
    const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    rect.setAttribute("class", "lc-sel");
    rect.setAttribute("y", "44");
    rect.setAttribute("height", "154");
    rect.setAttribute("width", "0");
    svg.appendChild(rect);
    drag = { svg: svg, rect: rect, x: plotX(svg, e.clientX) };
    rect.setAttribute("x", String(drag.x));
  });
  document.addEventListener("mousemove", function (e) {
    if (!drag) return;
    const x = plotX(drag.svg, e.clientX);
    drag.rect.setAttribute("x", String(Math.min(x, drag.x)));
    drag.rect.setAttribute("width", String(Math.abs(x - drag.x)));
  });
  document.addEventListener("mouseup", function (e) {
    if (!drag) return;
    const d = drag, box = lcBox();
    drag = null;
    d.rect.remove();
    const x = plotX(d.svg, e.clientX);
    if (Math.abs(x - d.x) < 6 || !box || !window.htmx) return;
    const from = plotMs(d.svg, Math.min(x, d.x)), to = plotMs(d.svg, Math.max(x, d.x));
    if (!(to > from)) return;
    const url = box.dataset.lcUrl;
    window.htmx.ajax("GET", url + (url.indexOf("?") < 0 ? "?" : "&") + "from=" + from + "&to=" + to,
      { target: "#light-curve", swap: "outerHTML" });
  });
  document.addEventListener("dblclick", function (e) {
    if (!(e.target.closest && e.target.closest("#light-curve svg.lightcurve"))) return;
    const whole = document.querySelector("#light-curve [data-lc-whole]");
    if (whole) whole.click();
  });
  document.addEventListener("click", function (e) {
    const t = e.target.closest && e.target.closest("[data-lc-flux-toggle]");
    const box = lcBox();
    if (!t || !box) return;
    prefs.lcLog = box.dataset.lcFlux !== "log";
    savePrefs();
  });
  function lcSettled() {
    const box = lcBox();
    if (!box) return;
    if (prefs.lcLog && box.dataset.lcAsked === "linear" && !box.dataset.lcAuto) {
      box.dataset.lcAuto = "1";
      const t = box.querySelector("[data-lc-flux-toggle]");
      if (t && window.htmx) window.htmx.ajax("GET", t.getAttribute("hx-get"), { target: "#light-curve", swap: "outerHTML" });
    }
    const fig = movie();
    if (fig) markPoint(fig);
  }

  function scan(root) {
    (root || document).querySelectorAll("figure.sky[data-sky]").forEach(wire);
    const s = document.querySelector("[data-sky-state]");
    if (s) s.textContent = prefs.stretch + " · " + prefs.map;
  }
  // Warm the cache with the next candidate's images, once this one is on
  // screen: asked earlier, the server's work and the decoding here would
  // compete with drawing it.
  document.addEventListener("candidate:painted", function () {
    document.querySelectorAll("[data-sky-prefetch]").forEach(function (l) {
      load(l.dataset.skyPrefetch).catch(function () {});
    });
  });
  document.addEventListener("htmx:afterSettle", function () {
    const open = document.querySelector(".sky-large");
    if (open && !open._source.isConnected) closeLarge();
    scan();
    lcSettled();
  });
  window.addEventListener("resize", function () {
    document.querySelectorAll("figure.sky").forEach(function (f) { f._size = null; });
    repaintAll();
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { scan(); lcSettled(); });
  else { scan(); lcSettled(); }
  window.__vetterSky = { prefs: prefs, figures: figures };
})();
