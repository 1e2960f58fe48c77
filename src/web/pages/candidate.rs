//! The rating page: `/candidates/{id}`, rating, next, previous and undo.
//!
//! Every action that moves to another candidate answers htmx with that
//! candidate's fragment (`candidate/_main.html`) in the same response and
//! pushes its URL, so one keystroke is one round trip; a plain browser gets
//! a redirect to the same place.

use askama::Template;
use askama_web::WebTemplate;
use poem::http::StatusCode;
use poem::web::{Data, Path, Query};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};

use crate::db::candidates::{self as cand, Detail, FileRef, MetricValue};
use crate::db::queue::{self, Resolved};
use crate::db::ratings::{self, MyRating, RatingView};
use crate::db::trail;
use crate::db::users::User;
use crate::domain::chart::ChartView;
use crate::domain::consensus::Consensus;
use crate::domain::decision::Standing;
use crate::domain::keys::TAG_KEYS;
use crate::domain::rating::RatingInput;
use crate::domain::{sexagesimal, UserId, Verdict};
use crate::domain::{CandidateId, FileId, TagId};
use crate::web::pages::gif_player::GifPlayer;
use crate::web::pages::light_curve::LightCurveBox;
use crate::web::paths;
use crate::web::plumbing::access::{see_other, CurrentUser};
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::plumbing::form::Form;
use crate::web::plumbing::htmx::{fragment_or_page, is_htmx};
use crate::web::plumbing::layout::Layout;
use crate::web::plumbing::session::{FlashKind, SessionRatings, TypedSession};
use crate::web::state::AppState;

/// A stored file as the page links it.
pub struct Link {
    pub url: String,
    pub role: String,
    pub label: String,
    pub size: String,
}

/// A FITS image of the candidate, drawn by `assets/sky.js` from its values.
pub struct SkyFigure {
    /// Where the values are (`paths::candidate_sky`).
    pub url: String,
    pub label: String,
    /// The file itself.
    pub download: String,
}

/// What the decision screen shows as pictures: the candidate's FITS images
/// (drawn, not their rendered previews), its PNGs, its GIF movies; and the
/// beam's and observation's pictures, which are context and go below.
pub struct Figures {
    pub skies: Vec<SkyFigure>,
    pub images: Vec<Link>,
    pub players: Vec<GifPlayer>,
    pub context: Vec<Link>,
}

impl Figures {
    pub fn of(id: CandidateId, files: &[FileRef]) -> Figures {
        let own = |f: &&FileRef| f.owner == "candidate";
        let fits: Vec<FileId> = files
            .iter()
            .filter(own)
            .filter(|f| f.content_type == "application/fits")
            .map(|f| f.id)
            .collect();
        // Previews rendered from a drawn FITS file, and the strips cut from
        // those, say nothing the drawing does not.
        let from_fits: Vec<FileId> = files
            .iter()
            .filter(|f| f.derived_from.is_some_and(|d| fits.contains(&d)))
            .map(|f| f.id)
            .collect();
        let hidden = |f: &FileRef| {
            from_fits.contains(&f.id) || f.derived_from.is_some_and(|d| from_fits.contains(&d))
        };
        let skies = files
            .iter()
            .filter(|f| fits.contains(&f.id))
            .map(|f| SkyFigure {
                url: paths::candidate_sky(id, f.id),
                label: f.role.replace('_', " "),
                download: media_url(f),
            })
            .collect();
        let pictures = |mine: bool| {
            files
                .iter()
                .filter(|f| (f.owner == "candidate") == mine && !hidden(f))
                .filter(|f| f.content_type == "image/png" && !f.role.ends_with("_strip"))
                .map(link)
                .collect()
        };
        let movies: Vec<FileRef> = files
            .iter()
            .filter(own)
            .filter(|f| !hidden(f))
            .cloned()
            .collect();
        Figures {
            skies,
            images: pictures(true),
            players: GifPlayer::from_files(&movies),
            context: pictures(false),
        }
    }

    pub fn count(&self) -> usize {
        self.skies.len() + self.images.len() + self.players.len()
    }

