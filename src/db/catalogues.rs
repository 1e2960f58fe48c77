//! Reference catalogues and what they say about candidates: loading one (a
//! partition of `catalogue_sources` per catalogue), the catalogues each
//! project matches against, the matches, and a candidate's association
//! with one known source.

use std::fmt::Write as _;

use anyhow::Context;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, PgExecutor, PgPool, Row};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::catalogue::table::{KeptColumn, Source};
use crate::domain::names::CatalogueName;
use crate::domain::{CandidateId, CatalogueId, ProjectId, SkyPos, UserId};

/// A loaded catalogue.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub id: CatalogueId,
    pub name: String,
    pub description: String,
    pub origin: String,
    pub columns: Vec<KeptColumn>,
    pub row_count: i64,
    pub loaded_at: OffsetDateTime,
}

impl<'r> FromRow<'r, PgRow> for Catalogue {
    fn from_row(row: &'r PgRow) -> sqlx::Result<Self> {
        let Json(columns) = row.try_get("columns")?;
        Ok(Self {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            origin: row.try_get("origin")?,
            columns,
            row_count: row.try_get("row_count")?,
            loaded_at: row.try_get("loaded_at")?,
        })
    }
}

const COLUMNS: &str = "id, name, description, origin, columns, row_count, loaded_at";

pub async fn list(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<Catalogue>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM catalogues ORDER BY name"))
        .fetch_all(db)
        .await
}

pub async fn by_name(
    db: impl PgExecutor<'_>,
    name: &CatalogueName,
) -> sqlx::Result<Option<Catalogue>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM catalogues WHERE name = $1"))
        .bind(name.as_str())
        .fetch_optional(db)
        .await
}

/// The partition that holds a catalogue's sources. Made from its id, so
/// nothing typed reaches the DDL.
fn partition(id: CatalogueId) -> String {
    format!("catalogue_sources_{}", id.0)
}

/// What a catalogue is, apart from its rows.
#[derive(Debug, Clone)]
pub struct NewCatalogue<'a> {
    pub name: &'a CatalogueName,
    pub description: &'a str,
    pub origin: &'a str,
    pub columns: &'a [KeptColumn],
}

/// What a load did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSummary {
    pub id: CatalogueId,
    pub rows: u64,
    /// The number of rows it replaced, when it was loaded before.
    pub replaced: Option<u64>,
    /// Projects whose candidates were matched again, and the matches made.
    pub projects: u64,
    pub matches: u64,
}

/// Sources arrive in blocks, or the reason reading stopped.
pub type SourceBlocks = mpsc::Receiver<Result<Vec<Source>, String>>;

/// Appends a number as COPY text reads it back exactly.
fn push_float(out: &mut String, v: f64) {
    if v == f64::INFINITY {
        out.push_str("Infinity");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Infinity");
    } else {
        // Debug is the shortest text that reads back as the same f64.
        let _ = write!(out, "{v:?}");
    }
}

fn push_copy_row(out: &mut String, id: CatalogueId, row_no: u64, s: &Source) {
    let _ = write!(out, "{}\t{row_no}\t", id.0);
    for ch in s.name.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('\t');
    push_float(out, s.pos.ra.degrees());
    out.push('\t');
    push_float(out, s.pos.dec.degrees());
    out.push_str("\t{");
    for (i, v) in s.vals.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match v {
            Some(v) => push_float(out, *v),
            None => out.push_str("NULL"),
        }
    }
    out.push_str("}\n");
}

