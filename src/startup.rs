//! Building and running the server: bind first (port 0 allowed, the real
//! port is reported), then serve until a shutdown signal, letting requests in
//! flight finish. Connections are bounded in time (`transport`): a request
//! head must arrive within the header time-out, an unread response is
//! dropped after the write time-out, and an idle keep-alive connection is
//! closed after the idle time-out.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::Server;
use sqlx::PgPool;

use crate::config::Config;
use crate::transport::{DeadlineAcceptor, Timeouts};
use crate::web::state::AppState;

pub struct Application {
    acceptor: DeadlineAcceptor,
    port: u16,
    state: AppState,
}

impl Application {
    pub async fn build(config: Config, pool: PgPool) -> anyhow::Result<Self> {
        let acceptor = TcpListener::bind(config.bind)
            .into_acceptor()
            .await
            .with_context(|| format!("cannot listen on {}", config.bind))?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(|s| s.port()))
            .context("the listener has no address")?;
        let timeouts = Timeouts {
            header: config.limits.header_timeout,
            write: config.limits.write_timeout,
        };
        let send_buffer = usize::try_from(config.limits.send_buffer_bytes).unwrap_or(usize::MAX);
        let media = crate::media::MediaStore::open(&config.media_root, &config.media_location)
            .context("opening the media store")?;
        let kit = crate::notify::Kit::new(&config.notify, site_host(&config.public_url))
            .context("setting up notifications")?;
        let state = AppState::new(config, &pool, media, std::sync::Arc::new(kit));
        Ok(Self {
            acceptor: DeadlineAcceptor {
                inner: acceptor,
                timeouts,
                send_buffer,
                cuts: state.cuts.clone(),
            },
            port,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's own pools (derived from the one it was given), for
    /// tests that take the database away from it.
    pub fn pools(&self) -> crate::db::Pools {
        self.state.pools.clone()
    }

    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let cleanup = tokio::spawn(periodic_cleanup(
            self.state.pools.long.clone(),
            self.state.media.clone(),
        ));
        let summaries = tokio::spawn(flush_rating_summaries(self.state.pools.long.clone()));
        let trainer = self.state.config.model_check.map(|every| {
            tokio::spawn(crate::model::run::background(
                self.state.pools.long.clone(),
                every,
            ))
        });
        let notifier = self.state.config.notify.poll.map(|every| {
            let links = crate::notify::Links::new(
                &self.state.config.public_url,
                crate::web::paths::candidate,
                crate::web::paths::NEXT,
                crate::web::paths::CANDIDATES,
            );
            let worker = crate::notify::worker::Worker::new(
                self.state.pools.notify.clone(),
                self.state.notify.clone(),
                self.state.config.notify.clone(),
                links,
            );
            tokio::spawn(worker.run(every))
        });
        let idle = self.state.config.limits.idle_timeout;
        let app = crate::web::app(self.state);
        let result = Server::new_with_acceptor(self.acceptor)
            .idle_timeout(idle)
            .run_with_graceful_shutdown(app, shutdown, Some(Duration::from_secs(30)))
            .await;
        cleanup.abort();
        summaries.abort();
        for t in [trainer, notifier].into_iter().flatten() {
            t.abort();
        }
        result
    }
}

/// The host of the public URL: what the SMTP relay is greeted with.
fn site_host(public_url: &str) -> &str {
    let rest = public_url.split_once("://").map_or(public_url, |(_, r)| r);
    let host = rest.split(['/', ':']).next().unwrap_or("");
    if host.is_empty() {
        "localhost"
    } else {
        host
    }
}

/// Expired sessions, old login failures, month-old notification
/// deliveries and the temporary files of uploads that a crash or kill cut
/// short are of no use; clear them at start and hourly.
async fn periodic_cleanup(pool: PgPool, media: crate::media::MediaStore) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let stale = Duration::from_secs(3600);
        let media_for_task = media.clone();
        match tokio::task::spawn_blocking(move || media_for_task.remove_stale_temp(stale)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(files = n, "removed temporary files of unfinished uploads"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cleaning the media tmp folder failed"),
            Err(e) => tracing::warn!(error = %e, "cleaning the media tmp folder failed"),
        }
        let sessions = crate::db::sessions::purge_expired(&pool).await;
        let failures =
            crate::db::login_failures::purge_older_than(&pool, Duration::from_secs(86_400)).await;
        // Deliveries are kept a month for the admin pages, then forgotten.
        let deliveries =
            crate::db::deliveries::purge_older_than(&pool, Duration::from_secs(30 * 86_400)).await;
        if let (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) =
            (sessions.map(drop), failures.map(drop), deliveries.map(drop))
        {
            tracing::warn!(error = %e, "periodic cleanup failed");
        }
    }
}

/// Ratings leave the shared summaries to a flush; doing it every couple of
/// seconds keeps the flush that a summary page does first a small one.
async fn flush_rating_summaries(pool: PgPool) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let flushed = match pool.acquire().await {
            Ok(mut conn) => crate::db::ratings::flush_summaries(&mut conn).await,
            Err(e) => Err(e),
        };
        if let Err(e) = flushed {
            tracing::warn!(error = %e, "counting new ratings into the summaries failed");
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
