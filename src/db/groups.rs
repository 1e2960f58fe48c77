//! Groups of candidates: every candidate of a project within the project's
//! radius of another belongs to that one's group (friends of friends,
//! `domain::groups`). `candidates.group_id` is the group's smallest
//! candidate id.
//!
//! Uploads group what they insert inside their own transaction
//! ([`attach`]); [`recompute`] makes a whole project's groups again (after
//! the radius changed, or for candidates from before groups existed).

use std::collections::HashMap;

use sqlx::{FromRow, PgConnection};
use time::OffsetDateTime;

use crate::domain::groups::{group_ids, Friends};
use crate::domain::{CandidateId, ObservationId, ProjectId};

/// The advisory-lock class of a project's grouping: "grps".
const LOCK_CLASS: i32 = 0x6772_7073;

/// A write to a project's groups waits for the one before it: two uploads
/// that each see only their own new candidates could otherwise both miss
/// the other's bridge and leave one group split in two.
async fn lock(tx: &mut PgConnection, project: ProjectId) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, ($2 % 2147483647)::int4)")
        .bind(LOCK_CLASS)
        .bind(project)
        .execute(tx)
        .await
        .map(drop)
}

async fn radius_deg(tx: &mut PgConnection, project: ProjectId) -> sqlx::Result<f64> {
    Ok(radius_arcsec(tx, project).await? / 3600.0)
}

/// The project's group radius in arcseconds.
pub async fn radius_arcsec(db: &mut PgConnection, project: ProjectId) -> sqlx::Result<f64> {
    sqlx::query_scalar("SELECT group_radius_arcsec FROM projects WHERE id = $1")
        .bind(project)
        .fetch_one(db)
        .await
}

/// Sets the project's group radius; true when it changed (the groups are
/// then to be made again with [`recompute`]).
pub async fn set_radius(
    db: &mut PgConnection,
    project: ProjectId,
    arcsec: f64,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "UPDATE projects SET group_radius_arcsec = $2
          WHERE id = $1 AND group_radius_arcsec <> $2",
    )
    .bind(project)
    .bind(arcsec)
    .execute(db)
    .await?
    .rows_affected()
        > 0)
}

