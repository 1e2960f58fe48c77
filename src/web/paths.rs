//! Every path the site serves, written once: the router, redirects and
//! templates all use these. A route with parameters has a builder below that
//! fills its pattern, so a link cannot drift from the route it names.
//!
//! Templates call the builders with a `*` before an id
//! (`crate::web::paths::candidate(*row.id)`, `**id` for a variable bound by
//! `if let` or `for`): askama passes call arguments by reference, and the
//! typed ids are `Copy`.

use std::fmt::{Display, Write as _};

use crate::domain::chart::{ChartView, FluxScale};
use crate::domain::{
    BatchId, CandidateId, DeliveryId, FileId, TagId, TargetId, TokenId, UserId, ViewId,
};

pub const HOME: &str = "/";
pub const LOGIN: &str = "/login";
pub const LOGOUT: &str = "/logout";
pub const ACCOUNT: &str = "/account";
pub const ACCOUNT_PASSWORD: &str = "/account/password";
pub const ACCOUNT_KEYBOARD: &str = "/account/keyboard";
pub const ACCOUNT_TOKENS: &str = "/account/tokens";
pub const ACCOUNT_TOKEN_REVOKE: &str = "/account/tokens/:id/revoke";
pub const ACCOUNT_SUMMARY: &str = "/account/summary";
pub const HEALTHZ: &str = "/healthz";
pub const AUTH_CHECK: &str = "/auth/check";
pub const STATIC: &str = "/static/:version/:name";

pub const MEDIA: &str = "/media/:id/:name";

pub const NEXT: &str = "/next";
pub const PREVIOUS: &str = "/previous";
pub const UNDO: &str = "/undo";
pub const QUEUE: &str = "/queue";
pub const QUEUE_LEFT: &str = "/queue/left";
pub const CANDIDATE: &str = "/candidates/:id";
pub const CANDIDATE_RATING: &str = "/candidates/:id/rating";
pub const CANDIDATE_NEARBY: &str = "/candidates/:id/nearby";
pub const CANDIDATE_ASSOCIATION: &str = "/candidates/:id/association";
pub const CANDIDATE_ASSOCIATION_SEARCH: &str = "/candidates/:id/association/search";
pub const CANDIDATE_SIMBAD: &str = "/candidates/:id/simbad";
pub const CANDIDATE_DETAILS: &str = "/candidates/:id/details";
pub const CANDIDATE_FIREFLY: &str = "/candidates/:id/firefly";
pub const CANDIDATE_TAGS: &str = "/candidates/:id/tags";
pub const CANDIDATE_SKY: &str = "/candidates/:id/sky/:file";
pub const CANDIDATE_GROUP: &str = "/candidates/:id/group";
// Rating many at once: choose and confirm (GET), apply (POST), take back.
pub const BATCH: &str = "/batch";
pub const BATCH_UNDO: &str = "/batch/:id/undo";

// Finding candidates: the table, the ratings summary, exports, saved views.
pub const CANDIDATES: &str = "/candidates";
pub const CANDIDATES_CSV: &str = "/candidates.csv";
pub const CANDIDATES_VOTABLE: &str = "/candidates.vot";
pub const CANDIDATE_LIGHT_CURVE: &str = "/candidates/:id/lightcurve.csv";
pub const CANDIDATE_LIGHT_CURVE_CHART: &str = "/candidates/:id/light-curve";
pub const CANDIDATE_VOEVENT: &str = "/candidates/:id/voevent.xml";
pub const CANDIDATE_VOEVENT_SEND: &str = "/candidates/:id/voevent/send";
pub const RATINGS: &str = "/ratings";
pub const VIEWS: &str = "/views";
pub const VIEWS_RATE: &str = "/views/rate";
pub const VIEW_DEFAULT: &str = "/views/:id/default";
pub const VIEW_DELETE: &str = "/views/:id/delete";

