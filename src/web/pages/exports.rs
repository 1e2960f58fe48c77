//! Exports of the filtered candidates: CSV (`/candidates.csv`) and VOTable
//! for TOPCAT (`/candidates.vot`), with the same query as `/candidates`
//! plus `ratings=current|history|none`; and a light curve as CSV
//! (`/candidates/{id}/lightcurve.csv`).
//!
//! Layout (both formats, one table): one row per candidate and rating
//! ("long" form) — `ratings=current` gives each reviewer's current rating,
//! `ratings=history` adds every replaced rating (`rating_status` says
//! which), `ratings=none` gives one row per candidate. A candidate nobody
//! rated has one row with empty rating columns. The long form keeps the
//! columns the same whoever rated, and reads straight into TOPCAT, pandas
//! or a spreadsheet pivot; a column per reviewer would change shape with
//! every new reviewer.
//!
//! Columns: candidate_id, project, observation, beam, name, ra, dec (deg,
//! ICRS), rating_count, then one column per metric (the project's, in its
//! order; with no project, every project's keys), known_source and
//! known_catalogue (the candidate's association), then per catalogue the
//! project matches (with no project, every catalogue) `match_NAME` and
//! `match_NAME_sep` (its nearest stored match and separation in arcsec),
//! p_real, model_version and consensus (the current model's P(real), its
//! version, and open / settled_real / settled_not_real / disputed: empty
//! where the blind rule hides the candidate's ratings from the viewer, as
//! both come from others' verdicts), then reviewer, verdict,
//! score, tags (`; `-separated), notes, rated_at (RFC 3339, UTC), and for
//! history rating_status and replaced_at.
//!
//! Special values: a metric the candidate has no value for is empty in
//! both formats. NaN and infinities are written as CSV `nan`, `inf`,
//! `-inf` (what Python, numpy and pandas read as floats) and VOTable
//! `NaN`, `+Inf`, `-Inf` (as the VOTable standard spells them). In CSV, a
//! text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage
//! return gets a leading `'`, so a spreadsheet shows it instead of running
//! it as a formula ([`csv_text`]).
//!
//! Exports stream: a task reads the query through a cursor, a thousand rows
//! at a time, and hands the encoded bytes to the response body through a
//! small bounded channel, so memory stays flat however many rows, the
//! database computes no further ahead than the client reads, and a client
//! that goes away stops the query. The whole export has the export time
//! budget (`VETTER_EXPORT_STATEMENT_TIMEOUT`). Exports run on their own few
//! connections (`Pools::exports`): a further export is refused at once, and
//! a client that stops reading for the write time-out loses its export, so
//! nobody can hold a connection for as long as they like.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use poem::http::{header, StatusCode};
use poem::web::{Data, Path};
use poem::{handler, Body, Request, Response};
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, Postgres};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::mpsc::{self, error::SendTimeoutError};
use tokio::sync::OwnedSemaphorePermit;

use crate::db::candidates as cand;
use crate::db::ratings;
use crate::db::search::{self, ExportRow, RatingsExport, Scope};
use crate::db::users::User;
use crate::domain::filter::CandidateFilter;
use crate::domain::text::xml_escape;
use crate::domain::visibility::RatingVisibility;
use crate::domain::Problem;
use crate::domain::{CandidateId, CatalogueId, ProjectId};
use crate::transport::Cuts;
use crate::web::plumbing::access::CurrentUser;
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::state::AppState;

/// Bytes gathered before they are handed to the response.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the query and the client. Two keep the query
/// and the socket both busy; more only grows what is encoded in advance for
/// a client that has stopped reading (with eight, four stalled exports
/// starting together held both cores for a second).
const CHANNEL: usize = 2;

/// A metric column of an export.
#[derive(Debug, Clone)]
struct MetricColumn {
    name: String,
    unit: String,
    description: String,
}

