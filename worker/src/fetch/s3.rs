//! `s3://bucket/key` sources, streamed to disk with the worker's S3 client.

use aws_sdk_s3::Client;
use htsprep_shared::domain::Md5;
use htsprep_shared::error::Cause;
use url::Url;

use super::FetchError;
use super::sink::{HashingFile, Target};

/// Decodes `%XX` escapes in a URL path.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) async fn download(
    client: &Client,
    url: &Url,
    target: &Target<'_>,
) -> Result<(u64, Md5), FetchError> {
    let bucket = url.host_str().unwrap_or_default();
    let key = percent_decode(url.path().trim_start_matches('/'));
    let out = client
        .get_object()
        .bucket(bucket)
        .key(&key)
        .send()
        .await
        .map_err(|e| {
            let status = e.raw_response().map(|r| r.status().as_u16());
            match e.as_service_error() {
                Some(se) if se.is_no_such_key() => FetchError::NotFound {
                    url: url.to_string(),
                    reason: "no such key".into(),
                },
                _ if status == Some(404) => FetchError::NotFound {
                    url: url.to_string(),
                    reason: "HTTP 404".into(),
                },
                _ => match status {
                    Some(code) => FetchError::HttpStatus {
                        url: url.to_string(),
                        status: code,
                    },
                    None => FetchError::Unreachable {
                        url: url.to_string(),
                        what: "S3 did not answer",
                        source: Cause::new(e),
                    },
                },
            }
        })?;
    let mut body = out.body;
    let mut file = HashingFile::create(target, url.to_string()).await?;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| FetchError::Unreachable {
            url: url.to_string(),
            what: "the transfer failed",
            source: Cause::new(e),
        })?;
        file.write(&chunk).await?;
    }
    file.finish().await
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn paths_are_percent_decoded() {
        assert_eq!(percent_decode("a%20b/c%2Bd.bed"), "a b/c+d.bed");
        assert_eq!(percent_decode("plain/key.vcf.gz"), "plain/key.vcf.gz");
        assert_eq!(percent_decode("bad%zzescape%"), "bad%zzescape%");
    }
}