pub const ADMIN: &str = "/admin";
pub const ADMIN_USERS: &str = "/admin/users";
pub const ADMIN_USER: &str = "/admin/users/:id";
pub const ADMIN_USER_PASSWORD: &str = "/admin/users/:id/password";
pub const ADMIN_USER_ROLE: &str = "/admin/users/:id/role";
pub const ADMIN_USER_UPLOAD: &str = "/admin/users/:id/upload";
pub const ADMIN_USER_EXPERT: &str = "/admin/users/:id/expert";
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
pub const ADMIN_PROJECT_CATALOGUES: &str = "/admin/projects/:slug/catalogues";
pub const ADMIN_PROJECT_GOLD: &str = "/admin/projects/:slug/gold";
pub const ADMIN_PROJECT_GOLD_RATE: &str = "/admin/projects/:slug/gold/rate";
pub const ADMIN_PROJECT_GOLD_REMOVE: &str = "/admin/projects/:slug/gold/:candidate/remove";
pub const ADMIN_CATALOGUES: &str = "/admin/catalogues";
pub const ADMIN_PROJECT_REVIEW: &str = "/admin/projects/:slug/review";
// A project's notification targets, and every delivery of every project.
pub const ADMIN_PROJECT_NOTIFICATIONS: &str = "/admin/projects/:slug/notifications";
pub const ADMIN_PROJECT_NOTIFICATION: &str = "/admin/projects/:slug/notifications/:target";
pub const ADMIN_PROJECT_NOTIFICATION_DELETE: &str =
    "/admin/projects/:slug/notifications/:target/delete";
pub const ADMIN_PROJECT_NOTIFICATION_TEST: &str =
    "/admin/projects/:slug/notifications/:target/test";
pub const ADMIN_DELIVERIES: &str = "/admin/deliveries";
pub const ADMIN_DELIVERY_RETRY: &str = "/admin/deliveries/:id/retry";
pub const PROJECT_MODEL: &str = "/projects/:slug/model";
pub const PROJECT_MODEL_TRAIN: &str = "/projects/:slug/model/train";
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
// The read API: candidates by filter and by id, the exports, the feed of
// rating changes, projects and their observations' progress.
pub const API_CANDIDATE_LIST: &str = "/api/v1/candidates";
pub const API_CANDIDATE_BY_ID: &str = "/api/v1/candidates/:id";
pub const API_CANDIDATES_CSV: &str = "/api/v1/candidates.csv";
pub const API_CANDIDATES_VOTABLE: &str = "/api/v1/candidates.vot";
pub const API_RATING_CHANGES: &str = "/api/v1/ratings";
pub const API_PROJECTS: &str = "/api/v1/projects";
pub const API_PROJECT_OBSERVATIONS: &str = "/api/v1/projects/:project/observations";
pub const API_OBSERVATION_FINISHED: &str =
    "/api/v1/projects/:project/observations/:observation/finished";

/// `pattern` with its `:name` segments replaced, in order, by `values`,
/// each percent-encoded as one segment. The builders below are its only
/// callers, and a unit test runs each, so a miscount is caught there.
fn fill(pattern: &str, values: &[&dyn Display]) -> String {
    let mut values = values.iter();
    let mut out = String::with_capacity(pattern.len() + 16);
    for segment in pattern.split('/').skip(1) {
        out.push('/');
        if segment.starts_with(':') {
            let value = values
                .next()
                .unwrap_or_else(|| panic!("{pattern}: too few values"));
            out.push_str(&encode_component(&value.to_string()));
        } else {
            out.push_str(segment);
        }
    }
    assert!(values.next().is_none(), "{pattern}: too many values");
    out
}

pub fn account_token_revoke(id: TokenId) -> String {
    fill(ACCOUNT_TOKEN_REVOKE, &[&id])
}

/// A static asset under its content version (see `plumbing::assets`).
pub fn static_asset(version: &str, name: &str) -> String {
    fill(STATIC, &[&version, &name])
}

/// A stored file; `name` only makes the URL readable and is not looked at.
pub fn media(id: FileId, name: &str) -> String {
    fill(MEDIA, &[&id, &name])
}