    /// What to fetch ahead for the candidate these are of.
    fn prefetch(&self) -> Vec<Prefetch> {
        let skies = self.skies.iter().map(|s| Prefetch {
            url: s.url.clone(),
            sky: true,
        });
        let images = self.images.iter().map(|i| Prefetch {
            url: i.url.clone(),
            sky: false,
        });
        let strips = self.players.iter().map(|p| Prefetch {
            url: p.strip_url.clone(),
            sky: false,
        });
        skies.chain(images).chain(strips).collect()
    }
}

/// A URL the page fetches ahead: sky values (for sky.js) or an image.
pub struct Prefetch {
    pub url: String,
    pub sky: bool,
}

pub struct TagOption {
    pub id: TagId,
    pub name: String,
    pub description: String,
    pub key: Option<&'static str>,
    pub checked: bool,
}

/// Everything `candidate/_main.html` shows.
pub struct CandidateView {
    pub c: Detail,
    pub ra_hms: String,
    pub dec_dms: String,
    pub metrics: Vec<MetricValue>,
    pub figures: Figures,
    pub has_fits: bool,
    pub light_curve: Option<LightCurveBox>,
    pub tags: Vec<TagOption>,
    pub mine: Option<MyRating>,
    pub others: Vec<RatingView>,
    /// The blind rule lets this reviewer see others' ratings of it.
    pub sees_others: bool,
    /// "P(real) 0.87 (model 4) · settled: real": learnt from and made of
    /// others' verdicts, so only where `sees_others`.
    pub standing: Option<String>,
    /// Where the team stands, under the same condition.
    pub consensus: Option<Consensus>,
    /// The VOEvent download, for an administrator once the team has
    /// settled the candidate as real.
    pub voevent: Option<String>,
    /// Where the administrator posts it to the site's broker, when one is
    /// configured.
    pub voevent_send: Option<String>,
    pub queue_label: String,
    pub prev: Option<CandidateId>,
    pub prefetch: Vec<Prefetch>,
    pub form_key: String,
    pub progress: Progress,
}

/// How this session is going: ratings made, their pace, and what is left.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub rated: usize,
    /// Ratings per hour, once there are a few minutes to judge by.
    pub per_hour: Option<u32>,
    /// From the session's recent count of the queue, if it has one.
    pub left: Option<i64>,
}

impl Progress {
    fn of(rated: &SessionRatings, left: Option<i64>) -> Progress {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let hours = (now - rated.first) as f64 / 3600.0;
        let per_hour = (rated.count >= 3 && hours >= 2.0 / 60.0)
            .then(|| (rated.count as f64 / hours).round() as u32);
        Progress {
            rated: rated.count as usize,
            per_hour,
            left,
        }
    }
}

impl CandidateView {
    pub fn verdicts(&self) -> [Verdict; 3] {
        Verdict::ALL
    }
    pub fn is_mine(&self, v: &Verdict) -> bool {
        self.mine.as_ref().is_some_and(|m| m.verdict == *v)
    }
    pub fn my_notes(&self) -> &str {
        self.mine.as_ref().map_or("", |m| m.notes.as_str())
    }
    pub fn my_score(&self) -> i16 {
        self.mine.as_ref().and_then(|m| m.score).unwrap_or(0)
    }
    /// The metrics a reviewer reads at a glance: those the project marks,
    /// or while it marks none, its first few.
    pub fn headline(&self) -> Vec<&MetricValue> {
        let marked: Vec<&MetricValue> = self.metrics.iter().filter(|m| m.headline).collect();
        if marked.is_empty() {
            self.metrics.iter().take(HEADLINE_METRICS).collect()
        } else {
            marked
        }
    }
    /// How long after the images are painted verdict keys are ignored.
    pub fn guard_ms(&self) -> i32 {
        self.c.key_guard_ms
    }
}

/// At most this many metrics stand beside the light curve.
const HEADLINE_METRICS: usize = 6;

/// The class that colours a headline metric by the project's good range.
pub fn standing_class(m: &MetricValue) -> &'static str {
    match m.standing() {
        Standing::Good => "good",
        Standing::Outside => "outside",
        Standing::Unjudged => "",
    }
}

