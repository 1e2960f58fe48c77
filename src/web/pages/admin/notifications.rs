//! `/admin/projects/{slug}/notifications`: where a project's notifications
//! go (webhooks, Slack, e-mail lists), which events each target hears, and
//! the project's deliveries with their attempts and last error; and
//! `/admin/deliveries`, every delivery of every project and the daily
//! summaries, with "retry now".
//!
//! A URL is checked against the outbound policy (`crate::outbound`) when it
//! is saved, then sealed (`notify::seal`); the page shows only its scheme
//! and host. It is checked again at every delivery.

use askama::Template;
use askama_web::WebTemplate;
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{handler, IntoResponse, Request, Response};
use serde::Deserialize;
use serde_json::json;

use crate::db::deliveries::{self, DeliveryRow, Receiver, RetryRefused};
use crate::db::notify_targets::{self as targets, Destination, NewTarget, TargetRow};
use crate::db::projects::Project;
use crate::domain::email;
use crate::domain::notify::{Event, TargetKind};
use crate::domain::{DeliveryId, Problem, TargetId};
use crate::web::pages::admin::{check_line, Admin};
use crate::web::pages::project;
use crate::web::paths;
use crate::web::plumbing::access::see_other;
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::plumbing::form::Form;
use crate::web::plumbing::layout::Layout;
use crate::web::plumbing::session::{FlashKind, TypedSession};
use crate::web::state::AppState;

/// Deliveries listed, newest first.
const LISTED: i64 = 200;
/// Addresses of one e-mail target.
const MAX_ADDRESSES: usize = 50;

/// What the operator has (not) set up, said where it matters.
pub struct Setup {
    pub hosts: bool,
    pub key: bool,
    pub signing: bool,
    pub smtp: bool,
    pub polling: bool,
}

impl Setup {
    fn of(state: &AppState) -> Self {
        let n = &state.config.notify;
        Self {
            hosts: !n.hosts.is_empty(),
            key: n.url_key.is_some(),
            signing: n.signing_secret.is_some(),
            smtp: n.smtp.is_some(),
            polling: n.poll.is_some(),
        }
    }
}

/// The add form as typed, when it was refused.
#[derive(Default)]
pub struct Typed {
    pub name: String,
    pub kind: String,
    pub addresses: String,
    pub events: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/project_notifications.html")]
pub struct NotificationsPage {
    layout: Layout,
    project: Project,
    setup: Setup,
    targets: Vec<TargetRow>,
    deliveries: Vec<DeliveryRow>,
    counts: Vec<(String, i64)>,
    typed: Typed,
    /// Which target a refused edit was for (`None`: the add form).
    refused_target: Option<TargetId>,
    problems: Vec<Problem>,
}

impl NotificationsPage {
    pub fn kinds(&self) -> [TargetKind; 3] {
        TargetKind::ALL
    }

    pub fn events(&self) -> [Event; 2] {
        Event::ALL
    }

    pub fn typed_has(&self, e: &Event) -> bool {
        self.typed.events.iter().any(|x| x == e.as_str())
    }

    /// `from` of the retry forms on this page.
    pub fn from(&self) -> &'static str {
        "project"
    }
}

async fn draw(
    req: &Request,
    state: &AppState,
    project: Project,
    typed: Typed,
    refused_target: Option<TargetId>,
    problems: Vec<Problem>,
) -> WebResult<NotificationsPage> {
    let mut conn = state.pool.acquire().await?;
    let targets = targets::list(&mut *conn, project.id).await?;
    let listed = deliveries::list(&mut *conn, Some(project.id), LISTED).await?;
    let counts = deliveries::counts(&mut *conn, Some(project.id)).await?;
    drop(conn);
    Ok(NotificationsPage {
        layout: Layout::for_request(req).await?,
        setup: Setup::of(state),
        project,
        targets,
        deliveries: listed,
        counts,
        typed,
        refused_target,
        problems,
    })
}

#[handler]
pub async fn page(
    req: &Request,
    state: Data<&AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
) -> WebResult<NotificationsPage> {
    let p = project(&state, &slug).await?;
    draw(req, &state, p, Typed::default(), None, Vec::new()).await
}