/// A stored file named by its role and type (`deep_cutout.fits`), which
/// is what a browser offers when it is saved.
pub fn media_named(id: FileId, role: &str, content_type: &str) -> String {
    let ext = crate::media::ContentKind::from_mime(content_type).map_or("bin", |k| k.extension());
    media(id, &format!("{role}.{ext}"))
}

pub fn candidate(id: CandidateId) -> String {
    fill(CANDIDATE, &[&id])
}

pub fn candidate_rating(id: CandidateId) -> String {
    fill(CANDIDATE_RATING, &[&id])
}

pub fn candidate_nearby(id: CandidateId) -> String {
    fill(CANDIDATE_NEARBY, &[&id])
}

pub fn candidate_association(id: CandidateId) -> String {
    fill(CANDIDATE_ASSOCIATION, &[&id])
}

pub fn candidate_association_search(id: CandidateId) -> String {
    fill(CANDIDATE_ASSOCIATION_SEARCH, &[&id])
}

pub fn candidate_simbad(id: CandidateId) -> String {
    fill(CANDIDATE_SIMBAD, &[&id])
}

pub fn candidate_details(id: CandidateId) -> String {
    fill(CANDIDATE_DETAILS, &[&id])
}

pub fn candidate_firefly(id: CandidateId) -> String {
    fill(CANDIDATE_FIREFLY, &[&id])
}

pub fn candidate_tags(id: CandidateId) -> String {
    fill(CANDIDATE_TAGS, &[&id])
}

pub fn candidate_group(id: CandidateId) -> String {
    fill(CANDIDATE_GROUP, &[&id])
}

/// The batch panel for the whole group of a candidate.
pub fn batch_for_group(id: CandidateId) -> String {
    format!("{BATCH}?group={id}")
}

/// The batch panel for every candidate a table query selects.
pub fn batch_for_filter(query: &str) -> String {
    format!("{BATCH}?filter={}", encode_component(query))
}

pub fn batch_undo(id: BatchId) -> String {
    fill(BATCH_UNDO, &[&id])
}

/// One of the candidate's FITS images, as the decision screen draws it.
pub fn candidate_sky(id: CandidateId, file: FileId) -> String {
    fill(CANDIDATE_SKY, &[&id, &file])
}

pub fn candidate_light_curve(id: CandidateId) -> String {
    fill(CANDIDATE_LIGHT_CURVE, &[&id])
}

pub fn candidate_voevent(id: CandidateId) -> String {
    fill(CANDIDATE_VOEVENT, &[&id])
}

pub fn candidate_voevent_send(id: CandidateId) -> String {
    fill(CANDIDATE_VOEVENT_SEND, &[&id])
}

/// The light-curve chart fragment, drawn as `view` says.
pub fn candidate_light_curve_chart(id: CandidateId, view: &ChartView) -> String {
    let (from, to) = view.window.map_or((String::new(), String::new()), |w| {
        (w.from_ms().to_string(), w.to_ms().to_string())
    });
    let flux = match view.flux {
        FluxScale::Linear => "",
        FluxScale::Log => FluxScale::Log.as_str(),
    };
    with_params(
        &fill(CANDIDATE_LIGHT_CURVE_CHART, &[&id]),
        &[("from", &from), ("to", &to), ("flux", flux)],
    )
}

pub fn view_default(id: ViewId) -> String {
    fill(VIEW_DEFAULT, &[&id])
}

pub fn view_delete(id: ViewId) -> String {
    fill(VIEW_DELETE, &[&id])
}

pub fn admin_user(id: UserId) -> String {
    fill(ADMIN_USER, &[&id])
}

pub fn admin_user_password(id: UserId) -> String {
    fill(ADMIN_USER_PASSWORD, &[&id])
}

pub fn admin_user_role(id: UserId) -> String {
    fill(ADMIN_USER_ROLE, &[&id])
}

pub fn admin_user_upload(id: UserId) -> String {
    fill(ADMIN_USER_UPLOAD, &[&id])
}

pub fn admin_user_expert(id: UserId) -> String {
    fill(ADMIN_USER_EXPERT, &[&id])
}

