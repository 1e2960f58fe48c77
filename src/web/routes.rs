//! The route table: every route with its method and access level, in one
//! place. The router is built from it, and the access-matrix test walks it, so
//! a route cannot exist without a stated access level and a test entry.
//!
//! Each route also has its bounds: the upload API's routes take large bodies,
//! every other route a small one (`limits::BodyLimit`); `add_long` puts a
//! report or bulk admin change on the long connection budget, and signing
//! in has a budget of its own, so a login flood cannot take the pages'
//! connections.

use std::collections::BTreeMap;

use poem::http::Method;
use poem::{EndpointExt, IntoEndpoint, Route, RouteMethod};
use tower_sessions_sqlx_store::PostgresStore;

use crate::web::pages::{
    account, admin, auth_check, batch, candidate, candidate_details, group, health, home,
    known_sources, light_curve, login, media, model, queue, sky,
};
use crate::web::plumbing::access::{Access, Guard};
use crate::web::plumbing::assets;
use crate::web::plumbing::csrf::Csrf;
use crate::web::plumbing::error::pages::ErrorPages;
use crate::web::plumbing::limits::{AuthBudget, BodyLimit, Bounded, Budget, LongBudget};
use crate::web::plumbing::session_layer::WithSession;
use crate::web::{api, paths};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub body: BodyLimit,
    pub budget: Budget,
}