/// Puts the candidates an upload wrote (new, or moved) into groups, merging
/// the groups they bridge. Must run in the upload's transaction, so a
/// failed upload leaves the groups as they were. The groups a re-sent
/// candidate belonged to are made again first, so one that moved away
/// splits its old group where it was the only link.
pub async fn attach(
    tx: &mut PgConnection,
    project: ProjectId,
    written: &[CandidateId],
) -> sqlx::Result<()> {
    if written.is_empty() {
        return Ok(());
    }
    lock(&mut *tx, project).await?;
    let radius = radius_deg(&mut *tx, project).await?;
    let ids: Vec<i64> = written.iter().map(|c| c.0).collect();
    regroup_members(&mut *tx, project, radius, &ids).await?;
    // Each written candidate with every other within the radius: another
    // written one stands for itself, an older one for its group. Fenced as
    // in `recompute`, so only the q3c index finds them.
    let pairs: Vec<(i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT n.id, o.id, o.group_id
           FROM candidates n
           CROSS JOIN LATERAL (
               SELECT o.id, o.group_id FROM candidates o
                WHERE q3c_join(n.ra, n.dec, o.ra, o.dec, $3)
                  AND o.project_id + 0 = $2 AND o.id + 0 <> n.id OFFSET 0) o
          WHERE n.id = ANY($1)",
    )
    .bind(&ids)
    .bind(project)
    .bind(radius)
    .fetch_all(&mut *tx)
    .await?;
    let before: Vec<(i64, Option<i64>)> =
        sqlx::query_as("SELECT id, group_id FROM candidates WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?;
    let written_set: std::collections::HashSet<i64> = ids.iter().copied().collect();
    let mut f = Friends::with_capacity(ids.len() * 2);
    let mut old_groups = Vec::new();
    for (id, group) in before {
        f.add(id);
        if let Some(g) = group {
            f.join(id, g);
            old_groups.push(g);
        }
    }
    for (n, o, group) in pairs {
        let friend = match group {
            Some(g) if !written_set.contains(&o) => {
                old_groups.push(g);
                g
            }
            _ => o,
        };
        f.join(n, friend);
    }
    old_groups.sort_unstable();
    old_groups.dedup();
    let (from, to): (Vec<i64>, Vec<i64>) = old_groups
        .iter()
        .map(|&g| (g, f.root(g)))
        .filter(|(g, r)| g != r)
        .unzip();
    if !from.is_empty() {
        sqlx::query(
            "UPDATE candidates c SET group_id = m.to_group
               FROM unnest($2::bigint[], $3::bigint[]) AS m(from_group, to_group)
              WHERE c.project_id = $1 AND c.group_id = m.from_group",
        )
        .bind(project)
        .bind(&from)
        .bind(&to)
        .execute(&mut *tx)
        .await?;
    }
    let roots: Vec<i64> = ids.iter().map(|&id| f.root(id)).collect();
    sqlx::query(
        "UPDATE candidates c SET group_id = m.group_id
           FROM unnest($1::bigint[], $2::bigint[]) AS m(id, group_id)
          WHERE c.id = m.id AND c.group_id IS DISTINCT FROM m.group_id",
    )
    .bind(&ids)
    .bind(&roots)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Makes again the groups that the already grouped candidates among `ids`
/// belong to, from their members' present positions: friends of friends
/// among those members only, each part named by its smallest id. Groups
/// are small (the detections of one source), so this stays cheap.
async fn regroup_members(
    tx: &mut PgConnection,
    project: ProjectId,
    radius: f64,
    ids: &[i64],
) -> sqlx::Result<()> {
    let groups: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT group_id FROM candidates WHERE id = ANY($1) AND group_id IS NOT NULL",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    if groups.is_empty() {
        return Ok(());
    }
    let members: Vec<(i64, Option<i64>)> = sqlx::query_as(
        "SELECT id, group_id FROM candidates WHERE project_id = $1 AND group_id = ANY($2)",
    )
    .bind(project)
    .bind(&groups)
    .fetch_all(&mut *tx)
    .await?;
    // Fenced as in `recompute`: only the q3c index finds the neighbours.
    let pairs: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT a.id, b.id
           FROM candidates a
           CROSS JOIN LATERAL (
               SELECT b.id FROM candidates b
                WHERE q3c_join(a.ra, a.dec, b.ra, b.dec, $3)
                  AND b.group_id + 0 = a.group_id AND b.id + 0 > a.id OFFSET 0) b
          WHERE a.project_id = $1 AND a.group_id = ANY($2)",
    )
    .bind(project)
    .bind(&groups)
    .bind(radius)
    .fetch_all(&mut *tx)
    .await?;
    let all: Vec<i64> = members.iter().map(|(id, _)| *id).collect();
    let now = group_ids(&all, &pairs);
    let (changed, to): (Vec<i64>, Vec<i64>) = members
        .iter()
        .filter_map(|&(id, old)| {
            let new = now[&id];
            (old != Some(new)).then_some((id, new))
        })
        .unzip();
    if !changed.is_empty() {
        sqlx::query(
            "UPDATE candidates c SET group_id = m.group_id
               FROM unnest($1::bigint[], $2::bigint[]) AS m(id, group_id)
              WHERE c.id = m.id",
        )
        .bind(&changed)
        .bind(&to)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// What a recompute found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recomputed {
    pub candidates: usize,
    pub groups: usize,
    /// Candidates whose group changed.
    pub changed: usize,
}

/// Rows per statement when writing groups back: a million-row UPDATE in
/// one statement holds its whole array in memory twice.
const WRITE_CHUNK: usize = 50_000;

/// Makes every group of the project again from its candidates' positions:
/// the pairs within the radius from one q3c self-join, the groups in Rust,
/// and only the candidates whose group changed written back. In its own
/// transaction, under the project's grouping lock.
pub async fn recompute(conn: &mut PgConnection, project: ProjectId) -> sqlx::Result<Recomputed> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    lock(&mut tx, project).await?;
    let radius = radius_deg(&mut tx, project).await?;
    let current: Vec<(i64, Option<i64>)> =
        sqlx::query_as("SELECT id, group_id FROM candidates WHERE project_id = $1")
            .bind(project)
            .fetch_all(&mut *tx)
            .await?;
    // Only q3c's index may find the neighbours: given `b.id > a.id` or
    // `b.project_id = …` as index conditions the planner walks the primary
    // key instead, which is quadratic (100,000 candidates took minutes;
    // this way, a second). `+ 0` and the fenced LATERAL keep them filters.
    let pairs: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT a.id, b.id
           FROM candidates a
           CROSS JOIN LATERAL (
               SELECT b.id FROM candidates b
                WHERE q3c_join(a.ra, a.dec, b.ra, b.dec, $2)
                  AND b.project_id + 0 = $1 AND b.id + 0 > a.id OFFSET 0) b
          WHERE a.project_id = $1",
    )
    .bind(project)
    .bind(radius)
    .fetch_all(&mut *tx)
    .await?;
    let ids: Vec<i64> = current.iter().map(|(id, _)| *id).collect();
    let groups: HashMap<i64, i64> = group_ids(&ids, &pairs);
    let mut distinct: Vec<i64> = groups.values().copied().collect();
    distinct.sort_unstable();
    distinct.dedup();
    let (changed_ids, changed_groups): (Vec<i64>, Vec<i64>) = current
        .iter()
        .filter_map(|&(id, old)| {
            let new = groups[&id];
            (old != Some(new)).then_some((id, new))
        })
        .unzip();
    for (ids, groups) in changed_ids
        .chunks(WRITE_CHUNK)
        .zip(changed_groups.chunks(WRITE_CHUNK))
    {
        sqlx::query(
            "UPDATE candidates c SET group_id = m.group_id
               FROM unnest($1::bigint[], $2::bigint[]) AS m(id, group_id)
              WHERE c.id = m.id",
        )
        .bind(ids)
        .bind(groups)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Recomputed {
        candidates: ids.len(),
        groups: distinct.len(),
        changed: changed_ids.len(),
    })
}