pub fn admin_user_active(id: UserId) -> String {
    fill(ADMIN_USER_ACTIVE, &[&id])
}

pub fn admin_token_revoke(id: TokenId) -> String {
    fill(ADMIN_TOKEN_REVOKE, &[&id])
}

pub fn admin_tag(id: TagId) -> String {
    fill(ADMIN_TAG, &[&id])
}

pub fn admin_tag_move(id: TagId) -> String {
    fill(ADMIN_TAG_MOVE, &[&id])
}

pub fn admin_tag_merge(id: TagId) -> String {
    fill(ADMIN_TAG_MERGE, &[&id])
}

pub fn admin_tag_delete(id: TagId) -> String {
    fill(ADMIN_TAG_DELETE, &[&id])
}

pub fn admin_project(slug: &str) -> String {
    fill(ADMIN_PROJECT, &[&slug])
}

pub fn admin_project_delete(slug: &str) -> String {
    fill(ADMIN_PROJECT_DELETE, &[&slug])
}

pub fn admin_project_catalogues(slug: &str) -> String {
    fill(ADMIN_PROJECT_CATALOGUES, &[&slug])
}

pub fn admin_project_gold(slug: &str) -> String {
    fill(ADMIN_PROJECT_GOLD, &[&slug])
}

pub fn admin_project_gold_rate(slug: &str) -> String {
    fill(ADMIN_PROJECT_GOLD_RATE, &[&slug])
}

pub fn admin_project_gold_remove(slug: &str, candidate: CandidateId) -> String {
    fill(ADMIN_PROJECT_GOLD_REMOVE, &[&slug, &candidate])
}

pub fn admin_project_review(slug: &str) -> String {
    fill(ADMIN_PROJECT_REVIEW, &[&slug])
}

pub fn admin_project_notifications(slug: &str) -> String {
    fill(ADMIN_PROJECT_NOTIFICATIONS, &[&slug])
}

pub fn admin_project_notification(slug: &str, target: TargetId) -> String {
    fill(ADMIN_PROJECT_NOTIFICATION, &[&slug, &target])
}

pub fn admin_project_notification_delete(slug: &str, target: TargetId) -> String {
    fill(ADMIN_PROJECT_NOTIFICATION_DELETE, &[&slug, &target])
}

pub fn admin_project_notification_test(slug: &str, target: TargetId) -> String {
    fill(ADMIN_PROJECT_NOTIFICATION_TEST, &[&slug, &target])
}

pub fn admin_delivery_retry(id: DeliveryId) -> String {
    fill(ADMIN_DELIVERY_RETRY, &[&id])
}

pub fn project_model(slug: &str) -> String {
    fill(PROJECT_MODEL, &[&slug])
}

pub fn project_model_train(slug: &str) -> String {
    fill(PROJECT_MODEL_TRAIN, &[&slug])
}

/// `observation` is the observation's external id, as the route takes it.
pub fn admin_observation_delete(slug: &str, observation: &str) -> String {
    fill(ADMIN_OBSERVATION_DELETE, &[&slug, &observation])
}

// The upload API is addressed by names (slugs, external ids), not row ids.
pub fn api_project(project: &str) -> String {
    fill(API_PROJECT, &[&project])
}

pub fn api_observation(project: &str, observation: &str) -> String {
    fill(API_OBSERVATION, &[&project, &observation])
}

pub fn api_beam(project: &str, observation: &str, beam: &str) -> String {
    fill(API_BEAM, &[&project, &observation, &beam])
}

pub fn api_candidate(project: &str, observation: &str, name: &str) -> String {
    fill(API_CANDIDATE, &[&project, &observation, &name])
}

pub fn api_candidates(project: &str, observation: &str) -> String {
    fill(API_CANDIDATES, &[&project, &observation])
}

pub fn api_candidate_by_id(id: CandidateId) -> String {
    fill(API_CANDIDATE_BY_ID, &[&id])
}

pub fn api_project_observations(project: &str) -> String {
    fill(API_PROJECT_OBSERVATIONS, &[&project])
}

