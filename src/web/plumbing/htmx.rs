//! Requests from htmx, and the answer that suits them: the fragment it
//! swaps in, or for anyone else (a reload, a shared link, no JavaScript)
//! the whole page.

use poem::web::WithHeader;
use poem::{IntoResponse, Request, Response};

use crate::web::plumbing::error::WebResult;
use crate::web::plumbing::layout::Layout;

/// Whether htmx sent the request (and so wants a fragment, not a page).
/// Every handler that answers both asks this, and only this.
pub fn is_htmx(req: &Request) -> bool {
    // A history restore wants the whole page back, not a fragment.
    req.headers().contains_key("hx-request")
        && !req.headers().contains_key("hx-history-restore-request")
}

/// The fragment made from `content`, with `url` pushed to the address bar,
/// for htmx; the page made from the layout and `content` for anyone else.
/// The layout (which takes the session's flash message) is only read when
/// the page is wanted.
pub async fn fragment_or_page<T, F, P>(
    req: &Request,
    url: impl Into<String>,
    content: T,
    fragment: impl FnOnce(T) -> F,
    page: impl FnOnce(Layout, T) -> P,
) -> WebResult<Response>
where
    F: IntoResponse,
    P: IntoResponse,
{
    if is_htmx(req) {
        let pushed: WithHeader<F> = fragment(content).with_header("HX-Push-Url", url.into());
        return Ok(pushed.into_response());
    }
    Ok(page(Layout::for_request(req).await?, content).into_response())
}