/// The shape of an export: its metric columns, which metric ids fill each,
/// and which ratings it carries.
#[derive(Debug, Clone)]
struct Shape {
    metrics: Vec<MetricColumn>,
    by_metric_id: HashMap<i64, usize>,
    /// The catalogues whose nearest match is exported: the project's (or
    /// with no project, every catalogue), two columns each.
    catalogues: Vec<(CatalogueId, String)>,
    ratings: RatingsExport,
}

const FIXED: [&str; 8] = [
    "candidate_id",
    "project",
    "observation",
    "beam",
    "name",
    "ra",
    "dec",
    "rating_count",
];
/// The known source a candidate is associated with.
const KNOWN_COLUMNS: [&str; 2] = ["known_source", "known_catalogue"];
/// The model's score and the consensus state.
const MODEL_COLUMNS: [&str; 3] = ["p_real", "model_version", "consensus"];
const RATING_COLUMNS: [&str; 6] = ["reviewer", "verdict", "score", "tags", "notes", "rated_at"];
const HISTORY_COLUMNS: [&str; 2] = ["rating_status", "replaced_at"];

impl Shape {
    /// Metric columns: the project's metrics, or with no project every
    /// project's metric keys (a key shared by projects is one column).
    async fn load(
        conn: &mut PgConnection,
        project_id: Option<ProjectId>,
        ratings: RatingsExport,
    ) -> sqlx::Result<Self> {
        let defs = crate::db::projects::export_metrics(&mut *conn, project_id).await?;
        let taken = |name: &str| {
            FIXED.contains(&name)
                || KNOWN_COLUMNS.contains(&name)
                || name.starts_with("match_")
                || MODEL_COLUMNS.contains(&name)
                || RATING_COLUMNS.contains(&name)
                || HISTORY_COLUMNS.contains(&name)
        };
        let mut metrics: Vec<MetricColumn> = Vec::new();
        let mut by_key: HashMap<String, usize> = HashMap::new();
        let mut by_metric_id = HashMap::new();
        for crate::db::projects::ExportMetric {
            id,
            key,
            unit,
            description,
        } in defs
        {
            let i = *by_key.entry(key.clone()).or_insert_with(|| {
                metrics.push(MetricColumn {
                    // A metric named like a fixed column gets a prefix.
                    name: if taken(&key) {
                        format!("metric_{key}")
                    } else {
                        key.clone()
                    },
                    unit,
                    description,
                });
                metrics.len() - 1
            });
            by_metric_id.insert(id, i);
        }
        let catalogues = match project_id {
            Some(p) => crate::db::catalogues::choices(&mut *conn, p)
                .await?
                .into_iter()
                .map(|c| (c.catalogue_id, c.name))
                .collect(),
            None => crate::db::catalogues::list(&mut *conn)
                .await?
                .into_iter()
                .map(|c| (c.id, c.name))
                .collect(),
        };
        Ok(Shape {
            metrics,
            by_metric_id,
            catalogues,
            ratings,
        })
    }

    fn headers(&self) -> Vec<String> {
        let mut h: Vec<String> = FIXED.iter().map(|s| s.to_string()).collect();
        h.extend(self.metrics.iter().map(|m| m.name.clone()));
        h.extend(KNOWN_COLUMNS.iter().map(|s| s.to_string()));
        for (_, name) in &self.catalogues {
            h.push(format!("match_{name}"));
            h.push(format!("match_{name}_sep"));
        }
        h.extend(MODEL_COLUMNS.iter().map(|s| s.to_string()));
        if self.ratings != RatingsExport::None {
            h.extend(RATING_COLUMNS.iter().map(|s| s.to_string()));
        }
        if self.ratings == RatingsExport::History {
            h.extend(HISTORY_COLUMNS.iter().map(|s| s.to_string()));
        }
        h
    }

