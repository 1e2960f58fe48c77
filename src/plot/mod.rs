//! Light curves as server-rendered SVG: no chart library, no script and no
//! `style` attributes (the page's CSP forbids both). Colours come from
//! [`palette`]: `assets/chart.css` applies them under `.lc-*` classes, and
//! the essential ones are also given as presentation attributes, so a
//! downloaded chart still reads.
//!
//! The chart has UTC along the bottom, time since the observation start
//! along the top, and flux with error bars up the side. Each point carries an
//! SVG `<title>`, which browsers show as a tooltip on hover.

pub mod palette;

use std::fmt::Write as _;

use time::OffsetDateTime;

use self::palette::{ACCENT, GRID, INK, MUTED, PAPER};
use crate::domain::chart::{ChartView, FluxScale};
use crate::domain::text::push_xml_escaped;
use crate::domain::upload::LightCurve;

/// What [`light_curve_svg`] draws. `times` are expected ascending, `flux`
/// finite and `err` finite and non-negative (as [`LightCurve`] guarantees);
/// if the slices differ in length, the shortest wins.
#[derive(Debug, Clone, Copy)]
pub struct LightCurveChart<'a> {
    pub unit: &'a str,
    pub times: &'a [OffsetDateTime],
    pub flux: &'a [f64],
    pub err: Option<&'a [f64]>,
    /// The observation start; the top axis counts from here (from the first
    /// point if `None`).
    pub obs_start: Option<OffsetDateTime>,
    /// The stretch of time and the flux scale drawn.
    pub view: ChartView,
}

impl<'a> LightCurveChart<'a> {
    pub fn new(lc: &'a LightCurve, obs_start: Option<OffsetDateTime>) -> Self {
        LightCurveChart {
            unit: &lc.unit,
            times: &lc.times,
            flux: &lc.flux,
            err: lc.err.as_deref(),
            obs_start,
            view: ChartView::default(),
        }
    }
}

/// A drawn light curve and what it shows, for the controls around it.
#[derive(Debug, Clone)]
pub struct Plot {
    pub svg: String,
    /// The time axis of the whole curve, in Unix milliseconds (`None`
    /// without points).
    pub whole_ms: Option<(i64, i64)>,
    /// The time axis as drawn.
    pub shown_ms: Option<(i64, i64)>,
    /// The flux scale as drawn: linear when log was asked for but no point
    /// in view is above zero.
    pub flux: FluxScale,
}

// Geometry, in viewBox units.
const W: f64 = 900.0;
const H: f64 = 240.0;
const X0: f64 = 78.0;
const X1: f64 = W - 16.0;
const Y0: f64 = 44.0;
const Y1: f64 = H - 42.0;
const TICK: f64 = 5.0;

const NS: i128 = 1_000_000_000;
const MINUTE: i128 = 60 * NS;
const HOUR: i128 = 60 * MINUTE;
const DAY: i128 = 24 * HOUR;

/// Plot values beyond this are pinned to it, so that no sum or span
/// overflows; tooltips still give the true value.
const FLUX_LIMIT: f64 = 1e300;

#[derive(Debug, Clone, Copy)]
struct Point {
    /// Unix time in nanoseconds.
    t: i128,
    flux: f64,
    /// `None` when there are no errors or this one is not drawable.
    err: Option<f64>,
}

fn points(c: &LightCurveChart) -> Vec<Point> {
    let n = match c.err {
        Some(e) => c.times.len().min(c.flux.len()).min(e.len()),
        None => c.times.len().min(c.flux.len()),
    };
    (0..n)
        .filter(|&i| c.flux[i].is_finite())
        .map(|i| Point {
            t: c.times[i].unix_timestamp_nanos(),
            flux: c.flux[i],
            err: c.err.map(|e| e[i]).filter(|e| e.is_finite()).map(f64::abs),
        })
        .collect()
}

/// A complete `<svg>` element for the light curve.
pub fn light_curve_svg(c: &LightCurveChart) -> String {
    light_curve_plot(c).svg
}