#[rustfmt::skip]
fn register(r: &mut Registry) {
    r.add(Method::GET, paths::HEALTHZ, Access::Open, health::check);
    r.add(Method::GET, paths::STATIC, Access::Open, assets::serve);
    r.add(Method::HEAD, paths::STATIC, Access::Open, assets::serve);

    r.add(Method::GET, paths::LOGIN, Access::Public, login::form);
    r.add_with(Method::POST, paths::LOGIN, Access::Public, Budget::Auth, login::submit);
    r.add(Method::POST, paths::LOGOUT, Access::Public, login::logout);
    // Answers 401 rather than redirecting: nginx's auth_request reads the status.
    r.add(Method::GET, paths::AUTH_CHECK, Access::Public, auth_check::check);

    r.add(Method::GET, paths::HOME, Access::Reviewer, home::page);
    r.add(Method::GET, paths::ACCOUNT, Access::Reviewer, account::page);
    r.add(Method::POST, paths::ACCOUNT_PASSWORD, Access::Reviewer, account::change_password);
    r.add(Method::POST, paths::ACCOUNT_KEYBOARD, Access::Reviewer, account::save_keyboard);
    r.add(Method::POST, paths::ACCOUNT_TOKENS, Access::Reviewer, account::create_token);
    r.add(Method::POST, paths::ACCOUNT_TOKEN_REVOKE, Access::Reviewer, account::revoke_token);
    r.add(Method::POST, paths::ACCOUNT_SUMMARY, Access::Reviewer, account::save_summary);
    r.add(Method::GET, paths::MEDIA, Access::Reviewer, media::serve);

    r.add(Method::GET, paths::NEXT, Access::Reviewer, candidate::next);
    r.add(Method::GET, paths::PREVIOUS, Access::Reviewer, candidate::previous);
    r.add(Method::POST, paths::UNDO, Access::Reviewer, candidate::undo);
    r.add(Method::GET, paths::QUEUE, Access::Reviewer, queue::page);
    r.add(Method::POST, paths::QUEUE, Access::Reviewer, queue::save);
    r.add(Method::GET, paths::QUEUE_LEFT, Access::Reviewer, queue::left);
    r.add(Method::GET, paths::CANDIDATE, Access::Reviewer, candidate::page);
    r.add(Method::POST, paths::CANDIDATE_RATING, Access::Reviewer, candidate::rate);
    r.add(Method::GET, paths::CANDIDATE_NEARBY, Access::Reviewer, known_sources::nearby);
    r.add(Method::POST, paths::CANDIDATE_ASSOCIATION, Access::Reviewer, known_sources::associate);
    r.add(Method::GET, paths::CANDIDATE_ASSOCIATION_SEARCH, Access::Reviewer, known_sources::search);
    r.add(Method::GET, paths::CANDIDATE_SIMBAD, Access::Reviewer, known_sources::simbad);
    r.add(Method::GET, paths::CANDIDATE_DETAILS, Access::Reviewer, candidate_details::details);
    r.add(Method::GET, paths::CANDIDATE_FIREFLY, Access::Reviewer, candidate::firefly);
    r.add(Method::GET, paths::CANDIDATE_SKY, Access::Reviewer, sky::image);
    r.add(Method::GET, paths::CANDIDATE_LIGHT_CURVE_CHART, Access::Reviewer, light_curve::chart);
    r.add(Method::POST, paths::CANDIDATE_TAGS, Access::Reviewer, candidate::add_tag);
    r.add(Method::GET, paths::CANDIDATE_GROUP, Access::Reviewer, group::panel);
    r.add(Method::GET, paths::BATCH, Access::Reviewer, batch::panel);
    r.add_long(Method::POST, paths::BATCH, Access::Reviewer, batch::apply);
    r.add_long(Method::POST, paths::BATCH_UNDO, Access::Reviewer, batch::undo);

    r.add(Method::GET, paths::CANDIDATES, Access::Reviewer, crate::web::pages::candidates::list);
    r.add(Method::GET, paths::CANDIDATES_CSV, Access::Reviewer, crate::web::pages::exports::csv);
    r.add(Method::GET, paths::CANDIDATES_VOTABLE, Access::Reviewer, crate::web::pages::exports::votable);
    r.add(Method::GET, paths::CANDIDATE_LIGHT_CURVE, Access::Reviewer, crate::web::pages::exports::light_curve);
    r.add(Method::GET, paths::CANDIDATE_VOEVENT, Access::Admin, crate::web::pages::voevent::download);
    r.add(Method::POST, paths::CANDIDATE_VOEVENT_SEND, Access::Admin, crate::web::pages::voevent::send);
    r.add_long(Method::GET, paths::RATINGS, Access::Reviewer, crate::web::pages::ratings::page);
    r.add(Method::GET, paths::VIEWS, Access::Reviewer, crate::web::pages::views::list);
    r.add(Method::POST, paths::VIEWS, Access::Reviewer, crate::web::pages::views::save);
    r.add(Method::POST, paths::VIEWS_RATE, Access::Reviewer, crate::web::pages::views::rate);
    r.add(Method::POST, paths::VIEW_DEFAULT, Access::Reviewer, crate::web::pages::views::make_default);
    r.add(Method::POST, paths::VIEW_DELETE, Access::Reviewer, crate::web::pages::views::delete);

    r.add(Method::GET, paths::ADMIN, Access::Admin, admin::index);
    r.add(Method::GET, paths::ADMIN_USERS, Access::Admin, admin::users::list);
    r.add(Method::POST, paths::ADMIN_USERS, Access::Admin, admin::users::create);
    r.add(Method::GET, paths::ADMIN_USER, Access::Admin, admin::users::show);
    r.add(Method::POST, paths::ADMIN_USER_PASSWORD, Access::Admin, admin::users::reset_password);
    r.add(Method::POST, paths::ADMIN_USER_ROLE, Access::Admin, admin::users::set_role);
    r.add(Method::POST, paths::ADMIN_USER_UPLOAD, Access::Admin, admin::users::set_upload);
    r.add(Method::POST, paths::ADMIN_USER_EXPERT, Access::Admin, admin::users::set_expert);
    r.add(Method::POST, paths::ADMIN_USER_ACTIVE, Access::Admin, admin::users::set_active);
    r.add(Method::GET, paths::ADMIN_TOKENS, Access::Admin, admin::tokens::list);
    r.add(Method::POST, paths::ADMIN_TOKEN_REVOKE, Access::Admin, admin::tokens::revoke);
    r.add(Method::GET, paths::ADMIN_TAGS, Access::Admin, admin::tags::page);
    r.add(Method::POST, paths::ADMIN_TAGS, Access::Admin, admin::tags::create);
    r.add(Method::POST, paths::ADMIN_TAG, Access::Admin, admin::tags::update);
    r.add(Method::POST, paths::ADMIN_TAG_MOVE, Access::Admin, admin::tags::move_to);
    r.add_long(Method::POST, paths::ADMIN_TAG_MERGE, Access::Admin, admin::tags::merge);
    r.add_long(Method::POST, paths::ADMIN_TAG_DELETE, Access::Admin, admin::tags::delete);
    r.add(Method::GET, paths::ADMIN_PROJECTS, Access::Admin, admin::projects::list);
    r.add(Method::GET, paths::ADMIN_PROJECT, Access::Admin, admin::projects::edit);
    r.add(Method::POST, paths::ADMIN_PROJECT, Access::Admin, admin::projects::save);
    r.add(Method::GET, paths::ADMIN_CATALOGUES, Access::Admin, admin::catalogues::list);
    r.add(Method::GET, paths::ADMIN_PROJECT_CATALOGUES, Access::Admin, admin::catalogues::edit);
    r.add(Method::GET, paths::ADMIN_PROJECT_REVIEW, Access::Admin, admin::review::edit);
    r.add(Method::POST, paths::ADMIN_PROJECT_REVIEW, Access::Admin, admin::review::save);
    r.add(Method::GET, paths::PROJECT_MODEL, Access::Reviewer, model::page);
    r.add(Method::POST, paths::PROJECT_MODEL_TRAIN, Access::Admin, model::train);
    r.add_long(Method::POST, paths::ADMIN_PROJECT_CATALOGUES, Access::Admin, admin::catalogues::save);
    r.add(Method::GET, paths::ADMIN_PROJECT_GOLD, Access::Admin, admin::gold::page);
    r.add(Method::POST, paths::ADMIN_PROJECT_GOLD, Access::Admin, admin::gold::mark);
    r.add(Method::POST, paths::ADMIN_PROJECT_GOLD_RATE, Access::Admin, admin::gold::set_rate);
    r.add(Method::POST, paths::ADMIN_PROJECT_GOLD_REMOVE, Access::Admin, admin::gold::remove);
    r.add(Method::GET, paths::ADMIN_PROJECT_NOTIFICATIONS, Access::Admin, admin::notifications::page);
    r.add(Method::POST, paths::ADMIN_PROJECT_NOTIFICATIONS, Access::Admin, admin::notifications::create);
    r.add(Method::POST, paths::ADMIN_PROJECT_NOTIFICATION, Access::Admin, admin::notifications::update);
    r.add(Method::POST, paths::ADMIN_PROJECT_NOTIFICATION_DELETE, Access::Admin, admin::notifications::delete);
    r.add(Method::POST, paths::ADMIN_PROJECT_NOTIFICATION_TEST, Access::Admin, admin::notifications::test);
    r.add(Method::GET, paths::ADMIN_DELIVERIES, Access::Admin, admin::notifications::all_deliveries);
    r.add(Method::POST, paths::ADMIN_DELIVERY_RETRY, Access::Admin, admin::notifications::retry);
    r.add(Method::GET, paths::ADMIN_PROJECT_DELETE, Access::Admin, admin::projects::confirm_delete_project);
    r.add_long(Method::POST, paths::ADMIN_PROJECT_DELETE, Access::Admin, admin::projects::delete_project);
    r.add(Method::GET, paths::ADMIN_OBSERVATION_DELETE, Access::Admin, admin::projects::confirm_delete_observation);
    r.add_long(Method::POST, paths::ADMIN_OBSERVATION_DELETE, Access::Admin, admin::projects::delete_observation);
    r.add_long(Method::GET, paths::ADMIN_STATUS, Access::Admin, admin::status::page);
    r.add(Method::GET, paths::ADMIN_AUDIT, Access::Admin, admin::audit::page);

    r.add(Method::GET, paths::API_OPENAPI, Access::Open, api::openapi::serve);
    r.add(Method::GET, paths::API_WHOAMI, Access::Token, api::whoami);
    r.add(Method::PUT, paths::API_PROJECT, Access::Uploader, api::projects::put);
    r.add(Method::PUT, paths::API_OBSERVATION, Access::Uploader, api::observations::put);
    r.add(Method::PUT, paths::API_BEAM, Access::Uploader, api::observations::put_beam);
    r.add(Method::PUT, paths::API_CANDIDATE, Access::Uploader, api::candidates::put);
    r.add(Method::POST, paths::API_CANDIDATES, Access::Uploader, api::candidates::post_batch);
    r.add(Method::GET, paths::API_PROJECTS, Access::Reader, api::read::projects::list);
    r.add(Method::GET, paths::API_PROJECT, Access::Reader, api::read::projects::one);
    r.add(Method::GET, paths::API_PROJECT_OBSERVATIONS, Access::Reader, api::read::projects::observations);
    r.add(Method::GET, paths::API_CANDIDATE_LIST, Access::Reader, api::read::candidates::list);
    r.add(Method::GET, paths::API_CANDIDATE_BY_ID, Access::Reader, api::read::candidates::one);
    r.add(Method::GET, paths::API_CANDIDATES_CSV, Access::Reader, api::read::exports::csv);
    r.add(Method::GET, paths::API_CANDIDATES_VOTABLE, Access::Reader, api::read::exports::votable);
    r.add(Method::GET, paths::API_RATING_CHANGES, Access::Reader, api::read::ratings::changes);
    r.add(Method::POST, paths::API_OBSERVATION_FINISHED, Access::Uploader, api::observations::finished);
}

