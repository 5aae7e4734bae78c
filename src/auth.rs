//! Who is calling. Until API keys exist, every request acts for the demo tenant (the
//! oldest tenant in the database); the tenant already travels in the request as a
//! [`Principal`] and every query is scoped by it.
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use crate::scope::TenantId;
use crate::startup::AppState;

/// The caller of a request.
#[derive(Clone, Copy, Debug)]
pub struct Principal {
    /// The tenant whose data the caller sees.
    pub tenant: TenantId,
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(
        _parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match state.default_tenant {
            Some(tenant) => Ok(Principal { tenant }),
            None => Err((
                StatusCode::UNAUTHORIZED,
                "no tenant: create one, or start the server without --no-demo",
            )),
        }
    }
}
