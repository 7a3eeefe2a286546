//! GA4GH DRS: `drs://host/object_id` resolves to an https access URL
//! (`GET https://host/ga4gh/drs/v1/objects/{id}`, then `/access/{access_id}` when needed).

use htsprep_shared::outbound::SourceClient;
use htsprep_shared::retry::{Retryable, backoff};
use serde::Deserialize;
use url::Url;

use super::http::{Resolved, check_status, classify, redact};
use super::{FetchError, FetchOptions};

#[derive(Deserialize)]
struct DrsObject {
    #[serde(default)]
    access_methods: Vec<AccessMethod>,
}

#[derive(Deserialize)]
struct AccessMethod {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    access_url: Option<AccessUrl>,
    #[serde(default)]
    access_id: Option<String>,
}

#[derive(Deserialize)]
struct AccessUrl {
    url: String,
    #[serde(default)]
    headers: Vec<String>,
}

fn drs_err(url: &Url, reason: impl Into<String>) -> FetchError {
    FetchError::Drs {
        url: url.to_string(),
        reason: reason.into(),
    }
}

/// The DRS server's base URL for a `drs://` URL. Plain http is used only for loopback hosts
/// (local development and tests), as for catalog URLs.
fn base_url(drs: &Url) -> Result<(Url, String), FetchError> {
    let host = drs.host_str().ok_or_else(|| drs_err(drs, "no host"))?;
    let id = drs.path().trim_start_matches('/');
    if id.is_empty() {
        return Err(drs_err(drs, "no object id"));
    }
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    let scheme = if loopback { "http" } else { "https" };
    let port = drs.port().map(|p| format!(":{p}")).unwrap_or_default();
    let base = Url::parse(&format!("{scheme}://{host}{port}/ga4gh/drs/v1/objects/"))
        .map_err(|e| drs_err(drs, e.to_string()))?;
    Ok((base, id.to_owned()))
}

fn headers(list: &[String]) -> Vec<(String, String)> {
    list.iter()
        .filter_map(|h| h.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

async fn get_json<T: for<'de> Deserialize<'de>>(
    client: &SourceClient,
    drs: &Url,
    url: &Url,
) -> Result<T, FetchError> {
    let resp = client
        .request(reqwest::Method::GET, url)?
        .send()
        .await
        .map_err(|e| classify(url, e))?;
    check_status(url, resp.status())?;
    resp.json::<T>().await.map_err(|e| {
        drs_err(
            drs,
            format!("{} answered with an unreadable document: {e}", redact(url)),
        )
    })
}

pub(crate) async fn resolve(
    client: &SourceClient,
    options: &FetchOptions,
    drs: &Url,
) -> Result<Resolved, FetchError> {
    let (base, id) = base_url(drs)?;
    let object_url = base.join(&id).map_err(|e| drs_err(drs, e.to_string()))?;
    let object: DrsObject = (|| get_json(client, drs, &object_url))
        .retry(backoff(options.attempts, options.backoff))
        .when(FetchError::is_retryable)
        .await?;
    let allowed = |kind: &str| kind == "https" || (kind == "http" && object_url.scheme() == "http");
    let method = object
        .access_methods
        .iter()
        .find(|m| allowed(&m.kind))
        .ok_or_else(|| drs_err(drs, "the object offers no https access method"))?;
    let access = match (&method.access_url, &method.access_id) {
        (Some(a), _) => Resolved {
            url: Url::parse(&a.url).map_err(|e| drs_err(drs, format!("bad access_url: {e}")))?,
            headers: headers(&a.headers),
        },
        (None, Some(access_id)) => {
            let url = base
                .join(&format!("{id}/access/{access_id}"))
                .map_err(|e| drs_err(drs, e.to_string()))?;
            let a: AccessUrl = get_json(client, drs, &url).await?;
            Resolved {
                url: Url::parse(&a.url)
                    .map_err(|e| drs_err(drs, format!("bad access url: {e}")))?,
                headers: headers(&a.headers),
            }
        }
        (None, None) => {
            return Err(drs_err(
                drs,
                "the access method has neither access_url nor access_id",
            ));
        }
    };
    if !allowed(access.url.scheme()) {
        return Err(drs_err(
            drs,
            format!("access URL scheme {:?} is not https", access.url.scheme()),
        ));
    }
    Ok(access)
}
