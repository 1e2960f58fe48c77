//! `vetter demo`: a believable data set for a new installation, so a
//! newcomer has something to rate. It goes through the same code as the
//! upload API (validation, FITS checks, rendered previews), so the demo
//! also shows that path works on this machine.

use anyhow::Context;
use serde_json::{json, Value};
use sqlx::PgPool;

use super::CliError;
use crate::catalogue::Pulsar;
use crate::config::{Config, Secret, Source};
use crate::db::users;
use crate::domain::names::{BeamName, ObservationKey, ProjectSlug};
use crate::domain::upload::{BeamSpec, CandidateSpec, ObservationSpec, Problems, ProjectSpec};
use crate::domain::{Role, SkyPos, UserId, Username};
use crate::fits::{self, Beam, Wcs};
use crate::ingest::{Batch, Ingest, Received, ReceivedFile};
use crate::media::MediaStore;

/// A small deterministic generator: the demo is the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-12), self.next());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

pub async fn run(args: &[String]) -> Result<(), CliError> {
    let if_empty = args.iter().any(|a| a == "--if-empty");
    if let Some(extra) = args.iter().find(|a| *a != "--if-empty") {
        return Err(CliError::Usage(format!(
            "demo: unexpected argument {extra:?}"
        )));
    }
    let src = Source::from_env()?;
    let config = Config::from_source(&src)?;
    crate::telemetry::init();
    let pool = crate::db::lazy_pool(&config.database_url)?;
    crate::db::migrate(&pool).await?;
    let projects_n = crate::db::projects::count(&pool).await?;
    if projects_n > 0 {
        if if_empty {
            println!("demo: the database already has projects; nothing added");
            return Ok(());
        }
        return Err(CliError::Failed(anyhow::anyhow!(
            "the database already has projects: the demo only fills an empty one"
        )));
    }
    // The configured admin comes first, as `serve` would make it on an
    // empty users table: the demo's own accounts must not pre-empt it.
    if let Some(name) = super::admin::ensure_first_admin(&pool, &config).await? {
        println!("demo: created the administrator {name}");
    }
    std::fs::create_dir_all(&config.media_root).context("creating the media folder")?;
    // Loading is bulk work: it runs on the unbounded pool, not the web one.
    let media = MediaStore::open(&config.media_root, &config.media_location)?;
    let summary = fill(&pool, media).await?;
    println!("{summary}");
    Ok(())
}

/// Fills an empty database; returns what it made, for people to read.
pub async fn fill(pool: &PgPool, media: MediaStore) -> anyhow::Result<String> {
    let ingest = Ingest::new(pool.clone(), media);
    let uploader = demo_user(pool, "demo-pipeline", Role::Admin, None).await?;
    let mut lines = vec!["demo data loaded:".to_string()];
    let mut reviewers = Vec::new();
    for name in ["alice", "bob"] {
        let password = crate::random_hex(8);
        if demo_user(pool, name, Role::Reviewer, Some(&password))
            .await
            .is_ok()
        {
            reviewers.push(format!("{name} / {password}"));
        }
    }
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let vast = vast(&ingest, uploader, &mut rng).await?;
    let gleamx = gleamx(&ingest, uploader, &mut rng).await?;
    let pulsars = pulsars_near(pool, &mut rng).await?;
    let radio = radio_sources_near(pool, &mut rng).await?;
    lines.push(format!(
        "  project vast-demo: {vast} candidates with FITS cutouts, cubes and light curves"
    ));
    lines.push(format!(
        "  project gleamx-demo: {gleamx} candidates with PNG and GIF previews"
    ));
    lines.push(format!("  {pulsars} pulsars, some near candidates"));
    lines.push(format!(
        "  catalogue racs-demo: {radio} made-up radio sources; both projects match it (10″) and psrcat (30″)"
    ));
    if !reviewers.is_empty() {
        lines.push(format!("  reviewer logins: {}", reviewers.join(", ")));
    }
    Ok(lines.join("\n"))
}

