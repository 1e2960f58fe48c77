//! The rating queue: each reviewer's view, and "the next candidate after
//! this one" under it.
//!
//! "Next" walks the view's order from the current candidate (keyset: the
//! sort key of the current candidate is the cursor), so it stays cheap deep
//! into a large survey, and wraps around to the start.

use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::db::ratings::{push_rating_visible, push_visible};
use crate::domain::queue::{QueueMode, QueueOrder, QueueView};
use crate::domain::visibility::RatingVisibility;
use crate::domain::{CandidateId, ObservationId, ProjectId, UserId};

/// A view with its names resolved to ids.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub view: QueueView,
    pub project_id: Option<ProjectId>,
    pub observation_id: Option<ObservationId>,
    pub metric_id: Option<i64>,
    pub seed: i32,
    /// The view's candidate-table filter, resolved.
    pub filter: Option<crate::db::search::Scope>,
    /// What the reviewer may see of others' ratings: the tag, the filter
    /// and "disagreements" look only at those.
    pub visibility: RatingVisibility,
}

pub async fn load(db: &mut PgConnection, v: RatingVisibility) -> sqlx::Result<Resolved> {
    let user = v.viewer();
    let row: Option<(sqlx::types::Json<QueueView>, i32)> =
        sqlx::query_as("SELECT view, shuffle_seed FROM reviewer_queues WHERE user_id = $1")
            .bind(user)
            .fetch_optional(&mut *db)
            .await?;
    let (view, seed) = match row {
        Some((v, s)) => (v.0, s),
        None => {
            let seed: i32 = sqlx::query_scalar(
                "INSERT INTO reviewer_queues (user_id) VALUES ($1)
                 ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id RETURNING shuffle_seed",
            )
            .bind(user)
            .fetch_one(&mut *db)
            .await?;
            (QueueView::default(), seed)
        }
    };
    resolve(db, view, seed, v).await
}

/// Ids for the names in the view. A name that no longer exists (a deleted
/// project) widens the view rather than emptying it.
pub async fn resolve(
    db: &mut PgConnection,
    mut view: QueueView,
    seed: i32,
    visibility: RatingVisibility,
) -> sqlx::Result<Resolved> {
    let mut r = Resolved {
        view: QueueView::default(),
        project_id: None,
        observation_id: None,
        metric_id: None,
        seed,
        filter: None,
        visibility,
    };
    if let Some(slug) = &view.project {
        r.project_id = sqlx::query_scalar("SELECT id FROM projects WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&mut *db)
            .await?;
        if r.project_id.is_none() {
            view.project = None;
        }
    }
    match (r.project_id, &view.observation) {
        (Some(p), Some(ext)) => {
            r.observation_id = sqlx::query_scalar(
                "SELECT id FROM observations WHERE project_id = $1 AND external_id = $2",
            )
            .bind(p)
            .bind(ext)
            .fetch_optional(&mut *db)
            .await?;
            if r.observation_id.is_none() {
                view.observation = None;
            }
        }
        _ => view.observation = None,
    }
    if let QueueOrder::Metric { key, .. } = &view.order {
        r.metric_id = match r.project_id {
            Some(p) => {
                sqlx::query_scalar("SELECT id FROM metric_defs WHERE project_id = $1 AND key = $2")
                    .bind(p)
                    .bind(key)
                    .fetch_optional(&mut *db)
                    .await?
            }
            None => None,
        };
        if r.metric_id.is_none() {
            view.order = QueueOrder::Name;
        }
    }
    if let (Some(tag), Some(p)) = (view.tag, r.project_id) {
        let ok: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM tags WHERE id = $1 AND project_id = $2)",
        )
        .bind(tag)
        .bind(p)
        .fetch_one(&mut *db)
        .await?;
        if !ok {
            view.tag = None;
        }
    } else {
        view.tag = None;
    }
    if let Some(query) = &view.filter {
        // A filter whose names no longer resolve widens the view, as above.
        let f = crate::domain::filter::CandidateFilter::from_query(query);
        let found = crate::db::search::resolve(db, &f).await?;
        if found.is_valid() {
            r.filter = Some(found.scope);
        } else {
            view.filter = None;
        }
    }
    r.view = view;
    Ok(r)
}

