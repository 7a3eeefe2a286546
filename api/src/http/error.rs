//! Every API error, and the one place where errors become HTTP responses. Bodies are JSON with a
//! message a user can act on; 5xx bodies say nothing internal (the detail is logged).

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use htsprep_shared::artifacts::{ArtifactError, RangeError};
use htsprep_shared::catalog::CatalogError;
use htsprep_shared::error::{Cause, chain};
use htsprep_shared::jobstore::JobStoreError;

use super::range::RangeHeaderError;

#[derive(Clone, Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    NotReady(String),
    #[error("{0}")]
    Conflict(String),
    #[error("range not satisfiable: the object has {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("this endpoint needs an admin token: send Authorization: Bearer <HTSPREP_ADMIN_TOKEN>")]
    Unauthorized,
    #[error("admin endpoints are disabled: set HTSPREP_ADMIN_TOKEN to enable them")]
    AdminDisabled,
    #[error("too many workflows are being prepared; retry in {}s", retry_after.as_secs())]
    TooBusy { retry_after: Duration },
    #[error("the service is shutting down; retry in {}s", retry_after.as_secs())]
    Draining { retry_after: Duration },
    #[error("{message}")]
    JobFailed { job_id: String, message: String },
    #[error("{0}")]
    Upstream(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("storage is unavailable; retry shortly")]
    Unavailable(#[source] Cause),
    #[error("internal error")]
    Internal(#[source] Cause),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) | ApiError::NotReady(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::AdminDisabled => StatusCode::FORBIDDEN,
            ApiError::TooBusy { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Draining { .. } | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Upstream(_) | ApiError::JobFailed { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::NotReady(_) => "not_ready",
            ApiError::Conflict(_) => "conflict",
            ApiError::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            ApiError::Unauthorized => "unauthorized",
            ApiError::AdminDisabled => "admin_disabled",
            ApiError::TooBusy { .. } => "too_busy",
            ApiError::Draining { .. } => "draining",
            ApiError::Upstream(_) => "upstream_error",
            ApiError::JobFailed { .. } => "job_failed",
            ApiError::Unsupported(_) => "unsupported",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

/// The body of every error answer (htsget's endpoints answer in htsget's own form).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable code: `bad_request`, `not_found`, `not_ready`, `conflict`,
    /// `range_not_satisfiable`, `unauthorized`, `admin_disabled`, `too_busy`, `draining`,
    /// `upstream_error`, `job_failed`, `unsupported`, `unavailable`, `internal`.
    #[schema(value_type = String)]
    pub error: &'static str,
    /// What happened, in words a user can act on.
    pub message: String,
    /// For `job_failed`: the job that failed, and where to read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// The refusals of an admin endpoint, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
pub enum AdminRefusal {
    /// No or a wrong admin token (`WWW-Authenticate: Bearer`).
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// Admin endpoints are off: `HTSPREP_ADMIN_TOKEN` is not set.
    #[response(status = 403)]
    Disabled(ErrorBody),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            ApiError::Internal(_) | ApiError::Unavailable(_) => {
                tracing::error!(%status, error = %chain(&self), "request failed");
            }
            ApiError::Upstream(detail) => tracing::warn!(%status, detail, "upstream failed"),
            _ => {}
        }
        let job_id = match &self {
            ApiError::JobFailed { job_id, .. } => Some(job_id.clone()),
            _ => None,
        };
        let body = ErrorBody {
            error: self.code(),
            message: self.to_string(),
            location: job_id.as_ref().map(super::view::job_location),
            job_id,
        };
        let mut resp = (status, axum::Json(body)).into_response();
        let headers = resp.headers_mut();
        match &self {
            ApiError::RangeNotSatisfiable { size } => {
                headers.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"),
                );
                headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            }
            ApiError::TooBusy { retry_after } | ApiError::Draining { retry_after } => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after.as_secs().max(1)),
                );
            }
            ApiError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            }
            ApiError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::JobFailed { job_id, .. } => {
                if let Ok(v) = HeaderValue::from_str(&format!("/jobs/{job_id}")) {
                    headers.insert(header::LOCATION, v);
                }
            }
            _ => {}
        }
        resp
    }
}

impl From<htsprep_shared::outbound::Refused> for ApiError {
    fn from(e: htsprep_shared::outbound::Refused) -> Self {
        ApiError::Upstream(e.to_string())
    }
}

impl From<RangeHeaderError> for ApiError {
    fn from(e: RangeHeaderError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            CatalogError::Unavailable { .. } => ApiError::Unavailable(Cause::new(e)),
            other => ApiError::Internal(Cause::new(other)),
        }
    }
}

impl From<JobStoreError> for ApiError {
    fn from(e: JobStoreError) -> Self {
        match e {
            JobStoreError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            JobStoreError::WrongStatus { .. } => ApiError::Conflict(e.to_string()),
            JobStoreError::Unavailable { .. } => ApiError::Unavailable(Cause::new(e)),
            other => ApiError::Internal(Cause::new(other)),
        }
    }
}

impl From<ArtifactError> for ApiError {
    fn from(e: ArtifactError) -> Self {
        match e {
            ArtifactError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            ArtifactError::Range(RangeError::NotSatisfiable { size, .. }) => {
                ApiError::RangeNotSatisfiable { size }
            }
            ArtifactError::Range(RangeError::Invalid { .. }) | ArtifactError::InvalidKey(_) => {
                ApiError::BadRequest(e.to_string())
            }
            ArtifactError::Unavailable { .. } => ApiError::Unavailable(Cause::new(e)),
            other => ApiError::Internal(Cause::new(other)),
        }
    }
}

/// The optional `limit` query parameter of a listing.
pub(crate) fn page_limit(
    q: &std::collections::HashMap<String, String>,
) -> Result<Option<usize>, ApiError> {
    q.get("limit")
        .map(|l| {
            l.parse()
                .map_err(|_| ApiError::BadRequest(format!("limit={l:?} is not a number")))
        })
        .transpose()
}