/// How a metric value reads: the project's precision, and the IEEE
/// specials spelled out rather than hidden.
pub fn metric_text(m: &MetricValue) -> String {
    match m.value {
        None => "–".into(),
        Some(v) if v.is_nan() => "NaN".into(),
        Some(v) if v == f64::INFINITY => "+∞".into(),
        Some(v) if v == f64::NEG_INFINITY => "−∞".into(),
        Some(v) => format!("{:.*}", m.precision.max(0) as usize, v),
    }
}

fn size_text(bytes: i64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.0} kB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

pub fn media_url(f: &FileRef) -> String {
    paths::media_named(f.id, &f.role, &f.content_type)
}

fn link(f: &FileRef) -> Link {
    Link {
        url: media_url(f),
        role: f.role.clone(),
        label: if f.owner == "candidate" {
            f.role.replace('_', " ")
        } else {
            format!("{} {}", f.owner, f.role.replace('_', " "))
        },
        size: size_text(f.size_bytes),
    }
}

/// Every file but the strips, which exist only for the movie player.
pub fn downloads(files: &[FileRef]) -> Vec<Link> {
    files
        .iter()
        .filter(|f| !f.role.ends_with("_strip"))
        .map(link)
        .collect()
}

pub async fn load_view(
    conn: &mut PgConnection,
    pool: &PgPool,
    user: UserId,
    id: CandidateId,
    q: &Resolved,
    record_in_trail: bool,
    following: Following,
) -> WebResult<CandidateView> {
    // Two independent halves: on a second connection at the same time when
    // one is free this instant, else one after the other on this one (a
    // request never waits for a second connection while holding a first).
    let (seen, ahead) = match pool.try_acquire() {
        Some(mut other) => tokio::join!(
            the_candidate(conn, user, id, q, record_in_trail),
            what_follows(&mut other, user, id, q, following)
        ),
        None => {
            let seen = the_candidate(&mut *conn, user, id, q, record_in_trail).await;
            (seen, what_follows(conn, user, id, q, following).await)
        }
    };
    let (shown, mine, sees_others, others, standing) = seen?;
    let (standing, consensus) = standing.unzip();
    let prefetch = ahead?;
    let c = shown.detail.clone();
    let prev = shown.trail_before;
    let pos = c.pos;
    let files = shown.files();
    let figures = Figures::of(id, files);
    let has_fits = files.iter().any(|f| f.content_type == "application/fits");
    let light_curve = shown
        .light_curve()
        .map(|lc| LightCurveBox::draw(id, &lc, c.obs_start, ChartView::default()));
    let my_tags: &[TagId] = mine.as_ref().map_or(&[], |m| m.tag_ids.as_slice());
    let tags = shown
        .tags()
        .into_iter()
        .enumerate()
        .map(|(i, (tid, name, description))| TagOption {
            id: tid,
            name,
            description,
            key: TAG_KEYS.get(i).copied(),
            checked: my_tags.contains(&tid),
        })
        .collect();
    Ok(CandidateView {
        ra_hms: sexagesimal::format_ra_hms(pos.ra, 2),
        dec_dms: sexagesimal::format_dec_dms(pos.dec, 1),
        metrics: shown.metrics(),
        figures,
        has_fits,
        light_curve,
        tags,
        mine,
        others,
        sees_others,
        standing,
        consensus,
        voevent: None,
        voevent_send: None,
        queue_label: queue_label(q),
        prev,
        prefetch,
        form_key: crate::random_hex(16),
        progress: Progress::default(),
        c,
    })
}

/// The candidate as the page shows it, the reviewer's rating of it, the
/// candidate they saw before it (noting this showing first, when asked),
/// and others' ratings where the blind rule allows: one statement, two once
/// others' ratings may be seen.
async fn the_candidate(
    conn: &mut PgConnection,
    user: UserId,
    id: CandidateId,
    q: &Resolved,
    record_in_trail: bool,
) -> WebResult<(
    cand::Shown,
    Option<MyRating>,
    bool,
    Vec<RatingView>,
    Option<(String, Consensus)>,
)> {
    let shown = cand::shown(&mut *conn, id, user, record_in_trail)
        .await?
        .ok_or(AppError::NotFound("candidate"))?;
    let mine = shown.mine();
    // Others' ratings only once this reviewer has rated (unless the project
    // says otherwise): nobody anchors on them.
    let sees_others = q
        .visibility
        .sees_others(shown.detail.project_id, mine.is_some());
    let (others, standing) = if sees_others {
        let standing =
            crate::db::models::standing(&mut *conn, id)
                .await?
                .and_then(|(p, version, state)| {
                    let consensus = Consensus::parse(&state).ok()?;
                    Some((standing_text(p, version, consensus), consensus))
                });
        (ratings::current_for(conn, id).await?, standing)
    } else {
        (Vec::new(), None)
    };
    Ok((shown, mine, sees_others, others, standing))
}