pub fn api_observation_finished(project: &str, observation: &str) -> String {
    fill(API_OBSERVATION_FINISHED, &[&project, &observation])
}

/// `base?key=value&…`, each value percent-encoded; empty values are left
/// out, since every page here reads an empty parameter as an absent one.
fn with_params(base: &str, params: &[(&str, &str)]) -> String {
    let mut out = base.to_string();
    let mut sep = '?';
    for (key, value) in params.iter().filter(|(_, v)| !v.is_empty()) {
        let _ = write!(out, "{sep}{key}={}", encode_component(value));
        sep = '&';
    }
    out
}

/// `/login?next=<path>`, with the path percent-encoded.
pub fn login_with_next(next: &str) -> String {
    format!("{LOGIN}?next={}", encode_path(next))
}

/// The reviewer's queue after `id`: the skip link.
pub fn next_after(id: CandidateId) -> String {
    with_params(NEXT, &[("after", &id.to_string())])
}

/// Back through the candidates shown, from `id`.
pub fn previous_from(id: CandidateId) -> String {
    with_params(PREVIOUS, &[("from", &id.to_string())])
}

/// Firefly on one of the candidate's FITS files.
pub fn candidate_firefly_file(id: CandidateId, file: FileId) -> String {
    with_params(&candidate_firefly(id), &[("file", &file.to_string())])
}

/// One project's tags on the tag admin page.
pub fn admin_tags_of(slug: &str) -> String {
    with_params(ADMIN_TAGS, &[("project", slug)])
}

/// The audit log filtered by actor (a username) and action (an action or
/// an area), either of which may be empty for "any".
pub fn admin_audit_of(actor: &str, action: &str) -> String {
    with_params(ADMIN_AUDIT, &[("actor", actor), ("action", action)])
}

/// [`admin_audit_of`] from the page cursor `before` on.
pub fn admin_audit_before(actor: &str, action: &str, before: &str) -> String {
    with_params(
        ADMIN_AUDIT,
        &[("actor", actor), ("action", action), ("before", before)],
    )
}

/// The candidate table showing one observation of a project, narrowed to
/// a consensus state unless `consensus` is empty.
pub fn candidates_of_observation(project: &str, observation: &str, consensus: &str) -> String {
    with_params(
        CANDIDATES,
        &[
            ("project", project),
            ("observation", observation),
            ("consensus", consensus),
        ],
    )
}

/// `base?query`, or `base` for an empty query. `query` is a query string
/// already encoded (a filter's `to_query`), so it goes in as it is.
pub fn with_query(base: &str, query: &str) -> String {
    if query.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{query}")
    }
}