async fn demo_user(
    pool: &PgPool,
    name: &str,
    role: Role,
    password: Option<&str>,
) -> anyhow::Result<UserId> {
    let username: Username = name.parse().map_err(anyhow::Error::msg)?;
    if let Some((u, _)) = users::credentials(pool, &username).await? {
        return Ok(u.id);
    }
    // The pipeline account only uploads; nobody signs in with it.
    let secret = password.map_or_else(|| crate::random_hex(32), str::to_string);
    let hash = crate::auth::password::hash(Secret::new(secret)).await?;
    Ok(users::insert(pool, &username, &hash, role).await?)
}

fn tags(names: &[&str]) -> Value {
    names.iter().map(|t| json!({"name": t})).collect()
}

fn parse<T>(r: Result<T, Vec<crate::domain::Problem>>) -> anyhow::Result<T> {
    r.map_err(|p| anyhow::anyhow!("demo data is invalid: {p:?}"))
}

/// Parses the candidates as the API would and loads them as one batch.
async fn load(
    ingest: &Ingest,
    user: UserId,
    (slug, key): (&ProjectSlug, &ObservationKey),
    values: Vec<Value>,
    files: Received,
) -> anyhow::Result<usize> {
    let mut p = Problems::default();
    let specs: Vec<CandidateSpec> = values
        .into_iter()
        .filter_map(|v| CandidateSpec::parse(v, None, "demo", &mut p))
        .collect();
    anyhow::ensure!(p.is_empty(), "demo candidates invalid: {:?}", p.0);
    let batch = Batch::of(specs);
    let n = batch.len();
    ingest
        .candidates(user, slug, key, batch, files)
        .await
        .context("loading demo candidates")?;
    Ok(n)
}

fn name<T>(r: Result<T, crate::domain::Problem>) -> anyhow::Result<T> {
    r.map_err(|p| anyhow::anyhow!("demo name is invalid: {p:?}"))
}

