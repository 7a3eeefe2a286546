//! Who is asking: the admin token check, as extractors that run before any body is read.
//!
//! `Admin` guards admin endpoints: a handler taking it never sees a request without the token,
//! and since request-part extractors run before the body extractor, a refused request's body
//! is never read. `Viewer` tells public endpoints whether to show the operator's view (worker
//! addresses, task ARNs, stderr, source URLs with their query strings).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use super::AppState;
use super::error::ApiError;

fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &state.admin_token else {
        return Err(ApiError::AdminDisabled);
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let same = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// The caller holds the admin token.
pub(crate) struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        require_admin(state, &parts.headers).map(|()| Admin)
    }
}

/// Whether a public endpoint answers with the operator's view. No `Authorization` header: the
/// public view; a wrong token: 401 (a mistake worth saying, not a silent downgrade).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Viewer {
    Public,
    Admin,
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            require_admin(state, &parts.headers).map(|()| Viewer::Admin)
        } else {
            Ok(Viewer::Public)
        }
    }
}
