//! The catalog over HTTP: list and show files (public), register and remove them (admin).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use htsprep_shared::catalog::{Catalog, CatalogQuery, ImportReport, import_manifest};
use htsprep_shared::domain::{FileRecord, Ident};

use super::AppState;
use super::admin::{Admin, Viewer};
use super::error::{AdminRefusal, ApiError, ErrorBody, page_limit};
use super::openapi::FilePath;
use super::view::file_view;

fn ident(field: &str, v: &str) -> Result<Ident, ApiError> {
    Ident::parse(v).map_err(|e| ApiError::BadRequest(format!("{field}: {e}")))
}

/// A page of the catalog.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct FilePage {
    files: Vec<FileRecord>,
    /// The cursor of the next page (`?after=DCC/LOCAL_ID`), if there is one.
    next: Option<String>,
}

/// The query of `GET /files`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes what `list` reads
pub(crate) struct FileQuery {
    /// Only this DCC's files.
    dcc: Option<String>,
    /// Files per page.
    limit: Option<usize>,
    /// `DCC/LOCAL_ID` of the previous page's last file.
    after: Option<String>,
}

/// `GET /files`: the catalog (source URLs without query strings or passwords unless the admin
/// token is sent).
#[utoipa::path(get, operation_id = "listFiles", path = "/files", tag = "files", params(FileQuery),
    security((), ("admin" = [])),
    responses(
        (status = 200, body = FilePage),
        (status = 400, description = "A bad DCC, limit or cursor", body = ErrorBody),
        (status = 401, description = "A wrong admin token", body = ErrorBody),
    ))]
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
    Ok(axum::Json(FilePage { files, next }).into_response())
}

/// `GET /files/{dcc}/{local_id}`: one catalog file.
#[utoipa::path(get, operation_id = "getFile", path = "/files/{dcc}/{local_id}", tag = "files", params(FilePath),
    security((), ("admin" = [])),
    responses(
        (status = 200, body = FileRecord),
        (status = 400, description = "A bad identifier", body = ErrorBody),
        (status = 401, description = "A wrong admin token", body = ErrorBody),
        (status = 404, description = "Not registered", body = ErrorBody),
    ))]
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
/// `POST /files` (admin): register files from a JSON Lines body, one file per line.
#[utoipa::path(post, operation_id = "importFiles", path = "/files", tag = "files",
    security(("admin" = [])),
    request_body(content = FileRecord, content_type = "application/x-ndjson",
        description = "JSON Lines: one file per line (`dcc`, `local_id`, `md5`, `size`, `format`, `access_url`, optional `sidecars`)"),
    responses(
        (status = 200, description = "Every row registered", body = ImportReport),
        (status = 422, description = "Some rows were refused (the others registered): each by line", body = ImportReport),
        (status = 400, description = "The body is not JSON Lines", body = ErrorBody),
        AdminRefusal,
    ))]
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
    Ok((status, axum::Json(report)).into_response())
}

/// `DELETE /files/{dcc}/{local_id}` (admin): remove a file from the catalog.
#[utoipa::path(delete, operation_id = "deleteFile", path = "/files/{dcc}/{local_id}", tag = "files", params(FilePath),
    security(("admin" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "A bad identifier", body = ErrorBody),
        AdminRefusal,
        (status = 404, description = "Not registered", body = ErrorBody),
    ))]
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