/// The fields of the add and edit forms: `name`, `kind` (add only), `url`,
/// `addresses`, `event` (repeated), `enabled`.
struct TargetForm {
    name: String,
    kind: String,
    url: String,
    addresses: String,
    events: Vec<String>,
    enabled: bool,
}

impl TargetForm {
    fn read(fields: Vec<(String, String)>) -> Self {
        let mut f = TargetForm {
            name: String::new(),
            kind: String::new(),
            url: String::new(),
            addresses: String::new(),
            events: Vec::new(),
            enabled: false,
        };
        for (k, v) in fields {
            match k.as_str() {
                "name" => f.name = v,
                "kind" => f.kind = v,
                "url" => f.url = v,
                "addresses" => f.addresses = v,
                "event" => f.events.push(v),
                "enabled" => f.enabled = v == "on",
                _ => {}
            }
        }
        f
    }

    fn typed(&self) -> Typed {
        Typed {
            name: self.name.clone(),
            kind: self.kind.clone(),
            addresses: self.addresses.clone(),
            events: self.events.clone(),
        }
    }
}

/// What was checked of a form: the name, the events and, when one was
/// given, the destination, sealed.
struct Checked {
    name: String,
    events: Vec<Event>,
    destination: Option<Destination>,
}

/// `https://hooks.slack.com/…`: enough to recognise a URL, nothing of the
/// secret in its path or query.
fn hint(url: &url::Url) -> String {
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!(
        "{}://{}{port}/…",
        url.scheme(),
        url.host_str().unwrap_or_default()
    )
}

/// Checks a form for a target of `kind`; `needs_destination` when adding
/// (editing keeps the stored URL unless a new one is typed).
async fn check(
    state: &AppState,
    project: &Project,
    kind: TargetKind,
    f: &TargetForm,
    editing: Option<TargetId>,
    problems: &mut Vec<Problem>,
) -> WebResult<Option<Checked>> {
    let name = f.name.trim().to_string();
    check_line(problems, "name", "The name", &name, 100);
    if problems.is_empty() && targets::name_taken(&state.pool, project.id, &name, editing).await? {
        problems.push(Problem::new(
            "name",
            format!(
                "{project} already has a target named {name:?}",
                project = project.name
            ),
        ));
    }
    let mut events = Vec::new();
    for e in &f.events {
        match e.parse::<Event>() {
            Ok(e) if !events.contains(&e) => events.push(e),
            Ok(_) => {}
            Err(m) => problems.push(Problem::new("event", m)),
        }
    }
    if events.is_empty() {
        problems.push(Problem::new("event", "Choose at least one event to send."));
    }
    let n = &state.config.notify;
    let destination = match kind {
        TargetKind::Email => {
            if n.smtp.is_none() {
                problems.push(Problem::new(
                    "kind",
                    "This server sends no e-mail: the operator has not set VETTER_SMTP_HOST.",
                ));
                None
            } else {
                match email::parse_list(&f.addresses, MAX_ADDRESSES) {
                    Ok(list) => Some(Destination::Addresses(
                        list.iter().map(|a| a.to_string()).collect(),
                    )),
                    Err(e) => {
                        problems.extend(e.into_iter().map(|m| Problem::new("addresses", m)));
                        None
                    }
                }
            }
        }
        TargetKind::Webhook | TargetKind::Slack => {
            let url = f.url.trim();
            if kind == TargetKind::Webhook && n.signing_secret.is_none() {
                problems.push(Problem::new(
                    "kind",
                    "Webhooks are signed, and the operator has not set VETTER_NOTIFY_SIGNING_SECRET.",
                ));
            }
            match (&state.notify.sealer, url.is_empty()) {
                (_, true) if editing.is_some() => None,
                (_, true) => {
                    problems.push(Problem::new("url", "Give the URL to send to."));
                    None
                }
                (None, false) => {
                    problems.push(Problem::new(
                        "url",
                        "URLs are stored sealed, and the operator has not set VETTER_NOTIFY_KEY.",
                    ));
                    None
                }
                (Some(sealer), false) => match state.notify.outbound.vet(url).await {
                    Ok(u) => Some(Destination::Url {
                        sealed: sealer
                            .seal(project.id, u.as_str())
                            .map_err(|e| AppError::Internal(e.into()))?,
                        hint: hint(&u),
                    }),
                    Err(e) => {
                        problems.push(Problem::new("url", format!("The URL is refused: {e}.")));
                        None
                    }
                },
            }
        }
    };
    Ok(problems.is_empty().then_some(Checked {
        name,
        events,
        destination,
    }))
}

