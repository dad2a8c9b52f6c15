//! JWKS keys: fetching the set from `JWT_JWKS_URL` (timeout, size cap, redirect policy), turning
//! each JWK into a verification key bound to the algorithms that fit it, and caching the keys by
//! `kid` with a rate-limited refetch for unknown ones.
//!
//! What it is not: it verifies no token (the [`Authenticator`](super::Authenticator) does, with a
//! key from here), and it never takes a key or a key URL from a token's header (`jku`, `jwk`,
//! `x5u`, `x5c`): keys come only from the configured URL.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::AuthSetupError;

#[cfg(test)]
mod tests;

/// The minimum time between two JWKS fetches, the start-up fetch included. A token with an
/// unknown `kid` costs nothing to make, so without a limit a flood of them would turn into a
/// flood of requests to the identity provider (and stall requests behind the fetches).
/// Providers usually publish a new key before signing with it, and a client whose token is
/// rejected meanwhile can retry, so a delay of up to a minute in seeing a new key is harmless.
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// The timeout of one JWKS fetch, connecting included. Long enough for a slow provider, short
/// enough that start-up fails clearly instead of hanging, and that requests waiting for a refetch
/// are not held for long.
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest accepted JWKS response, in bytes. A JWKS holds a handful of keys (a few KiB); the
/// cap stops a misconfigured URL pointing at something large from filling memory.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// The most redirects followed when fetching the JWKS. Providers sometimes redirect once (e.g.
/// to a CDN); a longer chain is a misconfiguration.
const MAX_JWKS_REDIRECTS: usize = 5;

/// RSA keys in the JWKS with a shorter modulus are ignored. 2048 bits is the NIST minimum and
/// also what `ring` refuses to go below when verifying, so such a key could never verify anyway;
/// skipping it at load time gives a clear log line instead.
const MIN_RSA_BITS: usize = 2048;

/// The algorithms accepted with JWKS keys: every asymmetric algorithm that `ring` verifies and
/// identity providers use (RSA PKCS#1 v1.5 and PSS with SHA-2, ECDSA on P-256 and P-384).
/// Accepting all of them is safe because a key is only ever used with the algorithms that fit it
/// (its `alg` if the JWK names one, otherwise its key type and curve), and all of them need the
/// provider's private key to sign. HMAC is excluded (a JWKS is public, so an HMAC "key" in it, or a
/// public key abused as an HMAC secret, would let anyone sign), as are `none` and EdDSA (no
/// provider we target uses it; adding it is one entry here plus OKP keys in `jwk_key`).
pub(super) const JWKS_ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// The algorithms an RSA key may verify when its JWK names no `alg`.
const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// The JWKS cache: keys by `kid`, replaced wholesale by each successful fetch (so keys the
/// provider withdrew disappear too).
pub(super) struct JwksKeys {
    url: reqwest::Url,
    /// The URL without user info, for messages and logs.
    pub(super) shown_url: String,
    client: reqwest::Client,
    keys: RwLock<HashMap<String, Arc<JwkKey>>>,
    /// When the JWKS was last fetched (successfully or not). Held while a refetch runs, so
    /// concurrent requests with the same new `kid` wait for one fetch instead of starting many.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

/// One usable JWKS key and the algorithms it may verify.
pub(super) struct JwkKey {
    pub(super) key: DecodingKey,
    pub(super) algorithms: Vec<Algorithm>,
}

/// A JWKS document, with its keys left raw so that one key of an unsupported kind does not make
/// the whole set unreadable.
#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

/// Why fetching the JWKS failed (at start-up or on a refetch).
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("request failed: {0}")]
    Request(String),
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("the response is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("the response is not a JWKS: {0}")]
    NotJwks(String),
    #[error("the JWKS has no usable signing keys (RSA or EC P-256/P-384 keys with a kid)")]
    NoUsableKeys,
}

