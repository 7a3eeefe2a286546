//! The catalog over HTTP: list and show files (public), register and remove them (admin).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use htsprep_shared::catalog::{CatalogQuery, import_manifest};
use htsprep_shared::domain::Ident;

use super::AppState;
use super::admin::{Admin, Viewer};
use super::error::{ApiError, page_limit};
use super::view::file_view;

fn ident(field: &str, v: &str) -> Result<Ident, ApiError> {
    Ident::parse(v).map_err(|e| ApiError::BadRequest(format!("{field}: {e}")))
}

pub(crate) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let dcc = q.get("dcc").map(|d| ident("dcc", d)).transpose()?;
    let limit = page_limit(&q)?;
    let after = match q.get("after") {
        None => None,
        Some(a) => {
            let (d, l) = a.split_once('/').ok_or_else(|| {
                ApiError::BadRequest(format!("after={a:?}: expected DCC/LOCAL_ID"))
            })?;
            Some((ident("after", d)?, ident("after", l)?))
        }
    };
    let page = state
        .catalog
        .list(&CatalogQuery { dcc, limit, after })
        .await?;
    let next = page.next.map(|(d, l)| format!("{d}/{l}"));
    let files: Vec<_> = page
        .files
        .into_iter()
        .map(|f| file_view(f, viewer))
        .collect();
    Ok(axum::Json(serde_json::json!({"files": files, "next": next})).into_response())
}

pub(crate) async fn get(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((dcc, local_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let file = state
        .catalog
        .get(&ident("dcc", &dcc)?, &ident("local_id", &local_id)?)
        .await?;
    Ok(axum::Json(file_view(file, viewer)).into_response())
}

/// Registers files from a JSON Lines body (one record per line). Bad rows are reported with
/// their line number; good rows are imported. 422 if any row was rejected. The token is checked
/// before the body is read.
pub(crate) async fn import(
    State(state): State<AppState>,
    _: Admin,
    body: Bytes,
) -> Result<Response, ApiError> {
    let report = import_manifest(state.catalog.as_ref(), &body[..])
        .await
        .map_err(|e| match e {
            htsprep_shared::catalog::ImportError::Catalog(c) => ApiError::from(c),
            other => ApiError::BadRequest(other.to_string()),
        })?;
    let status = if report.rejected.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let rejected: Vec<_> = report
        .rejected
        .iter()
        .map(|r| serde_json::json!({"line": r.line, "reason": r.reason}))
        .collect();
    Ok((
        status,
        axum::Json(serde_json::json!({
            "inserted": report.inserted,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "rejected": rejected,
        })),
    )
        .into_response())
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    _: Admin,
    Path((dcc, local_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (d, l) = (ident("dcc", &dcc)?, ident("local_id", &local_id)?);
    if state.catalog.delete(&d, &l).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound(format!(
            "file {d}/{l} is not registered"
        )))
    }
}