#[handler]
pub async fn create(
    req: &Request,
    state: Data<&AppState>,
    session: TypedSession,
    admin: Admin,
    Path(slug): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let p = project(&state, &slug).await?;
    let f = TargetForm::read(fields);
    let mut problems = Vec::new();
    let kind = f
        .kind
        .parse::<TargetKind>()
        .map_err(|m| problems.push(Problem::new("kind", m)))
        .ok();
    let checked = match kind {
        Some(kind) => check(&state, &p, kind, &f, None, &mut problems).await?,
        None => None,
    };
    let (
        Some(kind),
        Some(Checked {
            name,
            events,
            destination: Some(destination),
        }),
    ) = (kind, checked)
    else {
        let drawn = draw(req, &state, p, f.typed(), None, problems).await?;
        return Ok(drawn.with_status(StatusCode::BAD_REQUEST).into_response());
    };
    let hint = match &destination {
        Destination::Url { hint, .. } => hint.clone(),
        Destination::Addresses(a) => a.join(", "),
    };
    let mut tx = state.pool.begin().await?;
    let id = targets::insert(
        &mut tx,
        &NewTarget {
            project: p.id,
            name: &name,
            kind,
            destination,
            events: &events,
            enabled: f.enabled,
            by: admin.user.id,
        },
    )
    .await?;
    admin
        .audit(
            &mut *tx,
            "notify_target.create",
            &p.slug,
            json!({"target": id, "name": name, "kind": kind.as_str(), "to": hint,
                   "events": events.iter().map(|e| e.as_str()).collect::<Vec<_>>(), "enabled": f.enabled}),
        )
        .await?;
    tx.commit().await?;
    done(
        &session,
        &p,
        format!("{}: target {name:?} added ({hint}).", p.name),
    )
    .await
}

/// The project's target `id` with its kind, or "not found".
async fn target(state: &AppState, p: &Project, id: TargetId) -> WebResult<(TargetRow, TargetKind)> {
    let t = targets::get(&state.pool, p.id, id)
        .await?
        .ok_or(AppError::NotFound("notification target"))?;
    // The table's CHECK admits only the kinds there are.
    let kind = t
        .kind
        .parse::<TargetKind>()
        .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
    Ok((t, kind))
}

/// Says what was done, and goes back to the project's notifications.
async fn done(session: &TypedSession, p: &Project, message: String) -> WebResult<Response> {
    session.flash(FlashKind::Success, message).await?;
    Ok(see_other(&paths::admin_project_notifications(&p.slug)))
}

#[handler]
pub async fn update(
    req: &Request,
    state: Data<&AppState>,
    session: TypedSession,
    admin: Admin,
    Path((slug, id)): Path<(String, TargetId)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let p = project(&state, &slug).await?;
    let (_, kind) = target(&state, &p, id).await?;
    let f = TargetForm::read(fields);
    let mut problems = Vec::new();
    let Some(c) = check(&state, &p, kind, &f, Some(id), &mut problems).await? else {
        let drawn = draw(req, &state, p, f.typed(), Some(id), problems).await?;
        return Ok(drawn.with_status(StatusCode::BAD_REQUEST).into_response());
    };
    let mut tx = state.pool.begin().await?;
    targets::update(
        &mut tx,
        p.id,
        id,
        &c.name,
        &c.events,
        f.enabled,
        c.destination.as_ref(),
    )
    .await?;
    let to = match &c.destination {
        Some(Destination::Url { hint, .. }) => Some(hint.clone()),
        Some(Destination::Addresses(a)) => Some(a.join(", ")),
        None => None,
    };
    admin
        .audit(
            &mut *tx,
            "notify_target.update",
            &p.slug,
            json!({"target": id, "name": c.name, "to": to, "enabled": f.enabled,
                   "events": c.events.iter().map(|e| e.as_str()).collect::<Vec<_>>()}),
        )
        .await?;
    tx.commit().await?;
    done(
        &session,
        &p,
        format!("{}: target {:?} saved.", p.name, c.name),
    )
    .await
}