/// The project and group of a candidate.
pub async fn group_of(
    db: &mut PgConnection,
    candidate: CandidateId,
) -> sqlx::Result<Option<(ProjectId, i64)>> {
    sqlx::query_as("SELECT project_id, coalesce(group_id, id) FROM candidates WHERE id = $1")
        .bind(candidate)
        .fetch_optional(db)
        .await
}

/// The candidates of a group, at most `limit` (smallest ids first).
pub async fn member_ids(
    db: &mut PgConnection,
    project: ProjectId,
    group: i64,
    limit: i64,
) -> sqlx::Result<Vec<CandidateId>> {
    sqlx::query_scalar(
        "SELECT id FROM candidates WHERE project_id = $1 AND group_id = $2 ORDER BY id LIMIT $3",
    )
    .bind(project)
    .bind(group)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// A member of a group as the candidate page lists it.
#[derive(Debug, Clone, FromRow)]
pub struct Member {
    pub id: CandidateId,
    pub name: String,
    pub observation_id: ObservationId,
    pub observation: String,
    pub start_time: Option<OffsetDateTime>,
    /// The project's peak flux metric ([`peak_flux_metric`]), if it has one
    /// and the candidate a value.
    pub peak: Option<f64>,
}

/// The metric a group's light curve shows: the project's first metric
/// whose key names both a peak and a flux (`peak_flux`, `flux_peak`), else
/// its first flux metric; its id, label and unit.
pub async fn peak_flux_metric(
    db: &mut PgConnection,
    project: ProjectId,
) -> sqlx::Result<Option<(i64, String, String)>> {
    sqlx::query_as(
        "SELECT id, label, unit FROM metric_defs
          WHERE project_id = $1 AND key LIKE '%flux%'
          ORDER BY (key LIKE '%peak%') DESC, position, id LIMIT 1",
    )
    .bind(project)
    .fetch_optional(db)
    .await
}

/// The group's size and how many observations it spans.
pub async fn size(
    db: &mut PgConnection,
    project: ProjectId,
    group: i64,
) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as(
        "SELECT count(*), count(DISTINCT observation_id) FROM candidates
          WHERE project_id = $1 AND group_id = $2",
    )
    .bind(project)
    .bind(group)
    .fetch_one(db)
    .await
}

/// The group's members in time order (undated last), at most `limit`.
pub async fn members(
    db: &mut PgConnection,
    project: ProjectId,
    group: i64,
    peak_metric: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<Member>> {
    sqlx::query_as(
        "SELECT c.id, c.name, o.id AS observation_id, o.external_id AS observation, o.start_time,
                (SELECT m.value FROM candidate_metrics m
                  WHERE m.candidate_id = c.id AND m.metric_id = $3) AS peak
           FROM candidates c JOIN observations o ON o.id = c.observation_id
          WHERE c.project_id = $1 AND c.group_id = $2
          ORDER BY o.start_time NULLS LAST, c.id LIMIT $4",
    )
    .bind(project)
    .bind(group)
    .bind(peak_metric)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Every project, by id: what `vetter groups recompute --all` walks.
pub async fn projects(db: &mut PgConnection) -> sqlx::Result<Vec<(ProjectId, String)>> {
    sqlx::query_as("SELECT id, slug FROM projects ORDER BY id")
        .fetch_all(db)
        .await
}

/// The size of the group of each of `ids` (the table's rows, one per group).
pub async fn sizes(
    db: &mut PgConnection,
    ids: &[CandidateId],
) -> sqlx::Result<HashMap<CandidateId, i64>> {
    let rows: Vec<(CandidateId, i64)> = sqlx::query_as(
        "SELECT c.id, (SELECT count(*) FROM candidates g
                        WHERE g.project_id = c.project_id AND g.group_id = c.group_id)
           FROM candidates c WHERE c.id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().collect())
}
