//! A SIMBAD cone search for the rating page, asked of SIMBAD's TAP service
//! (`VETTER_SIMBAD_TAP_URL`, off when unset). The old app queried SIMBAD
//! while drawing the page, which then waited as long as SIMBAD did; here
//! the panel asks for it separately, the answer is bounded in time and
//! size, a few lookups run at once, and answers are kept a day (a failure a
//! minute), so reviewers stepping back and forth ask SIMBAD once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::domain::SkyPos;

/// How long SIMBAD may take to answer, all told.
pub const TIMEOUT: Duration = Duration::from_secs(4);
/// Objects asked for per cone.
const TOP: usize = 30;
/// The most of an answer read.
const MAX_BODY: usize = 512 * 1024;
/// Lookups in flight at once, across all reviewers.
const AT_ONCE: usize = 4;
const KEEP: Duration = Duration::from_secs(24 * 3600);
const KEEP_FAILURE: Duration = Duration::from_secs(60);
const MAX_CACHED: usize = 4096;

/// One SIMBAD object near the position.
#[derive(Debug, Clone, PartialEq)]
pub struct SimbadObject {
    pub main_id: String,
    pub otype: String,
    pub sep_arcsec: f64,
}

/// What SIMBAD said, or why there is nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Found(Vec<SimbadObject>),
    /// "SIMBAD did not answer within 4 s", "SIMBAD answered 503", ...
    Failed(String),
}

/// Cones are cached by position to 0.36″ and radius to the arcsecond.
type Key = (i64, i64, i64);

pub struct Simbad {
    url: String,
    client: reqwest::Client,
    gate: Semaphore,
    cache: Mutex<HashMap<Key, (Instant, Arc<Answer>)>>,
}

/// ADQL for the objects within `radius_arcsec` of `pos`, nearest first.
pub fn adql(pos: SkyPos, radius_arcsec: f64) -> String {
    let (ra, dec) = (pos.ra.degrees(), pos.dec.degrees());
    format!(
        "SELECT TOP {TOP} main_id, otype, DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', {ra:.7}, {dec:.7})) AS dist \
         FROM basic WHERE CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra:.7}, {dec:.7}, {:.7})) = 1 \
         ORDER BY dist",
        radius_arcsec / 3600.0
    )
}

/// Reads TAP's CSV answer: a header naming main_id, otype and dist (deg).
pub fn parse_csv(body: &str) -> Result<Vec<SimbadObject>, String> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(body.as_bytes());
    let head = r
        .headers()
        .map_err(|e| format!("SIMBAD's answer is not CSV: {e}"))?
        .clone();
    let col = |n: &str| {
        head.iter()
            .position(|h| h.trim().eq_ignore_ascii_case(n))
            .ok_or_else(|| format!("SIMBAD's answer has no {n} column"))
    };
    let (id, otype, dist) = (col("main_id")?, col("otype")?, col("dist")?);
    let mut out = Vec::new();
    for rec in r.records().take(TOP) {
        let rec = rec.map_err(|e| format!("SIMBAD's answer is not CSV: {e}"))?;
        let field = |i: usize| rec.get(i).unwrap_or_default().trim().to_string();
        let sep = field(dist)
            .parse::<f64>()
            .map_err(|_| "SIMBAD's answer has a distance that is not a number".to_string())?;
        out.push(SimbadObject {
            main_id: field(id).chars().take(200).collect(),
            otype: field(otype).chars().take(50).collect(),
            sep_arcsec: sep * 3600.0,
        });
    }
    Ok(out)
}

