//! The `pulsars` table: a local copy of the ATNF pulsar catalogue, replaced
//! as a whole by `upsert_all` and searched by position with `near`.

use anyhow::Context;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgExecutor, PgPool, Row};
use time::OffsetDateTime;

use crate::catalogue::Pulsar;
use crate::domain::SkyPos;

crate::domain::typed_id!(PulsarId);

/// A stored pulsar.
#[derive(Debug, Clone, PartialEq)]
pub struct PulsarRow {
    pub id: PulsarId,
    pub name: String,
    pub pos: SkyPos,
    pub period_s: Option<f64>,
    pub dm: Option<f64>,
    pub s400_mjy: Option<f64>,
    pub updated_at: OffsetDateTime,
}

impl<'r> FromRow<'r, PgRow> for PulsarRow {
    fn from_row(row: &'r PgRow) -> sqlx::Result<Self> {
        let (ra, dec): (f64, f64) = (row.try_get("ra")?, row.try_get("dec")?);
        let pos = SkyPos::new(ra, dec).map_err(|e| sqlx::Error::ColumnDecode {
            index: "ra, dec".into(),
            source: e.into(),
        })?;
        Ok(Self {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            pos,
            period_s: row.try_get("period_s")?,
            dm: row.try_get("dm")?,
            s400_mjy: row.try_get("s400_mjy")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

const COLUMNS: &str = "id, name, ra, dec, period_s, dm, s400_mjy, updated_at";

/// What a load changed. `inserted + updated + unchanged` is the number of
/// pulsars given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadSummary {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub removed: u64,
}

/// Makes the table hold exactly `pulsars`, keyed by name, in one
/// transaction: new names are inserted, changed rows updated (their
/// `updated_at` moves), identical rows left alone, and names no longer in
/// the catalogue deleted. Refuses an empty list (a truncated download must
/// not empty the table) and a list that names a pulsar twice.
#[tracing::instrument(skip_all, fields(pulsars = pulsars.len()))]
pub async fn upsert_all(pool: &PgPool, pulsars: &[Pulsar]) -> anyhow::Result<LoadSummary> {
    anyhow::ensure!(
        !pulsars.is_empty(),
        "refusing to load an empty catalogue: it would remove every pulsar"
    );
    let mut names = Vec::with_capacity(pulsars.len());
    let mut ras = Vec::with_capacity(pulsars.len());
    let mut decs = Vec::with_capacity(pulsars.len());
    let mut periods = Vec::with_capacity(pulsars.len());
    let mut dms = Vec::with_capacity(pulsars.len());
    let mut s400s = Vec::with_capacity(pulsars.len());
    let mut seen = std::collections::HashSet::with_capacity(pulsars.len());
    for p in pulsars {
        anyhow::ensure!(seen.insert(&p.name), "pulsar {} is listed twice", p.name);
        names.push(p.name.as_str());
        ras.push(p.pos.ra.degrees());
        decs.push(p.pos.dec.degrees());
        periods.push(p.period_s);
        dms.push(p.dm);
        s400s.push(p.s400_mjy);
    }

    let mut tx = pool.begin().await.context("starting the pulsar load")?;
    // One load at a time; readers are not blocked.
    sqlx::query("LOCK TABLE pulsars IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .context("locking the pulsars table")?;
    let known: i64 = sqlx::query_scalar("SELECT count(*) FROM pulsars WHERE name = ANY($1)")
        .bind(&names)
        .fetch_one(&mut *tx)
        .await
        .context("counting known pulsars")?;
    // Counts inserted and updated rows; rows whose values are all the same
    // are skipped by the WHERE and not counted.
    let written = sqlx::query(
        "INSERT INTO pulsars AS p (name, ra, dec, period_s, dm, s400_mjy)
         SELECT * FROM UNNEST($1::text[], $2::float8[], $3::float8[],
                              $4::float8[], $5::float8[], $6::float8[])
         ON CONFLICT (name) DO UPDATE
            SET ra = EXCLUDED.ra, dec = EXCLUDED.dec, period_s = EXCLUDED.period_s,
                dm = EXCLUDED.dm, s400_mjy = EXCLUDED.s400_mjy, updated_at = now()
          WHERE (p.ra, p.dec, p.period_s, p.dm, p.s400_mjy)
                IS DISTINCT FROM
                (EXCLUDED.ra, EXCLUDED.dec, EXCLUDED.period_s, EXCLUDED.dm, EXCLUDED.s400_mjy)",
    )
    .bind(&names)
    .bind(&ras)
    .bind(&decs)
    .bind(&periods)
    .bind(&dms)
    .bind(&s400s)
    .execute(&mut *tx)
    .await
    .context("writing the pulsars")?
    .rows_affected();
    let removed = sqlx::query(
        "DELETE FROM pulsars AS p
          WHERE NOT EXISTS (SELECT FROM UNNEST($1::text[]) AS n(name) WHERE n.name = p.name)",
    )
    .bind(&names)
    .execute(&mut *tx)
    .await
    .context("removing pulsars no longer in the catalogue")?
    .rows_affected();
    tx.commit().await.context("committing the pulsar load")?;

    let total = pulsars.len() as u64;
    let known = u64::try_from(known).unwrap_or(0);
    // Under the lock nothing else writes, so these cannot underflow; saturate
    // all the same rather than panic over a count.
    let inserted = total.saturating_sub(known);
    let updated = written.saturating_sub(inserted);
    Ok(LoadSummary {
        inserted,
        updated,
        unchanged: known.saturating_sub(updated),
        removed,
    })
}

/// Pulsars within `radius_deg` of `pos`, nearest first, each with its
/// separation in degrees. A radius that is negative or not a number finds
/// nothing; one above 180° is taken as 180°.
#[tracing::instrument(skip_all)]
pub async fn near(
    db: impl PgExecutor<'_>,
    pos: SkyPos,
    radius_deg: f64,
) -> sqlx::Result<Vec<(PulsarRow, f64)>> {
    if radius_deg.is_nan() || radius_deg < 0.0 {
        return Ok(Vec::new());
    }
    let radius = radius_deg.min(180.0);
    #[derive(FromRow)]
    struct Found {
        #[sqlx(flatten)]
        pulsar: PulsarRow,
        separation: f64,
    }
    let rows: Vec<Found> = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, q3c_dist(ra, dec, $1, $2) AS separation
           FROM pulsars
          WHERE q3c_join($1, $2, ra, dec, $3)
          ORDER BY separation, name"
    ))
    .bind(pos.ra.degrees())
    .bind(pos.dec.degrees())
    .bind(radius)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.pulsar, r.separation)).collect())
}

/// One pulsar by its exact name.
pub async fn by_name(db: impl PgExecutor<'_>, name: &str) -> sqlx::Result<Option<PulsarRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM pulsars WHERE name = $1"))
        .bind(name)
        .fetch_optional(db)
        .await
}

pub async fn count(db: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM pulsars")
        .fetch_one(db)
        .await
}