impl JwksKeys {
    /// Fetches the JWKS at `url` once, for [`Authenticator::jwks`](super::Authenticator::jwks),
    /// which documents the checks and their failures.
    pub(super) async fn load(url: &str) -> Result<JwksKeys, AuthSetupError> {
        let url = parse_jwks_url(url)?;
        let shown_url = without_user_info(&url);
        if url.scheme() == "http" && !is_loopback(&url) {
            tracing::warn!(
                url = %shown_url,
                "JWT_JWKS_URL uses plain http; anyone able to alter the response can forge tokens"
            );
        }
        let client = reqwest::Client::builder()
            .timeout(JWKS_FETCH_TIMEOUT)
            .redirect(redirect_policy())
            .user_agent(concat!("taskstream/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| AuthSetupError::HttpClient {
                reason: describe_request_error(err),
            })?;
        let keys =
            fetch_keys(&client, &url)
                .await
                .map_err(|err| AuthSetupError::JwksUnavailable {
                    url: shown_url.clone(),
                    reason: err.to_string(),
                })?;
        tracing::info!(url = %shown_url, kids = ?sorted_kids(&keys), "loaded JWKS signing keys");
        Ok(JwksKeys {
            url,
            shown_url,
            client,
            keys: RwLock::new(keys),
            last_fetch: tokio::sync::Mutex::new(Some(Instant::now())),
        })
    }

    fn cached(&self, kid: &str) -> Option<Arc<JwkKey>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(kid)
            .cloned()
    }

    /// The key for `kid`, refetching the JWKS if it is unknown and the last fetch is at least
    /// `JWKS_REFETCH_INTERVAL` ago.
    pub(super) async fn key(&self, kid: &str) -> Option<Arc<JwkKey>> {
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        let mut last_fetch = self.last_fetch.lock().await;
        // Another request may have refetched while this one waited for the lock.
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        if last_fetch.is_some_and(|at| at.elapsed() < JWKS_REFETCH_INTERVAL) {
            tracing::debug!(kid = ?kid, "unknown kid; JWKS fetched recently, not refetching");
            return None;
        }
        *last_fetch = Some(Instant::now());
        match fetch_keys(&self.client, &self.url).await {
            Ok(keys) => {
                tracing::info!(
                    url = %self.shown_url,
                    kids = ?sorted_kids(&keys),
                    "refetched JWKS signing keys"
                );
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
            }
            Err(err) => tracing::warn!(
                url = %self.shown_url,
                error = %err,
                "JWKS refetch failed; keeping the cached keys"
            ),
        }
        self.cached(kid)
    }
}

fn parse_jwks_url(raw: &str) -> Result<reqwest::Url, AuthSetupError> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|err| AuthSetupError::InvalidJwksUrl {
        reason: err.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(AuthSetupError::InvalidJwksUrl {
            reason: format!("the scheme is '{}'", url.scheme()),
        });
    }
    if url.host().is_none() {
        return Err(AuthSetupError::InvalidJwksUrl {
            reason: "it has no host".to_owned(),
        });
    }
    Ok(url)
}

/// The URL with any user name and password removed, for messages and logs.
fn without_user_info(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    // Both only fail for URLs that cannot have user info, which then has nothing to remove.
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    shown.to_string()
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Follows up to `MAX_JWKS_REDIRECTS` redirects, but never from https to http.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let downgrade = attempt.url().scheme() != "https"
            && attempt
                .previous()
                .iter()
                .any(|previous| previous.scheme() == "https");
        if downgrade {
            attempt.error("refusing a redirect from https to http")
        } else if attempt.previous().len() > MAX_JWKS_REDIRECTS {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    })
}

