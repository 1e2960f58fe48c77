//! Every path the site serves, written once: the router, redirects and
//! templates all use these.

use std::fmt::Write as _;

pub const HOME: &str = "/";
pub const LOGIN: &str = "/login";
pub const LOGOUT: &str = "/logout";
pub const ACCOUNT: &str = "/account";
pub const ACCOUNT_PASSWORD: &str = "/account/password";
pub const ACCOUNT_TOKENS: &str = "/account/tokens";
pub const ACCOUNT_TOKEN_REVOKE: &str = "/account/tokens/:id/revoke";
pub const HEALTHZ: &str = "/healthz";
pub const AUTH_CHECK: &str = "/auth/check";
pub const STATIC: &str = "/static/:version/:name";

pub const MEDIA: &str = "/media/:id/:name";

pub const NEXT: &str = "/next";
pub const PREVIOUS: &str = "/previous";
pub const UNDO: &str = "/undo";
pub const QUEUE: &str = "/queue";
pub const CANDIDATE: &str = "/candidates/:id";
pub const CANDIDATE_RATING: &str = "/candidates/:id/rating";
pub const CANDIDATE_NEARBY: &str = "/candidates/:id/nearby";
pub const CANDIDATE_FIREFLY: &str = "/candidates/:id/firefly";
pub const CANDIDATE_TAGS: &str = "/candidates/:id/tags";

// Finding candidates: the table, the ratings summary, exports, saved views.
pub const CANDIDATES: &str = "/candidates";
pub const CANDIDATES_CSV: &str = "/candidates.csv";
pub const CANDIDATES_VOTABLE: &str = "/candidates.vot";
pub const CANDIDATE_LIGHT_CURVE: &str = "/candidates/:id/lightcurve.csv";
pub const RATINGS: &str = "/ratings";
pub const VIEWS: &str = "/views";
pub const VIEWS_RATE: &str = "/views/rate";
pub const VIEW_DEFAULT: &str = "/views/:id/default";
pub const VIEW_DELETE: &str = "/views/:id/delete";

pub fn candidate(id: i64) -> String {
    format!("/candidates/{id}")
}

pub const ADMIN: &str = "/admin";
pub const ADMIN_USERS: &str = "/admin/users";
pub const ADMIN_USER: &str = "/admin/users/:id";
pub const ADMIN_USER_PASSWORD: &str = "/admin/users/:id/password";
pub const ADMIN_USER_ROLE: &str = "/admin/users/:id/role";
pub const ADMIN_USER_UPLOAD: &str = "/admin/users/:id/upload";
pub const ADMIN_USER_ACTIVE: &str = "/admin/users/:id/active";
pub const ADMIN_TOKENS: &str = "/admin/tokens";
pub const ADMIN_TOKEN_REVOKE: &str = "/admin/tokens/:id/revoke";
pub const ADMIN_TAGS: &str = "/admin/tags";
pub const ADMIN_TAG: &str = "/admin/tags/:id";
pub const ADMIN_TAG_MOVE: &str = "/admin/tags/:id/move";
pub const ADMIN_TAG_MERGE: &str = "/admin/tags/:id/merge";
pub const ADMIN_TAG_DELETE: &str = "/admin/tags/:id/delete";
pub const ADMIN_PROJECTS: &str = "/admin/projects";
pub const ADMIN_PROJECT: &str = "/admin/projects/:slug";
pub const ADMIN_PROJECT_DELETE: &str = "/admin/projects/:slug/delete";
pub const ADMIN_OBSERVATION_DELETE: &str = "/admin/projects/:slug/observations/:observation/delete";
pub const ADMIN_STATUS: &str = "/admin/status";
pub const ADMIN_AUDIT: &str = "/admin/audit";

pub const API_OPENAPI: &str = "/api/v1/openapi.json";
pub const API_WHOAMI: &str = "/api/v1/whoami";
pub const API_PROJECT: &str = "/api/v1/projects/:project";
pub const API_OBSERVATION: &str = "/api/v1/projects/:project/observations/:observation";
pub const API_BEAM: &str = "/api/v1/projects/:project/observations/:observation/beams/:beam";
pub const API_CANDIDATE: &str =
    "/api/v1/projects/:project/observations/:observation/candidates/:name";
pub const API_CANDIDATES: &str = "/api/v1/projects/:project/observations/:observation/candidates";

/// `/login?next=<path>`, with the path percent-encoded.
pub fn login_with_next(next: &str) -> String {
    format!("{LOGIN}?next={}", encode_path(next))
}

/// A value for one URL path segment or query value: every byte but RFC
/// 3986's unreserved characters becomes `%XX`, `/` included, so a slug or
/// name can neither add a path segment nor end a query value.
pub fn encode_component(s: &str) -> String {
    percent_encode(s, false)
}

/// [`encode_component`] keeping `/`: for a path carried in a query value,
/// which stays readable and means the same.
pub fn encode_path(s: &str) -> String {
    percent_encode(s, true)
}

fn percent_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Where to go after login: only a path on this site. Anything that a browser
/// could read as another host (`//evil`, `/\evil`, `https://…`) falls back to
/// the home page, so a crafted login link cannot send people elsewhere.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(|c| c.is_control() || c == '\\') =>
        {
            n
        }
        _ => HOME,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_accepted_as_next() {
        for ok in ["/", "/candidates/3", "/candidates?project=vast&page=2"] {
            assert_eq!(safe_next(Some(ok)), ok);
        }
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "/%0d%0a",
            "javascript:alert(1)",
            "evil",
            "/a\r\nLocation: x",
            "",
        ] {
            let expected = if bad == "/%0d%0a" { bad } else { HOME };
            assert_eq!(safe_next(Some(bad)), expected, "{bad}");
        }
        assert_eq!(safe_next(None), HOME);
    }

    #[test]
    fn components_encode_the_slash_and_paths_keep_it() {
        assert_eq!(encode_component("a/b c~é"), "a%2Fb%20c~%C3%A9");
        assert_eq!(encode_path("/a b/c"), "/a%20b/c");
    }

    #[test]
    fn next_is_percent_encoded() {
        assert_eq!(
            login_with_next("/a?b=1&c=2"),
            "/login?next=/a%3Fb%3D1%26c%3D2"
        );
    }
}