/// Loads (or reloads) a catalogue in one transaction: its rows go into a
/// fresh table with its indexes built once at the end; the projects that
/// use it are matched again against the new rows; then the new table takes
/// the old one's place. Readers see the old catalogue until the commit, and
/// any failure (a bad row read late in the file included) leaves it as it
/// was. Refuses a file with no rows.
pub async fn load(
    pool: &PgPool,
    new: &NewCatalogue<'_>,
    mut blocks: SourceBlocks,
) -> anyhow::Result<LoadSummary> {
    let mut tx = pool.begin().await?;
    // Loads of one catalogue one at a time (two would make the same table).
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('vetter catalogue ' || $1))")
        .bind(new.name.as_str())
        .execute(&mut *tx)
        .await?;
    let before: Option<(CatalogueId, i64)> =
        sqlx::query_as("SELECT id, row_count FROM catalogues WHERE name = $1")
            .bind(new.name.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    let id = match before {
        // The same id, so the projects' choice of it survives a reload.
        Some((id, _)) => id,
        None => {
            sqlx::query_scalar("INSERT INTO catalogues (name) VALUES ($1) RETURNING id")
                .bind(new.name.as_str())
                .fetch_one(&mut *tx)
                .await?
        }
    };
    let staging = format!("{}_new", partition(id));
    sqlx::query(&format!(
        "CREATE TABLE {staging} (LIKE catalogue_sources INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
            CHECK (catalogue_id = {}))",
        id.0
    ))
    .execute(&mut *tx)
    .await?;

    let mut rows: u64 = 0;
    {
        let mut copy = tx
            .copy_in_raw(&format!(
                "COPY {staging} (catalogue_id, row_no, name, ra, dec, vals) FROM STDIN"
            ))
            .await?;
        let mut text = String::new();
        while let Some(block) = blocks.recv().await {
            let block = match block {
                Ok(b) => b,
                Err(why) => {
                    // Dropping the copy and the transaction undoes it all.
                    let _ = copy.abort("the file was refused").await;
                    anyhow::bail!(why);
                }
            };
            text.clear();
            for s in &block {
                rows += 1;
                anyhow::ensure!(
                    rows <= i32::MAX as u64,
                    "a catalogue holds at most {} rows",
                    i32::MAX
                );
                push_copy_row(&mut text, id, rows, s);
            }
            copy.send(text.as_bytes()).await?;
        }
        copy.finish().await.context("writing the rows")?;
    }
    anyhow::ensure!(
        rows > 0,
        "the file has no rows: the catalogue is unchanged (remove it with `vetter catalogue remove`)"
    );
    // The parent's indexes, built once over all rows; ATTACH adopts them.
    for index in [
        "(q3c_ang2ipix(ra, dec))",
        "(catalogue_id, lower(name) text_pattern_ops)",
    ] {
        sqlx::query(&format!("CREATE INDEX ON {staging} {index}"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(&format!(
        "CREATE UNIQUE INDEX ON {staging} (catalogue_id, row_no)"
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!("ANALYZE {staging}"))
        .execute(&mut *tx)
        .await?;

    sqlx::query(
        "UPDATE catalogues SET description = $2, origin = $3, columns = $4, row_count = $5,
                loaded_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(new.description)
    .bind(new.origin)
    .bind(Json(new.columns))
    .bind(rows as i64)
    .execute(&mut *tx)
    .await?;

    // Matched against the new rows before the swap, so the parent table is
    // locked (by DROP and ATTACH) only for the last moment.
    let (projects, matches) = rematch_catalogue(&mut tx, id, &staging).await?;

    if before.is_some() {
        sqlx::query(&format!("DROP TABLE {}", partition(id)))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(&format!(
        "ALTER TABLE {staging} RENAME TO {}",
        partition(id)
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "ALTER TABLE catalogue_sources ATTACH PARTITION {} FOR VALUES IN ({})",
        partition(id),
        id.0
    ))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(LoadSummary {
        id,
        rows,
        replaced: before.map(|(_, n)| n as u64),
        projects,
        matches,
    })
}

/// Removes a catalogue, its rows, its matches and the projects' choice of
/// it. Associations keep their copied name and position. Returns its row
/// count, or `None` when there is no such catalogue.
pub async fn remove(pool: &PgPool, name: &CatalogueName) -> sqlx::Result<Option<i64>> {
    let mut tx = pool.begin().await?;
    let gone: Option<(CatalogueId, i64)> =
        sqlx::query_as("DELETE FROM catalogues WHERE name = $1 RETURNING id, row_count")
            .bind(name.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    if let Some((id, _)) = gone {
        sqlx::query(&format!("DROP TABLE IF EXISTS {}", partition(id)))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(gone.map(|(_, n)| n))
}

// ---------------------------------------------------------------------------
// Matching

/// Makes the nearest-match rows of the given candidates (or all of a
/// catalogue's) agree with their matches.
const NEAREST_FROM_MATCHES: &str =
    "INSERT INTO catalogue_nearest (candidate_id, catalogue_id, row_no, separation_arcsec)
     SELECT DISTINCT ON (candidate_id, catalogue_id) candidate_id, catalogue_id, row_no, separation_arcsec
       FROM catalogue_matches";

/// Stores the matches of a project's candidates (all, or those given)
/// within `radius_arcsec` in one catalogue, read from `sources` (its
/// partition, or the table about to become it). One statement per
/// catalogue with the radius a constant: with the radius read from
/// `project_catalogues` in the same statement, q3c cannot use the sources'
/// index and PostgreSQL compared every candidate with every source.
async fn match_into(
    conn: &mut PgConnection,
    project: ProjectId,
    catalogue: CatalogueId,
    radius_arcsec: f64,
    sources: &str,
    candidates: Option<&[CandidateId]>,
) -> sqlx::Result<u64> {
    let only = if candidates.is_some() {
        " AND c.id = ANY($4)"
    } else {
        ""
    };
    let sql = format!(
        "INSERT INTO catalogue_matches (candidate_id, catalogue_id, row_no, separation_arcsec)
         SELECT c.id, $2, s.row_no, q3c_dist(c.ra, c.dec, s.ra, s.dec) * 3600
           FROM candidates c JOIN {sources} s ON q3c_join(c.ra, c.dec, s.ra, s.dec, $3)
          WHERE c.project_id = $1{only}"
    );
    let mut q = sqlx::query(&sql)
        .bind(project)
        .bind(catalogue)
        .bind(radius_arcsec / 3600.0);
    if let Some(ids) = candidates {
        q = q.bind(ids);
    }
    Ok(q.execute(conn).await?.rows_affected())
}

/// Matches every candidate of every project that uses the catalogue against
/// `sources` (its partition, or the table about to become it). Returns the
/// projects and matches.
async fn rematch_catalogue(
    conn: &mut PgConnection,
    id: CatalogueId,
    sources: &str,
) -> sqlx::Result<(u64, u64)> {
    for table in ["catalogue_matches", "catalogue_nearest"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE catalogue_id = $1"))
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    let users: Vec<(ProjectId, f64)> = sqlx::query_as(
        "SELECT project_id, radius_arcsec FROM project_catalogues WHERE catalogue_id = $1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let mut matches = 0;
    for (project, radius) in &users {
        matches += match_into(&mut *conn, *project, id, *radius, sources, None).await?;
    }
    sqlx::query(&format!(
        "{NEAREST_FROM_MATCHES} WHERE catalogue_id = $1
          ORDER BY candidate_id, catalogue_id, separation_arcsec, row_no"
    ))
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok((users.len() as u64, matches))
}

/// Matches candidates (new or moved, at ingest) against their project's
/// catalogues, replacing what they had.
pub async fn match_candidates(
    conn: &mut PgConnection,
    project: ProjectId,
    candidates: &[CandidateId],
) -> sqlx::Result<u64> {
    // A project that matches nothing has no matches to replace either
    // (`set_choices` removes those of a catalogue no longer chosen).
    if candidates.is_empty() {
        return Ok(0);
    }
    let chosen = choices(&mut *conn, project).await?;
    if chosen.is_empty() {
        return Ok(0);
    }
    for table in ["catalogue_matches", "catalogue_nearest"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE candidate_id = ANY($1)"))
            .bind(candidates)
            .execute(&mut *conn)
            .await?;
    }
    let mut made = 0;
    for c in chosen {
        let sources = partition(c.catalogue_id);
        made += match_into(
            &mut *conn,
            project,
            c.catalogue_id,
            c.radius_arcsec,
            &sources,
            Some(candidates),
        )
        .await?;
    }
    if made > 0 {
        sqlx::query(&format!(
            "{NEAREST_FROM_MATCHES} WHERE candidate_id = ANY($1)
              ORDER BY candidate_id, catalogue_id, separation_arcsec, row_no"
        ))
        .bind(candidates)
        .execute(&mut *conn)
        .await?;
    }
    Ok(made)
}

/// A project's choice: a catalogue and the radius it is matched within.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub catalogue_id: CatalogueId,
    pub name: String,
    pub radius_arcsec: f64,
}

pub async fn choices(db: impl PgExecutor<'_>, project: ProjectId) -> sqlx::Result<Vec<Choice>> {
    let rows: Vec<(CatalogueId, String, f64)> = sqlx::query_as(
        "SELECT k.id, k.name, pc.radius_arcsec
           FROM project_catalogues pc JOIN catalogues k ON k.id = pc.catalogue_id
          WHERE pc.project_id = $1 ORDER BY k.name",
    )
    .bind(project)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(catalogue_id, name, radius_arcsec)| Choice {
            catalogue_id,
            name,
            radius_arcsec,
        })
        .collect())
}

/// Replaces a project's choice of catalogues and matches its candidates
/// again against those whose radius changed or that are new. Returns the
/// matches made.
pub async fn set_choices(
    conn: &mut PgConnection,
    project: ProjectId,
    chosen: &[(CatalogueId, f64)],
) -> sqlx::Result<u64> {
    let before = choices(&mut *conn, project).await?;
    let ids: Vec<CatalogueId> = chosen.iter().map(|c| c.0).collect();
    let radii: Vec<f64> = chosen.iter().map(|c| c.1).collect();
    sqlx::query(
        "DELETE FROM project_catalogues WHERE project_id = $1 AND NOT (catalogue_id = ANY($2))",
    )
    .bind(project)
    .bind(&ids)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO project_catalogues (project_id, catalogue_id, radius_arcsec)
         SELECT $1, * FROM UNNEST($2::bigint[], $3::float8[])
         ON CONFLICT (project_id, catalogue_id) DO UPDATE SET radius_arcsec = EXCLUDED.radius_arcsec",
    )
    .bind(project)
    .bind(&ids)
    .bind(&radii)
    .execute(&mut *conn)
    .await?;
    // Matches of catalogues no longer chosen, or chosen with another
    // radius, go; the changed and new ones are made again.
    let unchanged: Vec<CatalogueId> = before
        .iter()
        .filter(|b| {
            chosen
                .iter()
                .any(|(id, r)| *id == b.catalogue_id && *r == b.radius_arcsec)
        })
        .map(|b| b.catalogue_id)
        .collect();
    for table in ["catalogue_matches", "catalogue_nearest"] {
        sqlx::query(&format!(
            "DELETE FROM {table} t USING candidates c
              WHERE c.id = t.candidate_id AND c.project_id = $1
                AND NOT (t.catalogue_id = ANY($2))"
        ))
        .bind(project)
        .bind(&unchanged)
        .execute(&mut *conn)
        .await?;
    }
    let mut made = 0;
    for (catalogue, radius) in chosen.iter().filter(|(c, _)| !unchanged.contains(c)) {
        let sources = partition(*catalogue);
        made += match_into(&mut *conn, project, *catalogue, *radius, &sources, None).await?;
    }
    sqlx::query(&format!(
        "{NEAREST_FROM_MATCHES} m WHERE NOT (m.catalogue_id = ANY($2))
            AND EXISTS (SELECT 1 FROM candidates c WHERE c.id = m.candidate_id AND c.project_id = $1)
          ORDER BY candidate_id, catalogue_id, separation_arcsec, row_no"
    ))
    .bind(project)
    .bind(&unchanged)
    .execute(&mut *conn)
    .await?;
    Ok(made)
}

// ---------------------------------------------------------------------------
// Reading matches and sources

/// A catalogue source, with its catalogue's columns for its values.
#[derive(Debug, Clone)]
pub struct FoundSource {
    pub catalogue_id: CatalogueId,
    pub catalogue: String,
    pub row_no: i32,
    pub name: String,
    pub pos: SkyPos,
    /// Named values, in the catalogue's column order; blanks left out.
    pub values: Vec<(KeptColumn, f64)>,
    /// From the candidate (matches and position searches).
    pub separation_arcsec: Option<f64>,
}

impl<'r> FromRow<'r, PgRow> for FoundSource {
    fn from_row(row: &'r PgRow) -> sqlx::Result<Self> {
        let Json(columns): Json<Vec<KeptColumn>> = row.try_get("columns")?;
        let vals: Vec<Option<f64>> = row.try_get("vals")?;
        Ok(Self {
            catalogue_id: row.try_get("catalogue_id")?,
            catalogue: row.try_get("catalogue")?,
            row_no: row.try_get("row_no")?,
            name: row.try_get("name")?,
            pos: SkyPos::from_row(row)?,
            values: columns
                .into_iter()
                .zip(vals)
                .filter_map(|(c, v)| v.map(|v| (c, v)))
                .collect(),
            separation_arcsec: row.try_get("separation_arcsec")?,
        })
    }
}

const SOURCE_COLUMNS: &str =
    "s.catalogue_id, k.name AS catalogue, k.columns, s.row_no, s.name, s.ra, s.dec, s.vals";

/// A candidate's stored matches, nearest first.
pub async fn matches_of(
    db: impl PgExecutor<'_>,
    candidate: CandidateId,
    limit: i64,
) -> sqlx::Result<Vec<FoundSource>> {
    sqlx::query_as(&format!(
        "SELECT {SOURCE_COLUMNS}, m.separation_arcsec
           FROM catalogue_matches m
           JOIN catalogues k ON k.id = m.catalogue_id
           JOIN catalogue_sources s ON s.catalogue_id = m.catalogue_id AND s.row_no = m.row_no
          WHERE m.candidate_id = $1
          ORDER BY m.separation_arcsec, k.name, m.row_no
          LIMIT $2"
    ))
    .bind(candidate)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Sources of any catalogue within `radius_arcsec` of `pos`, nearest first.
pub async fn near(
    db: impl PgExecutor<'_>,
    pos: SkyPos,
    radius_arcsec: f64,
    limit: i64,
) -> sqlx::Result<Vec<FoundSource>> {
    sqlx::query_as(&format!(
        "SELECT {SOURCE_COLUMNS}, q3c_dist(s.ra, s.dec, $1, $2) * 3600 AS separation_arcsec
           FROM catalogue_sources s JOIN catalogues k ON k.id = s.catalogue_id
          WHERE q3c_join($1, $2, s.ra, s.dec, $3)
          ORDER BY separation_arcsec, k.name, s.row_no
          LIMIT $4"
    ))
    .bind(pos.ra.degrees())
    .bind(pos.dec.degrees())
    .bind(radius_arcsec.clamp(0.0, 3600.0) / 3600.0)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Sources whose name starts with `text` (case-insensitive) in any
/// catalogue, exact names first, each with its separation from `from`.
pub async fn named(
    db: impl PgExecutor<'_>,
    text: &str,
    from: SkyPos,
    limit: i64,
) -> sqlx::Result<Vec<FoundSource>> {
    let folded = text.trim().to_lowercase();
    let prefix = format!(
        "{}%",
        folded
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    sqlx::query_as(&format!(
        "SELECT {SOURCE_COLUMNS}, q3c_dist(s.ra, s.dec, $3, $4) * 3600 AS separation_arcsec
           FROM catalogues k
           JOIN LATERAL (SELECT * FROM catalogue_sources s
                          WHERE s.catalogue_id = k.id AND lower(s.name) LIKE $1
                          ORDER BY lower(s.name) LIMIT $5) s ON true
          ORDER BY lower(s.name) <> $2, separation_arcsec, k.name
          LIMIT $5"
    ))
    .bind(prefix)
    .bind(folded)
    .bind(from.ra.degrees())
    .bind(from.dec.degrees())
    .bind(limit)
    .fetch_all(db)
    .await
}

/// One source by catalogue and row, with its separation from `from`.
pub async fn source(
    db: impl PgExecutor<'_>,
    catalogue: CatalogueId,
    row_no: i32,
    from: SkyPos,
) -> sqlx::Result<Option<FoundSource>> {
    sqlx::query_as(&format!(
        "SELECT {SOURCE_COLUMNS}, q3c_dist(s.ra, s.dec, $3, $4) * 3600 AS separation_arcsec
           FROM catalogue_sources s JOIN catalogues k ON k.id = s.catalogue_id
          WHERE s.catalogue_id = $1 AND s.row_no = $2"
    ))
    .bind(catalogue)
    .bind(row_no)
    .bind(from.ra.degrees())
    .bind(from.dec.degrees())
    .fetch_optional(db)
    .await
}

// ---------------------------------------------------------------------------
// Associations

/// "This candidate is that known source", as stored.
#[derive(Debug, Clone, FromRow)]
pub struct Association {
    pub catalogue_name: String,
    pub source_name: String,
    pub ra: f64,
    pub dec: f64,
    pub separation_arcsec: f64,
    pub associated_by: Option<String>,
    pub associated_at: OffsetDateTime,
}

pub async fn association_of(
    db: impl PgExecutor<'_>,
    candidate: CandidateId,
) -> sqlx::Result<Option<Association>> {
    sqlx::query_as(
        "SELECT a.catalogue_name, a.source_name, a.ra, a.dec, a.separation_arcsec,
                u.username AS associated_by, a.associated_at
           FROM candidate_associations a LEFT JOIN users u ON u.id = a.associated_by
          WHERE a.candidate_id = $1",
    )
    .bind(candidate)
    .fetch_optional(db)
    .await
}

/// Associates a candidate with a source, replacing any association it had.
pub async fn associate(
    db: impl PgExecutor<'_>,
    candidate: CandidateId,
    source: &FoundSource,
    by: UserId,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO candidate_associations
                (candidate_id, catalogue_id, catalogue_name, source_name, ra, dec,
                 separation_arcsec, associated_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (candidate_id) DO UPDATE SET
                catalogue_id = EXCLUDED.catalogue_id, catalogue_name = EXCLUDED.catalogue_name,
                source_name = EXCLUDED.source_name, ra = EXCLUDED.ra, dec = EXCLUDED.dec,
                separation_arcsec = EXCLUDED.separation_arcsec,
                associated_by = EXCLUDED.associated_by, associated_at = now()",
    )
    .bind(candidate)
    .bind(source.catalogue_id)
    .bind(&source.catalogue)
    .bind(&source.name)
    .bind(source.pos.ra.degrees())
    .bind(source.pos.dec.degrees())
    .bind(source.separation_arcsec.unwrap_or(0.0))
    .bind(by)
    .execute(db)
    .await
    .map(drop)
}

/// Removes a candidate's association; false when it had none.
pub async fn dissociate(db: impl PgExecutor<'_>, candidate: CandidateId) -> sqlx::Result<bool> {
    Ok(
        sqlx::query("DELETE FROM candidate_associations WHERE candidate_id = $1")
            .bind(candidate)
            .execute(db)
            .await?
            .rows_affected()
            > 0,
    )
}

/// Loads sources already in memory (the pulsar catalogue, the demo's).
pub async fn load_all(
    pool: &PgPool,
    new: &NewCatalogue<'_>,
    sources: Vec<Source>,
) -> anyhow::Result<LoadSummary> {
    let (send, blocks) = mpsc::channel(1);
    // Room for the one block, so this cannot wait.
    let _ = send.send(Ok(sources)).await;
    drop(send);
    load(pool, new, blocks).await
}

/// The name the ATNF pulsars load under as a catalogue.
pub const PULSARS: &str = "psrcat";

/// Makes catalogue `psrcat` hold these pulsars (after `pulsars load`, so
/// that pulsars are matched and associated like any catalogue's sources).
pub async fn load_pulsars(
    pool: &PgPool,
    pulsars: &[crate::catalogue::Pulsar],
    origin: &str,
) -> anyhow::Result<LoadSummary> {
    let (columns, sources) = crate::catalogue::psrcat::as_catalogue(pulsars);
    let name = CatalogueName::parse(PULSARS).map_err(|p| anyhow::anyhow!(p.message))?;
    let new = NewCatalogue {
        name: &name,
        description: "ATNF pulsar catalogue (Manchester et al. 2005)",
        origin,
        columns: &columns,
    };
    load_all(pool, &new, sources).await
}