/// A filtered page (`/candidates`, `/ratings`) showing exactly `query`:
/// an empty one is `?reset=1`, since the bare path opens the reviewer's
/// default view instead.
pub fn filtered(base: &str, query: &str) -> String {
    if query.is_empty() {
        format!("{base}?reset=1")
    } else {
        format!("{base}?{query}")
    }
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

    /// Whether `path` is an instance of `pattern`: its literal segments, and
    /// for each parameter one non-empty segment that is encoded, so it cannot
    /// end the path or start a query.
    fn fits(pattern: &str, path: &str) -> bool {
        let want: Vec<&str> = pattern.split('/').collect();
        let got: Vec<&str> = path.split('/').collect();
        want.len() == got.len()
            && want.iter().zip(&got).all(|(w, g)| {
                if w.starts_with(':') {
                    !g.is_empty()
                        && g.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b))
                } else {
                    w == g
                }
            })
    }

    #[test]
    fn every_builder_fills_its_own_pattern() {
        // A value that would add a segment, end the path or start a query
        // if it went in unencoded.
        let odd = "a/b c?d#e%f&g";
        let built: Vec<(&str, String)> = vec![
            (ACCOUNT_TOKEN_REVOKE, account_token_revoke(TokenId(7))),
            (STATIC, static_asset("0123abcd", "app.css")),
            (STATIC, static_asset(odd, odd)),
            (MEDIA, media(FileId(3), "image.png")),
            (MEDIA, media(FileId(3), odd)),
            (CANDIDATE, candidate(CandidateId(42))),
            (CANDIDATE_RATING, candidate_rating(CandidateId(42))),
            (CANDIDATE_NEARBY, candidate_nearby(CandidateId(42))),
            (
                CANDIDATE_ASSOCIATION,
                candidate_association(CandidateId(42)),
            ),
            (
                CANDIDATE_ASSOCIATION_SEARCH,
                candidate_association_search(CandidateId(42)),
            ),
            (CANDIDATE_SIMBAD, candidate_simbad(CandidateId(42))),
            (CANDIDATE_FIREFLY, candidate_firefly(CandidateId(42))),
            (CANDIDATE_DETAILS, candidate_details(CandidateId(42))),
            (CANDIDATE_SKY, candidate_sky(CandidateId(42), FileId(7))),
            (CANDIDATE_TAGS, candidate_tags(CandidateId(42))),
            (CANDIDATE_GROUP, candidate_group(CandidateId(42))),
            (BATCH_UNDO, batch_undo(BatchId(3))),
            (
                CANDIDATE_LIGHT_CURVE,
                candidate_light_curve(CandidateId(42)),
            ),
            (CANDIDATE_VOEVENT, candidate_voevent(CandidateId(42))),
            (
                CANDIDATE_VOEVENT_SEND,
                candidate_voevent_send(CandidateId(42)),
            ),
            (
                CANDIDATE_LIGHT_CURVE_CHART,
                candidate_light_curve_chart(CandidateId(42), &ChartView::default()),
            ),
            (VIEW_DEFAULT, view_default(ViewId(5))),
            (VIEW_DELETE, view_delete(ViewId(5))),
            (ADMIN_USER, admin_user(UserId(9))),
            (ADMIN_USER_PASSWORD, admin_user_password(UserId(9))),
            (ADMIN_USER_ROLE, admin_user_role(UserId(9))),
            (ADMIN_USER_UPLOAD, admin_user_upload(UserId(9))),
            (ADMIN_USER_EXPERT, admin_user_expert(UserId(9))),
            (ADMIN_USER_ACTIVE, admin_user_active(UserId(9))),
            (ADMIN_TOKEN_REVOKE, admin_token_revoke(TokenId(7))),
            (ADMIN_TAG, admin_tag(TagId(11))),
            (ADMIN_TAG_MOVE, admin_tag_move(TagId(11))),
            (ADMIN_TAG_MERGE, admin_tag_merge(TagId(11))),
            (ADMIN_TAG_DELETE, admin_tag_delete(TagId(11))),
            (ADMIN_PROJECT, admin_project("vast")),
            (ADMIN_PROJECT, admin_project(odd)),
            (ADMIN_PROJECT_DELETE, admin_project_delete(odd)),
            (ADMIN_PROJECT_CATALOGUES, admin_project_catalogues(odd)),
            (ADMIN_PROJECT_GOLD, admin_project_gold(odd)),
            (ADMIN_PROJECT_GOLD_RATE, admin_project_gold_rate(odd)),
            (
                ADMIN_PROJECT_GOLD_REMOVE,
                admin_project_gold_remove(odd, CandidateId(42)),
            ),
            (ADMIN_PROJECT_REVIEW, admin_project_review(odd)),
            (
                ADMIN_PROJECT_NOTIFICATIONS,
                admin_project_notifications(odd),
            ),
            (
                ADMIN_PROJECT_NOTIFICATION,
                admin_project_notification(odd, TargetId(3)),
            ),
            (
                ADMIN_PROJECT_NOTIFICATION_DELETE,
                admin_project_notification_delete(odd, TargetId(3)),
            ),
            (
                ADMIN_PROJECT_NOTIFICATION_TEST,
                admin_project_notification_test(odd, TargetId(3)),
            ),
            (ADMIN_DELIVERY_RETRY, admin_delivery_retry(DeliveryId(8))),
            (PROJECT_MODEL, project_model(odd)),
            (PROJECT_MODEL_TRAIN, project_model_train(odd)),
            (ADMIN_OBSERVATION_DELETE, admin_observation_delete(odd, odd)),
            (API_PROJECT, api_project(odd)),
            (API_OBSERVATION, api_observation(odd, odd)),
            (API_BEAM, api_beam(odd, odd, odd)),
            (API_CANDIDATE, api_candidate(odd, odd, odd)),
            (API_CANDIDATES, api_candidates(odd, odd)),
            (API_CANDIDATE_BY_ID, api_candidate_by_id(CandidateId(42))),
            (API_PROJECT_OBSERVATIONS, api_project_observations(odd)),
            (API_OBSERVATION_FINISHED, api_observation_finished(odd, odd)),
        ];
        for (pattern, path) in &built {
            assert!(fits(pattern, path), "{path} does not fit {pattern}");
        }
        let zoomed = ChartView {
            window: Some(crate::domain::chart::TimeWindow::new(-5, 1_700_000_000_000).unwrap()),
            flux: FluxScale::Log,
        };
        assert_eq!(
            candidate_light_curve_chart(CandidateId(42), &zoomed),
            "/candidates/42/light-curve?from=-5&to=1700000000000&flux=log"
        );
        // A new parameterised route needs its builder, and a line above.
        for spec in crate::web::routes::table() {
            if spec.path.contains(':') {
                assert!(
                    built.iter().any(|(p, _)| *p == spec.path),
                    "{} has no builder tested here",
                    spec.path
                );
            }
        }
    }

    #[test]
    fn builders_put_values_in_order_and_encoded() {
        assert_eq!(candidate_rating(CandidateId(42)), "/candidates/42/rating");
        assert_eq!(
            admin_observation_delete("my survey", "obs/1"),
            "/admin/projects/my%20survey/observations/obs%2F1/delete"
        );
        assert_eq!(
            api_candidate("p", "o", "J1234+56"),
            "/api/v1/projects/p/observations/o/candidates/J1234%2B56"
        );
        assert_eq!(fill(HOME, &[]), "/");
    }

    #[test]
    #[should_panic(expected = "too few values")]
    fn a_missing_value_is_a_bug() {
        fill(CANDIDATE, &[]);
    }

    #[test]
    #[should_panic(expected = "too many values")]
    fn a_spare_value_is_a_bug() {
        fill(CANDIDATE, &[&1, &2]);
    }

    #[test]
    fn queries_are_encoded_and_empty_values_left_out() {
        assert_eq!(next_after(CandidateId(3)), "/next?after=3");
        assert_eq!(previous_from(CandidateId(3)), "/previous?from=3");
        assert_eq!(
            candidate_firefly_file(CandidateId(3), FileId(8)),
            "/candidates/3/firefly?file=8"
        );
        assert_eq!(admin_tags_of("a&b"), "/admin/tags?project=a%26b");
        assert_eq!(admin_audit_of("", ""), "/admin/audit");
        assert_eq!(admin_audit_of("bob", ""), "/admin/audit?actor=bob");
        assert_eq!(
            admin_audit_before("", "login", "c=1"),
            "/admin/audit?action=login&before=c%3D1"
        );
        assert_eq!(with_query(RATINGS, ""), "/ratings");
        assert_eq!(with_query(RATINGS, "a=1&b=2"), "/ratings?a=1&b=2");
        assert_eq!(
            candidates_of_observation("vast", "SB 1&x", ""),
            "/candidates?project=vast&observation=SB%201%26x"
        );
        assert_eq!(
            candidates_of_observation("vast", "SB1", "settled_real"),
            "/candidates?project=vast&observation=SB1&consensus=settled_real"
        );
        assert_eq!(filtered(CANDIDATES, ""), "/candidates?reset=1");
        assert_eq!(filtered(CANDIDATES, "rated=mine"), "/candidates?rated=mine");
    }

    #[test]
    fn next_is_percent_encoded() {
        assert_eq!(
            login_with_next("/a?b=1&c=2"),
            "/login?next=/a%3Fb%3D1%26c%3D2"
        );
    }
}
