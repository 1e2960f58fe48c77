//! `/queue`: which candidates "next" gives this reviewer, and in what order.
//! Kept per reviewer in the database.

use askama::Template;
use askama_web::WebTemplate;
use poem::web::Data;
use poem::{handler, Response};
use serde::Deserialize;

use crate::db::queue;
use crate::domain::queue::{QueueMode, QueueOrder, QueueView};
use crate::web::paths;
use crate::web::plumbing::access::{see_other, CurrentUser};
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::plumbing::form::Form;
use crate::web::plumbing::layout::Layout;
use crate::web::plumbing::session::FlashKind;
use crate::web::plumbing::session::TypedSession;
use crate::web::state::AppState;

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "queue/page.html")]
pub struct QueuePage {
    layout: Layout,
    label: String,
    size: i64,
    /// The candidate-table filter of the queue: its query and description.
    filter: Option<(String, String)>,
    projects: Vec<Choice>,
    observations: Vec<Choice>,
    tags: Vec<Choice>,
    orders: Vec<Choice>,
    modes: Vec<Choice>,
}

fn choice(value: impl Into<String>, label: impl Into<String>, selected: bool) -> Choice {
    Choice {
        value: value.into(),
        label: label.into(),
        selected,
    }
}

/// How many candidates are left in my queue, counted now and remembered in
/// the session so that the rating page can say it without counting.
#[derive(Template, WebTemplate)]
#[template(path = "queue/_left.html")]
pub struct LeftFragment {
    pub left: Option<i64>,
}

#[handler]
pub async fn left(
    state: Data<&AppState>,
    session: TypedSession,
    CurrentUser(user): CurrentUser,
) -> WebResult<LeftFragment> {
    let mut conn = state.pool.acquire().await?;
    let q = queue::load(&mut conn, user.id, user.role).await?;
    let label = crate::web::pages::candidate::queue_label(&q);
    // A recent count is answered from the session: asking again and again
    // must not make the database count a large survey each time.
    if let Some(left) = session.queue_left(&label).await? {
        return Ok(LeftFragment { left: Some(left) });
    }
    let size = queue::size(&mut conn, user.id, &q).await?;
    drop(conn);
    session.count_queue(&label, size).await?;
    Ok(LeftFragment { left: Some(size) })
}

#[handler]
pub async fn page(
    layout: Layout,
    state: Data<&AppState>,
    CurrentUser(user): CurrentUser,
) -> WebResult<QueuePage> {
    let mut conn = state.pool.acquire().await?;
    let q = queue::load(&mut conn, user.id, user.role).await?;
    let size = queue::size(&mut conn, user.id, &q).await?;
    let v = &q.view;
    let mut projects = vec![choice("", "all projects", v.project.is_none())];
    projects.extend(
        crate::db::projects::names(&mut *conn)
            .await?
            .into_iter()
            .map(|p| {
                let sel = v.project.as_deref() == Some(p.slug.as_str());
                choice(p.slug, p.name, sel)
            }),
    );
    let mut observations = vec![choice("", "all observations", v.observation.is_none())];
    let mut tags = vec![choice("", "any tags", v.tag.is_none())];
    let mut orders = vec![
        choice("name", "by name", v.order == QueueOrder::Name),
        choice(
            "fewest",
            "fewest ratings first",
            v.order == QueueOrder::FewestRatings,
        ),
        choice(
            "shuffled",
            "shuffled (the same order each time)",
            v.order == QueueOrder::Shuffled,
        ),
        choice(
            "newest",
            "newest observations first",
            v.order == QueueOrder::Observed { newest: true },
        ),
        choice(
            "oldest",
            "oldest observations first",
            v.order == QueueOrder::Observed { newest: false },
        ),
    ];
    if let Some(p) = q.project_id {
        let obs = crate::db::observations::external_ids(&mut *conn, p).await?;
        observations.extend(obs.into_iter().map(|o| {
            let sel = v.observation.as_deref() == Some(o.as_str());
            choice(o.clone(), o, sel)
        }));
        for (id, name, _) in crate::db::candidates::tags(&mut conn, p).await? {
            tags.push(choice(
                id.to_string(),
                format!("tagged {name}"),
                v.tag == Some(id),
            ));
        }
        // The model's orders, once the project has scores to walk.
        for o in [QueueOrder::Likely, QueueOrder::Uncertain] {
            let sel = v.order == o;
            orders.push(choice(o.as_param(), o.label(), sel));
        }
        for m in crate::db::projects::metrics(&mut conn, p).await? {
            for descending in [false, true] {
                let o = QueueOrder::Metric {
                    key: m.key.clone(),
                    descending,
                };
                let label = format!(
                    "{}, {}",
                    m.label,
                    if descending {
                        "largest first"
                    } else {
                        "smallest first"
                    }
                );
                orders.push(choice(o.as_param(), label, v.order == o));
            }
        }
    }
    let modes = QueueMode::ALL
        .iter()
        .map(|m| choice(m.as_str(), m.label(), v.mode == *m))
        .collect();
    Ok(QueuePage {
        layout,
        label: crate::web::pages::candidate::queue_label(&q),
        size,
        filter: v.filter.as_ref().map(|query| {
            let f = crate::domain::filter::CandidateFilter::from_query(query);
            (query.clone(), f.summary())
        }),
        projects,
        observations,
        tags,
        orders,
        modes,
    })
}

