//! htsget's errors: `{"htsget": {"error": "<Kind>", "message": "..."}}` with the spec's status.
//! Errors the spec has no name for (a busy service, storage down, a failed preparation) keep the
//! API's own answers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;

/// The error names htsget 1.3 defines, those this server answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    InvalidAuthentication,
    PermissionDenied,
    NotFound,
    UnsupportedFormat,
    InvalidInput,
    InvalidRange,
}

impl Kind {
    fn status(self) -> StatusCode {
        match self {
            Kind::InvalidAuthentication => StatusCode::UNAUTHORIZED,
            Kind::PermissionDenied => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::UnsupportedFormat | Kind::InvalidInput | Kind::InvalidRange => {
                StatusCode::BAD_REQUEST
            }
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::InvalidAuthentication => "InvalidAuthentication",
            Kind::PermissionDenied => "PermissionDenied",
            Kind::NotFound => "NotFound",
            Kind::UnsupportedFormat => "UnsupportedFormat",
            Kind::InvalidInput => "InvalidInput",
            Kind::InvalidRange => "InvalidRange",
        }
    }
}

/// htsget's error body.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = HtsgetError)]
pub struct Body {
    htsget: Detail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = HtsgetErrorDetail)]
pub struct Detail {
    /// `InvalidAuthentication`, `PermissionDenied`, `NotFound`, `UnsupportedFormat`,
    /// `InvalidInput` or `InvalidRange`.
    #[schema(value_type = String)]
    error: &'static str,
    message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum HtsgetError {
    #[error("{message}")]
    Spec { kind: Kind, message: String },
    #[error(transparent)]
    Api(ApiError),
}

impl HtsgetError {
    pub fn spec(kind: Kind, message: impl Into<String>) -> Self {
        HtsgetError::Spec {
            kind,
            message: message.into(),
        }
    }
}

impl From<ApiError> for HtsgetError {
    /// The API's client errors under htsget's names; the rest as the API answers them.
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::NotFound(m) | ApiError::NotReady(m) => HtsgetError::spec(Kind::NotFound, m),
            ApiError::BadRequest(m) => HtsgetError::spec(Kind::InvalidInput, m),
            ApiError::Unauthorized => HtsgetError::spec(Kind::InvalidAuthentication, e.to_string()),
            ApiError::AdminDisabled => HtsgetError::spec(Kind::PermissionDenied, e.to_string()),
            other => HtsgetError::Api(other),
        }
    }
}

impl IntoResponse for HtsgetError {
    fn into_response(self) -> Response {
        match self {
            HtsgetError::Spec { kind, message } => (
                kind.status(),
                axum::Json(Body {
                    htsget: Detail {
                        error: kind.name(),
                        message,
                    },
                }),
            )
                .into_response(),
            HtsgetError::Api(e) => e.into_response(),
        }
    }
}