fn standing_text(p_real: Option<f32>, version: Option<i32>, consensus: Consensus) -> String {
    let consensus = consensus.label();
    match (p_real, version) {
        (Some(p), Some(v)) => format!("P(real) {p:.2} (model {v}) · {consensus}"),
        _ => format!("not scored · {consensus}"),
    }
}

/// The pictures of the candidate the queue offers next, to fetch while this
/// one is looked at.
async fn what_follows(
    conn: &mut PgConnection,
    user: UserId,
    id: CandidateId,
    q: &Resolved,
    following: Following,
) -> WebResult<Vec<Prefetch>> {
    let following = match following {
        Following::Known(f) => f,
        Following::Unknown => queue::next(&mut *conn, user, q, Some(id)).await?,
    };
    Ok(match following {
        Some(f) => Figures::of(f, &cand::own_files(conn, f).await?).prefetch(),
        None => Vec::new(),
    })
}

/// The candidate the queue offers after the one shown, if the caller
/// already asked the queue for it.
#[derive(Debug, Clone, Copy)]
pub enum Following {
    Known(Option<CandidateId>),
    Unknown,
}

pub fn queue_label(q: &Resolved) -> String {
    let mut parts = vec![q
        .view
        .project
        .clone()
        .unwrap_or_else(|| "all projects".into())];
    if let Some(o) = &q.view.observation {
        parts.push(o.clone());
    }
    if q.view.tag.is_some() {
        parts.push("one tag".into());
    }
    if q.filter.is_some() {
        parts.push("table filter".into());
    }
    parts.push(q.view.order.label());
    parts.push(q.view.mode.label().into());
    parts.join(" · ")
}

#[derive(Template, WebTemplate)]
#[template(path = "candidate/page.html")]
pub struct CandidatePage {
    layout: Layout,
    view: CandidateView,
}

#[derive(Template, WebTemplate)]
#[template(path = "candidate/_fragment.html")]
pub struct CandidateFragment {
    view: CandidateView,
    csrf_token: String,
    /// Said beside the swap (what an undo took back).
    notice: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "candidate/empty.html")]
pub struct EmptyPage {
    layout: Layout,
    queue_label: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "candidate/_empty.html")]
pub struct EmptyFragment {
    queue_label: String,
}

/// What `show` shows: a candidate by its id, or what the queue has just
/// offered.
enum Shown {
    Id(CandidateId),
    Queue(Box<Asked>),
}

/// The queue's answer, with the connection that asked (every acquire costs
/// a liveness round trip) and the candidate after the offered one, whose
/// images the page fetches ahead.
struct Asked {
    conn: PoolConnection<Postgres>,
    q: Resolved,
    target: Option<CandidateId>,
    following: Option<CandidateId>,
}

/// The answer that shows a candidate (or the empty queue): a fragment with
/// a pushed URL for htmx, the page otherwise.
async fn show(
    req: &Request,
    state: &AppState,
    user: &User,
    shown: Shown,
    record_in_trail: bool,
) -> WebResult<Response> {
    show_with(req, state, user, shown, record_in_trail, None).await
}

