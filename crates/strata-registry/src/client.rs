//! A blocking client for the OCI distribution API: blobs (check, mount, chunked upload,
//! download) and manifests (put, get with content negotiation and digest checks).

use std::io::Read;
use std::sync::Mutex;

use reqwest::StatusCode;
use reqwest::blocking::{RequestBuilder, Response};
use reqwest::header::{self, HeaderMap};
use strata_store::{Digest, StoreError};

use crate::MAX_MANIFEST_BYTES;
use crate::auth::{Challenge, Credentials, credentials_for, parse_challenge};
use crate::error::{RegistryError, Result};

/// Manifest types strata accepts, in the `Accept` header of every manifest request.
pub const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// An open upload: where its next chunk goes and how many bytes the registry holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadSession {
    /// The absolute URL of the session, from the registry's last `Location`.
    pub location: String,
    /// Bytes received so far, where the next chunk starts.
    pub offset: u64,
}

/// A connection to one registry.
#[derive(Debug)]
pub struct Client {
    http: reqwest::blocking::Client,
    base: String,
    credentials: Option<Credentials>,
    /// The `Authorization` value that last worked.
    authorization: Mutex<Option<String>>,
}

impl Client {
    /// Connects to `registry` (`HOST[:PORT]`) over HTTPS, or HTTP with `plain_http`.
    pub fn new(registry: &str, plain_http: bool) -> Result<Client> {
        let http = reqwest::blocking::Client::builder()
            .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
            .timeout(None)
            .build()
            .map_err(|source| RegistryError::Http {
                operation: "start the HTTP client".to_owned(),
                url: registry.to_owned(),
                source,
            })?;
        let scheme = if plain_http { "http" } else { "https" };
        Ok(Client {
            http,
            base: format!("{scheme}://{registry}"),
            credentials: credentials_for(registry)?,
            authorization: Mutex::new(None),
        })
    }

