use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::Semaphore;

use crate::auth::gate::LoginGate;
use crate::catalogue::simbad::Simbad;
use crate::config::Config;
use crate::db::Pools;
use crate::media::MediaStore;
use crate::transport::Cuts;
use crate::web::plumbing::cache::Cache;

/// What handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The pool for pages and the upload API (`Pools::web`). Routes on the
    /// long budget see `Pools::long` here instead.
    pub pool: PgPool,
    pub pools: Pools,
    pub config: Arc<Config>,
    /// One permit per export connection: an export that finds none is
    /// refused at once rather than queueing behind a stalled one.
    pub export_slots: Arc<Semaphore>,
    /// One permit per long-budget connection.
    pub long_slots: Arc<Semaphore>,
    /// Sign-in floods are turned away here before they reach the database.
    pub login_gate: Arc<LoginGate>,
    /// Lets a streamed response that failed part way drop its connection.
    pub cuts: Cuts,
    /// The decision screen's images, as drawn, and the gate on reading them.
    pub sky: Arc<Cache>,
    /// Where media objects are published and read.
    pub media: MediaStore,
    /// SIMBAD cone searches for the rating page, when configured.
    pub simbad: Option<Arc<Simbad>>,
    /// The outbound policy, the URL sealer and the SMTP relay, shared with
    /// the notification worker.
    pub notify: Arc<crate::notify::Kit>,
}

impl AppState {
    /// The state for a server on `main`'s database.
    pub fn new(
        config: Config,
        main: &PgPool,
        media: MediaStore,
        notify: Arc<crate::notify::Kit>,
    ) -> Self {
        let pools = Pools::derive(main, &config.limits);
        Self {
            pool: pools.web.clone(),
            export_slots: Arc::new(Semaphore::new(config.limits.export_connections as usize)),
            long_slots: Arc::new(Semaphore::new(config.limits.long_connections as usize)),
            login_gate: Arc::new(LoginGate::default()),
            cuts: Cuts::default(),
            // Survey cutouts are tens of kB each; two files read at a time.
            sky: Arc::new(Cache::new(256, 2)),
            pools,
            media,
            notify,
            simbad: config
                .simbad_tap_url
                .as_deref()
                .and_then(|u| Simbad::new(u).ok())
                .map(Arc::new),
            config: Arc::new(config),
        }
    }
}