impl Simbad {
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            .timeout(TIMEOUT)
            .user_agent(concat!("vetter/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            url: url.to_string(),
            client,
            gate: Semaphore::new(AT_ONCE),
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn key(pos: SkyPos, radius_arcsec: f64) -> Key {
        (
            (pos.ra.degrees() * 1e4).round() as i64,
            (pos.dec.degrees() * 1e4).round() as i64,
            radius_arcsec.round() as i64,
        )
    }

    fn cached(&self, key: &Key) -> Option<Arc<Answer>> {
        let cache = self.cache.lock().ok()?;
        let (at, answer) = cache.get(key)?;
        let keep = match **answer {
            Answer::Found(_) => KEEP,
            Answer::Failed(_) => KEEP_FAILURE,
        };
        (at.elapsed() < keep).then(|| answer.clone())
    }

    fn remember(&self, key: Key, answer: Arc<Answer>) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (at, _)| at.elapsed() < KEEP_FAILURE);
        }
        if cache.len() >= MAX_CACHED {
            // Still full of fresh answers: start again rather than scan.
            cache.clear();
        }
        cache.insert(key, (Instant::now(), answer));
    }

    /// The objects within `radius_arcsec`, from the cache or SIMBAD.
    pub async fn cone(&self, pos: SkyPos, radius_arcsec: f64) -> Arc<Answer> {
        let key = Self::key(pos, radius_arcsec);
        if let Some(a) = self.cached(&key) {
            return a;
        }
        let Ok(_permit) = self.gate.try_acquire() else {
            return Arc::new(Answer::Failed(
                "SIMBAD is being asked for other candidates; try again in a moment".into(),
            ));
        };
        let answer = Arc::new(match self.ask(pos, radius_arcsec).await {
            Ok(found) => Answer::Found(found),
            Err(why) => Answer::Failed(why),
        });
        self.remember(key, answer.clone());
        answer
    }

    async fn ask(&self, pos: SkyPos, radius_arcsec: f64) -> Result<Vec<SimbadObject>, String> {
        let timed_out = |e: &reqwest::Error| e.is_timeout() || e.is_connect();
        let query = adql(pos, radius_arcsec);
        let sent = self
            .client
            .get(&self.url)
            .query(&[
                ("REQUEST", "doQuery"),
                ("LANG", "ADQL"),
                ("FORMAT", "csv"),
                ("QUERY", query.as_str()),
            ])
            .send()
            .await;
        let mut r = match sent {
            Ok(r) => r,
            Err(e) if timed_out(&e) => {
                return Err(format!(
                    "SIMBAD did not answer within {} s",
                    TIMEOUT.as_secs()
                ))
            }
            Err(_) => return Err("SIMBAD could not be reached".into()),
        };
        if !r.status().is_success() {
            return Err(format!("SIMBAD answered {}", r.status().as_u16()));
        }
        let mut body = Vec::new();
        loop {
            match r.chunk().await {
                Ok(Some(c)) => {
                    if body.len() + c.len() > MAX_BODY {
                        return Err("SIMBAD's answer was too long".into());
                    }
                    body.extend_from_slice(&c);
                }
                Ok(None) => break,
                Err(e) if timed_out(&e) => {
                    return Err(format!(
                        "SIMBAD did not answer within {} s",
                        TIMEOUT.as_secs()
                    ))
                }
                Err(_) => return Err("SIMBAD's answer was cut off".into()),
            }
        }
        parse_csv(&String::from_utf8_lossy(&body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_a_cone_in_degrees_and_the_answer_is_read_by_header() {
        let q = adql(SkyPos::new(83.63308, 22.0145).unwrap(), 36.0);
        assert!(
            q.contains("CIRCLE('ICRS', 83.6330800, 22.0145000, 0.0100000)"),
            "{q}"
        );
        let got =
            parse_csv("main_id,otype,dist\n\"M   1\",SNR,0.0002\n\"PSR B0531+21\",Psr,0.001\n")
                .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].main_id, "M   1");
        assert!((got[1].sep_arcsec - 3.6).abs() < 1e-9);
        assert!(parse_csv("a,b\n1,2\n").unwrap_err().contains("main_id"));
        assert!(parse_csv("main_id,otype,dist\nX,Y,far\n").is_err());
    }
}