async fn vast(ingest: &Ingest, user: UserId, rng: &mut Rng) -> anyhow::Result<usize> {
    let spec = parse(ProjectSpec::parse(json!({
        "name": "VAST demo",
        "description": "ASKAP VAST-like fast transients: chi-square and peak maps, a deep-image match, cutouts and time-slice cubes.",
        "metrics": [
            {"key": "chi_square", "label": "χ²", "precision": 2, "description": "chi-square of the light curve against a constant"},
            {"key": "chi_square_sigma", "label": "χ² σ", "unit": "σ", "precision": 2,
             "headline": true, "good": {"min": 5.0}},
            {"key": "peak_map", "label": "Peak map", "precision": 2},
            {"key": "peak_map_sigma", "label": "Peak map σ", "unit": "σ", "precision": 2,
             "headline": true, "good": {"min": 5.0}},
            {"key": "md_deep", "label": "Modulation index", "precision": 3, "description": "against the deep image",
             "headline": true, "good": {"min": 0.1}},
            {"key": "deep_sep_arcsec", "label": "Deep separation", "unit": "arcsec", "precision": 2,
             "headline": true, "good": {"max": 2.0}},
            {"key": "bright_sep_arcmin", "label": "Bright source separation", "unit": "arcmin", "precision": 1, "shown_by_default": false}
        ],
        "tags": tags(&["Flaring star", "AGN", "IDV", "Noise", "Sidelobes", "Artefacts", "Aeroplane or satellite", "FRB", "New pulsar", "Known pulsar"])
    })))?;
    let slug = name(ProjectSlug::parse("vast-demo"))?;
    ingest.project(&slug, &spec, Received::new()).await?;
    let mut total = 0;
    for (o, (sbid, ra0, dec0)) in [("SB50230", 188.5, -45.0), ("SB50231", 320.2, -62.3)]
        .into_iter()
        .enumerate()
    {
        let obs = parse(ObservationSpec::parse(json!({
            "start_time": format!("2024-05-0{}T1{}:00:00Z", o + 1, o + 2),
            "pointing": {"ra": ra0, "dec": dec0},
            "metadata": {"frequency_mhz": 887.5, "integration_s": 10}
        })))?;
        let key = name(ObservationKey::parse(sbid))?;
        ingest
            .observation(user, &slug, &key, &obs, Received::new())
            .await?;
        for b in 0..2 {
            let beam = format!("beam{b:02}");
            let centre = json!({"ra": ra0 + 0.8 * b as f64, "dec": dec0 + 0.3});
            let beam_spec = parse(BeamSpec::parse(json!({"centre": centre})))?;
            ingest
                .beam(
                    &slug,
                    &key,
                    &name(BeamName::parse(&beam))?,
                    &beam_spec,
                    Received::new(),
                )
                .await?;
            let mut values = Vec::new();
            let mut files = Received::new();
            for i in 0..60 {
                let ra = ra0 + 0.8 * b as f64 + rng.range(-1.0, 1.0);
                let dec = dec0 + 0.3 + rng.range(-1.0, 1.0);
                let name = format!("VAST_{sbid}_{beam}_{i:03}");
                let real = rng.next() < 0.3;
                let peak = if real {
                    rng.range(8.0, 40.0)
                } else {
                    rng.range(4.0, 9.0)
                } as f32;
                let cutout = format!("c{i}");
                let cube = format!("q{i}");
                let seed = (o * 1000 + b * 100 + i) as u64 + 1;
                // One slice per light-curve point, four minutes apart; a
                // real source flares in slices 4 to 6, in both.
                let curve: Vec<f32> = (0..12)
                    .map(|k| {
                        if real && (4..7).contains(&k) {
                            peak * 0.8
                        } else {
                            1.0
                        }
                    })
                    .collect();
                let start = format!("2024-05-0{}T1{}:00:00", o + 1, o + 2);
                let slices = Slices {
                    start: &start,
                    step_s: 240.0,
                    flux: &curve,
                };
                files.insert(
                    cutout.clone(),
                    received(
                        ingest,
                        fits_image(64, peak, seed, (ra, dec), 2.5, VAST_BEAM)?,
                        "deepcutout.fits",
                    )
                    .await?,
                );
                files.insert(
                    cube.clone(),
                    received(
                        ingest,
                        fits_cube(32, &slices, 0.25, seed, (ra, dec), 10.0, VAST_BEAM)?,
                        "slices.fits",
                    )
                    .await?,
                );
                let points: Vec<Value> = (0..12)
                    .map(|k| {
                        json!({"time": format!("2024-05-0{}T1{}:{:02}:00Z", o + 1, o + 2, k * 4),
                               "flux": curve[k] as f64 + 0.3 * rng.normal(), "err": 0.3})
                    })
                    .collect();
                let value = json!({
                    "name": name, "beam": beam, "ra": ra, "dec": dec,
                    "positions": {"deep": {"ra": ra + rng.range(-3e-4, 3e-4), "dec": dec + rng.range(-3e-4, 3e-4)}},
                    "metrics": {
                        "chi_square": if real { rng.range(30.0, 400.0) } else { rng.range(1.0, 25.0) },
                        "chi_square_sigma": rng.range(3.0, 12.0),
                        "peak_map": peak as f64,
                        "peak_map_sigma": rng.range(5.0, 15.0),
                        "md_deep": if i % 17 == 0 { json!("Infinity") } else { json!(rng.range(0.0, 1.5)) },
                        "deep_sep_arcsec": if i % 23 == 0 { json!("NaN") } else { json!(rng.range(0.1, 5.0)) },
                        "bright_sep_arcmin": rng.range(1.0, 60.0)
                    },
                    "attributes": {"deep_name": format!("VAST J{:06.2}{:+06.2}", ra, dec)},
                    "light_curve": {"unit": "mJy/beam", "points": points},
                    "files": {"deep_cutout": cutout, "slices": cube}
                });
                values.push(value);
            }
            total += load(ingest, user, (&slug, &key), values, files).await?;
        }
    }
    Ok(total)
}