pub async fn save(db: &mut PgConnection, user: UserId, view: &QueueView) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO reviewer_queues (user_id, view) VALUES ($1, $2)
         ON CONFLICT (user_id) DO UPDATE SET view = EXCLUDED.view, updated_at = now()",
    )
    .bind(user)
    .bind(sqlx::types::Json(view))
    .execute(db)
    .await
    .map(drop)
}

/// The sort key of a candidate under the order, as SQL over the aliases
/// `c` (candidates) and `m` (its metric row, for metric orders). Every part
/// ascends, so a row comparison against the cursor finds what comes after.
fn sort_key(order: &QueueOrder, seed: i32) -> String {
    match order {
        QueueOrder::Name => "c.name, c.id".into(),
        QueueOrder::FewestRatings => "c.rating_count, c.id".into(),
        QueueOrder::Shuffled => format!("(c.shuffle_key < {seed})::int, c.shuffle_key, c.id"),
        // Missing values last, then NaN, whatever the direction.
        QueueOrder::Metric { descending, .. } => format!(
            "(m.value IS NULL)::int, (m.value = 'NaN'::float8)::int, \
             CASE WHEN m.value = 'NaN'::float8 THEN 0 ELSE {}m.value END, c.id",
            if *descending { "-" } else { "" }
        ),
    }
}

fn from_clause(q: &mut QueryBuilder<'_, Postgres>, r: &Resolved) {
    q.push(" FROM candidates c");
    if let Some(metric) = r.metric_id {
        q.push(" LEFT JOIN candidate_metrics m ON m.candidate_id = c.id AND m.metric_id = ")
            .push_bind(metric);
    }
}

fn filters(q: &mut QueryBuilder<'_, Postgres>, r: &Resolved, user: UserId) {
    q.push(" WHERE true");
    if let Some(p) = r.project_id {
        q.push(" AND c.project_id = ").push_bind(p);
    }
    if let Some(o) = r.observation_id {
        q.push(" AND c.observation_id = ").push_bind(o);
    }
    if let Some(t) = r.view.tag {
        q.push(
            " AND EXISTS (SELECT 1 FROM rating_tags t WHERE t.candidate_id = c.id AND t.tag_id = ",
        )
        .push_bind(t);
        push_rating_visible(q, &r.visibility, "t", "c");
        q.push(")");
    }
    let not_mine = |q: &mut QueryBuilder<'_, Postgres>| {
        q.push(" AND NOT EXISTS (SELECT 1 FROM ratings r WHERE r.user_id = ")
            .push_bind(user)
            .push(" AND r.candidate_id = c.id)");
    };
    match r.view.mode {
        QueueMode::UnratedByMe => not_mine(q),
        QueueMode::UnratedByAnyone => {
            q.push(" AND c.rating_count = 0");
        }
        QueueMode::RatedByOthers => {
            q.push(" AND c.rating_count > 0");
            not_mine(q);
        }
        // Only where the reviewer may see the verdicts: in a blind
        // project, the disagreements among candidates they rated.
        QueueMode::Disagreements => {
            q.push(
                " AND c.rating_count > 1 AND EXISTS (SELECT 1 FROM ratings r1 JOIN ratings r2
                   ON r2.candidate_id = r1.candidate_id AND r2.verdict <> r1.verdict
                   WHERE r1.candidate_id = c.id)",
            );
            push_visible(q, &r.visibility, "c");
        }
    }
    if let Some(scope) = &r.filter {
        crate::db::search::push_conditions(q, scope, &r.visibility);
    }
}

/// The next candidate of the queue after `after` (or the first), wrapping
/// around; never `after` itself.
pub async fn next(
    db: &mut PgConnection,
    user: UserId,
    r: &Resolved,
    after: Option<CandidateId>,
) -> sqlx::Result<Option<CandidateId>> {
    Ok(upcoming(db, user, r, after, 1).await?.first().copied())
}