#[derive(Deserialize)]
pub struct QueueForm {
    #[serde(default)]
    project: String,
    #[serde(default)]
    observation: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    order: String,
    #[serde(default)]
    mode: String,
    /// The candidate-table filter to keep (a query string); absent drops it.
    #[serde(default)]
    filter: String,
    then: Option<String>,
}

#[handler]
pub async fn save(
    state: Data<&AppState>,
    session: TypedSession,
    CurrentUser(user): CurrentUser,
    Form(f): Form<QueueForm>,
) -> WebResult<Response> {
    let some = |s: String| Some(s).filter(|s| !s.is_empty());
    let view = QueueView {
        project: some(f.project),
        observation: some(f.observation),
        tag: some(f.tag)
            .map(|t| {
                t.parse()
                    .map_err(|_| AppError::BadRequest(format!("{t:?} is not a tag")))
            })
            .transpose()?,
        order: if f.order.is_empty() {
            QueueOrder::Name
        } else {
            QueueOrder::parse(&f.order).map_err(AppError::BadRequest)?
        },
        mode: if f.mode.is_empty() {
            QueueMode::UnratedByMe
        } else {
            QueueMode::parse(&f.mode).map_err(AppError::BadRequest)?
        },
        filter: some(f.filter),
    };
    let mut conn = state.pool.acquire().await?;
    // Names that do not resolve (a stale form) are dropped rather than saved.
    let current = queue::load(&mut conn, user.id, user.role).await?;
    let resolved = queue::resolve(&mut conn, view, current.seed, current.visibility).await?;
    if resolved.view.mode == QueueMode::Disputed {
        if let Some(p) = resolved.project_id {
            let rules = crate::db::projects::review_rules(&mut *conn, p).await?;
            if rules.disputes_experts_only
                && !crate::db::users::is_expert(&mut *conn, user.id).await?
            {
                return Err(AppError::BadRequest(
                    "this project keeps its disputed candidates to experts: an administrator can mark you as one"
                        .into(),
                ));
            }
        }
    }
    queue::save(&mut conn, user.id, &resolved.view).await?;
    session
        .flash(
            FlashKind::Success,
            format!(
                "Queue: {}",
                crate::web::pages::candidate::queue_label(&resolved)
            ),
        )
        .await?;
    Ok(see_other(if f.then.as_deref() == Some("next") {
        paths::NEXT
    } else {
        paths::QUEUE
    }))
}