    /// True when the repository has the blob.
    pub fn has_blob(&self, repository: &str, digest: &Digest) -> Result<bool> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let response = self.send("check blob", &url, |http| http.head(&url))?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error("check blob", &url, response)),
        }
    }

    /// Asks the registry to mount `digest` from repository `from`; true only for 201 Created.
    /// A 202 means the registry started an upload instead, which is then abandoned.
    pub fn mount_blob(&self, repository: &str, from: &str, digest: &Digest) -> Result<bool> {
        let url = format!(
            "{}/v2/{repository}/blobs/uploads/?mount={digest}&from={from}",
            self.base
        );
        let response = self.send("mount blob", &url, |http| http.post(&url))?;
        match response.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                if let Some(location) = self.location(&response) {
                    let _ = self.send("cancel upload", &location, |http| http.delete(&location));
                }
                Ok(false)
            }
            _ => Err(status_error("mount blob", &url, response)),
        }
    }

    /// Returns the scheme, host and port that requests go to.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Opens an upload session in `repository`.
    pub fn start_upload(&self, repository: &str) -> Result<UploadSession> {
        let url = format!("{}/v2/{repository}/blobs/uploads/", self.base);
        let response = self.send("start upload", &url, |http| {
            http.post(&url).header(header::CONTENT_LENGTH, 0)
        })?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(status_error("start upload", &url, response));
        }
        let location = self.location(&response).ok_or_else(|| {
            RegistryError::Invalid(format!("{url} started an upload without a Location"))
        })?;
        Ok(UploadSession {
            location,
            offset: 0,
        })
    }

    /// Asks how much of the upload at `location` the registry holds; `None` when the registry
    /// no longer knows it (expired, or dropped after a broken chunk), so it must start over.
    pub fn upload_status(&self, location: &str) -> Result<Option<UploadSession>> {
        let response = self.send("check upload", location, |http| http.get(location))?;
        match response.status() {
            StatusCode::NO_CONTENT | StatusCode::OK => {}
            status if status.is_client_error() => return Ok(None),
            _ => return Err(status_error("check upload", location, response)),
        }
        let offset = match header_text(response.headers(), header::RANGE) {
            Some(range) => parse_upload_range(&range).ok_or_else(|| {
                RegistryError::Invalid(format!(
                    "{location} reported the upload range `{range}`, not `0-END`"
                ))
            })?,
            None => 0,
        };
        let location = self
            .location(&response)
            .unwrap_or_else(|| location.to_owned());
        Ok(Some(UploadSession { location, offset }))
    }

    /// Sends the next chunk of an upload, with its inclusive `Content-Range`, and returns the
    /// session moved past it.
    pub fn upload_chunk(&self, session: &UploadSession, chunk: &[u8]) -> Result<UploadSession> {
        let url = &session.location;
        let end = session.offset + chunk.len() as u64;
        let range = format!("{}-{}", session.offset, end - 1);
        let response = self.send("upload chunk", url, |http| {
            http.patch(url)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_RANGE, &range)
                .header(header::CONTENT_LENGTH, chunk.len())
                .body(chunk.to_vec())
        })?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(status_error("upload chunk", url, response));
        }
        Ok(UploadSession {
            location: self.location(&response).unwrap_or_else(|| url.clone()),
            offset: end,
        })
    }

    /// Closes an upload with the blob's digest, which the registry checks.
    pub fn finish_upload(&self, session: &UploadSession, digest: &Digest) -> Result<()> {
        let location = &session.location;
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{separator}digest={digest}");
        let response = self.send("finish upload", &url, |http| {
            http.put(&url).header(header::CONTENT_LENGTH, 0)
        })?;
        if response.status() != StatusCode::CREATED {
            return Err(status_error("finish upload", &url, response));
        }
        Ok(())
    }

    /// Downloads a blob from byte `offset` on and returns the response with the offset its body
    /// really starts at: `offset` when the registry honoured the range, 0 when it sent it all.
    pub fn get_blob_from(
        &self,
        repository: &str,
        digest: &Digest,
        offset: u64,
    ) -> Result<(Response, u64)> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let range = format!("bytes={offset}-");
        let response = self.send("download blob", &url, |http| match offset {
            0 => http.get(&url),
            _ => http.get(&url).header(header::RANGE, &range),
        })?;
        match response.status() {
            StatusCode::OK => Ok((response, 0)),
            StatusCode::PARTIAL_CONTENT => {
                let start = header_text(response.headers(), header::CONTENT_RANGE)
                    .and_then(|value| parse_content_range_start(&value));
                match start {
                    Some(start) if start == offset => Ok((response, offset)),
                    _ => Err(RegistryError::Invalid(format!(
                        "{url} answered `Range: {range}` with another range"
                    ))),
                }
            }
            StatusCode::RANGE_NOT_SATISFIABLE => self.get_blob_from(repository, digest, 0),
            _ => Err(status_error("download blob", &url, response)),
        }
    }

    /// Stores a manifest under a tag or its digest.
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<()> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(RegistryError::Invalid(format!(
                "the manifest is {} bytes, over the {MAX_MANIFEST_BYTES}-byte limit registries apply",
                bytes.len()
            )));
        }
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let response = self.send("push manifest", &url, |http| {
            http.put(&url)
                .header(header::CONTENT_TYPE, media_type)
                .body(bytes.to_vec())
        })?;
        if response.status() != StatusCode::CREATED {
            return Err(status_error("push manifest", &url, response));
        }
        Ok(())
    }

    /// Fetches a manifest by tag or digest and returns its bytes and media type. The bytes are
    /// checked against `Docker-Content-Digest` and, for a digest reference, against it.
    pub fn get_manifest(&self, repository: &str, reference: &str) -> Result<(Vec<u8>, String)> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let accept = MANIFEST_TYPES.join(", ");
        let mut response = self.send("fetch manifest", &url, |http| {
            http.get(&url).header(header::ACCEPT, &accept)
        })?;
        if response.status() != StatusCode::OK {
            return Err(status_error("fetch manifest", &url, response));
        }
        let too_large = || {
            RegistryError::Invalid(format!(
                "the manifest at {url} is over the {MAX_MANIFEST_BYTES}-byte limit; strata does not read it"
            ))
        };
        if response
            .content_length()
            .is_some_and(|length| length > MAX_MANIFEST_BYTES as u64)
        {
            return Err(too_large());
        }
        let media_type = header_text(response.headers(), header::CONTENT_TYPE).unwrap_or_default();
        let claimed = header_text(response.headers(), "docker-content-digest");
        let mut bytes = Vec::new();
        (&mut response)
            .take(MAX_MANIFEST_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| RegistryError::Io {
                context: format!("cannot read the manifest at {url}"),
                source,
            })?;
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(too_large());
        }
        let actual = Digest::of(&bytes);
        let expected = [
            claimed,
            reference
                .starts_with("sha256:")
                .then(|| reference.to_owned()),
        ];
        for expected in expected.into_iter().flatten() {
            if expected != actual.as_str() {
                return Err(RegistryError::Invalid(format!(
                    "the manifest at {url} hashes to {actual}, not {expected}"
                )));
            }
        }
        Ok((bytes, media_type))
    }

    /// Sends a request built by `build`, authenticating after a 401 challenge and retrying once.
    fn send(
        &self,
        operation: &str,
        url: &str,
        build: impl Fn(&reqwest::blocking::Client) -> RequestBuilder,
    ) -> Result<Response> {
        let authorization = self
            .authorization
            .lock()
            .map(|guard| guard.clone())
            .unwrap_or(None);
        let response = self.execute(
            operation,
            url,
            with_auth(build(&self.http), authorization.as_deref()),
        )?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenge = header_text(response.headers(), header::WWW_AUTHENTICATE)
            .and_then(|value| parse_challenge(&value));
        let authorization = match challenge {
            Some(Challenge::Basic) => match &self.credentials {
                Some(credentials) => credentials.basic_header(),
                None => return Err(missing_credentials(operation, url)),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => self.fetch_token(&realm, service.as_deref(), scope.as_deref())?,
            None => return Err(status_error(operation, url, response)),
        };
        if let Ok(mut guard) = self.authorization.lock() {
            *guard = Some(authorization.clone());
        }
        let response = self.execute(
            operation,
            url,
            with_auth(build(&self.http), Some(&authorization)),
        )?;
        if response.status() == StatusCode::UNAUTHORIZED && self.credentials.is_none() {
            return Err(missing_credentials(operation, url));
        }
        Ok(response)
    }

    fn execute(&self, operation: &str, url: &str, request: RequestBuilder) -> Result<Response> {
        request.send().map_err(|source| RegistryError::Http {
            operation: operation.to_owned(),
            url: url.to_owned(),
            source: source.without_url(),
        })
    }

    /// Exchanges the credentials (or nothing, anonymously) for a bearer token.
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<String> {
        let mut request = self.http.get(realm);
        let query: Vec<(&str, &str)> = [("service", service), ("scope", scope)]
            .into_iter()
            .filter_map(|(key, value)| value.map(|value| (key, value)))
            .collect();
        request = request.query(&query);
        if let Some(credentials) = &self.credentials {
            request = request.header(header::AUTHORIZATION, credentials.basic_header());
        }
        let response = self.execute("fetch token", realm, request)?;
        if !response.status().is_success() {
            return Err(status_error("fetch token", realm, response));
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let text = response.text().map_err(|source| RegistryError::Http {
            operation: "read token".to_owned(),
            url: realm.to_owned(),
            source,
        })?;
        let answer: TokenAnswer = serde_json::from_str(&text).map_err(|error| {
            RegistryError::Invalid(format!(
                "the token endpoint {realm} sent invalid JSON: {error}"
            ))
        })?;
        let token = answer.token.or(answer.access_token).ok_or_else(|| {
            RegistryError::Invalid(format!("the token endpoint {realm} sent no token"))
        })?;
        Ok(format!("Bearer {token}"))
    }

    /// Returns the absolute URL of a response's `Location` header.
    fn location(&self, response: &Response) -> Option<String> {
        let location = header_text(response.headers(), header::LOCATION)?;
        if location.starts_with("http://") || location.starts_with("https://") {
            Some(location)
        } else {
            Some(format!("{}{location}", self.base))
        }
    }
}

fn with_auth(request: RequestBuilder, authorization: Option<&str>) -> RequestBuilder {
    match authorization {
        Some(value) => request.header(header::AUTHORIZATION, value),
        None => request,
    }
}

fn header_text(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers.get(name)?.to_str().ok().map(str::to_owned)
}

fn missing_credentials(operation: &str, url: &str) -> RegistryError {
    RegistryError::Invalid(format!(
        "{operation} at {url} needs credentials: `docker login` the registry, or set \
         STRATA_REGISTRY_USERNAME and STRATA_REGISTRY_PASSWORD"
    ))
}

fn status_error(operation: &str, url: &str, response: Response) -> RegistryError {
    let status = response.status().as_u16();
    let body = response.text().unwrap_or_default();
    RegistryError::Status {
        operation: operation.to_owned(),
        url: url.to_owned(),
        status,
        body: body.chars().take(300).collect(),
    }
}

/// Reads an upload's `Range: 0-END` as the offset after it. The distribution registry reports
/// an empty upload as `0-0`, the same as one holding a single byte; it is read as empty, and a
/// one-byte blob that was in fact received is refused with 416 and started over.
fn parse_upload_range(value: &str) -> Option<u64> {
    let (start, end) = value.trim().trim_start_matches("bytes=").split_once('-')?;
    if start != "0" {
        return None;
    }
    match end.parse::<u64>().ok()? {
        0 => Some(0),
        end => Some(end + 1),
    }
}

/// Reads the start of a `Content-Range: bytes START-END/SIZE`.
fn parse_content_range_start(value: &str) -> Option<u64> {
    let range = value.trim().strip_prefix("bytes ")?;
    range.split('-').next()?.parse().ok()
}

/// True for failures another try may get past: a broken connection, a timeout, a 5xx, 408 or
/// 429. A refusal (any other 4xx) or bad content is final.
pub fn is_transient(error: &RegistryError) -> bool {
    match error {
        RegistryError::Http { source, .. } => !source.is_builder(),
        RegistryError::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
        RegistryError::Store(StoreError::Io { .. }) => true,
        _ => false,
    }
}
