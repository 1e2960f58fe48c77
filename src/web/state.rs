use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Config;

/// What handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
}