    /// The row's metric values in column order.
    /// The row's nearest match per exported catalogue: name and separation.
    fn nearest(&self, row: &ExportRow) -> Vec<Option<(String, f64)>> {
        let (ids, names, seps) = (
            row.nearest_catalogues.as_deref().unwrap_or_default(),
            row.nearest_names.as_deref().unwrap_or_default(),
            row.nearest_seps.as_deref().unwrap_or_default(),
        );
        self.catalogues
            .iter()
            .map(|(id, _)| {
                let i = ids.iter().position(|x| x == id)?;
                Some((names.get(i)?.clone(), *seps.get(i)?))
            })
            .collect()
    }

    fn metric_values(&self, row: &ExportRow) -> Vec<Option<f64>> {
        let mut out = vec![None; self.metrics.len()];
        if let (Some(ids), Some(values)) = (&row.metric_ids, &row.metric_values) {
            for (id, v) in ids.iter().zip(values) {
                if let Some(&i) = self.by_metric_id.get(id) {
                    out[i] = Some(*v);
                }
            }
        }
        out
    }
}

fn time_text(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// A finite number as the shortest text that reads back as the same value.
fn finite_text(v: f64) -> String {
    format!("{v:?}")
}

/// CSV numbers: `nan`, `inf`, `-inf` for the specials.
pub fn csv_number(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v == f64::INFINITY {
        "inf".into()
    } else if v == f64::NEG_INFINITY {
        "-inf".into()
    } else {
        finite_text(v)
    }
}

/// VOTable numbers: `NaN`, `+Inf`, `-Inf` for the specials.
pub fn votable_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        finite_text(v)
    }
}

