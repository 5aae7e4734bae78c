//! How a refused API key is answered: 401 `UNAUTHENTICATED` with `WWW-Authenticate: Bearer`,
//! 503 `SERVICE_UNAVAILABLE` while the database cannot check it, 500 otherwise.
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{error_response, unavailable_response};
use crate::auth::AuthRejection;
use crate::code::Code;

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            AuthRejection::Unauthenticated(message) => {
                let mut response =
                    error_response(StatusCode::UNAUTHORIZED, Code::Unauthenticated, message);
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
                response
            }
            AuthRejection::Unavailable => unavailable_response(
                "the database is unavailable, so the API key could not be checked; retry in a moment",
            ),
            AuthRejection::Failed => error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::InternalServerError,
                "the API key could not be checked",
            ),
        }
    }
}