/// [`show`], with a notice that htmx puts among the page's notices.
async fn show_with(
    req: &Request,
    state: &AppState,
    user: &User,
    shown: Shown,
    record_in_trail: bool,
    notice: Option<String>,
) -> WebResult<Response> {
    let session = TypedSession::from_request_ref(req)?;
    let (mut conn, q, target, following) = match shown {
        Shown::Queue(a) => {
            let a = *a;
            (a.conn, a.q, a.target, Following::Known(a.following))
        }
        Shown::Id(id) => {
            let mut conn = state.pool.acquire().await?;
            let q = queue::load(&mut conn, user.id, user.role).await?;
            (conn, q, Some(id), Following::Unknown)
        }
    };
    let Some(id) = target else {
        let label = queue_label(&q);
        return fragment_or_page(
            req,
            paths::NEXT,
            label,
            |queue_label| EmptyFragment { queue_label },
            |layout, queue_label| EmptyPage {
                layout,
                queue_label,
            },
        )
        .await;
    };
    let mut view = load_view(
        &mut conn,
        &state.pool,
        user.id,
        id,
        &q,
        record_in_trail,
        following,
    )
    .await?;
    if user.is_admin()
        && state.config.voevent.is_some()
        && view.consensus == Some(Consensus::SettledReal)
    {
        view.voevent = Some(paths::candidate_voevent(id));
        if state.config.notify.voevent_broker_url.is_some() {
            view.voevent_send = Some(paths::candidate_voevent_send(id));
        }
    }
    view.progress = Progress::of(
        &session.rated_here().await?,
        session.queue_left(&view.queue_label).await?,
    );
    drop(conn);
    let layout = Layout::for_request(req).await?;
    Ok(if is_htmx(req) {
        CandidateFragment {
            view,
            csrf_token: layout.csrf_token,
            notice,
        }
        .with_header("HX-Push-Url", paths::candidate(id))
        .into_response()
    } else {
        CandidatePage { layout, view }.into_response()
    })
}

/// The reviewer's queue, with what they may see of others' ratings.
async fn my_queue(db: &mut PgConnection, user: &User) -> sqlx::Result<Resolved> {
    queue::load(db, user.id, user.role).await
}

/// What the reviewer's queue offers after `after`, and what follows that.
async fn ask_queue(
    conn: PoolConnection<Postgres>,
    user: &User,
    after: Option<CandidateId>,
) -> WebResult<Asked> {
    let mut conn = conn;
    let q = my_queue(&mut conn, user).await?;
    ask_resolved(conn, user, q, after).await
}

/// [`ask_queue`] with the queue already read.
async fn ask_resolved(
    mut conn: PoolConnection<Postgres>,
    user: &User,
    q: Resolved,
    after: Option<CandidateId>,
) -> WebResult<Asked> {
    // Each draw may offer a gold candidate, at its project's rate.
    let roll = crate::domain::gold::roll();
    let upcoming = queue::offer(&mut conn, user.id, &q, after, 2, roll).await?;
    Ok(Asked {
        conn,
        q,
        target: upcoming.first().copied(),
        following: upcoming.get(1).copied(),
    })
}

/// Where a plain browser goes after an action: the candidate, or the queue.
fn go(target: Option<CandidateId>) -> Response {
    see_other(&target.map_or_else(|| paths::NEXT.to_string(), paths::candidate))
}

#[handler]
pub async fn page(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<CandidateId>,
) -> WebResult<Response> {
    show(req, &state, &user, Shown::Id(id), true).await
}

#[derive(Deserialize)]
pub struct AfterParam {
    after: Option<CandidateId>,
}

/// `/next`: the next candidate of my queue, after `after` if given.
#[handler]
pub async fn next(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
    Query(p): Query<AfterParam>,
) -> WebResult<Response> {
    let asked = ask_queue(state.pool.acquire().await?, &user, p.after).await?;
    if !is_htmx(req) {
        if let Some(id) = asked.target {
            return Ok(see_other(&paths::candidate(id)));
        }
    }
    show(req, &state, &user, Shown::Queue(Box::new(asked)), true).await
}

#[derive(Deserialize)]
pub struct FromParam {
    from: CandidateId,
}

/// `/previous?from=ID`: back through what this reviewer was shown.
#[handler]
pub async fn previous(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
    Query(p): Query<FromParam>,
) -> WebResult<Response> {
    let target = {
        let mut conn = state.pool.acquire().await?;
        trail::before(&mut conn, user.id, p.from, false)
            .await?
            .unwrap_or(p.from)
    };
    if !is_htmx(req) {
        return Ok(see_other(&paths::candidate(target)));
    }
    // Walking back does not add to the trail, or the next step back would
    // return to where we came from.
    show(req, &state, &user, Shown::Id(target), false).await
}