/// CSV text cells: a spreadsheet runs a cell that starts with `=`, `+`,
/// `-`, `@`, a tab or a carriage return as a formula (CSV injection), so
/// such text gets a leading apostrophe, which spreadsheets show as text.
/// Only text columns go through this; numbers such as `-1.5` stay numbers.
pub fn csv_text(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

fn plain_text(s: &str) -> String {
    s.to_string()
}

/// The cells of a row as text, metric cells by the format's number rule
/// and text cells by its text rule.
fn cells(
    shape: &Shape,
    row: &ExportRow,
    number: fn(f64) -> String,
    text: fn(&str) -> String,
) -> Vec<String> {
    let mut c = vec![
        row.candidate_id.to_string(),
        text(&row.project),
        text(&row.observation),
        text(row.beam.as_deref().unwrap_or_default()),
        text(&row.name),
        number(row.pos.ra.degrees()),
        number(row.pos.dec.degrees()),
        row.rating_count.to_string(),
    ];
    c.extend(
        shape
            .metric_values(row)
            .into_iter()
            .map(|v| v.map_or_else(String::new, number)),
    );
    c.push(text(row.known_source.as_deref().unwrap_or_default()));
    c.push(text(row.known_catalogue.as_deref().unwrap_or_default()));
    for m in shape.nearest(row) {
        match m {
            Some((name, sep)) => {
                c.push(text(&name));
                c.push(number(sep));
            }
            None => c.extend([String::new(), String::new()]),
        }
    }
    // As f32 prints it: the stored precision, not f64's widening digits.
    c.push(row.p_real.map_or_else(String::new, |p| format!("{p:?}")));
    c.push(
        row.model_version
            .map_or_else(String::new, |v| v.to_string()),
    );
    c.push(row.consensus.clone().unwrap_or_default());
    if shape.ratings != RatingsExport::None {
        c.push(text(row.reviewer.as_deref().unwrap_or_default()));
        c.push(
            row.verdict
                .map_or_else(String::new, |v| v.as_str().to_string()),
        );
        c.push(row.score.map_or_else(String::new, |s| s.to_string()));
        c.push(
            row.tags
                .as_ref()
                .map_or_else(String::new, |t| text(&t.join("; "))),
        );
        c.push(text(row.notes.as_deref().unwrap_or_default()));
        c.push(time_text(row.rated_at));
    }
    if shape.ratings == RatingsExport::History {
        c.push(row.rating_status.clone().unwrap_or_default());
        c.push(time_text(row.replaced_at));
    }
    c
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    VoTable,
}

/// Encodes rows into bytes in one of the formats.
struct Encoder {
    format: Format,
    shape: Shape,
    csv: ::csv::Writer<Vec<u8>>,
    buf: Vec<u8>,
}

impl Encoder {
    fn new(format: Format, shape: Shape) -> Self {
        Encoder {
            format,
            shape,
            csv: ::csv::Writer::from_writer(Vec::with_capacity(CHUNK * 2)),
            buf: Vec::with_capacity(CHUNK * 2),
        }
    }

    fn header(&mut self, description: &str) -> std::io::Result<()> {
        match self.format {
            Format::Csv => self.csv.write_record(self.shape.headers())?,
            Format::VoTable => self.votable_header(description),
        }
        Ok(())
    }

    fn votable_header(&mut self, description: &str) {
        use std::fmt::Write as _;
        let mut s = String::new();
        s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        s.push_str(
            "<VOTABLE version=\"1.4\" xmlns=\"http://www.ivoa.net/xml/VOTable/v1.3\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n",
        );
        s.push_str("<RESOURCE type=\"results\">\n");
        let _ = writeln!(
            s,
            "<DESCRIPTION>vetter candidates: {}</DESCRIPTION>",
            xml_escape(description)
        );
        s.push_str("<TABLE name=\"candidates\">\n");
        let field = |s: &mut String, name: &str, datatype: &str, extra: &str| {
            let _ = writeln!(
                s,
                "<FIELD name=\"{}\" datatype=\"{datatype}\"{extra}/>",
                xml_escape(name)
            );
        };
        field(&mut s, "candidate_id", "long", " ucd=\"meta.id\"");
        field(&mut s, "project", "char", " arraysize=\"*\"");
        field(&mut s, "observation", "char", " arraysize=\"*\"");
        field(&mut s, "beam", "char", " arraysize=\"*\"");
        field(
            &mut s,
            "name",
            "unicodeChar",
            " arraysize=\"*\" ucd=\"meta.id;meta.main\"",
        );
        field(
            &mut s,
            "ra",
            "double",
            " unit=\"deg\" ucd=\"pos.eq.ra;meta.main\"",
        );
        field(
            &mut s,
            "dec",
            "double",
            " unit=\"deg\" ucd=\"pos.eq.dec;meta.main\"",
        );
        field(&mut s, "rating_count", "int", "");
        for m in &self.shape.metrics {
            let unit = if m.unit.is_empty() {
                String::new()
            } else {
                format!(" unit=\"{}\"", xml_escape(&m.unit))
            };
            if m.description.is_empty() {
                field(&mut s, &m.name, "double", &unit);
            } else {
                let _ = writeln!(
                    s,
                    "<FIELD name=\"{}\" datatype=\"double\"{unit}><DESCRIPTION>{}</DESCRIPTION></FIELD>",
                    xml_escape(&m.name),
                    xml_escape(&m.description)
                );
            }
        }
        field(&mut s, "known_source", "unicodeChar", " arraysize=\"*\"");
        field(&mut s, "known_catalogue", "char", " arraysize=\"*\"");
        for (_, name) in &self.shape.catalogues {
            field(
                &mut s,
                &format!("match_{name}"),
                "unicodeChar",
                " arraysize=\"*\"",
            );
            field(
                &mut s,
                &format!("match_{name}_sep"),
                "double",
                " unit=\"arcsec\"",
            );
        }
        field(&mut s, "p_real", "float", " ucd=\"stat.probability\"");
        field(&mut s, "model_version", "int", "");
        field(&mut s, "consensus", "char", " arraysize=\"*\"");
        if self.shape.ratings != RatingsExport::None {
            field(&mut s, "reviewer", "char", " arraysize=\"*\"");
            field(&mut s, "verdict", "char", " arraysize=\"*\"");
            field(&mut s, "score", "short", "");
            field(&mut s, "tags", "unicodeChar", " arraysize=\"*\"");
            field(&mut s, "notes", "unicodeChar", " arraysize=\"*\"");
            field(
                &mut s,
                "rated_at",
                "char",
                " arraysize=\"*\" xtype=\"timestamp\"",
            );
        }
        if self.shape.ratings == RatingsExport::History {
            field(&mut s, "rating_status", "char", " arraysize=\"*\"");
            field(
                &mut s,
                "replaced_at",
                "char",
                " arraysize=\"*\" xtype=\"timestamp\"",
            );
        }
        s.push_str("<DATA><TABLEDATA>\n");
        self.buf.extend_from_slice(s.as_bytes());
    }

    fn row(&mut self, row: &ExportRow) -> std::io::Result<()> {
        match self.format {
            Format::Csv => {
                self.csv
                    .write_record(cells(&self.shape, row, csv_number, csv_text))?;
            }
            Format::VoTable => {
                self.buf.extend_from_slice(b"<TR>");
                for cell in cells(&self.shape, row, votable_number, plain_text) {
                    if cell.is_empty() {
                        self.buf.extend_from_slice(b"<TD/>");
                    } else {
                        self.buf.extend_from_slice(b"<TD>");
                        self.buf.extend_from_slice(xml_escape(&cell).as_bytes());
                        self.buf.extend_from_slice(b"</TD>");
                    }
                }
                self.buf.extend_from_slice(b"</TR>\n");
            }
        }
        Ok(())
    }

    fn footer(&mut self) {
        if self.format == Format::VoTable {
            self.buf
                .extend_from_slice(b"</TABLEDATA></DATA>\n</TABLE>\n</RESOURCE>\n</VOTABLE>\n");
        }
    }

    /// What is ready to send (all of it when `force`, else only once a
    /// chunk has gathered).
    fn take(&mut self, force: bool) -> std::io::Result<Option<Vec<u8>>> {
        if self.format == Format::Csv {
            if self.csv.get_ref().len() < CHUNK && !force {
                return Ok(None);
            }
            let full = std::mem::replace(
                &mut self.csv,
                ::csv::Writer::from_writer(Vec::with_capacity(CHUNK * 2)),
            );
            let out = full
                .into_inner()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            return Ok((!out.is_empty()).then_some(out));
        }
        if self.buf.len() < CHUNK && !force {
            return Ok(None);
        }
        let out = std::mem::take(&mut self.buf);
        Ok((!out.is_empty()).then_some(out))
    }
}

type Chunk = Result<Vec<u8>, std::io::Error>;

/// What the producing task owns: the connection and the export slot it
/// holds until it ends, and how long it waits for the client.
struct Producer {
    conn: PoolConnection<Postgres>,
    _slot: OwnedSemaphorePermit,
    write_timeout: Duration,
    /// The whole export's budget: each fetch is a statement of its own (with
    /// the reports' statement time-out), so the app keeps this one.
    budget: Duration,
    /// Set when the export stops short (the client stopped reading, or the
    /// query failed): the body then ends in an error, so the client never
    /// takes the cut file for a whole one.
    broken: Arc<AtomicBool>,
}

/// Runs the export query and sends the encoded chunks; stops when the
/// client has gone (the channel is closed) or stopped reading.
async fn produce(
    p: Producer,
    scope: Scope,
    v: RatingVisibility,
    mut enc: Encoder,
    description: String,
    tx_chunks: mpsc::Sender<Chunk>,
) -> Result<(), std::io::Error> {
    let Producer {
        mut conn,
        _slot,
        write_timeout,
        budget,
        broken,
    } = p;
    let started = std::time::Instant::now();
    enc.header(&description)?;
    let io = std::io::Error::other;
    // The cursor lives in this transaction; dropping it (an early return)
    // rolls back, which closes the cursor.
    let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(io)?;
    search::declare_export(&mut tx, &scope, &v, enc.shape.ratings)
        .await
        .map_err(io)?;
    let mut n: u64 = 0;
    loop {
        let rows = search::fetch_export(&mut tx).await.map_err(io)?;
        let last = rows.len() < search::EXPORT_BATCH;
        for row in &rows {
            enc.row(row)?;
            n += 1;
            let Some(chunk) = enc.take(false)? else {
                continue;
            };
            let gone = match tx_chunks.send_timeout(Ok(chunk), write_timeout).await {
                Ok(()) => continue,
                Err(SendTimeoutError::Closed(_)) => "export abandoned by the client",
                Err(SendTimeoutError::Timeout(_)) => {
                    broken.store(true, Ordering::Release);
                    "export dropped: the client stopped reading"
                }
            };
            tracing::info!(rows = n, "{gone}");
            return Ok(());
        }
        if last {
            break;
        }
        if started.elapsed() > budget {
            broken.store(true, Ordering::Release);
            tracing::warn!(rows = n, "export stopped: it ran past its time budget");
            return Ok(());
        }
    }
    tx.rollback().await.map_err(io)?;
    enc.footer();
    if let Some(chunk) = enc.take(true)? {
        if tx_chunks
            .send_timeout(Ok(chunk), write_timeout)
            .await
            .is_err()
        {
            broken.store(true, Ordering::Release);
        }
    }
    tracing::info!(
        rows = n,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "export done"
    );
    Ok(())
}

fn stream_body(
    p: Producer,
    scope: Scope,
    v: RatingVisibility,
    enc: Encoder,
    description: String,
    // The error alone would not do: see `transport::Cuts`.
    cut: Option<(Cuts, SocketAddr)>,
) -> Body {
    let (tx, rx) = mpsc::channel::<Chunk>(CHANNEL);
    let broken = p.broken.clone();
    let failed = p.broken.clone();
    tokio::spawn(async move {
        // Holds the channel open until the outcome is recorded, so the body
        // cannot see its end before it knows whether that end is an error.
        let open = tx.clone();
        if let Err(e) = produce(p, scope, v, enc, description, tx).await {
            tracing::error!(error = %e, "export failed part way");
            failed.store(true, Ordering::Release);
        }
        drop(open);
    });
    let stream = futures_util::stream::unfold(Some(rx), move |rx| {
        let broken = broken.clone();
        let cut = cut.clone();
        async move {
            let mut rx = rx?;
            match rx.recv().await {
                Some(chunk) => Some((chunk, Some(rx))),
                None if broken.load(Ordering::Acquire) => {
                    if let Some((cuts, peer)) = &cut {
                        cuts.cut(*peer);
                    }
                    Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "the export stopped short",
                        )),
                        None,
                    ))
                }
                None => None,
            }
        }
    });
    Body::from_bytes_stream(stream)
}