async fn gleamx(ingest: &Ingest, user: UserId, rng: &mut Rng) -> anyhow::Result<usize> {
    let spec = parse(ProjectSpec::parse(json!({
        "name": "GLEAM-X demo",
        "description": "MWA image-plane transients: flux, fluence and detection statistics, with PNG stills and GIF movies.",
        "metrics": [
            {"key": "flux", "label": "Peak flux", "unit": "Jy", "precision": 3,
             "headline": true, "good": {"min": 0.2}},
            {"key": "fluence", "label": "Fluence", "unit": "Jy s", "precision": 2},
            {"key": "det_stat", "label": "Detection statistic", "precision": 2,
             "headline": true, "good": {"min": 7.0}},
            {"key": "mod_index", "label": "Modulation index", "precision": 2,
             "headline": true, "good": {"min": 0.5}},
            {"key": "nks_sep_deg", "label": "Nearest known source", "unit": "deg", "precision": 4}
        ],
        "tags": tags(&["Transient", "Airplane", "RFI", "Sidelobe", "Alias", "Scintillation", "Pulsar", "AGN", "Bad frame", "Other"])
    })))?;
    let slug = name(ProjectSlug::parse("gleamx-demo"))?;
    ingest.project(&slug, &spec, Received::new()).await?;
    let mut total = 0;
    for (o, obsid) in ["1341914000", "1341914304", "1341914608"]
        .into_iter()
        .enumerate()
    {
        let (ra0, dec0) = (10.0 + 15.0 * o as f64, -26.7);
        let obs = parse(ObservationSpec::parse(json!({
            "start_time": format!("2022-07-14T10:{:02}:00Z", o * 5),
            "pointing": {"ra": ra0, "dec": dec0},
            "metadata": {"centre_frequency_mhz": 154.24, "mwa_project": "G0057"}
        })))?;
        let key = name(ObservationKey::parse(obsid))?;
        ingest
            .observation(user, &slug, &key, &obs, Received::new())
            .await?;
        let mut values = Vec::new();
        let mut files = Received::new();
        for i in 0..25 {
            let ra = ra0 + rng.range(-8.0, 8.0);
            let dec = dec0 + rng.range(-8.0, 8.0);
            let peak = rng.range(5.0, 30.0) as f32;
            let seed = (5000 + o * 100 + i) as u64;
            // Every source shows in the still; a transient brightens in
            // the middle of the movie.
            let flux: Vec<f32> = (0..6)
                .map(|t| {
                    if i % 3 == 0 && (2..4).contains(&t) {
                        peak * 2.0
                    } else {
                        peak
                    }
                })
                .collect();
            let slices = Slices {
                start: "2022-07-14T10:00:00",
                step_s: 30.0,
                flux: &flux,
            };
            let cube = fits_cube(24, &slices, 1.0, seed, (ra, dec), 60.0, GLEAMX_BEAM)?;
            let (png, gif) = previews(cube).await?;
            files.insert(format!("p{i}"), received(ingest, png, "still.png").await?);
            files.insert(format!("g{i}"), received(ingest, gif, "movie.gif").await?);
            let value = json!({
                "name": format!("{obsid}_tcgm_{i:03}"), "ra": ra, "dec": dec,
                "metrics": {"flux": peak as f64 / 40.0, "fluence": rng.range(0.5, 20.0), "det_stat": rng.range(5.0, 30.0),
                            "mod_index": rng.range(0.0, 2.0), "nks_sep_deg": rng.range(0.001, 0.2)},
                "attributes": {"nks_name": format!("GLEAM J{:06.2}{:+06.2}", ra, dec), "filter": "tcgm"},
                "files": {"preview": format!("p{i}"), "animation": format!("g{i}")}
            });
            values.push(value);
        }
        total += load(ingest, user, (&slug, &key), values, files).await?;
    }
    Ok(total)
}

