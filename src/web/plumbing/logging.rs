//! One log line per request, with an id that is also sent back to the client
//! so a reported problem can be found in the logs.

use std::time::Instant;

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use tracing::Instrument;

pub struct RequestLog;

impl<E: Endpoint> Middleware<E> for RequestLog {
    type Output = RequestLogEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        RequestLogEndpoint(ep)
    }
}

pub struct RequestLogEndpoint<E>(E);

impl<E: Endpoint> Endpoint for RequestLogEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let id = crate::random_hex(8);
        let span = tracing::info_span!("request", id = %id);
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let remote = req.remote_addr().to_string();
        let start = Instant::now();
        let result = self.0.call(req).instrument(span.clone()).await;
        let mut resp = match result {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        let elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
        span.in_scope(|| {
            tracing::info!(%method, %path, status = resp.status().as_u16(), elapsed_ms, %remote, "request");
        });
        if let Ok(v) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        Ok(resp)
    }
}