/// An export of the filter in the request's query, as `user` may see it:
/// the browser's routes and the read API's.
pub async fn export(
    req: &Request,
    state: &AppState,
    user: &User,
    format: Format,
) -> WebResult<Response> {
    let query = req.uri().query().unwrap_or("");
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let ratings_param = pairs
        .iter()
        .rev()
        .find(|(k, _)| k == "ratings")
        .map_or("", |(_, v)| v.as_str());
    let ratings = RatingsExport::parse(ratings_param.trim())
        .map_err(|e| AppError::invalid(vec![Problem::new("ratings", e)]))?;
    let f = CandidateFilter::from_pairs(&pairs);
    let slot = state
        .export_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            AppError::Busy("Too many exports are running at the moment. Try again in a minute.")
        })?;
    let mut conn = state.pools.exports.acquire().await?;
    let res = search::resolve(&mut conn, &f).await?;
    let v = ratings::visibility(&mut conn, user.id, user.role).await?;
    if !res.is_valid() {
        return Err(AppError::invalid(res.problems));
    }
    let shape = Shape::load(&mut conn, res.scope.project_id, ratings).await?;
    let stem = format!(
        "candidates-{}",
        f.project.as_deref().unwrap_or("all-projects")
    );
    let (content_type, file) = match format {
        Format::Csv => ("text/csv; charset=utf-8", format!("{stem}.csv")),
        Format::VoTable => ("application/x-votable+xml", format!("{stem}.vot")),
    };
    let producer = Producer {
        conn,
        _slot: slot,
        write_timeout: state.config.limits.write_timeout,
        budget: state.config.limits.export_statement_timeout,
        broken: Arc::new(AtomicBool::new(false)),
    };
    let body = stream_body(
        producer,
        res.scope,
        v,
        Encoder::new(format, shape),
        f.summary(),
        req.remote_addr()
            .as_socket_addr()
            .map(|peer| (state.cuts.clone(), *peer)),
    );
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file}\""),
        )
        .header(header::CACHE_CONTROL, "no-store")
        .body(body))
}