/// Every route the site serves.
pub fn table() -> Vec<RouteSpec> {
    let mut r = Registry::new(None);
    register(&mut r);
    r.specs
}

/// What the wrapping needs to build real endpoints.
pub struct Wiring<'a> {
    pub sessions: &'a tower_sessions::SessionManagerLayer<PostgresStore>,
    pub public_origin: &'a str,
    pub staging: bool,
}

pub fn router(wiring: &Wiring<'_>) -> Route {
    let mut r = Registry::new(Some(wiring));
    register(&mut r);
    r.paths
        .into_iter()
        .fold(Route::new(), |route, (path, methods)| {
            route.at(path, methods)
        })
}

struct Registry<'a> {
    wiring: Option<&'a Wiring<'a>>,
    specs: Vec<RouteSpec>,
    paths: BTreeMap<&'static str, RouteMethod>,
}

impl<'a> Registry<'a> {
    fn new(wiring: Option<&'a Wiring<'a>>) -> Self {
        Self {
            wiring,
            specs: Vec::new(),
            paths: BTreeMap::new(),
        }
    }

    fn add<E>(&mut self, method: Method, path: &'static str, access: Access, ep: E)
    where
        E: IntoEndpoint,
        E::Endpoint: 'static,
    {
        self.add_with(method, path, access, Budget::Web, ep);
    }

    fn add_long<E>(&mut self, method: Method, path: &'static str, access: Access, ep: E)
    where
        E: IntoEndpoint,
        E::Endpoint: 'static,
    {
        self.add_with(method, path, access, Budget::Long, ep);
    }

    fn add_with<E>(
        &mut self,
        method: Method,
        path: &'static str,
        access: Access,
        budget: Budget,
        ep: E,
    ) where
        E: IntoEndpoint,
        E::Endpoint: 'static,
    {
        let body = match access {
            Access::Uploader => BodyLimit::Upload,
            _ => BodyLimit::Form,
        };
        self.specs.push(RouteSpec {
            method: method.clone(),
            path,
            access,
            body,
            budget,
        });
        let Some(w) = self.wiring else { return };
        let errors = ErrorPages { staging: w.staging };
        let ep = match budget {
            Budget::Web => ep.into_endpoint().boxed(),
            Budget::Long => ep.into_endpoint().with(LongBudget).boxed(),
            Budget::Auth => ep.into_endpoint().with(AuthBudget).boxed(),
        };
        let wrapped = match access {
            Access::Open => ep.with(errors).with(Bounded(body)).boxed(),
            Access::Token | Access::Uploader | Access::Reader => ep
                .with(Guard(access))
                .with(errors)
                .with(Bounded(body))
                .boxed(),
            Access::Public | Access::Reviewer | Access::Admin => {
                let inner = ep
                    .with(Csrf {
                        public_origin: w.public_origin.to_string(),
                    })
                    .with(Guard(access))
                    .with(errors);
                WithSession::new(w.sessions, inner)
                    .with(Bounded(body))
                    .boxed()
            }
        };
        let methods = self.paths.remove(path).unwrap_or_default();
        self.paths.insert(path, methods.method(method, wrapped));
    }
}
