//! Numbers for the site status page, all from the database (file sizes as
//! stored at upload, not by walking the media folder).

use sqlx::{FromRow, PgConnection};

#[derive(Debug, Clone, Default, FromRow)]
pub struct Counts {
    pub projects: i64,
    pub observations: i64,
    pub candidates: i64,
    pub ratings: i64,
    /// Active accounts with the reviewer role, and with the admin role.
    pub reviewers: i64,
    pub admins: i64,
    pub deactivated: i64,
    /// Stored objects (content is stored once however many rows share it)
    /// and their total size: what the media folder should hold.
    pub media_objects: i64,
    pub media_bytes: i64,
    pub database_bytes: i64,
}

pub async fn counts(db: &mut PgConnection) -> sqlx::Result<Counts> {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM projects) AS projects,
                (SELECT count(*) FROM observations) AS observations,
                (SELECT count(*) FROM candidates) AS candidates,
                (SELECT count(*) FROM ratings) AS ratings,
                (SELECT count(*) FROM users WHERE active AND role = 'reviewer') AS reviewers,
                (SELECT count(*) FROM users WHERE active AND role = 'admin') AS admins,
                (SELECT count(*) FROM users WHERE NOT active) AS deactivated,
                o.media_objects, o.media_bytes,
                pg_database_size(current_database()) AS database_bytes
         FROM (SELECT count(*) AS media_objects, coalesce(sum(size_bytes), 0)::bigint AS media_bytes
               FROM (SELECT storage_path, max(size_bytes) AS size_bytes FROM files GROUP BY storage_path) s) o",
    )
    .fetch_one(db)
    .await
}

/// A project's share of the media folder.
#[derive(Debug, Clone, FromRow)]
pub struct ProjectMedia {
    pub slug: String,
    pub name: String,
    /// File rows of the project's candidates, beams and observations.
    pub files: i64,
    /// The distinct objects they point at, and their total size. Content
    /// shared with another project counts in both.
    pub objects: i64,
    pub bytes: i64,
}

pub async fn media_per_project(db: &mut PgConnection) -> sqlx::Result<Vec<ProjectMedia>> {
    sqlx::query_as(
        "WITH f AS (
             SELECT c.project_id, f.storage_path, f.size_bytes
               FROM files f JOIN candidates c ON c.id = f.candidate_id
             UNION ALL
             SELECT o.project_id, f.storage_path, f.size_bytes
               FROM files f JOIN beams b ON b.id = f.beam_id JOIN observations o ON o.id = b.observation_id
             UNION ALL
             SELECT o.project_id, f.storage_path, f.size_bytes
               FROM files f JOIN observations o ON o.id = f.observation_id),
         per AS (
             SELECT project_id, count(*) AS files FROM f GROUP BY project_id),
         objects AS (
             SELECT project_id, storage_path, max(size_bytes) AS size_bytes
               FROM f GROUP BY project_id, storage_path)
         SELECT p.slug, p.name,
                coalesce(per.files, 0) AS files,
                (SELECT count(*) FROM objects WHERE objects.project_id = p.id) AS objects,
                (SELECT coalesce(sum(size_bytes), 0)::bigint FROM objects WHERE objects.project_id = p.id) AS bytes
         FROM projects p LEFT JOIN per ON per.project_id = p.id
         ORDER BY lower(p.name), p.slug",
    )
    .fetch_all(db)
    .await
}