/// Up to `n` candidates that the queue offers after `after` (or from the
/// start), in order, wrapping around; never `after` itself. Asking for two
/// gives the candidate to show and the one to fetch pictures for ahead, in
/// the queries that one would cost. `n` is written into the SQL, not bound,
/// so that a prepared statement's plan knows how few rows are wanted. With a
/// table filter the queries are sent unprepared, planned with their values
/// (see `db::search`).
pub async fn upcoming(
    db: &mut PgConnection,
    user: UserId,
    r: &Resolved,
    after: Option<CandidateId>,
    n: i64,
) -> sqlx::Result<Vec<CandidateId>> {
    if r.view.order == QueueOrder::Shuffled {
        return upcoming_shuffled(db, user, r, after, n).await;
    }
    let key = sort_key(&r.view.order, r.seed);
    let mut found = Vec::new();
    if let Some(after) = after {
        let mut q = QueryBuilder::new("SELECT c.id");
        from_clause(&mut q, r);
        filters(&mut q, r, user);
        q.push(format!(" AND ({key}) > (SELECT {key}"));
        from_clause(&mut q, r);
        q.push(" WHERE c.id = ").push_bind(after).push(")");
        q.push(format!(" ORDER BY {key} LIMIT {n}"));
        found = q
            .build_query_scalar()
            .persistent(r.filter.is_none())
            .fetch_all(&mut *db)
            .await?;
    }
    if found.len() as i64 >= n {
        return Ok(found);
    }
    let mut q = QueryBuilder::new("SELECT c.id");
    from_clause(&mut q, r);
    filters(&mut q, r, user);
    if let Some(after) = after {
        q.push(" AND c.id <> ").push_bind(after);
    }
    q.push(format!(" ORDER BY {key} LIMIT {n}"));
    let wrapped: Vec<CandidateId> = q
        .build_query_scalar()
        .persistent(r.filter.is_none())
        .fetch_all(db)
        .await?;
    Ok(merge(found, wrapped, n))
}

/// `first` then what `more` adds to it, without repeats, at most `n`.
fn merge(mut first: Vec<CandidateId>, more: Vec<CandidateId>, n: i64) -> Vec<CandidateId> {
    for id in more {
        if first.len() as i64 >= n {
            break;
        }
        if !first.contains(&id) {
            first.push(id);
        }
    }
    first
}

/// How many candidates the queue holds now (for the queue page, not for
/// every request: on a large survey this counts).
pub async fn size(db: &mut PgConnection, user: UserId, r: &Resolved) -> sqlx::Result<i64> {
    let mut q = QueryBuilder::new("SELECT count(*)");
    from_clause(&mut q, r);
    filters(&mut q, r, user);
    q.build_query_scalar()
        .persistent(r.filter.is_none())
        .fetch_one(db)
        .await
}

/// Shuffled order without a sort over the whole queue: the order is
/// "shuffle_key >= seed, ascending" then "shuffle_key < seed, ascending",
/// so each part is an index walk on (shuffle_key, id).
async fn upcoming_shuffled(
    db: &mut PgConnection,
    user: UserId,
    r: &Resolved,
    after: Option<CandidateId>,
    n: i64,
) -> sqlx::Result<Vec<CandidateId>> {
    let seed = r.seed;
    let cursor: Option<(i32, CandidateId)> = match after {
        Some(a) => {
            sqlx::query_as("SELECT shuffle_key, id FROM candidates WHERE id = $1")
                .bind(a)
                .fetch_optional(&mut *db)
                .await?
        }
        None => None,
    };
    let mut legs: Vec<(bool, Option<(i32, CandidateId)>)> = Vec::new();
    match cursor {
        Some((k, id)) if k >= seed => {
            legs.push((true, Some((k, id))));
            legs.push((false, None));
        }
        Some((k, id)) => legs.push((false, Some((k, id)))),
        None => {}
    }
    // Then from the start (wrapping), never `after` itself.
    let mut found = Vec::new();
    legs.push((true, None));
    legs.push((false, None));
    for (first_part, from) in legs {
        let mut q = QueryBuilder::new("SELECT c.id");
        from_clause(&mut q, r);
        filters(&mut q, r, user);
        q.push(if first_part {
            " AND c.shuffle_key >= "
        } else {
            " AND c.shuffle_key < "
        })
        .push_bind(seed);
        if let Some((k, id)) = from {
            q.push(" AND (c.shuffle_key, c.id) > (")
                .push_bind(k)
                .push(", ")
                .push_bind(id)
                .push(")");
        } else if let Some(a) = after {
            q.push(" AND c.id <> ").push_bind(a);
        }
        q.push(format!(" ORDER BY c.shuffle_key, c.id LIMIT {n}"));
        let more: Vec<CandidateId> = q.build_query_scalar().fetch_all(&mut *db).await?;
        found = merge(found, more, n);
        if found.len() as i64 >= n {
            break;
        }
    }
    Ok(found)
}
