//! `/`: where a reviewer lands after signing in.

use askama::Template;
use askama_web::WebTemplate;
use poem::handler;

use crate::web::access::CurrentUser;
use crate::web::layout::Layout;

#[derive(Template, WebTemplate)]
#[template(path = "home/page.html")]
pub struct HomePage {
    layout: Layout,
    username: String,
}

#[handler]
pub async fn page(layout: Layout, CurrentUser(user): CurrentUser) -> HomePage {
    HomePage {
        layout,
        username: user.username,
    }
}