#[derive(Deserialize)]
pub struct RatingForm {
    verdict: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    notes: String,
    score: Option<String>,
    key: Option<String>,
}

#[handler]
pub async fn rate(
    req: &Request,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<CandidateId>,
    body: poem::Body,
) -> WebResult<Response> {
    // Repeated `tags` fields need a parser that collects them.
    let bytes = body
        .into_bytes_limit(256 * 1024)
        .await
        .map_err(|_| AppError::TooLarge("the rating form is too large".into()))?;
    let pairs: Vec<(String, String)> = crate::web::plumbing::form::parse(&bytes)?;
    let mut form = RatingForm {
        verdict: None,
        tags: Vec::new(),
        notes: String::new(),
        score: None,
        key: None,
    };
    for (k, v) in pairs {
        match k.as_str() {
            "verdict" => form.verdict = Some(v),
            "tags" => form.tags.push(v),
            "notes" => form.notes = v,
            "score" => form.score = Some(v),
            "key" => form.key = Some(v),
            _ => {}
        }
    }
    let mut conn = state.pool.acquire().await?;
    let (score_enabled, allowed) = cand::rating_rules(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("candidate"))?;
    let verdict = form.verdict.as_deref().ok_or_else(|| {
        AppError::BadRequest("choose a verdict: real (y), not real (n) or unsure (u)".into())
    })?;
    let input = RatingInput::parse(
        verdict,
        &form.tags,
        &form.notes,
        form.score.as_deref(),
        &allowed,
        score_enabled,
    )
    .map_err(AppError::BadRequest)?;
    let key = form.key.filter(|k| !k.is_empty() && k.len() <= 64);
    // Once the write is on its way, a broken connection leaves its fate
    // unknown: it may have committed just before.
    // The queue does not depend on the rating: it is read alongside, on a
    // second connection if one is free this instant.
    let (saved, queue) = match state.pool.try_acquire() {
        Some(mut other) => {
            let save = ratings::save(&mut conn, user.id, id, &input, key.as_deref());
            let (saved, queue) = tokio::join!(save, my_queue(&mut other, &user));
            (saved, Some(queue))
        }
        None => (
            ratings::save(&mut conn, user.id, id, &input, key.as_deref()).await,
            None,
        ),
    };
    saved.map_err(|e| match AppError::from(e) {
        AppError::Unavailable => AppError::MaybeSaved,
        other => other,
    })?;
    TypedSession::from_request_ref(req)?.push_rated(id).await?;
    let shown = async {
        let asked = match queue {
            Some(q) => ask_resolved(conn, &user, q?, Some(id)).await?,
            None => ask_queue(conn, &user, Some(id)).await?,
        };
        if !is_htmx(req) {
            return Ok(go(asked.target));
        }
        show(req, &state, &user, Shown::Queue(Box::new(asked)), true).await
    }
    .await;
    // "Nothing was saved" would be untrue from here on.
    shown.map_err(|e| {
        if e.is_outage() {
            AppError::SavedThenUnavailable
        } else {
            e
        }
    })
}

/// Takes back my last rating and shows that candidate again.
#[handler]
pub async fn undo(
    req: &Request,
    state: Data<&AppState>,
    session: TypedSession,
    CurrentUser(user): CurrentUser,
) -> WebResult<Response> {
    let mut tx = state.pool.begin().await?;
    let Some(last) = ratings::latest(&mut tx, user.id).await? else {
        return Err(AppError::Conflict(
            "There is no rating of yours to undo.".into(),
        ));
    };
    // A rating from an earlier session may be days old and long forgotten:
    // undoing it takes a second press.
    let this_session = session.rated_here().await?.recent.contains(&last.candidate);
    if !this_session && !session.undo_confirmed(last.candidate).await? {
        return Err(AppError::Conflict(format!(
            "Your last rating ({} for {}, {}) is from an earlier session: press Undo again \
             within 10 seconds to take it back.",
            last.verdict.label(),
            last.name,
            crate::web::plumbing::filters::utc_minute(last.rated_at)
        )));
    }
    let (id, now) = ratings::undo_last(&mut tx, user.id)
        .await?
        .ok_or_else(|| AppError::internal("the rating to undo went away"))?;
    tx.commit().await?;
    session.forget_rated(id).await?;
    let notice = format!(
        "Undid your rating of {}: {} → {}.",
        last.name,
        last.verdict.label(),
        now.map_or("unrated", |v| v.label())
    );
    if !is_htmx(req) {
        session.flash(FlashKind::Success, notice).await?;
        return Ok(see_other(&paths::candidate(id)));
    }
    show_with(req, &state, &user, Shown::Id(id), true, Some(notice)).await
}