/// `/candidates.csv?<table query>&ratings=current|history|none`
#[handler]
pub async fn csv(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
) -> WebResult<Response> {
    export(req, &state, &user, Format::Csv).await
}

/// `/candidates.vot?<table query>&ratings=current|history|none`
#[handler]
pub async fn votable(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
) -> WebResult<Response> {
    export(req, &state, &user, Format::VoTable).await
}

/// Modified Julian Date of a time.
fn mjd(t: OffsetDateTime) -> f64 {
    t.unix_timestamp_nanos() as f64 / 86_400e9 + 40_587.0
}

/// `/candidates/{id}/lightcurve.csv`: time_utc, mjd, flux, flux_err, unit.
#[handler]
pub async fn light_curve(
    state: Data<&AppState>,
    Path(id): Path<CandidateId>,
) -> WebResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let c = cand::detail(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("candidate"))?;
    let lc = cand::light_curve(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("light curve for this candidate"))?;
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let io = |e: ::csv::Error| AppError::Internal(anyhow::Error::new(e));
    w.write_record(["time_utc", "mjd", "flux", "flux_err", "unit"])
        .map_err(io)?;
    for (i, t) in lc.times.iter().enumerate() {
        let err = lc
            .flux_err
            .as_ref()
            .and_then(|e| e.get(i))
            .map_or_else(String::new, |e| csv_number(*e));
        w.write_record([
            time_text(Some(*t)),
            format!("{:.8}", mjd(*t)),
            lc.flux.get(i).map_or_else(String::new, |f| csv_number(*f)),
            err,
            csv_text(&lc.unit),
        ])
        .map_err(io)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    let file = crate::domain::text::file_stem(&c.name);
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file}-lightcurve.csv\""),
        )
        .body(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specials_are_spelled_as_each_format_expects() {
        assert_eq!(csv_number(f64::NAN), "nan");
        assert_eq!(csv_number(f64::INFINITY), "inf");
        assert_eq!(csv_number(f64::NEG_INFINITY), "-inf");
        assert_eq!(votable_number(f64::NAN), "NaN");
        assert_eq!(votable_number(f64::INFINITY), "+Inf");
        assert_eq!(votable_number(f64::NEG_INFINITY), "-Inf");
        for v in [188.7, -45.2, 0.1 + 0.2, 1e-300, 1.7976931348623157e308, 3.0] {
            assert_eq!(csv_number(v).parse::<f64>().unwrap(), v);
        }
    }

    #[test]
    fn csv_text_that_a_spreadsheet_would_run_is_neutralised() {
        for f in ["=1+2", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(csv_text(f), format!("'{f}"));
        }
        for t in ["J1234-45", "", "a=b", "'quoted", "1.5"] {
            assert_eq!(csv_text(t), t);
        }
    }

    #[test]
    fn modified_julian_dates() {
        let t = time::macros::datetime!(1858-11-17 00:00 UTC);
        assert_eq!(mjd(t), 0.0);
        let t = time::macros::datetime!(2000-01-01 12:00 UTC);
        assert_eq!(mjd(t), 51_544.5);
    }
}