#[handler]
pub async fn delete(
    state: Data<&AppState>,
    session: TypedSession,
    admin: Admin,
    Path((slug, id)): Path<(String, TargetId)>,
) -> WebResult<Response> {
    let p = project(&state, &slug).await?;
    let mut tx = state.pool.begin().await?;
    let name = targets::delete(&mut tx, p.id, id)
        .await?
        .ok_or(AppError::NotFound("notification target"))?;
    admin
        .audit(
            &mut *tx,
            "notify_target.delete",
            &p.slug,
            json!({"target": id, "name": name}),
        )
        .await?;
    tx.commit().await?;
    done(
        &session,
        &p,
        format!("{}: target {name:?} removed, with its deliveries.", p.name),
    )
    .await
}

/// Queues a test message to one target, so an admin can see it arrive (or
/// read why not in the deliveries below).
#[handler]
pub async fn test(
    state: Data<&AppState>,
    session: TypedSession,
    _admin: Admin,
    Path((slug, id)): Path<(String, TargetId)>,
) -> WebResult<Response> {
    let p = project(&state, &slug).await?;
    let (t, kind) = target(&state, &p, id).await?;
    let mut conn = state.pool.acquire().await?;
    deliveries::queue_one(
        &mut conn,
        Some(p.id),
        "test",
        &json!({"target": id}),
        &json!({}),
        Receiver::Target(id, kind.as_str()),
    )
    .await?;
    drop(conn);
    done(
        &session,
        &p,
        format!(
            "A test message to {:?} is queued; its delivery appears below.",
            t.name
        ),
    )
    .await
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/deliveries.html")]
pub struct DeliveriesPage {
    layout: Layout,
    setup: Setup,
    deliveries: Vec<DeliveryRow>,
    counts: Vec<(String, i64)>,
}

impl DeliveriesPage {
    pub fn from(&self) -> &'static str {
        "all"
    }
}

#[handler]
pub async fn all_deliveries(
    layout: Layout,
    state: Data<&AppState>,
    _admin: Admin,
) -> WebResult<DeliveriesPage> {
    let mut conn = state.pool.acquire().await?;
    let listed = deliveries::list(&mut *conn, None, LISTED).await?;
    let counts = deliveries::counts(&mut *conn, None).await?;
    Ok(DeliveriesPage {
        layout,
        setup: Setup::of(&state),
        deliveries: listed,
        counts,
    })
}

#[derive(Deserialize)]
pub struct RetryForm {
    /// `all`: back to `/admin/deliveries`; otherwise to the project's page.
    from: Option<String>,
}

/// Makes a waiting or failed delivery due now (a failed one gets one more
/// attempt).
#[handler]
pub async fn retry(
    state: Data<&AppState>,
    session: TypedSession,
    admin: Admin,
    Path(id): Path<DeliveryId>,
    Form(f): Form<RetryForm>,
) -> WebResult<Response> {
    let mut tx = state.pool.begin().await?;
    let slug = match deliveries::retry_now(&mut tx, id).await? {
        Ok(slug) => slug,
        Err(RetryRefused::NotFound) => return Err(AppError::NotFound("delivery")),
        Err(why) => {
            drop(tx);
            let msg = match why {
                RetryRefused::Delivered => "That delivery went through already.",
                _ => "That delivery is being sent right now.",
            };
            session.flash(FlashKind::Error, msg).await?;
            return Ok(see_other(paths::ADMIN_DELIVERIES));
        }
    };
    admin
        .audit(
            &mut *tx,
            "delivery.retry",
            slug.as_deref().unwrap_or(""),
            json!({"delivery": id}),
        )
        .await?;
    tx.commit().await?;
    session
        .flash(
            FlashKind::Success,
            format!("Delivery {id} will be tried again within moments."),
        )
        .await?;
    Ok(match (f.from.as_deref(), slug) {
        (Some("all"), _) | (_, None) => see_other(paths::ADMIN_DELIVERIES),
        (_, Some(slug)) => see_other(&paths::admin_project_notifications(&slug)),
    })
}