#[derive(Deserialize)]
pub struct FireflyParams {
    file: Option<FileId>,
}

#[derive(Template, WebTemplate)]
#[template(path = "candidate/_firefly.html")]
pub struct FireflyFragment {
    src: String,
    files: Vec<(FileId, String)>,
    current: FileId,
    id: CandidateId,
}

/// Firefly, in an iframe, on one of the candidate's FITS files.
#[handler]
pub async fn firefly(
    state: Data<&AppState>,
    Path(id): Path<CandidateId>,
    Query(p): Query<FireflyParams>,
) -> WebResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let c = cand::detail(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("candidate"))?;
    let fits: Vec<FileRef> = cand::files(&mut conn, &c)
        .await?
        .into_iter()
        .filter(|f| f.content_type == "application/fits")
        .collect();
    let Some(chosen) = p
        .file
        .and_then(|f| fits.iter().find(|x| x.id == f))
        .or_else(|| fits.first())
    else {
        return Ok(
            "<p class=\"muted\" id=\"firefly\">This candidate has no FITS file to open.</p>"
                .with_status(StatusCode::OK)
                .into_response(),
        );
    };
    // From a bucket Firefly fetches a presigned link; the folder it mounts.
    let file = match state.media.presigned(&chosen.storage_path).await {
        Ok(Some(url)) => FireflyFile::Url(url),
        Ok(None) => FireflyFile::Mounted(format!(
            "{}/{}",
            state.config.firefly_media_path, chosen.storage_path
        )),
        Err(e) => return Err(AppError::Internal(e.into())),
    };
    let src = firefly_src(&state.config.firefly_url, &file, &c.name);
    Ok(FireflyFragment {
        src,
        files: fits.iter().map(|f| (f.id, f.role.clone())).collect(),
        current: chosen.id,
        id,
    }
    .into_response())
}

/// Where Firefly reads a FITS file from.
pub enum FireflyFile {
    /// A path on Firefly's own file system (the media folder, mounted).
    Mounted(String),
    /// A link it fetches (a presigned object in the bucket).
    Url(String),
}

/// Firefly's URL API on a file, with a stretch that suits radio cutouts
/// (noise around zero): −2σ to +10σ linear.
pub fn firefly_src(base: &str, file: &FireflyFile, title: &str) -> String {
    let (param, value) = match file {
        FireflyFile::Mounted(path) => ("File", path),
        FireflyFile::Url(url) => ("URL", url),
    };
    format!(
        "{base}/?api=image&{param}={}&RangeValues={}&Title={}",
        paths::encode_path(value),
        paths::encode_path("92,-2,92,10,NaN,2,44"),
        paths::encode_path(title)
    )
}

/// Form for the tags a reviewer may add when the project allows it.
#[derive(Deserialize)]
pub struct NewTag {
    name: String,
}

#[handler]
pub async fn add_tag(
    state: Data<&AppState>,
    session: TypedSession,
    Path(id): Path<CandidateId>,
    Form(f): Form<NewTag>,
) -> WebResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let c = cand::detail(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("candidate"))?;
    if !c.reviewers_add_tags {
        return Err(AppError::Forbidden);
    }
    let name = f.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(AppError::BadRequest(
            "a tag name has 1 to 64 characters".into(),
        ));
    }
    let msg = if crate::db::tags::ensure(&mut *conn, c.project_id, name).await? {
        format!("Tag {name:?} added.")
    } else {
        format!("Tag {name:?} exists already.")
    };
    session
        .flash(crate::web::plumbing::session::FlashKind::Success, msg)
        .await?;
    Ok(see_other(&paths::candidate(id)))
}