/// A made-up radio catalogue (`racs-demo`, not real sources: no survey's
/// licence is needed) with a source a few arcseconds from every third
/// candidate; then both demo projects match it and the pulsars, so the
/// known-sources panel and the table's counterpart filter have something
/// to show.
async fn radio_sources_near(pool: &PgPool, rng: &mut Rng) -> anyhow::Result<usize> {
    use crate::catalogue::table::{KeptColumn, Source};
    use crate::db::catalogues::{self, NewCatalogue};
    use crate::domain::names::CatalogueName;
    let near = crate::db::candidates::first_positions(pool).await?;
    let sources: Vec<Source> = near
        .iter()
        .step_by(3)
        .enumerate()
        .map(|(k, at)| {
            let pos = SkyPos::new(
                (at.ra.degrees() + rng.range(-0.0015, 0.0015)).rem_euclid(360.0),
                (at.dec.degrees() + rng.range(-0.0015, 0.0015)).clamp(-90.0, 90.0),
            )
            .map_err(anyhow::Error::msg)?;
            Ok(Source {
                name: format!("RACS-DEMO {:05}", k + 1),
                pos,
                vals: vec![Some(rng.range(1.0, 200.0)), Some(rng.range(0.5, 150.0))],
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let n = sources.len();
    let name = CatalogueName::parse("racs-demo").map_err(|p| anyhow::anyhow!(p.message))?;
    let columns = [("total_flux", "mJy"), ("peak_flux", "mJy/beam")].map(|(n, u)| KeptColumn {
        name: n.into(),
        unit: u.into(),
    });
    let new = NewCatalogue {
        name: &name,
        description: "made-up radio sources for the demo",
        origin: "demo",
        columns: &columns,
    };
    let racs = catalogues::load_all(pool, &new, sources).await?.id;
    let psrcat: crate::domain::CatalogueId =
        sqlx::query_scalar("SELECT id FROM catalogues WHERE name = $1")
            .bind(catalogues::PULSARS)
            .fetch_one(pool)
            .await?;
    for slug in ["vast-demo", "gleamx-demo"] {
        let mut tx = pool.begin().await?;
        if let Some(p) = crate::db::projects::by_slug(&mut tx, slug).await? {
            catalogues::set_choices(&mut tx, p.id, &[(racs, 10.0), (psrcat, 30.0)]).await?;
        }
        tx.commit().await?;
    }
    Ok(n)
}

/// A handful of pulsars, each placed a few arcseconds from a candidate so
/// the nearby-objects list has something to show.
async fn pulsars_near(pool: &PgPool, rng: &mut Rng) -> anyhow::Result<usize> {
    let near = crate::db::candidates::first_positions(pool).await?;
    let mut list = Vec::new();
    for (k, at) in near.iter().step_by(37).enumerate() {
        let pos = SkyPos::new(
            (at.ra.degrees() + rng.range(-0.002, 0.002)).rem_euclid(360.0),
            (at.dec.degrees() + rng.range(-0.002, 0.002)).clamp(-90.0, 90.0),
        )
        .map_err(anyhow::Error::msg)?;
        let name = format!(
            "J{:02}{:02}{}{:02}{:02}",
            (pos.ra.degrees() / 15.0) as u32,
            ((pos.ra.degrees() / 15.0).fract() * 60.0) as u32,
            if pos.dec.degrees() < 0.0 { '-' } else { '+' },
            pos.dec.degrees().abs() as u32,
            (pos.dec.degrees().abs().fract() * 60.0) as u32,
        );
        list.push(Pulsar {
            name: format!("{name}{}", ["", "A", "B", "C"][k % 4]),
            pos,
            period_s: Some(rng.range(0.002, 3.0)),
            dm: Some(rng.range(3.0, 400.0)),
            s400_mjy: Some(rng.range(0.5, 50.0)),
        });
    }
    let n = list.len();
    crate::db::pulsars::upsert_all(pool, &list).await?;
    crate::db::catalogues::load_pulsars(pool, &list, "demo").await?;
    Ok(n)
}

/// Writes FITS bytes through a temporary file (the writer needs a path).
fn with_temp_fits(
    write: impl FnOnce(&std::path::Path) -> Result<(), fits::FitsError>,
) -> anyhow::Result<Vec<u8>> {
    let dir = std::env::temp_dir().join(format!("vetter-demo-{}", crate::random_hex(6)));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("f.fits");
    let result = write(&path)
        .map_err(anyhow::Error::from)
        .and_then(|()| Ok(std::fs::read(&path)?));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Restoring beams as the surveys' headers give them (FWHM, degrees).
const VAST_BEAM: Beam = Beam {
    major_deg: 15.0 / 3600.0,
    minor_deg: 12.0 / 3600.0,
    pa_deg: 25.0,
};
const GLEAMX_BEAM: Beam = Beam {
    major_deg: 140.0 / 3600.0,
    minor_deg: 120.0 / 3600.0,
    pa_deg: -10.0,
};

/// The header a survey's cutout carries: SIN at the source, a beam, and
/// the unit the light curves use.
fn header(at: (f64, f64), pixel_arcsec: f64, beam: Beam) -> Wcs {
    Wcs {
        beam: Some(beam),
        unit: "mJy/beam",
        ..Wcs::sin(at.0, at.1, pixel_arcsec / 3600.0)
    }
}

fn fits_image(
    size: usize,
    peak: f32,
    seed: u64,
    at: (f64, f64),
    pixel_arcsec: f64,
    beam: Beam,
) -> anyhow::Result<Vec<u8>> {
    let data = fits::synth_point_source(size, size, peak, 1.0, seed);
    let wcs = header(at, pixel_arcsec, beam);
    with_temp_fits(|p| fits::write_image(p, size, size, &data, Some(&wcs)))
}

/// Time slices: when the first was taken (UTC), the step, and the
/// source's flux in each.
struct Slices<'a> {
    start: &'a str,
    step_s: f64,
    flux: &'a [f32],
}

/// A cube of time slices with the source at the given flux in each, on
/// noise of `noise`.
fn fits_cube(
    size: usize,
    slices: &Slices,
    noise: f32,
    seed: u64,
    at: (f64, f64),
    pixel_arcsec: f64,
    beam: Beam,
) -> anyhow::Result<Vec<u8>> {
    let planes = slices.flux.len();
    let mut data = Vec::with_capacity(size * size * planes);
    for (t, &flux) in slices.flux.iter().enumerate() {
        data.extend(fits::synth_point_source(
            size,
            size,
            flux,
            noise,
            seed * 31 + t as u64,
        ));
    }
    let wcs = Wcs {
        slices: Some((slices.start.to_string(), slices.step_s)),
        ..header(at, pixel_arcsec, beam)
    };
    with_temp_fits(|p| fits::write_cube(p, size, size, planes, &data, Some(&wcs)))
}

/// A PNG still and a GIF movie rendered from a cube, as GLEAM-X ships them.
async fn previews(cube: Vec<u8>) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let dir = std::env::temp_dir().join(format!("vetter-demo-{}", crate::random_hex(6)));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("cube.fits");
    std::fs::write(&path, cube)?;
    let result = fits::previews(
        path,
        fits::Limits::default(),
        std::time::Duration::from_secs(30),
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    let p = result?;
    Ok((p.png, p.gif.context("a cube renders a GIF")?))
}

async fn received(ingest: &Ingest, bytes: Vec<u8>, name: &str) -> anyhow::Result<ReceivedFile> {
    let temp = ingest.media().write_temp_bytes(&bytes).await?;
    Ok(ReceivedFile::new(temp, None, Some(name)))
}
