//! What every page's base layout needs: who is signed in, the CSRF token for
//! its forms, a pending flash message, whether this is staging, and the
//! user's keyboard settings.

use poem::{FromRequest, Request, RequestBody};

use crate::web::plumbing::access::CurrentUser;
use crate::web::plumbing::assets;
use crate::web::plumbing::error::{AppError, WebResult};
use crate::web::plumbing::session::{Flash, TypedSession};
use crate::web::state::AppState;

pub struct LayoutUser {
    pub username: String,
    pub is_admin: bool,
    /// The user's keyboard, for `app.js` (on `<body>`).
    pub single_key_shortcuts: bool,
    /// JSON, default key to the user's key.
    pub key_map: String,
}

pub struct Layout {
    pub user: Option<LayoutUser>,
    pub csrf_token: String,
    pub flash: Option<Flash>,
    pub staging: bool,
}

impl Layout {
    /// For pages rendered without a session (error pages).
    pub fn bare(staging: bool) -> Self {
        Self {
            user: None,
            csrf_token: String::new(),
            flash: None,
            staging,
        }
    }

    pub fn asset(&self, name: &str) -> String {
        assets::url(name)
    }
}

impl Layout {
    pub async fn for_request(req: &Request) -> WebResult<Self> {
        let state = req
            .extensions()
            .get::<AppState>()
            .ok_or_else(|| AppError::internal("app state missing"))?;
        let session = TypedSession::from_request_ref(req)?;
        let user = req.extensions().get::<CurrentUser>().map(|u| LayoutUser {
            username: u.0.username.clone(),
            is_admin: u.0.is_admin(),
            single_key_shortcuts: u.0.single_key_shortcuts,
            key_map: u.0.key_map.to_json(),
        });
        // A visitor who is not signed in gets a token that lives in a cookie
        // (see `csrf`), so that an anonymous page view stores no session.
        let csrf_token = if user.is_some() {
            session.csrf_token().await?
        } else {
            crate::web::plumbing::csrf::presession_cookie(req)
                .unwrap_or_else(crate::web::plumbing::session::new_csrf_token)
        };
        Ok(Self {
            user,
            csrf_token,
            flash: session.take_flash().await?,
            staging: state.config.staging,
        })
    }
}

impl<'a> FromRequest<'a> for Layout {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        Ok(Self::for_request(req).await?)
    }
}