fn ms(t: i128) -> i64 {
    (t.div_euclid(1_000_000)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The light curve as `c.view` asks: the points inside its time window
/// (the flux axis fitted to them), on a linear or log flux axis.
pub fn light_curve_plot(c: &LightCurveChart) -> Plot {
    let all = points(c);
    let (Some(amin), Some(amax)) = (all.iter().map(|p| p.t).min(), all.iter().map(|p| p.t).max())
    else {
        let mut out = String::with_capacity(1024);
        open_svg(&mut out, "Light curve with no points", None);
        frame(&mut out);
        message(&mut out, "No light-curve points");
        out.push_str("</svg>");
        return Plot {
            svg: out,
            whole_ms: None,
            shown_ms: None,
            flux: FluxScale::Linear,
        };
    };
    let whole = TimeRange::new(amin, amax);
    let tx = match c.view.window {
        Some(w) => TimeRange {
            start: i128::from(w.from_ms()) * 1_000_000,
            end: i128::from(w.to_ms()) * 1_000_000,
        },
        None => whole,
    };
    let whole_ms = Some((ms(whole.start), ms(whole.end)));
    let shown_ms = Some((ms(tx.start), ms(tx.end)));
    let pts: Vec<Point> = all
        .into_iter()
        .filter(|p| (tx.start..=tx.end).contains(&p.t))
        .collect();
    let log = c.view.flux == FluxScale::Log && pts.iter().any(|p| p.flux > 0.0);
    let flux = if log {
        FluxScale::Log
    } else {
        FluxScale::Linear
    };
    let mut out = String::with_capacity(4096 + pts.len() * 300);
    let (Some(tmin), Some(tmax)) = (pts.iter().map(|p| p.t).min(), pts.iter().map(|p| p.t).max())
    else {
        open_svg(
            &mut out,
            "Light curve with no points in this time range",
            Some(&tx),
        );
        frame(&mut out);
        let bottom = bottom_axis(&tx, tx.start, tx.end);
        let origin = c.obs_start.map_or(amin, |t| t.unix_timestamp_nanos());
        axis_labels(&mut out, &tx, &bottom, origin, c.obs_start.is_some());
        message(&mut out, "No points in this time range");
        out.push_str("</svg>");
        return Plot {
            svg: out,
            whole_ms,
            shown_ms,
            flux,
        };
    };

    let n = pts.len();
    let aria = if tmin == tmax {
        format!(
            "Light curve of {n} point{} at {}",
            if n == 1 { "" } else { "s" },
            utc_stamp(tmin)
        )
    } else {
        format!(
            "Light curve of {n} points from {} to {}",
            utc_stamp(tmin),
            utc_stamp(tmax)
        )
    };
    open_svg(&mut out, &aria, Some(&tx));

    let origin = c.obs_start.map_or(amin, |t| t.unix_timestamp_nanos());
    let fy = if log {
        FluxRange::log(&pts)
    } else {
        FluxRange::new(&pts)
    };

    // Grid first, so that everything else is drawn over it.
    let bottom = bottom_axis(&tx, tmin, tmax);
    let yticks = fy.ticks();
    out.push_str(r#"<g class="lc-grid" stroke=""#);
    out.push_str(GRID);
    out.push_str(r#"" stroke-width="1">"#);
    for (t, _) in &bottom.ticks {
        let x = tx.x(*t);
        let _ = write!(out, r#"<path d="M{x:.1} {Y0:.1}V{Y1:.1}"/>"#);
    }
    for (v, _) in &yticks {
        let y = fy.y(*v);
        let _ = write!(out, r#"<path d="M{X0:.1} {y:.1}H{X1:.1}"/>"#);
    }
    out.push_str("</g>");

    if !fy.log && fy.lo < 0.0 && fy.hi > 0.0 {
        let y = fy.y(0.0);
        let _ = write!(
            out,
            r#"<path class="lc-zero" d="M{X0:.1} {y:.1}H{X1:.1}" stroke="{MUTED}" stroke-width="1" stroke-dasharray="4 3"/>"#
        );
    }

    frame(&mut out);
    axis_labels(&mut out, &tx, &bottom, origin, c.obs_start.is_some());
    y_axis(&mut out, &fy, &yticks, c.unit);

    // The joining line, through the points the flux axis can place.
    let placed: Vec<&Point> = pts.iter().filter(|p| fy.places(p.flux)).collect();
    if placed.len() > 1 {
        let _ = write!(
            out,
            r#"<polyline class="lc-line" fill="none" stroke="{ACCENT}" stroke-width="1" stroke-linejoin="round" points=""#
        );
        for (i, p) in placed.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            let _ = write!(out, "{:.1},{:.1}", tx.x(p.t), fy.y(p.flux));
        }
        out.push_str(r#""/>"#);
    }
    let unplaced = pts.len() - placed.len();
    if unplaced > 0 {
        let _ = write!(
            out,
            r#"<text class="lc-label lc-note" x="{:.1}" y="{:.1}" text-anchor="end" fill="{MUTED}">{unplaced} point{} at or below 0, marked ▾ at the bottom</text>"#,
            X1 - 4.0,
            Y0 + 12.0,
            if unplaced == 1 { "" } else { "s" }
        );
    }

    // Points, each a group with its tooltip, error bar, dot and hover target.
    let unit = clean(c.unit);
    let radius = if n <= 300 { 2.5 } else { 1.5 };
    let cap = ((X1 - X0) / n as f64 * 0.3).min(3.0);
    let _ = write!(out, r#"<g class="lc-points" fill="{ACCENT}">"#);
    for p in &pts {
        let x = tx.x(p.t);
        let y = fy.y(p.flux);
        // Its time, for linking the point to the movie frame of that time.
        let _ = write!(
            out,
            r#"<g class="lc-pt" data-ms="{}"><title>"#,
            p.t / 1_000_000
        );
        let mut tip = format!(
            "{} (T{}): {}",
            utc_stamp(p.t),
            offset_hms(p.t - origin),
            fmt_num(p.flux)
        );
        if let Some(e) = p.err {
            tip.push_str(" ± ");
            tip.push_str(&fmt_num(e));
        }
        if !unit.is_empty() {
            tip.push(' ');
            tip.push_str(&unit);
        }
        push_xml_escaped(&mut out, &tip);
        out.push_str("</title>");
        if !fy.places(p.flux) {
            // Below a log axis: a marker at its foot, not a point.
            let _ = write!(
                out,
                r#"<path class="lc-point lc-below" d="M{:.1} {:.1}h8l-4 6z"/><circle class="lc-hit" cx="{x:.1}" cy="{:.1}" r="6" fill="transparent"/></g>"#,
                x - 4.0,
                Y1 - 7.0,
                Y1 - 4.0
            );
            continue;
        }
        if let Some(e) = p.err.filter(|e| *e > 0.0) {
            let ya = fy.y(p.flux + e);
            let yb = fy.y(p.flux - e);
            let _ = write!(
                out,
                r#"<path class="lc-err" stroke="{ACCENT}" d="M{x:.1} {ya:.1}V{yb:.1}"#
            );
            if cap >= 1.0 {
                let _ = write!(
                    out,
                    "M{:.1} {ya:.1}H{:.1}M{:.1} {yb:.1}H{:.1}",
                    x - cap,
                    x + cap,
                    x - cap,
                    x + cap
                );
            }
            out.push_str(r#""/>"#);
        }
        let _ = write!(
            out,
            r#"<circle class="lc-point" cx="{x:.1}" cy="{y:.1}" r="{radius}"/><circle class="lc-hit" cx="{x:.1}" cy="{y:.1}" r="6" fill="transparent"/></g>"#
        );
    }
    out.push_str("</g></svg>");
    Plot {
        svg: out,
        whole_ms,
        shown_ms,
        flux,
    }
}

fn message(out: &mut String, text: &str) {
    let _ = write!(
        out,
        r#"<text class="lc-label lc-title" x="{:.1}" y="{:.1}" text-anchor="middle" fill="{MUTED}">{text}</text>"#,
        (X0 + X1) / 2.0,
        (Y0 + Y1) / 2.0
    );
}

/// The root element. With a time axis, it tells the page's script how to
/// turn a position across the plot into a time (for zooming by dragging).
fn open_svg(out: &mut String, aria: &str, tx: Option<&TimeRange>) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="lightcurve" viewBox="0 0 {W} {H}" width="100%" role="img""#
    );
    if let Some(tx) = tx {
        let _ = write!(
            out,
            r#" data-from-ms="{}" data-to-ms="{}" data-x0="{X0}" data-x1="{X1}" data-w="{W}""#,
            ms(tx.start),
            ms(tx.end)
        );
    }
    out.push_str(r#" aria-label=""#);
    push_xml_escaped(out, aria);
    let _ = write!(
        out,
        r#"" font-family="system-ui, sans-serif" font-size="11">
<rect class="lc-bg" width="{W}" height="{H}" fill="{PAPER}"/>
"#
    );
}

fn frame(out: &mut String) {
    let _ = writeln!(
        out,
        r#"<rect class="lc-axis" x="{X0:.1}" y="{Y0:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="{INK}" stroke-width="1"/>"#,
        X1 - X0,
        Y1 - Y0
    );
}

// ---------------------------------------------------------------- time axes

/// The visible time range, in Unix nanoseconds; never empty.
#[derive(Clone, Copy)]
struct TimeRange {
    start: i128,
    end: i128,
}

impl TimeRange {
    fn new(tmin: i128, tmax: i128) -> Self {
        let span = tmax - tmin;
        let pad = if span == 0 {
            MINUTE
        } else {
            (span / 50).max(1)
        };
        TimeRange {
            start: tmin - pad,
            end: tmax + pad,
        }
    }

    fn span(&self) -> i128 {
        self.end - self.start
    }

    fn x(&self, t: i128) -> f64 {
        X0 + (t - self.start) as f64 / self.span() as f64 * (X1 - X0)
    }
}

/// The smallest "nice" step giving at most `max_ticks` ticks over `span`
/// nanoseconds: 1, 2, 5 × 10ⁿ below a second, then 1/2/5/10/15/30 s,
/// 1/2/5/10/15/30 min, 1/2/3/6/12 h, 1/2/7 d, then 1, 2, 5 × 10ⁿ days.
fn time_step(span: i128, max_ticks: i128) -> i128 {
    const STEPS: [i128; 20] = [
        NS,
        2 * NS,
        5 * NS,
        10 * NS,
        15 * NS,
        30 * NS,
        MINUTE,
        2 * MINUTE,
        5 * MINUTE,
        10 * MINUTE,
        15 * MINUTE,
        30 * MINUTE,
        HOUR,
        2 * HOUR,
        3 * HOUR,
        6 * HOUR,
        12 * HOUR,
        DAY,
        2 * DAY,
        7 * DAY,
    ];
    let fits = |s: i128| s.saturating_mul(max_ticks) >= span;
    let mut pow = 1;
    while pow < NS {
        for m in [1, 2, 5] {
            if fits(m * pow) {
                return m * pow;
            }
        }
        pow *= 10;
    }
    if let Some(s) = STEPS.into_iter().find(|&s| fits(s)) {
        return s;
    }
    let mut pow = 10 * DAY;
    loop {
        for m in [1, 2, 5] {
            let s = m * pow;
            if fits(s) || pow > i128::MAX / 1000 {
                return s;
            }
        }
        pow *= 10;
    }
}

/// Multiples of `step` counted from `origin` that fall in `start..=end`.
fn aligned_ticks(start: i128, end: i128, step: i128, origin: i128) -> Vec<i128> {
    let a = start - origin;
    let mut k = a.div_euclid(step) + i128::from(a.rem_euclid(step) != 0);
    let mut ticks = Vec::new();
    while ticks.len() < 60 {
        let t = origin + k * step;
        if t > end {
            break;
        }
        ticks.push(t);
        k += 1;
    }
    ticks
}

struct BottomAxis {
    ticks: Vec<(i128, String)>,
    title: String,
}

/// UTC ticks: `HH:MM` when everything shown is on one date (which goes in
/// the title), `MM-DD HH:MM` otherwise.
fn bottom_axis(tx: &TimeRange, tmin: i128, tmax: i128) -> BottomAxis {
    let step = time_step(tx.span(), 6);
    let ticks = aligned_ticks(tx.start, tx.end, step, 0);
    let date = |t: i128| utc(t).map(|d| d.date());
    let mut dates: Vec<_> = [tmin, tmax].into_iter().map(date).collect();
    if let (Some(first), Some(last)) = (ticks.first(), ticks.last()) {
        dates.push(date(*first));
        dates.push(date(*last));
    }
    let one_day = dates.iter().all(|d| d.is_some() && *d == dates[0]);
    let one_year = dates
        .iter()
        .all(|d| d.map(|d| d.year()) == dates[0].map(|d| d.year()));
    let label = |t: i128| -> String {
        let Some(d) = utc(t) else {
            return String::new();
        };
        let mut s = String::new();
        if !one_year {
            let _ = write!(s, "{:04}-", d.year());
        }
        if !one_day {
            let _ = write!(s, "{:02}-{:02}", u8::from(d.month()), d.day());
            if !one_year && step >= DAY {
                return s;
            }
            s.push(' ');
        }
        let _ = write!(s, "{:02}:{:02}", d.hour(), d.minute());
        if step < MINUTE {
            let _ = write!(s, ":{:02}", d.second());
            if step < NS {
                let _ = write!(s, "{}", fraction(d.nanosecond(), step));
            }
        }
        s
    };
    let title = if one_day {
        format!("Time (UTC, {})", utc_date(tmin))
    } else {
        format!("Time (UTC, {} to {})", utc_date(tmin), utc_date(tmax))
    };
    BottomAxis {
        ticks: ticks.into_iter().map(|t| (t, label(t))).collect(),
        title,
    }
}

/// `.25` for 250 ms with a step of 50 ms: as many decimals as the step needs.
fn fraction(nanos: u32, step: i128) -> String {
    let mut decimals = 9;
    let mut s = step;
    while decimals > 0 && s % 10 == 0 {
        s /= 10;
        decimals -= 1;
    }
    let digits = format!("{nanos:09}");
    format!(".{}", &digits[..decimals])
}

fn axis_labels(
    out: &mut String,
    tx: &TimeRange,
    bottom: &BottomAxis,
    origin: i128,
    from_obs_start: bool,
) {
    // Bottom: UTC.
    out.push_str(r#"<g class="lc-label lc-ticks-utc" fill=""#);
    out.push_str(INK);
    out.push_str(r#"" text-anchor="middle">"#);
    for (t, label) in &bottom.ticks {
        let x = tx.x(*t);
        let _ = write!(
            out,
            r#"<path class="lc-axis" d="M{x:.1} {Y1:.1}v{TICK}" stroke="{INK}"/><text x="{x:.1}" y="{:.1}">"#,
            Y1 + TICK + 12.0
        );
        push_xml_escaped(out, label);
        out.push_str("</text>");
    }
    out.push_str("</g>");
    let _ = write!(
        out,
        r#"<text class="lc-label lc-title" x="{:.1}" y="{:.1}" text-anchor="middle" fill="{MUTED}">"#,
        (X0 + X1) / 2.0,
        H - 8.0
    );
    push_xml_escaped(out, &bottom.title);
    out.push_str("</text>\n");

    // Top: time since the observation start.
    let step = time_step(tx.span(), 7);
    out.push_str(r#"<g class="lc-label lc-ticks-since" fill=""#);
    out.push_str(INK);
    out.push_str(r#"" text-anchor="middle">"#);
    for t in aligned_ticks(tx.start, tx.end, step, origin) {
        let x = tx.x(t);
        let _ = write!(
            out,
            r#"<path class="lc-axis" d="M{x:.1} {Y0:.1}v-{TICK}" stroke="{INK}"/><text x="{x:.1}" y="{:.1}">"#,
            Y0 - TICK - 5.0
        );
        push_xml_escaped(out, &offset_label(t - origin, step));
        out.push_str("</text>");
    }
    out.push_str("</g>");
    let _ = writeln!(
        out,
        r#"<text class="lc-label lc-title" x="{:.1}" y="16" text-anchor="middle" fill="{MUTED}">Time since {}</text>"#,
        (X0 + X1) / 2.0,
        if from_obs_start {
            "observation start"
        } else {
            "first point"
        }
    );
}

/// A top-axis label for an offset that is a multiple of `step`:
/// `+0.5 s`, `+12 s`, `+1:30` (h:mm) or `+2 d`.
fn offset_label(offset: i128, step: i128) -> String {
    let sign = if offset < 0 { "\u{2212}" } else { "+" };
    let a = offset.unsigned_abs();
    let (ns, min, day) = (NS as u128, MINUTE as u128, DAY as u128);
    if step < NS {
        let frac = fraction((a % ns) as u32, step);
        format!("{sign}{}{frac} s", a / ns)
    } else if step < MINUTE {
        format!("{sign}{} s", a / ns)
    } else if step < DAY {
        let m = a / min;
        format!("{sign}{}:{:02}", m / 60, m % 60)
    } else {
        format!("{sign}{} d", a / day)
    }
}

/// `+0:34:56` (or `+2d 01:00:00`, `+0:00:01.250`) for a tooltip.
fn offset_hms(offset: i128) -> String {
    let sign = if offset < 0 { "\u{2212}" } else { "+" };
    let a = offset.unsigned_abs();
    let s = a / NS as u128;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    let mut out = if d > 0 {
        format!("{sign}{d}d {h:02}:{m:02}:{sec:02}")
    } else {
        format!("{sign}{h}:{m:02}:{sec:02}")
    };
    let sub = (a % NS as u128) as u32;
    if sub != 0 {
        let _ = write!(out, ".{:03}", sub / 1_000_000);
    }
    out
}

fn utc(t: i128) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(t).ok()
}

/// `2024-05-01 12:34:56 UTC`, with milliseconds if the time has any.
fn utc_stamp(t: i128) -> String {
    let Some(d) = utc(t) else {
        return "(time out of range)".into();
    };
    let mut s = format!(
        "{} {:02}:{:02}:{:02}",
        utc_date(t),
        d.hour(),
        d.minute(),
        d.second()
    );
    if d.nanosecond() != 0 {
        let _ = write!(s, ".{:03}", d.nanosecond() / 1_000_000);
    }
    s.push_str(" UTC");
    s
}

fn utc_date(t: i128) -> String {
    match utc(t) {
        Some(d) => format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
        None => "?".into(),
    }
}

// ---------------------------------------------------------------- flux axis

/// The visible flux range; `lo < hi`, both finite. On a log axis `lo` and
/// `hi` are decimal logarithms, and values at or below zero have no place.
struct FluxRange {
    lo: f64,
    hi: f64,
    log: bool,
}

impl FluxRange {
    fn new(pts: &[Point]) -> Self {
        let pin = |v: f64| v.clamp(-FLUX_LIMIT, FLUX_LIMIT);
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for p in pts {
            let e = p.err.unwrap_or(0.0);
            lo = lo.min(pin(pin(p.flux) - e));
            hi = hi.max(pin(pin(p.flux) + e));
        }
        if !(lo.is_finite() && hi.is_finite()) {
            return FluxRange {
                lo: -1.0,
                hi: 1.0,
                log: false,
            };
        }
        let span = hi - lo;
        let mag = lo.abs().max(hi.abs());
        if span > mag * 1e-9 && span > 1e-290 {
            let pad = span * 0.05;
            FluxRange {
                lo: lo - pad,
                hi: hi + pad,
                log: false,
            }
        } else {
            // All (nearly) equal: ±10 %, or ±1 around zero.
            let mid = lo / 2.0 + hi / 2.0;
            let half = if mid.abs() > 1e-280 {
                mid.abs() * 0.1
            } else {
                1.0
            };
            FluxRange {
                lo: mid - half,
                hi: mid + half,
                log: false,
            }
        }
    }

    /// A log axis fitted to the points above zero (and to their error bars
    /// where those stay above zero).
    fn log(pts: &[Point]) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for p in pts.iter().filter(|p| p.flux > 0.0) {
            let f = p.flux.min(FLUX_LIMIT);
            let e = p.err.unwrap_or(0.0);
            let below = if f - e > 0.0 { f - e } else { f };
            lo = lo.min(below.log10());
            hi = hi.max((f + e).min(FLUX_LIMIT).log10());
        }
        if !(lo.is_finite() && hi.is_finite()) {
            return FluxRange {
                lo: -1.0,
                hi: 1.0,
                log: true,
            };
        }
        let span = hi - lo;
        let pad = if span > 1e-9 { span * 0.05 } else { 0.1 };
        FluxRange {
            lo: lo - pad,
            hi: hi + pad,
            log: true,
        }
    }

    /// Whether `v` has a place on this axis.
    fn places(&self, v: f64) -> bool {
        !self.log || v > 0.0
    }

    fn y(&self, v: f64) -> f64 {
        if self.log {
            if v <= 0.0 || v.is_nan() {
                return Y1;
            }
            let l = v.min(FLUX_LIMIT).log10();
            return (Y1 - (l - self.lo) / (self.hi - self.lo) * (Y1 - Y0)).clamp(Y0, Y1);
        }
        let v = v.clamp(-FLUX_LIMIT, FLUX_LIMIT);
        Y1 - (v - self.lo) / (self.hi - self.lo) * (Y1 - Y0)
    }

    /// Ticks at multiples of a 1, 2, 5 × 10ⁿ step, with labels; on a log
    /// axis at powers of ten, with 2 and 5 (or every digit) between them
    /// when the axis spans too few decades.
    fn ticks(&self) -> Vec<(f64, String)> {
        if self.log {
            return self.log_ticks();
        }
        let (m, e) = nice_step((self.hi - self.lo) / 5.0);
        let step: f64 = format!("{m}e{e}").parse().unwrap_or(1.0);
        let k0 = (self.lo / step).ceil();
        let k1 = (self.hi / step).floor();
        if !(k1 - k0 >= 0.0 && k1 - k0 <= 50.0) {
            return Vec::new();
        }
        let mag = self.lo.abs().max(self.hi.abs());
        let sci = !(1e-3..1e5).contains(&mag);
        (0..=(k1 - k0) as i32)
            .map(|i| {
                let v = (k0 + f64::from(i)) * step;
                let label = if v == 0.0 {
                    "0".to_string()
                } else if sci {
                    let exp = v.abs().log10().floor() as i32;
                    let digits = (exp - e).clamp(0, 15) as usize;
                    sci_trim(&format!("{v:.digits$e}"))
                } else {
                    let decimals = (-e).clamp(0, 15) as usize;
                    format!("{v:.decimals$}")
                };
                (v, label)
            })
            .collect()
    }

    fn log_ticks(&self) -> Vec<(f64, String)> {
        let (d0, d1) = (self.lo.floor() as i32, self.hi.ceil() as i32);
        let inside = |v: f64| {
            let l = v.log10();
            l >= self.lo - 1e-12 && l <= self.hi + 1e-12
        };
        let decades = (d1 - d0).max(1);
        let every = (decades + 7) / 8; // at most about eight labelled decades
        let pick = |mults: &[f64]| -> Vec<f64> {
            let mut out = Vec::new();
            let mut d = d0;
            while d <= d1 {
                for m in mults {
                    let v = m * 10f64.powi(d);
                    if inside(v) {
                        out.push(v);
                    }
                }
                d += 1;
            }
            out
        };
        let mut vals: Vec<f64> = pick(&[1.0])
            .into_iter()
            .filter(|v| (v.log10().round() as i32 - d0) % every == 0)
            .collect();
        if vals.len() < 3 {
            vals = pick(&[1.0, 2.0, 5.0]);
        }
        if vals.len() < 3 {
            vals = pick(&[1.0, 1.5, 2.0, 3.0, 5.0, 7.0]);
        }
        if vals.len() < 2 {
            // Less than a digit's step: linear ticks read best.
            let linear = FluxRange {
                lo: 10f64.powf(self.lo),
                hi: 10f64.powf(self.hi),
                log: false,
            };
            return linear
                .ticks()
                .into_iter()
                .filter(|(v, _)| *v > 0.0)
                .collect();
        }
        // Labels no closer than a line of text.
        let mut out: Vec<(f64, String)> = Vec::new();
        for v in vals {
            if out
                .last()
                .is_none_or(|(last, _)| self.y(*last) - self.y(v) >= 13.0)
            {
                out.push((v, fmt_num(v)));
            }
        }
        out
    }
}

/// The 1, 2 or 5 × 10ᵉ nearest (geometrically) to `raw`, as (mantissa, e).
fn nice_step(raw: f64) -> (u8, i32) {
    if !(raw.is_finite() && raw > 0.0) {
        return (1, 0);
    }
    let mut e = raw.log10().floor() as i32;
    let f = raw / 10f64.powi(e);
    let m = if f < 1.42 {
        1
    } else if f < 3.16 {
        2
    } else if f < 7.07 {
        5
    } else {
        e += 1;
        1
    };
    (m, e)
}

/// `1.500e-5` → `1.5e-5`.
fn sci_trim(s: &str) -> String {
    match s.split_once('e') {
        Some((mant, exp)) if mant.contains('.') => {
            format!("{}e{exp}", mant.trim_end_matches('0').trim_end_matches('.'))
        }
        _ => s.to_string(),
    }
}

/// Up to 4 significant digits; scientific for |x| ≥ 1e5 or < 1e-3.
fn fmt_num(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return x.to_string();
    }
    let a = x.abs();
    if !(1e-3..1e5).contains(&a) {
        return sci_trim(&format!("{x:.3e}"));
    }
    let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn y_axis(out: &mut String, fy: &FluxRange, ticks: &[(f64, String)], unit: &str) {
    out.push_str(r#"<g class="lc-label lc-ticks-flux" fill=""#);
    out.push_str(INK);
    out.push_str(r#"" text-anchor="end">"#);
    for (v, label) in ticks {
        let y = fy.y(*v);
        let _ = write!(
            out,
            r#"<path class="lc-axis" d="M{X0:.1} {y:.1}h-{TICK}" stroke="{INK}"/><text x="{:.1}" y="{:.1}">"#,
            X0 - TICK - 3.0,
            y + 4.0
        );
        push_xml_escaped(out, label);
        out.push_str("</text>");
    }
    out.push_str("</g>");
    let unit = clean(unit);
    let title = if unit.is_empty() {
        "Flux density".to_string()
    } else {
        format!("Flux density ({unit})")
    };
    let _ = write!(
        out,
        r#"<text class="lc-label lc-title" transform="rotate(-90)" x="{:.1}" y="14" text-anchor="middle" fill="{MUTED}">"#,
        -(Y0 + Y1) / 2.0
    );
    push_xml_escaped(out, &title);
    out.push_str("</text>\n");
}

// ---------------------------------------------------------------- escaping

/// Drops characters XML cannot hold, so a downloaded chart still parses.
fn clean(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use scraper::{ElementRef, Html, Selector};
    use time::macros::datetime;
    use time::Duration;

    fn render(
        unit: &str,
        times: &[OffsetDateTime],
        flux: &[f64],
        err: Option<&[f64]>,
        obs_start: Option<OffsetDateTime>,
    ) -> String {
        light_curve_svg(&LightCurveChart {
            unit,
            times,
            flux,
            err,
            obs_start,
            view: ChartView::default(),
        })
    }

    fn sel(s: &str) -> Selector {
        Selector::parse(s).unwrap()
    }

    fn num(el: &ElementRef, attr: &str) -> f64 {
        el.value().attr(attr).unwrap().parse().unwrap()
    }

    fn texts(doc: &Html, s: &str) -> Vec<String> {
        doc.select(&sel(s))
            .map(|e| e.text().collect::<String>())
            .collect()
    }

    fn hourly(n: usize) -> Vec<OffsetDateTime> {
        let t0 = datetime!(2024-05-01 12:00 UTC);
        (0..n)
            .map(|i| t0 + Duration::minutes(20 * i as i64))
            .collect()
    }

    fn assert_finite(svg: &str) {
        assert!(!svg.contains("NaN"), "{svg}");
        assert!(!svg.contains("inf"), "{svg}");
    }

    fn render_view(times: &[OffsetDateTime], flux: &[f64], view: ChartView) -> Plot {
        light_curve_plot(&LightCurveChart {
            unit: "Jy",
            times,
            flux,
            err: None,
            obs_start: None,
            view,
        })
    }

    const LOG: ChartView = ChartView {
        window: None,
        flux: FluxScale::Log,
    };

    #[test]
    fn log_flux_spaces_decades_evenly() {
        let times = hourly(4);
        let plot = render_view(&times, &[1.0, 10.0, 100.0, 1000.0], LOG);
        assert_eq!(plot.flux, FluxScale::Log);
        assert_finite(&plot.svg);
        let doc = Html::parse_fragment(&plot.svg);
        let ticks = texts(&doc, ".lc-ticks-flux text");
        for want in ["1", "10", "100", "1000"] {
            assert!(ticks.iter().any(|t| t == want), "{ticks:?}");
        }
        let ys: Vec<f64> = doc
            .select(&sel("circle.lc-point"))
            .map(|c| num(&c, "cy"))
            .collect();
        let steps: Vec<f64> = ys.windows(2).map(|w| w[0] - w[1]).collect();
        assert!(steps[0] > 10.0, "{ys:?}");
        for s in &steps {
            assert!((s - steps[0]).abs() < 0.15, "{ys:?}");
        }
    }

    #[test]
    fn log_flux_marks_points_at_or_below_zero() {
        let times = hourly(4);
        let plot = render_view(&times, &[-1.0, 0.0, 5.0, 50.0], LOG);
        assert_eq!(plot.flux, FluxScale::Log);
        let doc = Html::parse_fragment(&plot.svg);
        assert_eq!(doc.select(&sel("g.lc-pt")).count(), 4);
        assert_eq!(doc.select(&sel("g.lc-pt .lc-below")).count(), 2);
        assert_eq!(doc.select(&sel("circle.lc-point")).count(), 2);
        let line = doc.select(&sel("polyline.lc-line")).next().unwrap();
        assert_eq!(line.value().attr("points").unwrap().split(' ').count(), 2);
        assert!(texts(&doc, ".lc-note")[0].starts_with("2 points at or below 0"));
        // Nothing above zero: the linear axis, not an empty log one.
        let plot = render_view(&times, &[-1.0, 0.0, -5.0, -2.0], LOG);
        assert_eq!(plot.flux, FluxScale::Linear);
    }

    #[test]
    fn log_flux_within_one_digit_still_has_ticks() {
        let times = hourly(3);
        let plot = render_view(&times, &[3.1, 3.3, 3.5], LOG);
        let doc = Html::parse_fragment(&plot.svg);
        let ticks = texts(&doc, ".lc-ticks-flux text");
        assert!(ticks.len() >= 2, "{ticks:?}");
        for t in &ticks {
            let v: f64 = t.parse().unwrap();
            assert!((3.0..=3.7).contains(&v), "{ticks:?}");
        }
        // However narrow or wide, labels keep a line apart.
        for flux in [[0.25, 0.9, 1.5], [1e-3, 1.0, 1e9], [1.0, 1.001, 1.002]] {
            let doc = Html::parse_fragment(&render_view(&times, &flux, LOG).svg);
            let ys: Vec<f64> = doc
                .select(&sel(".lc-ticks-flux text"))
                .map(|t| num(&t, "y"))
                .collect();
            assert!(ys.len() >= 2, "{flux:?}");
            for w in ys.windows(2) {
                assert!(w[0] - w[1] >= 12.9, "{flux:?}: {ys:?}");
            }
        }
    }

    #[test]
    fn a_window_draws_only_its_points_on_its_own_axis() {
        let times = hourly(5); // 12:00 to 13:20, every 20 minutes
        let t = |m: i64| {
            (datetime!(2024-05-01 12:00 UTC) + Duration::minutes(m)).unix_timestamp_nanos()
                / 1_000_000
        };
        let window = crate::domain::chart::TimeWindow::new(t(10) as i64, t(50) as i64).unwrap();
        let view = ChartView {
            window: Some(window),
            flux: FluxScale::Linear,
        };
        let plot = render_view(&times, &[1.0, 2.0, 30.0, 4.0, 5.0], view);
        assert_eq!(plot.shown_ms, Some((t(10) as i64, t(50) as i64)));
        let whole = plot.whole_ms.unwrap();
        assert!(whole.0 < t(0) as i64 && whole.1 > t(80) as i64);
        let doc = Html::parse_fragment(&plot.svg);
        assert_eq!(doc.select(&sel("g.lc-pt")).count(), 2);
        // The two points shown sit a quarter and three quarters across.
        let xs: Vec<f64> = doc
            .select(&sel("circle.lc-point"))
            .map(|c| num(&c, "cx"))
            .collect();
        assert!((xs[0] - (X0 + (X1 - X0) * 0.25)).abs() < 0.2, "{xs:?}");
        assert!((xs[1] - (X0 + (X1 - X0) * 0.75)).abs() < 0.2, "{xs:?}");
    }

    #[test]
    fn points_tooltips_and_geometry() {
        let times = hourly(5);
        let flux = [1.234, 3.5, -0.5, 2.0, 0.75];
        let err = [0.1, 0.2, 0.1, 0.3, 0.05];
        let svg = render("mJy/beam", &times, &flux, Some(&err), None);
        assert_finite(&svg);
        let doc = Html::parse_fragment(&svg);
        let root = doc.select(&sel("svg")).next().unwrap();
        assert_eq!(root.value().attr("class"), Some("lightcurve"));
        assert_eq!(root.value().attr("role"), Some("img"));
        assert_eq!(root.value().attr("width"), Some("100%"));
        assert!(root
            .value()
            .attr("aria-label")
            .unwrap()
            .starts_with("Light curve of 5 points from 2024-05-01 12:00:00 UTC"));

        let groups: Vec<_> = doc.select(&sel("g.lc-pt")).collect();
        assert_eq!(groups.len(), flux.len());
        assert_eq!(doc.select(&sel("circle.lc-point")).count(), flux.len());
        assert_eq!(doc.select(&sel("circle.lc-hit")).count(), flux.len());
        assert_eq!(doc.select(&sel("path.lc-err")).count(), flux.len());
        assert_eq!(doc.select(&sel("polyline.lc-line")).count(), 1);

        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for (g, f) in groups.iter().zip(flux) {
            let title: String = g.select(&sel("title")).next().unwrap().text().collect();
            assert!(title.contains(&fmt_num(f)), "{title}");
            assert!(title.ends_with(" mJy/beam"), "{title}");
            let c = g.select(&sel("circle.lc-point")).next().unwrap();
            let hit = g.select(&sel("circle.lc-hit")).next().unwrap();
            assert!(num(&hit, "r") > num(&c, "r"));
            xs.push(num(&c, "cx"));
            ys.push(num(&c, "cy"));
        }
        let first: String = groups[0]
            .select(&sel("title"))
            .next()
            .unwrap()
            .text()
            .collect();
        assert_eq!(
            first,
            "2024-05-01 12:00:00 UTC (T+0:00:00): 1.234 ± 0.1 mJy/beam"
        );
        let second: String = groups[1]
            .select(&sel("title"))
            .next()
            .unwrap()
            .text()
            .collect();
        assert!(second.contains("(T+0:20:00): 3.5 ± 0.2"), "{second}");

        assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
        for (x, y) in xs.iter().zip(&ys) {
            assert!((X0..=X1).contains(x) && (Y0..=Y1).contains(y));
        }
        let top = ys.iter().cloned().fold(f64::INFINITY, f64::min);
        assert_eq!(top, ys[1], "highest flux should be highest on screen");

        // Crosses zero, so the dashed zero line is drawn.
        assert_eq!(doc.select(&sel("path.lc-zero")).count(), 1);
        // The unit is in the y-axis title and the date in the UTC title.
        let titles = texts(&doc, "text.lc-title");
        assert!(titles.contains(&"Flux density (mJy/beam)".to_string()));
        assert!(titles.contains(&"Time (UTC, 2024-05-01)".to_string()));
        let utc = texts(&doc, ".lc-ticks-utc text");
        assert!(utc.iter().all(|l| l.len() == 5 && l.as_bytes()[2] == b':'));
        assert!(utc.contains(&"13:00".to_string()), "{utc:?}");
    }

    #[test]
    fn error_bars_only_with_errors() {
        let times = hourly(4);
        let flux = [1.0, 2.0, 3.0, 4.0];
        let svg = render("Jy", &times, &flux, None, None);
        let doc = Html::parse_fragment(&svg);
        assert_eq!(doc.select(&sel(".lc-err")).count(), 0);
        assert_eq!(doc.select(&sel("circle.lc-point")).count(), 4);
        // All positive and far from zero: no zero line.
        assert_eq!(doc.select(&sel(".lc-zero")).count(), 0);
        let title: String = doc.select(&sel("title")).next().unwrap().text().collect();
        assert!(!title.contains('±'), "{title}");
    }

    #[test]
    fn top_axis_counts_from_obs_start() {
        let times = hourly(7); // two hours
        let flux = [1.0, 2.0, 1.5, 1.0, 0.5, 1.0, 2.0];
        let svg = render("mJy", &times, &flux, None, Some(times[0]));
        let doc = Html::parse_fragment(&svg);
        let top = texts(&doc, ".lc-ticks-since text");
        assert_eq!(top[0], "+0:00", "{top:?}");
        assert!(top.contains(&"+1:00".to_string()), "{top:?}");
        assert!(texts(&doc, "text.lc-title").contains(&"Time since observation start".into()));

        // Without an observation start, the same: counted from the first point.
        let svg = render("mJy", &times, &flux, None, None);
        let doc = Html::parse_fragment(&svg);
        assert_eq!(texts(&doc, ".lc-ticks-since text")[0], "+0:00");
        assert!(texts(&doc, "text.lc-title").contains(&"Time since first point".into()));

        // Observation started 30 minutes before the first point.
        let start = times[0] - Duration::minutes(30);
        let svg = render("mJy", &times, &flux, None, Some(start));
        let doc = Html::parse_fragment(&svg);
        let top = texts(&doc, ".lc-ticks-since text");
        assert!(top.contains(&"+0:30".to_string()), "{top:?}");
        assert!(!top.contains(&"+0:00".to_string()), "{top:?}");
        let title: String = doc.select(&sel("title")).next().unwrap().text().collect();
        assert!(title.contains("(T+0:30:00)"), "{title}");
    }

    #[test]
    fn short_spans_use_seconds() {
        let t0 = datetime!(2024-05-01 23:59:50 UTC);
        let times: Vec<_> = (0..5).map(|i| t0 + Duration::seconds(5 * i)).collect();
        let flux = [1.0, 2.0, 3.0, 2.0, 1.0];
        let svg = render("mJy", &times, &flux, None, None);
        let doc = Html::parse_fragment(&svg);
        let top = texts(&doc, ".lc-ticks-since text");
        assert!(top.iter().all(|l| l.ends_with(" s")), "{top:?}");
        assert_eq!(top[0], "+0 s");
        // Crosses midnight: dates on the labels, seconds shown.
        let utc = texts(&doc, ".lc-ticks-utc text");
        assert!(utc.contains(&"05-02 00:00:00".to_string()), "{utc:?}");
        assert!(
            texts(&doc, "text.lc-title").contains(&"Time (UTC, 2024-05-01 to 2024-05-02)".into())
        );
    }

    #[test]
    fn multi_day_spans_show_dates() {
        let t0 = datetime!(2024-05-01 00:00 UTC);
        let times: Vec<_> = (0..10).map(|i| t0 + Duration::hours(12 * i)).collect();
        let flux: Vec<f64> = (0..10).map(|i| f64::from(i) * 0.1).collect();
        let svg = render("mJy", &times, &flux, None, None);
        assert_finite(&svg);
        let doc = Html::parse_fragment(&svg);
        let utc = texts(&doc, ".lc-ticks-utc text");
        assert!(utc.contains(&"05-02 00:00".to_string()), "{utc:?}");
        let top = texts(&doc, ".lc-ticks-since text");
        assert!(top.contains(&"+1 d".to_string()), "{top:?}");
    }

    #[test]
    fn escapes_the_unit() {
        let times = hourly(2);
        let svg = render("<script>\"'&", &times, &[1.0, 2.0], None, None);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;&quot;&apos;&amp;"));
        let doc = Html::parse_fragment(&svg);
        assert_eq!(doc.select(&sel("script")).count(), 0);
        assert!(texts(&doc, "text.lc-title").contains(&"Flux density (<script>\"'&)".into()));
    }

    #[test]
    fn no_style_attributes() {
        let times = hourly(3);
        let svg = render("Jy", &times, &[1.0, 2.0, 3.0], Some(&[0.1; 3]), None);
        assert!(!svg.contains("style"));
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn single_point_and_flat_curves_are_finite() {
        let t = [datetime!(2024-05-01 12:00 UTC)];
        for (flux, err) in [
            (vec![1.5], None),
            (vec![0.0], None),
            (vec![-2e-7], Some(vec![0.0])),
            (vec![3e200], Some(vec![1e300])),
            (vec![f64::MAX], Some(vec![f64::MAX])),
            (vec![f64::MIN_POSITIVE / 4.0], None),
        ] {
            let svg = render("Jy", &t, &flux, err.as_deref(), None);
            assert_finite(&svg);
            let doc = Html::parse_fragment(&svg);
            assert_eq!(doc.select(&sel("circle.lc-point")).count(), 1);
            assert_eq!(doc.select(&sel("polyline")).count(), 0);
            assert!(
                doc.select(&sel(".lc-ticks-flux text")).count() >= 2,
                "{svg}"
            );
            // ±1 minute around the point: the point is in the middle.
            let c = doc.select(&sel("circle.lc-point")).next().unwrap();
            assert!((num(&c, "cx") - (X0 + X1) / 2.0).abs() < 0.2);
        }
        let aria = render("Jy", &t, &[1.0], None, None);
        assert!(aria.contains(r#"aria-label="Light curve of 1 point at 2024-05-01 12:00:00 UTC""#));

        let times = hourly(6);
        for v in [0.0, 1.0, -4.2e9, 1e-12] {
            let flux = vec![v; 6];
            let svg = render("Jy", &times, &flux, None, None);
            assert_finite(&svg);
            let doc = Html::parse_fragment(&svg);
            let ys: Vec<f64> = doc
                .select(&sel("circle.lc-point"))
                .map(|c| num(&c, "cy"))
                .collect();
            assert_eq!(ys.len(), 6);
            assert!(ys.iter().all(|y| (Y0..=Y1).contains(y)));
            assert!(doc.select(&sel(".lc-ticks-flux text")).count() >= 2);
        }
    }

    #[test]
    fn flux_ticks_are_nice() {
        let times = hourly(4);
        for flux in [
            vec![0.013, 0.021, 0.0175, 0.03],
            vec![1.0, 7.3, 2.2, 4.4],
            vec![-3.0, 140.0, 17.0, 60.0],
            vec![2.5e6, 2.6e6, 2.55e6, 2.7e6],
            vec![1e-5, 3e-5, 2e-5, 1.5e-5],
            vec![1000.0, 1000.001, 1000.0005, 1000.0002],
        ] {
            let svg = render("Jy", &times, &flux, None, None);
            assert_finite(&svg);
            let doc = Html::parse_fragment(&svg);
            let labels = texts(&doc, ".lc-ticks-flux text");
            assert!(labels.len() >= 3, "{flux:?}: {labels:?}");
            let values: Vec<f64> = labels.iter().map(|l| l.parse().unwrap()).collect();
            let steps: Vec<f64> = values.windows(2).map(|w| w[1] - w[0]).collect();
            let step = steps[0];
            assert!(step > 0.0);
            for s in &steps {
                assert!((s - step).abs() < step * 1e-6, "{labels:?}");
            }
            let pow = 10f64.powf(step.log10().floor());
            let mant = step / pow;
            assert!(
                [1.0, 2.0, 5.0, 10.0]
                    .iter()
                    .any(|m| (mant - m).abs() < 1e-6),
                "{labels:?} step {step}"
            );
            // Every tick is a multiple of the (exact) nice step.
            let nice = mant.round() * pow;
            for v in &values {
                let k = v / nice;
                assert!((k - k.round()).abs() < 1e-4, "{labels:?}");
            }
            // The range covers the data.
            let ys: Vec<f64> = doc
                .select(&sel("circle.lc-point"))
                .map(|c| num(&c, "cy"))
                .collect();
            assert!(ys.iter().all(|y| (Y0..=Y1).contains(y)));
        }
    }

    #[test]
    fn mismatched_lengths_use_the_shortest() {
        let times = hourly(5);
        let svg = render("Jy", &times, &[1.0, 2.0, 3.0], Some(&[0.1, 0.1]), None);
        let doc = Html::parse_fragment(&svg);
        assert_eq!(doc.select(&sel("circle.lc-point")).count(), 2);
        let empty = render("Jy", &[], &[], None, None);
        assert_finite(&empty);
        assert!(empty.starts_with("<svg") && empty.ends_with("</svg>"));
    }

    #[test]
    fn many_points_stay_linear() {
        let t0 = datetime!(2024-05-01 00:00 UTC);
        let n = 5000;
        let times: Vec<_> = (0..n).map(|i| t0 + Duration::seconds(i)).collect();
        let flux: Vec<f64> = (0..n).map(|i| (i as f64 / 100.0).sin()).collect();
        let err = vec![0.05; n as usize];
        let svg = render("mJy/beam", &times, &flux, Some(&err), None);
        assert_finite(&svg);
        assert!(svg.len() < 400 * n as usize, "{} bytes", svg.len());
        let doc = Html::parse_fragment(&svg);
        assert_eq!(doc.select(&sel("circle.lc-point")).count(), n as usize);
    }

    #[test]
    fn number_formatting() {
        assert_eq!(fmt_num(1.234), "1.234");
        assert_eq!(fmt_num(1.23456), "1.235");
        assert_eq!(fmt_num(-12.5), "-12.5");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(-0.0), "0");
        assert_eq!(fmt_num(0.001), "0.001");
        assert_eq!(fmt_num(0.00012346), "1.235e-4");
        assert_eq!(fmt_num(123456.0), "1.235e5");
        assert_eq!(fmt_num(1e5), "1e5");
        assert_eq!(fmt_num(99999.0), "99999");
        assert_eq!(offset_label(90 * MINUTE, 30 * MINUTE), "+1:30");
        assert_eq!(offset_label(-30 * MINUTE, 30 * MINUTE), "\u{2212}0:30");
        assert_eq!(offset_label(12 * NS, 2 * NS), "+12 s");
        assert_eq!(offset_label(1_500_000_000, 500_000_000), "+1.5 s");
        assert_eq!(offset_label(2 * DAY, DAY), "+2 d");
        assert_eq!(offset_hms(34 * MINUTE + 56 * NS), "+0:34:56");
        assert_eq!(offset_hms(DAY + HOUR), "+1d 01:00:00");
        assert_eq!(time_step(0, 7), 1);
        assert_eq!(time_step(2 * HOUR, 7), 30 * MINUTE);
        assert_eq!(time_step(40 * NS, 7), 10 * NS);
        assert!(time_step(i128::MAX / 2, 7) > 0);
    }
}