/// A reqwest error with its causes (which carry the useful part, e.g. "connection refused"),
/// without the URL (callers show it themselves, without user info).
fn describe_request_error(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn sorted_kids(keys: &HashMap<String, Arc<JwkKey>>) -> Vec<&str> {
    let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
    kids.sort_unstable();
    kids
}

async fn fetch_keys(
    client: &reqwest::Client,
    url: &reqwest::Url,
) -> Result<HashMap<String, Arc<JwkKey>>, FetchError> {
    let mut response = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|err| FetchError::Request(describe_request_error(err)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status(status.as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
    {
        return Err(FetchError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| FetchError::Request(describe_request_error(err)))?
    {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    parse_jwks(&body)
}

/// Reads a JWKS, keeping the usable keys and logging why the others are skipped.
fn parse_jwks(body: &[u8]) -> Result<HashMap<String, Arc<JwkKey>>, FetchError> {
    let jwks: RawJwks =
        serde_json::from_slice(body).map_err(|err| FetchError::NotJwks(err.to_string()))?;
    let mut keys = HashMap::new();
    for value in jwks.keys {
        let jwk: Jwk = match serde_json::from_value(value) {
            Ok(jwk) => jwk,
            Err(err) => {
                tracing::warn!(error = %err, "skipping a JWKS entry that is not a supported JWK");
                continue;
            }
        };
        match jwk_key(&jwk) {
            Ok((kid, key)) => match keys.entry(kid) {
                Entry::Occupied(taken) => {
                    let kid = taken.key();
                    tracing::warn!(kid, "skipping a JWKS key whose kid is already taken");
                }
                Entry::Vacant(free) => {
                    free.insert(Arc::new(key));
                }
            },
            Err(reason) => {
                tracing::warn!(kid = ?jwk.common.key_id, reason, "skipping a JWKS key");
            }
        }
    }
    if keys.is_empty() {
        return Err(FetchError::NoUsableKeys);
    }
    Ok(keys)
}

/// Turns one JWK into a verification key with the algorithms it may verify, or says why it is
/// not usable.
fn jwk_key(jwk: &Jwk) -> Result<(String, JwkKey), &'static str> {
    let kid = jwk
        .common
        .key_id
        .clone()
        .filter(|kid| !kid.is_empty())
        .ok_or("it has no kid")?;
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(_) => return Err("its use is not sig"),
    }
    if let Some(operations) = &jwk.common.key_operations
        && !operations.contains(&KeyOperations::Verify)
    {
        return Err("its key_ops do not include verify");
    }
    let fitting: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let modulus = URL_SAFE_NO_PAD
                .decode(&rsa.n)
                .map_err(|_| "its modulus is not base64url")?;
            if bit_length(&modulus) < MIN_RSA_BITS {
                return Err("its RSA modulus is shorter than 2048 bits");
            }
            &RSA_ALGORITHMS
        }
        AlgorithmParameters::EllipticCurve(ec) => {
            let (algorithm, coordinate_len) = match ec.curve {
                EllipticCurve::P256 => (&[Algorithm::ES256], 32),
                EllipticCurve::P384 => (&[Algorithm::ES384], 48),
                _ => return Err("its curve is not P-256 or P-384"),
            };
            let x = URL_SAFE_NO_PAD
                .decode(&ec.x)
                .map_err(|_| "x is not base64url")?;
            let y = URL_SAFE_NO_PAD
                .decode(&ec.y)
                .map_err(|_| "y is not base64url")?;
            if x.len() != coordinate_len || y.len() != coordinate_len {
                return Err("its coordinates do not have the curve's length");
            }
            algorithm
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err(
                "it is a symmetric (oct) key, which a public JWKS must not be trusted with",
            );
        }
        AlgorithmParameters::OctetKeyPair(_) => return Err("OKP (EdDSA) keys are not accepted"),
    };
    let algorithms = match jwk.common.key_algorithm {
        None => fitting.to_vec(),
        Some(named) => {
            let alg = Algorithm::from_str(&named.to_string())
                .ok()
                .filter(|alg| fitting.contains(alg))
                .ok_or("its alg does not fit its key type or is not accepted")?;
            vec![alg]
        }
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "its key parameters are invalid")?;
    Ok((kid, JwkKey { key, algorithms }))
}

/// The number of significant bits in a big-endian unsigned integer.
fn bit_length(bytes: &[u8]) -> usize {
    let significant = bytes
        .iter()
        .position(|&byte| byte != 0)
        .map_or(&[][..], |first| &bytes[first..]);
    match significant.first() {
        Some(first) => significant.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}
