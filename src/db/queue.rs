//! The rating queue: each reviewer's view, and "the next candidate after
//! this one" under it.
//!
//! "Next" walks the view's order from the current candidate (keyset: the
//! sort key of the current candidate is the cursor), so it stays cheap deep
//! into a large survey, and wraps around to the start.

use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};

use crate::db::ratings::{push_rating_visible, push_visible};
use crate::domain::queue::{QueueMode, QueueOrder, QueueView};
use crate::domain::visibility::RatingVisibility;
use crate::domain::{CandidateId, ObservationId, ProjectId, Role, UserId};

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

/// The queue row with every name of its view looked up, and every
/// project's review settings, as [`load`] reads them.
#[derive(FromRow)]
struct Loaded {
    view: Option<sqlx::types::Json<QueueView>>,
    shuffle_seed: Option<i32>,
    project_id: Option<ProjectId>,
    observation_id: Option<ObservationId>,
    metric_id: Option<i64>,
    tag_found: bool,
    setting_ids: Vec<ProjectId>,
    open_review: Vec<bool>,
    admins_see_all: Vec<bool>,
}

/// The reviewer's queue, resolved, with what they may see of others'
/// ratings: one statement, as every "next", rating and candidate page asks
/// for it. (A view holding a table filter resolves that filter after.)
pub async fn load(db: &mut PgConnection, user: UserId, role: Role) -> sqlx::Result<Resolved> {
    let row: Loaded = sqlx::query_as(
        "SELECT q.view, q.shuffle_seed, p.id AS project_id, o.id AS observation_id, m.id AS metric_id,
                EXISTS (SELECT 1 FROM tags t WHERE t.project_id = p.id
                          AND t.id = (q.view->>'tag')::bigint) AS tag_found,
                ARRAY(SELECT id FROM projects ORDER BY id) AS setting_ids,
                ARRAY(SELECT open_review FROM projects ORDER BY id) AS open_review,
                ARRAY(SELECT admins_see_all FROM projects ORDER BY id) AS admins_see_all
         FROM (SELECT $1::bigint AS user_id) u
         LEFT JOIN reviewer_queues q ON q.user_id = u.user_id
         LEFT JOIN projects p ON p.slug = q.view->>'project'
         LEFT JOIN observations o ON o.project_id = p.id AND o.external_id = q.view->>'observation'
         LEFT JOIN metric_defs m ON m.project_id = p.id AND q.view->'order'->>'by' = 'metric'
                                AND m.key = q.view->'order'->>'key'",
    )
    .bind(user)
    .fetch_one(&mut *db)
    .await?;
    let visibility = RatingVisibility::from_columns(
        user,
        role,
        &row.setting_ids,
        &row.open_review,
        &row.admins_see_all,
    );
    let (mut view, seed) = match (row.view, row.shuffle_seed) {
        (Some(v), Some(s)) => (v.0, s),
        _ => {
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
    // As in `resolve`: a name that no longer exists widens the view.
    let project_id = view.project.as_ref().and(row.project_id);
    if project_id.is_none() {
        view.project = None;
    }
    let observation_id = view
        .observation
        .as_ref()
        .and(project_id)
        .and(row.observation_id);
    if observation_id.is_none() {
        view.observation = None;
    }
    let metric_id = match view.order {
        QueueOrder::Metric { .. } => row.metric_id,
        _ => None,
    };
    if matches!(view.order, QueueOrder::Metric { .. }) && metric_id.is_none() {
        view.order = QueueOrder::Name;
    }
    // Scores are per project: without one, a score order walks shuffled.
    if view.order.uses_scores() && project_id.is_none() {
        view.order = QueueOrder::Shuffled;
    }
    if !(row.tag_found && project_id.is_some()) {
        view.tag = None;
    }
    let mut r = Resolved {
        view: QueueView::default(),
        project_id,
        observation_id,
        metric_id,
        seed,
        filter: None,
        visibility,
    };
    resolve_filter(db, &mut r, &mut view).await?;
    r.view = view;
    Ok(r)
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
    if view.order.uses_scores() && r.project_id.is_none() {
        view.order = QueueOrder::Shuffled;
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
    resolve_filter(db, &mut r, &mut view).await?;
    r.view = view;
    Ok(r)
}

/// The view's table filter resolved into `r`; one whose names no longer
/// resolve is dropped, widening the view.
async fn resolve_filter(
    db: &mut PgConnection,
    r: &mut Resolved,
    view: &mut QueueView,
) -> sqlx::Result<()> {
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
    Ok(())
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
        // Walked by `upcoming_observed` and `upcoming_scored`; this is the
        // order within one observation, or of the unscored.
        QueueOrder::Observed { .. } | QueueOrder::Likely | QueueOrder::Uncertain => {
            "c.name, c.id".into()
        }
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

/// The queue's conditions, without the gold candidates of projects that
/// mix them in: those come only through [`offer`]'s draws, so they are
/// offered at the rate the project set.
fn filters(q: &mut QueryBuilder<'_, Postgres>, r: &Resolved, user: UserId) {
    queue_conditions(q, r, user);
    q.push(
        " AND NOT EXISTS (SELECT 1 FROM gold_candidates g JOIN projects gp ON gp.id = g.project_id
                           WHERE g.candidate_id = c.id AND gp.gold_rate > 0)",
    );
}

fn queue_conditions(q: &mut QueryBuilder<'_, Postgres>, r: &Resolved, user: UserId) {
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
    // Candidates the team has settled need no more verdicts. Gold ones
    // too: were they kept, marking a settled candidate gold would change
    // what a reviewer's queue holds, and so give it away.
    let unsettled = |q: &mut QueryBuilder<'_, Postgres>| {
        q.push(
            " AND NOT EXISTS (SELECT 1 FROM candidate_tallies t JOIN projects tp ON tp.id = t.project_id
               WHERE t.candidate_id = c.id
                 AND consensus_state(t.n_real, t.n_not_real, tp.consensus_k) LIKE 'settled%')",
        );
    };
    match r.view.mode {
        QueueMode::UnratedByMe => {
            not_mine(q);
            unsettled(q);
        }
        QueueMode::UnratedByAnyone => {
            q.push(" AND c.rating_count = 0");
        }
        QueueMode::RatedByOthers => {
            q.push(" AND c.rating_count > 0");
            not_mine(q);
            unsettled(q);
        }
        // A deciding verdict: the reviewer has not rated these, so sees no
        // one's verdict until they have (the queue tells only that the team
        // is split). Where the project keeps disputes to experts, others
        // find nothing here.
        QueueMode::Disputed => {
            q.push(
                " AND c.rating_count > 1 AND EXISTS (SELECT 1 FROM candidate_tallies t
                   JOIN projects tp ON tp.id = t.project_id
                   WHERE t.candidate_id = c.id
                     AND consensus_state(t.n_real, t.n_not_real, tp.consensus_k) = 'disputed'
                     AND (NOT tp.disputes_experts_only
                          OR EXISTS (SELECT 1 FROM users u WHERE u.id = ",
            )
            .push_bind(user)
            .push(" AND u.expert)))");
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
    if let QueueOrder::Observed { newest } = r.view.order {
        return upcoming_observed(db, user, r, after, n, newest).await;
    }
    if r.view.order.uses_scores() {
        return upcoming_scored(db, user, r, after, n).await;
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
    let walked: i64 = q
        .build_query_scalar()
        .persistent(r.filter.is_none())
        .fetch_one(&mut *db)
        .await?;
    Ok(walked + gold_left(db, user, r).await?)
}

/// The queue's gold candidates that only draws offer (their project's gold
/// rate is above 0) and that the reviewer has not rated: part of what the
/// queue holds, so that its count falls by one with each rating, gold or
/// not.
async fn gold_left(db: &mut PgConnection, user: UserId, r: &Resolved) -> sqlx::Result<i64> {
    let mut q = QueryBuilder::new("SELECT count(*)");
    from_clause(&mut q, r);
    push_gold(&mut q, r, user);
    q.build_query_scalar().persistent(false).fetch_one(db).await
}

/// The queue's conditions, narrowed to gold candidates that only draws
/// offer and that the reviewer has not rated.
fn push_gold(q: &mut QueryBuilder<'_, Postgres>, r: &Resolved, user: UserId) {
    queue_conditions(q, r, user);
    q.push(
        " AND EXISTS (SELECT 1 FROM gold_candidates g JOIN projects gp ON gp.id = g.project_id
                       WHERE g.candidate_id = c.id AND gp.gold_rate > 0)
          AND NOT EXISTS (SELECT 1 FROM ratings mine WHERE mine.candidate_id = c.id
                            AND mine.user_id = ",
    )
    .push_bind(user)
    .push(")");
}

/// What "next" offers: up to `n` candidates, the first to show and the
/// rest to fetch ahead. Each draw, with the probability of the project's
/// gold rate (`roll` is uniform in [0, 1); `domain::gold::roll`), the first
/// is a gold candidate of the queue the reviewer has not rated, the next
/// one after `after` in an order shuffled per reviewer (so a skipped one
/// does not come straight back); otherwise the regular walk's. The project
/// is the queue's, or in a queue of every project the project of the
/// walk's candidate. The walk goes on from the last candidate that was not
/// a gold draw ([`walk_cursor`]). Once the walk is empty, the gold
/// candidates left are offered, so that the queue ends when its count
/// reaches 0.
pub async fn offer(
    db: &mut PgConnection,
    user: UserId,
    r: &Resolved,
    after: Option<CandidateId>,
    n: i64,
    roll: f64,
) -> sqlx::Result<Vec<CandidateId>> {
    let cursor = walk_cursor(db, user, after).await?;
    let walk = upcoming(db, user, r, cursor, n).await?;
    let (roll, project_of) = match walk.first() {
        // No project's rate reaches this roll: the walk's it is.
        Some(_) if roll >= f64::from(crate::domain::gold::MAX_RATE) => return Ok(walk),
        Some(first) => (roll, Some(*first)),
        None => (0.0, None),
    };
    // The gold candidates in the reviewer's own shuffle (a hash seeded per
    // reviewer), those after `after` first, sorted apart from `candidates`:
    // the query then looks candidates up only until one is in the queue.
    // Rates are compared as decimals, so that a rate of 0.1 (a `real` a
    // hair above it) is not above a roll of 0.1: the share is as typed.
    let seed = r.seed;
    let mut q = QueryBuilder::new("SELECT c.id");
    from_clause(&mut q, r);
    q.push(format!(
        " JOIN (SELECT g.candidate_id, hashint8extended(g.candidate_id, {seed}) AS k,
                       (hashint8extended(g.candidate_id, {seed}) > hashint8extended("
    ))
    .push_bind(after)
    .push(format!(
        "::bigint, {seed})) IS NOT TRUE AS wrapped
                  FROM gold_candidates g JOIN projects gp ON gp.id = g.project_id
                 WHERE gp.gold_rate::numeric > "
    ))
    .push_bind(roll)
    .push("::float8::numeric");
    match (r.project_id, project_of) {
        (Some(p), _) => {
            q.push(" AND g.project_id = ").push_bind(p);
        }
        (None, Some(first)) => {
            q.push(" AND g.project_id = (SELECT project_id FROM candidates WHERE id = ")
                .push_bind(first)
                .push(")");
        }
        (None, None) => {}
    }
    q.push(" ORDER BY 3, 2 OFFSET 0) gg ON gg.candidate_id = c.id");
    queue_conditions(&mut q, r, user);
    q.push(" AND NOT EXISTS (SELECT 1 FROM ratings mine WHERE mine.candidate_id = c.id AND mine.user_id = ")
        .push_bind(user)
        .push(")");
    if let Some(a) = after {
        q.push(" AND c.id <> ").push_bind(a);
    }
    q.push(" ORDER BY gg.wrapped, gg.k LIMIT 1");
    let gold: Option<CandidateId> = q
        .build_query_scalar()
        .persistent(false)
        .fetch_optional(&mut *db)
        .await?;
    Ok(match gold {
        Some(g) => merge(vec![g], walk, n),
        None => walk,
    })
}

/// Where the walk goes on from: `after`, unless it is a gold candidate that
/// only draws offer; then the latest candidate shown to the reviewer
/// before it that is not (`db::trail`), so that a gold draw leaves the walk
/// where it was rather than jumping to the gold candidate's place in it.
async fn walk_cursor(
    db: &mut PgConnection,
    user: UserId,
    after: Option<CandidateId>,
) -> sqlx::Result<Option<CandidateId>> {
    let Some(a) = after else { return Ok(None) };
    sqlx::query_scalar(
        "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM gold_candidates g JOIN projects gp ON gp.id = g.project_id
                                       WHERE g.candidate_id = $2 AND gp.gold_rate > 0) THEN $2
                ELSE (SELECT t.x FROM reviewer_trails r, unnest(r.shown) WITH ORDINALITY AS t(x, i)
                       WHERE r.user_id = $1 AND t.x <> $2
                         AND NOT EXISTS (SELECT 1 FROM gold_candidates g
                                           JOIN projects gp ON gp.id = g.project_id
                                          WHERE g.candidate_id = t.x AND gp.gold_rate > 0)
                       ORDER BY t.i LIMIT 1)
                END",
    )
    .bind(user)
    .bind(a)
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

/// Observation-time order without a sort over the whole queue: the
/// observations in scope in time order (a few hundred rows), then each
/// observation's candidates by name from the (observation, name) index.
/// From `after`: the rest of its observation, the observations after it
/// (wrapping), then the start of its own.
async fn upcoming_observed(
    db: &mut PgConnection,
    user: UserId,
    r: &Resolved,
    after: Option<CandidateId>,
    n: i64,
    newest: bool,
) -> sqlx::Result<Vec<CandidateId>> {
    let direction = if newest { "DESC" } else { "ASC" };
    let mut observations: Vec<ObservationId> = sqlx::query_scalar(&format!(
        "SELECT id FROM observations
          WHERE ($1::bigint IS NULL OR project_id = $1) AND ($2::bigint IS NULL OR id = $2)
          ORDER BY start_time IS NULL, start_time {direction}, id"
    ))
    .bind(r.project_id)
    .bind(r.observation_id)
    .fetch_all(&mut *db)
    .await?;
    let cursor: Option<(ObservationId, String)> = match after {
        Some(a) => {
            sqlx::query_as("SELECT observation_id, name FROM candidates WHERE id = $1")
                .bind(a)
                .fetch_optional(&mut *db)
                .await?
        }
        None => None,
    };
    // One observation's candidates on one side of the cursor.
    let within = |q: &mut QueryBuilder<'_, Postgres>, o: ObservationId, (name, id), later: bool| {
        q.push(" AND c.observation_id = ")
            .push_bind(o)
            .push(if later {
                " AND (c.name, c.id) > ("
            } else {
                " AND (c.name, c.id) < ("
            })
            .push_bind(name)
            .push(", ")
            .push_bind(id)
            .push(")");
    };
    let mut found = Vec::new();
    if let (Some((o, name)), Some(a)) = (&cursor, after) {
        let mut q = QueryBuilder::new("SELECT c.id FROM candidates c");
        filters(&mut q, r, user);
        within(&mut q, *o, (name.clone(), a), true);
        q.push(format!(" ORDER BY c.name, c.id LIMIT {n}"));
        found = q
            .build_query_scalar()
            .persistent(false)
            .fetch_all(&mut *db)
            .await?;
        if let Some(at) = observations.iter().position(|x| x == o) {
            observations.rotate_left(at);
            observations.remove(0);
        }
    }
    if (found.len() as i64) < n && !observations.is_empty() {
        // Each observation in turn, as many of its first candidates as could
        // be wanted; the observations' order is the array's.
        let mut q = QueryBuilder::new("SELECT x.id FROM unnest(");
        q.push_bind(observations)
            .push("::bigint[]) WITH ORDINALITY AS ob(oid, k) CROSS JOIN LATERAL (SELECT c.id, c.name FROM candidates c");
        filters(&mut q, r, user);
        q.push(format!(
            " AND c.observation_id = ob.oid ORDER BY c.name, c.id LIMIT {n}) x ORDER BY ob.k, x.name, x.id LIMIT {n}"
        ));
        let more: Vec<CandidateId> = q
            .build_query_scalar()
            .persistent(false)
            .fetch_all(&mut *db)
            .await?;
        found = merge(found, more, n);
    }
    if let (Some((o, name)), Some(a), true) = (&cursor, after, (found.len() as i64) < n) {
        let mut q = QueryBuilder::new("SELECT c.id FROM candidates c");
        filters(&mut q, r, user);
        within(&mut q, *o, (name.clone(), a), false);
        q.push(format!(" ORDER BY c.name, c.id LIMIT {n}"));
        let more: Vec<CandidateId> = q
            .build_query_scalar()
            .persistent(false)
            .fetch_all(&mut *db)
            .await?;
        found = merge(found, more, n);
    }
    Ok(found)
}

/// A score order's key: the expression over `s` (candidate_scores) that
/// its index holds, and whether it descends.
fn score_key(order: &QueueOrder) -> (&'static str, bool) {
    match order {
        QueueOrder::Uncertain => ("abs(s.p_real - 0.5)", false),
        _ => ("s.p_real", true),
    }
}

/// A scored candidate as the score walk meets it: its id, score and
/// shuffle key.
type Scored = (CandidateId, f64, i32);

/// Score orders without a sort over the whole queue. The walk follows the
/// score index (score, then id) from the cursor; each run of equal scores
/// is then put in the reviewer's shuffled order (a run is a handful of
/// candidates: scores are continuous), a run the batch cut short being
/// fetched whole by its score. The candidates not scored yet come after
/// the scored ones, by name; then the walk wraps to the top.
async fn upcoming_scored(
    db: &mut PgConnection,
    user: UserId,
    r: &Resolved,
    after: Option<CandidateId>,
    n: i64,
) -> sqlx::Result<Vec<CandidateId>> {
    let Some(project) = r.project_id else {
        return upcoming_shuffled(db, user, r, after, n).await;
    };
    let (expr, descending) = score_key(&r.view.order);
    let seed = r.seed;
    let rank = |(id, _, key): &Scored| (key < &seed, *key, *id);
    let cursor: Option<(Option<f64>, i32, CandidateId)> = match after {
        Some(a) => {
            sqlx::query_as(&format!(
                "SELECT {expr}::float8, c.shuffle_key, c.id FROM candidates c
                 LEFT JOIN candidate_scores s ON s.candidate_id = c.id WHERE c.id = $1"
            ))
            .bind(a)
            .fetch_optional(&mut *db)
            .await?
        }
        None => None,
    };
    let select = |q: &mut QueryBuilder<'_, Postgres>| {
        q.push(format!(
            "SELECT c.id, {expr}::float8, c.shuffle_key
               FROM candidate_scores s JOIN candidates c ON c.id = s.candidate_id"
        ));
        filters(q, r, user);
        q.push(" AND s.project_id = ").push_bind(project);
    };
    let persistent = r.filter.is_none();
    // Every candidate of one score, in the reviewer's order.
    let tie = |score: f64| {
        let mut q = QueryBuilder::new("");
        select(&mut q);
        q.push(format!(" AND {expr} = ")).push_bind(score);
        q.push(" LIMIT 10000");
        q
    };
    // The next candidates in index order beyond a score (or from the top).
    let walk = |beyond: Option<f64>| {
        let mut q = QueryBuilder::new("");
        select(&mut q);
        if let Some(score) = beyond {
            q.push(format!(
                " AND {expr} {} ",
                if descending { "<" } else { ">" }
            ))
            .push_bind(score);
        }
        q.push(format!(
            " ORDER BY {expr} {}, s.candidate_id LIMIT {n}",
            if descending { "DESC" } else { "ASC" }
        ));
        q
    };
    let mut found: Vec<CandidateId> = Vec::new();
    // The scored part after a cursor (none: from the top), at most `n`.
    let scored_from = async |db: &mut PgConnection,
                             from: Option<(f64, i32, CandidateId)>|
           -> sqlx::Result<Vec<CandidateId>> {
        let mut out: Vec<Scored> = Vec::new();
        if let Some((score, key, id)) = from {
            let mut group: Vec<Scored> = tie(score)
                .build_query_as()
                .persistent(persistent)
                .fetch_all(&mut *db)
                .await?;
            group.sort_by_key(rank);
            let here = rank(&(id, score, key));
            out.extend(group.into_iter().filter(|g| rank(g) > here));
        }
        if (out.len() as i64) < n {
            let rows: Vec<Scored> = walk(from.map(|f| f.0))
                .build_query_as()
                .persistent(persistent)
                .fetch_all(&mut *db)
                .await?;
            let cut_short = rows.len() as i64 == n;
            let mut runs: Vec<Vec<Scored>> = Vec::new();
            for row in rows {
                match runs.last_mut() {
                    Some(run) if run[0].1 == row.1 => run.push(row),
                    _ => runs.push(vec![row]),
                }
            }
            if cut_short {
                if let Some(last) = runs.last_mut() {
                    *last = tie(last[0].1)
                        .build_query_as()
                        .persistent(persistent)
                        .fetch_all(&mut *db)
                        .await?;
                }
            }
            for mut run in runs {
                run.sort_by_key(rank);
                out.extend(run);
            }
        }
        Ok(out.into_iter().map(|s| s.0).take(n as usize).collect())
    };
    // The unscored come after every scored one, by name; from the cursor's
    // name when it is one of them.
    let unscored = |from: Option<CandidateId>| {
        let mut q = QueryBuilder::new("SELECT c.id");
        from_clause(&mut q, r);
        filters(&mut q, r, user);
        q.push(" AND NOT EXISTS (SELECT 1 FROM candidate_scores s WHERE s.candidate_id = c.id)");
        if let Some(a) = from {
            q.push(" AND (c.name, c.id) > (SELECT name, id FROM candidates WHERE id = ")
                .push_bind(a)
                .push(")");
        }
        q.push(format!(" ORDER BY c.name, c.id LIMIT {n}"));
        q
    };
    enum Leg {
        Scored(Option<(f64, i32, CandidateId)>),
        Unscored(Option<CandidateId>),
    }
    let legs = match cursor {
        Some((Some(score), key, id)) => vec![
            Leg::Scored(Some((score, key, id))),
            Leg::Unscored(None),
            Leg::Scored(None),
        ],
        Some((None, _, _)) => vec![Leg::Unscored(after), Leg::Scored(None), Leg::Unscored(None)],
        None => vec![Leg::Scored(None), Leg::Unscored(None)],
    };
    for leg in legs {
        let more: Vec<CandidateId> = match leg {
            Leg::Scored(from) => scored_from(&mut *db, from).await?,
            Leg::Unscored(from) => {
                unscored(from)
                    .build_query_scalar()
                    .persistent(persistent)
                    .fetch_all(&mut *db)
                    .await?
            }
        };
        let more = more.into_iter().filter(|id| Some(*id) != after).collect();
        found = merge(found, more, n);
        if found.len() as i64 >= n {
            break;
        }
    }
    Ok(found)
}
