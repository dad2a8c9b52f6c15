//! Bearer-token authentication: turns the raw `Authorization` header into an [`AuthUser`], or into
//! an [`AuthError`] whose text is safe to return to the client.
//!
//! An [`Authenticator`] comes in three kinds:
//! - [`Authenticator::hs256`]: a shared secret (`JWT_SECRET`), HS256 only;
//! - [`Authenticator::jwks`]: public keys published by an identity provider (`JWT_JWKS_URL`),
//!   RSA (RS256/384/512, PS256/384/512) and ECDSA (ES256, ES384), cached by `kid` and refetched
//!   when a token names an unknown `kid`, so key rotation needs no restart;
//! - [`Authenticator::development`]: a random HS256 secret that lives as long as the process;
//!   tokens for it come from [`Authenticator::issue_token`].
//!
//! Each kind can additionally require an audience (`JWT_AUDIENCE`, [`Authenticator::with_audience`])
//! and an issuer (`JWT_ISSUER`, [`Authenticator::with_issuer`]).
//!
//! What it is not: it does no authorisation (which caller may touch which task is the services'
//! business), issues no production tokens (the identity provider does; `issue_token` exists for
//! development mode and tests), keeps no sessions or revocation list, and does no HTTP plumbing
//! (the gateway reads the header and maps every [`AuthError`] to `UNAUTHENTICATED`). The header
//! parameters `jku`, `jwk`, `x5u` and `x5c` are never used to find a key: keys come only from the
//! configuration.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

/// The shortest accepted `JWT_SECRET`, in bytes. RFC 7518 §3.2 requires an HS256 key at least as
/// long as the hash output (256 bits). Anyone who holds a single token can test candidate secrets
/// offline at billions of guesses per second, so a shorter (typically human-chosen) secret is a
/// realistic way to forge tokens for any user.
const MIN_SECRET_BYTES: usize = 32;

/// Clock-skew allowance for `exp` and `nbf`, in seconds. The issuer's and the gateway's clocks
/// drift apart by a few seconds (more on virtual machines resumed from suspend); 30 s absorbs that
/// while keeping an expired token usable for at most half a minute. jsonwebtoken's default of
/// 60 s is more than needed.
const LEEWAY_SECS: u64 = 30;

/// The longest accepted `sub`, in characters. Subjects from real identity providers (UUIDs,
/// `auth0|…`, e-mail addresses) are far shorter; the cap keeps arbitrarily long client-chosen
/// strings out of the database and the logs, and fits a `VARCHAR(255)` column.
const MAX_SUBJECT_CHARS: usize = 255;

/// The longest accepted token, in bytes. Access tokens are well under 2 KiB even with many
/// claims; 8 KiB rejects absurd input before any base64 or JSON work.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

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
const JWKS_ALGORITHMS: [Algorithm; 8] = [
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

/// The algorithms accepted with a shared secret. Only HS256: it is what `issue_token` signs and
/// what the configuration promises; HS384/HS512 add nothing with a 256-bit secret.
const HMAC_ALGORITHMS: [Algorithm; 1] = [Algorithm::HS256];

/// The authenticated caller. `id` is the JWT `sub`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthUser {
    pub id: String,
}

/// Why a request is unauthenticated. The Display text is safe to show the client: it never
/// includes the token, a claim value or key material (only an algorithm name taken from the
/// token's header, and only when it looks like one).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing Authorization header")]
    MissingHeader,
    #[error("Authorization header must be 'Bearer <token>'")]
    MalformedHeader,
    #[error("token is longer than {MAX_TOKEN_BYTES} bytes")]
    TokenTooLong,
    #[error("token is malformed")]
    Malformed,
    #[error("token has critical header parameters, which are not supported")]
    UnsupportedCriticalHeader,
    #[error("token algorithm {0} is not accepted")]
    AlgorithmNotAccepted(String),
    #[error("token has no key id (kid)")]
    MissingKeyId,
    #[error("token signing key (kid) is unknown")]
    UnknownKey,
    #[error("token algorithm does not match its signing key")]
    AlgorithmKeyMismatch,
    #[error("token signature is invalid")]
    InvalidSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not yet valid")]
    NotYetValid,
    #[error("token has no expiry (exp)")]
    MissingExpiry,
    #[error("token has no audience (aud)")]
    MissingAudience,
    #[error("token audience is not accepted")]
    WrongAudience,
    #[error("token has no issuer (iss)")]
    MissingIssuer,
    #[error("token issuer is not accepted")]
    WrongIssuer,
    #[error("token has no subject")]
    MissingSubject,
    #[error("token subject is longer than {MAX_SUBJECT_CHARS} characters")]
    SubjectTooLong,
}

/// Start-up configuration errors. Each message names the environment variable to fix.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error(
        "JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long (it has {len}); \
         generate one with `openssl rand -base64 48`"
    )]
    SecretTooShort { len: usize },
    #[error("JWT_JWKS_URL must be an http:// or https:// URL: {reason}")]
    InvalidJwksUrl { reason: String },
    #[error("could not load signing keys from JWT_JWKS_URL ({url}): {reason}")]
    JwksUnavailable { url: String, reason: String },
    #[error("could not build the HTTP client for JWT_JWKS_URL: {reason}")]
    HttpClient { reason: String },
}

/// Verifies bearer tokens. Cheap to clone (the keys sit behind an `Arc`); shared by all requests.
#[derive(Clone)]
pub struct Authenticator {
    verifier: Arc<Verifier>,
    audience: Option<Arc<str>>,
    issuer: Option<Arc<str>>,
}

enum Verifier {
    Hmac(HmacKeys),
    Jwks(JwksKeys),
}

struct HmacKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    development: bool,
}

/// The JWKS cache: keys by `kid`, replaced wholesale by each successful fetch (so keys the
/// provider withdrew disappear too).
struct JwksKeys {
    url: reqwest::Url,
    /// The URL without user info, for messages and logs.
    shown_url: String,
    client: reqwest::Client,
    keys: RwLock<HashMap<String, Arc<JwkKey>>>,
    /// When the JWKS was last fetched (successfully or not). Held while a refetch runs, so
    /// concurrent requests with the same new `kid` wait for one fetch instead of starting many.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

/// One usable JWKS key and the algorithms it may verify.
struct JwkKey {
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// The parts of a token's header read before the signature is checked.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// The claims this module checks itself; jsonwebtoken checks `exp`, `nbf`, `aud` and `iss`.
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
}

#[derive(Serialize)]
struct IssuedClaims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
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

impl Authenticator {
    /// HS256 with a shared secret (`JWT_SECRET`). Errors if the secret is shorter than 32 bytes:
    /// RFC 7518 requires an HS256 key of at least 256 bits, and since anyone holding one token can
    /// guess secrets offline, a short secret lets an attacker forge tokens for any user. The
    /// secret is used as given (e.g. the UTF-8 bytes of the variable), not base64-decoded.
    pub fn hs256(secret: &[u8]) -> Result<Authenticator, AuthSetupError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(AuthSetupError::SecretTooShort { len: secret.len() });
        }
        Ok(Authenticator::from_hmac(secret, false))
    }

    /// Asymmetric keys from a JWKS URL (`JWT_JWKS_URL`); accepts RS256, RS384, RS512, PS256, PS384,
    /// PS512, ES256 and ES384 (see `JWKS_ALGORITHMS` for why), each key only with the algorithms
    /// that fit it.
    ///
    /// The JWKS is fetched once now; this fails (naming `JWT_JWKS_URL`) if the URL is not http(s),
    /// the server is unreachable within 10 s, answers with an error, or the set has no usable key.
    /// Usable keys are RSA keys of at least 2048 bits and EC P-256/P-384 keys that have a `kid`,
    /// are not marked for encryption, and whose `alg`, if given, fits them; others are skipped
    /// with a warning. Keys are cached by `kid`. A token with an unknown `kid` triggers a refetch,
    /// but at most one fetch happens per 60 s (the start-up fetch counts), so a flood of made-up
    /// `kid`s cannot turn into a flood of requests to the provider. A failed refetch keeps the
    /// cached keys. Tokens must name their key (`kid`).
    ///
    /// Plain http is allowed (for a provider on the same host or network) but logged as a
    /// warning unless the host is a loopback address: whoever can alter the JWKS in transit can
    /// sign tokens for any user.
    pub async fn jwks(url: &str) -> Result<Authenticator, AuthSetupError> {
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
        Ok(Authenticator {
            verifier: Arc::new(Verifier::Jwks(JwksKeys {
                url,
                shown_url,
                client,
                keys: RwLock::new(keys),
                last_fetch: tokio::sync::Mutex::new(Some(Instant::now())),
            })),
            audience: None,
            issuer: None,
        })
    }

    /// Development mode: a random 32-byte HS256 secret generated now from the operating system's
    /// random source. It lives as long as the process, so tokens from
    /// [`Authenticator::issue_token`] stop working at restart, and no two processes share it.
    pub fn development() -> Authenticator {
        let mut secret = [0_u8; MIN_SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        Authenticator::from_hmac(&secret, true)
    }

    /// Whether this authenticator is the generated development one.
    pub fn is_development(&self) -> bool {
        matches!(
            &*self.verifier,
            Verifier::Hmac(HmacKeys {
                development: true,
                ..
            })
        )
    }

    /// Requires the `aud` claim to contain `aud` (`JWT_AUDIENCE`). `None` or an empty string
    /// leaves the audience unchecked, and then tokens with any or no `aud` are accepted (RFC 7519
    /// would reject tokens that carry one). With a JWKS from a provider shared by several APIs,
    /// set it: otherwise a token issued for another API of the same provider is accepted here.
    pub fn with_audience(mut self, aud: Option<String>) -> Self {
        self.audience = non_empty(aud);
        self
    }

    /// Requires the `iss` claim to equal `iss` (`JWT_ISSUER`). `None` or an empty string leaves
    /// the issuer unchecked.
    pub fn with_issuer(mut self, iss: Option<String>) -> Self {
        self.issuer = non_empty(iss);
        self
    }

    /// Issues an HS256 token for `sub`, valid for `ttl` (whole seconds), carrying the configured
    /// audience and issuer. Only HS256 authenticators can do this (development mode and tests);
    /// returns `None` for JWKS ones. `sub` is not checked here: a token for an empty or over-long
    /// subject is issued but will not authenticate.
    pub fn issue_token(&self, sub: &str, ttl: Duration) -> Option<String> {
        let Verifier::Hmac(keys) = &*self.verifier else {
            return None;
        };
        let now = jsonwebtoken::get_current_timestamp();
        let claims = IssuedClaims {
            sub,
            iat: now,
            exp: now.saturating_add(ttl.as_secs()),
            aud: self.audience.as_deref(),
            iss: self.issuer.as_deref(),
        };
        match jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding) {
            Ok(token) => Some(token),
            Err(err) => {
                tracing::error!(error = %err, "could not sign a token");
                None
            }
        }
    }

    /// Verifies the raw value of the `Authorization` header (`None` when absent).
    ///
    /// The value must be `Bearer` (any case), one space and the token. The token's `alg` must be
    /// one this authenticator accepts (HS256 for a secret, see [`Authenticator::jwks`] for a
    /// JWKS; never `none`), and with a JWKS its `kid` must name a known key that fits the `alg`.
    /// Then the signature is checked, `exp` is required and checked, `nbf` is checked when
    /// present (both with 30 s of leeway for clock skew), the audience and issuer when configured,
    /// and `sub` must be a non-empty string of at most 255 characters. Tokens with a `crit`
    /// header are rejected, as no extension is understood.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<AuthUser, AuthError> {
        let token = bearer_token(authorization.ok_or(AuthError::MissingHeader)?)?;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TokenTooLong);
        }
        let header = parse_header(token)?;
        if header.crit.is_some() {
            return Err(AuthError::UnsupportedCriticalHeader);
        }
        let alg = self.accepted_algorithm(&header.alg)?;

        let jwk_key;
        let key = match &*self.verifier {
            Verifier::Hmac(keys) => &keys.decoding,
            Verifier::Jwks(jwks) => {
                let kid = header.kid.as_deref().ok_or(AuthError::MissingKeyId)?;
                jwk_key = jwks.key(kid).await.ok_or(AuthError::UnknownKey)?;
                if !jwk_key.algorithms.contains(&alg) {
                    return Err(AuthError::AlgorithmKeyMismatch);
                }
                &jwk_key.key
            }
        };

        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation(alg))
            .map_err(|err| rejection(err, alg))?;
        let sub = data
            .claims
            .sub
            .filter(|sub| !sub.is_empty())
            .ok_or(AuthError::MissingSubject)?;
        if sub.chars().count() > MAX_SUBJECT_CHARS {
            return Err(AuthError::SubjectTooLong);
        }
        Ok(AuthUser { id: sub })
    }

    fn from_hmac(secret: &[u8], development: bool) -> Authenticator {
        Authenticator {
            verifier: Arc::new(Verifier::Hmac(HmacKeys {
                encoding: EncodingKey::from_secret(secret),
                decoding: DecodingKey::from_secret(secret),
                development,
            })),
            audience: None,
            issuer: None,
        }
    }

    fn accepted_algorithms(&self) -> &'static [Algorithm] {
        match &*self.verifier {
            Verifier::Hmac(_) => &HMAC_ALGORITHMS,
            Verifier::Jwks(_) => &JWKS_ALGORITHMS,
        }
    }

    /// Maps the header's `alg` to an algorithm this authenticator accepts.
    fn accepted_algorithm(&self, name: &str) -> Result<Algorithm, AuthError> {
        Algorithm::from_str(name)
            .ok()
            .filter(|alg| self.accepted_algorithms().contains(alg))
            .ok_or_else(|| AuthError::AlgorithmNotAccepted(printable_algorithm(name)))
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        match &self.audience {
            Some(aud) => {
                validation.set_audience(&[&**aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[&**iss]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        validation
    }
}

impl fmt::Debug for Authenticator {
    /// Shows the kind and the configuration, never the secret or the keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Authenticator");
        match &*self.verifier {
            Verifier::Hmac(keys) if keys.development => debug.field("kind", &"development"),
            Verifier::Hmac(_) => debug.field("kind", &"hs256"),
            Verifier::Jwks(jwks) => debug.field("kind", &"jwks").field("url", &jwks.shown_url),
        };
        debug
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl JwksKeys {
    fn cached(&self, kid: &str) -> Option<Arc<JwkKey>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(kid)
            .cloned()
    }

    /// The key for `kid`, refetching the JWKS if it is unknown and the last fetch is at least
    /// `JWKS_REFETCH_INTERVAL` ago.
    async fn key(&self, kid: &str) -> Option<Arc<JwkKey>> {
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

/// Extracts the token from `Bearer <token>`: the scheme in any case, exactly one space, and a
/// non-empty token without whitespace.
fn bearer_token(value: &str) -> Result<&str, AuthError> {
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::MalformedHeader)?;
    if !scheme.eq_ignore_ascii_case("Bearer")
        || token.is_empty()
        || token.contains(|c: char| c.is_ascii_whitespace())
    {
        return Err(AuthError::MalformedHeader);
    }
    Ok(token)
}

/// Reads the header of a three-part compact JWS. Done here rather than with
/// `jsonwebtoken::decode_header` so that an unknown `alg` such as `none` is reported as not
/// accepted instead of as malformed, and so that `crit` is visible.
fn parse_header(token: &str) -> Result<RawHeader, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| AuthError::Malformed)
}

/// The `alg` from a token's header as it may appear in an error message: verbatim when it looks
/// like an algorithm name, otherwise a placeholder, so arbitrary client text is not echoed.
fn printable_algorithm(name: &str) -> String {
    let looks_like_a_name = !name.is_empty()
        && name.len() <= 16
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '+');
    if looks_like_a_name {
        name.to_owned()
    } else {
        "(unrecognised)".to_owned()
    }
}

/// Maps a jsonwebtoken failure to the client-facing reason.
fn rejection(err: jsonwebtoken::errors::Error, alg: Algorithm) -> AuthError {
    match err.kind() {
        ErrorKind::InvalidSignature => AuthError::InvalidSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => AuthError::MissingExpiry,
            "aud" => AuthError::MissingAudience,
            "iss" => AuthError::MissingIssuer,
            _ => AuthError::Malformed,
        },
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            AuthError::AlgorithmNotAccepted(format!("{alg:?}"))
        }
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => AuthError::Malformed,
        other => {
            // Key or crypto failures (e.g. a JWKS key ring cannot use): the token did not verify.
            tracing::debug!(error = ?other, "token verification failed");
            AuthError::InvalidSignature
        }
    }
}

fn non_empty(value: Option<String>) -> Option<Arc<str>> {
    value
        .filter(|value| !value.trim().is_empty())
        .map(Arc::from)
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::extract::State;
    use axum::http::header::CONTENT_TYPE;
    use axum::routing::get;
    use serde_json::{Value, json};

    use super::*;

    const SECRET: &[u8] = b"an-hs256-test-secret-of-32-bytes+";
    const RSA_PEM: &str = include_str!("../tests/fixtures/jwt_rsa.pem");
    const EC_PEM: &str = include_str!("../tests/fixtures/jwt_ec.pem");
    const JWKS: &str = include_str!("../tests/fixtures/jwks.json");

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn hs256() -> Authenticator {
        Authenticator::hs256(SECRET).expect("the test secret is long enough")
    }

    fn sign(header: &Header, claims: &Value, key: &EncodingKey) -> String {
        jsonwebtoken::encode(header, claims, key).expect("test token signs")
    }

    fn hs_token(secret: &[u8], claims: &Value) -> String {
        sign(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret),
        )
    }

    fn rsa_token(kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = kid.map(str::to_owned);
        let key = EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).expect("RSA fixture loads");
        sign(&header, claims, &key)
    }

    fn ec_token(kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = kid.map(str::to_owned);
        let key = EncodingKey::from_ec_pem(EC_PEM.as_bytes()).expect("EC fixture loads");
        sign(&header, claims, &key)
    }

    fn valid_claims(sub: &str) -> Value {
        json!({ "sub": sub, "iat": now(), "exp": now() + 600 })
    }

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    fn b64(json: &Value) -> String {
        URL_SAFE_NO_PAD.encode(json.to_string())
    }

    /// Asserts the header is rejected with exactly `message`, and that the message does not
    /// leak the token.
    async fn assert_rejected(auth: &Authenticator, header: Option<&str>, message: &str) {
        let err = auth
            .authenticate(header)
            .await
            .expect_err("the header must be rejected");
        let text = err.to_string();
        assert_eq!(text, message, "{header:?}");
        if let Some(token) = header.and_then(|h| h.split_once(' ')).map(|(_, t)| t)
            && token.len() > 3
        {
            assert!(!text.contains(token), "the message leaks the token");
        }
    }

    /// A JWKS endpoint on 127.0.0.1 that counts its hits and whose body can be swapped.
    struct JwksServer {
        url: String,
        hits: Arc<AtomicUsize>,
        body: Arc<Mutex<String>>,
    }

    #[derive(Clone)]
    struct ServerState {
        hits: Arc<AtomicUsize>,
        body: Arc<Mutex<String>>,
    }

    async fn serve_jwks(body: &str) -> JwksServer {
        async fn jwks(
            State(state): State<ServerState>,
        ) -> ([(&'static str, &'static str); 1], String) {
            state.hits.fetch_add(1, Ordering::SeqCst);
            let body = state.body.lock().expect("body lock").clone();
            ([(CONTENT_TYPE.as_str(), "application/json")], body)
        }
        let state = ServerState {
            hits: Arc::new(AtomicUsize::new(0)),
            body: Arc::new(Mutex::new(body.to_owned())),
        };
        let app = Router::new()
            .route("/jwks.json", get(jwks))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        JwksServer {
            url: format!("http://{addr}/jwks.json"),
            hits: state.hits,
            body: state.body,
        }
    }

    fn jwks_keys(auth: &Authenticator) -> &JwksKeys {
        match &*auth.verifier {
            Verifier::Jwks(jwks) => jwks,
            Verifier::Hmac(_) => panic!("not a JWKS authenticator"),
        }
    }

    /// Lets the next unknown `kid` refetch, as if `JWKS_REFETCH_INTERVAL` had passed.
    async fn forget_last_fetch(auth: &Authenticator) {
        *jwks_keys(auth).last_fetch.lock().await = None;
    }

    // Header and token shape.

    #[tokio::test]
    async fn a_missing_header_is_rejected() {
        assert_rejected(&hs256(), None, "missing Authorization header").await;
    }

    #[tokio::test]
    async fn a_scheme_other_than_bearer_is_rejected() {
        let message = "Authorization header must be 'Bearer <token>'";
        assert_rejected(&hs256(), Some("Basic x"), message).await;
        assert_rejected(&hs256(), Some("Bearer"), message).await;
        assert_rejected(&hs256(), Some(""), message).await;
    }

    #[tokio::test]
    async fn an_empty_token_is_rejected() {
        let message = "Authorization header must be 'Bearer <token>'";
        assert_rejected(&hs256(), Some("Bearer "), message).await;
    }

    #[tokio::test]
    async fn extra_whitespace_around_the_token_is_rejected() {
        let token = hs256()
            .issue_token("user-1", Duration::from_secs(60))
            .expect("HS256 issues");
        let message = "Authorization header must be 'Bearer <token>'";
        assert_rejected(&hs256(), Some(&format!("Bearer  {token}")), message).await;
        assert_rejected(&hs256(), Some(&format!("Bearer {token} x")), message).await;
    }

    #[tokio::test]
    async fn the_bearer_scheme_is_case_insensitive() {
        let auth = hs256();
        let token = auth
            .issue_token("user-1", Duration::from_secs(60))
            .expect("HS256 issues");
        let user = auth
            .authenticate(Some(&format!("bEaReR {token}")))
            .await
            .expect("any case of Bearer is accepted");
        assert_eq!(user.id, "user-1");
    }

    #[tokio::test]
    async fn a_garbage_token_is_rejected() {
        let auth = hs256();
        assert_rejected(&auth, Some("Bearer not-a-jwt"), "token is malformed").await;
        assert_rejected(&auth, Some("Bearer a.b.c"), "token is malformed").await;
        assert_rejected(&auth, Some("Bearer a.b.c.d"), "token is malformed").await;
        // With a readable header, the signature is checked before the payload is even decoded.
        let header = b64(&json!({ "alg": "HS256" }));
        let message = "token signature is invalid";
        assert_rejected(&auth, Some(&format!("Bearer {header}.%%%.x")), message).await;
    }

    #[tokio::test]
    async fn an_over_long_token_is_rejected() {
        let token = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_rejected(
            &hs256(),
            Some(&bearer(&token)),
            "token is longer than 8192 bytes",
        )
        .await;
    }

    // Time claims.

    #[tokio::test]
    async fn an_expired_token_is_rejected() {
        let token = hs_token(SECRET, &json!({ "sub": "user-1", "exp": now() - 3600 }));
        assert_rejected(&hs256(), Some(&bearer(&token)), "token has expired").await;
    }

    #[tokio::test]
    async fn a_token_expired_within_the_leeway_is_accepted() {
        let token = hs_token(SECRET, &json!({ "sub": "user-1", "exp": now() - 10 }));
        let user = hs256()
            .authenticate(Some(&bearer(&token)))
            .await
            .expect("10 s past exp is within the 30 s leeway");
        assert_eq!(user.id, "user-1");
    }

    #[tokio::test]
    async fn a_token_without_exp_is_rejected() {
        let token = hs_token(SECRET, &json!({ "sub": "user-1" }));
        assert_rejected(&hs256(), Some(&bearer(&token)), "token has no expiry (exp)").await;
    }

    #[tokio::test]
    async fn a_token_not_yet_valid_is_rejected() {
        let claims = json!({ "sub": "user-1", "nbf": now() + 3600, "exp": now() + 7200 });
        let token = hs_token(SECRET, &claims);
        assert_rejected(&hs256(), Some(&bearer(&token)), "token is not yet valid").await;
    }

    // Signature and algorithm.

    #[tokio::test]
    async fn a_tampered_payload_is_rejected() {
        let auth = hs256();
        let token = auth
            .issue_token("user-1", Duration::from_secs(600))
            .expect("HS256 issues");
        let mut parts = token.split('.');
        let (header, _, signature) = (parts.next(), parts.next(), parts.next());
        let forged_payload = b64(&valid_claims("admin"));
        let forged = format!(
            "{}.{forged_payload}.{}",
            header.expect("header part"),
            signature.expect("signature part")
        );
        assert_rejected(&auth, Some(&bearer(&forged)), "token signature is invalid").await;
    }

    #[tokio::test]
    async fn a_token_signed_with_another_secret_is_rejected() {
        let token = hs_token(
            b"another-secret-that-is-also-32-bytes",
            &valid_claims("user-1"),
        );
        assert_rejected(
            &hs256(),
            Some(&bearer(&token)),
            "token signature is invalid",
        )
        .await;
    }

    #[tokio::test]
    async fn an_alg_none_token_is_rejected() {
        let header = b64(&json!({ "alg": "none", "typ": "JWT" }));
        let payload = b64(&valid_claims("user-1"));
        let token = format!("{header}.{payload}.");
        let message = "token algorithm none is not accepted";
        assert_rejected(&hs256(), Some(&bearer(&token)), message).await;
    }

    #[tokio::test]
    async fn an_unprintable_algorithm_is_not_echoed() {
        let header = b64(&json!({ "alg": "<script>alert(1)</script>" }));
        let token = format!("{header}.{}.sig", b64(&valid_claims("user-1")));
        let message = "token algorithm (unrecognised) is not accepted";
        assert_rejected(&hs256(), Some(&bearer(&token)), message).await;
    }

    #[tokio::test]
    async fn an_rs256_token_is_rejected_by_an_hs256_authenticator() {
        let token = rsa_token(Some("rsa-1"), &valid_claims("user-1"));
        let message = "token algorithm RS256 is not accepted";
        assert_rejected(&hs256(), Some(&bearer(&token)), message).await;
    }

    #[tokio::test]
    async fn an_hs512_token_is_rejected_by_an_hs256_authenticator() {
        let token = sign(
            &Header::new(Algorithm::HS512),
            &valid_claims("user-1"),
            &EncodingKey::from_secret(SECRET),
        );
        let message = "token algorithm HS512 is not accepted";
        assert_rejected(&hs256(), Some(&bearer(&token)), message).await;
    }

    #[tokio::test]
    async fn a_token_with_a_crit_header_is_rejected() {
        let header = b64(&json!({ "alg": "HS256", "crit": ["exp"] }));
        let payload = b64(&valid_claims("user-1"));
        let token = format!("{header}.{payload}.sig");
        let message = "token has critical header parameters, which are not supported";
        assert_rejected(&hs256(), Some(&bearer(&token)), message).await;
    }

    // Subject.

    #[tokio::test]
    async fn a_token_without_sub_is_rejected() {
        let token = hs_token(SECRET, &json!({ "exp": now() + 600 }));
        assert_rejected(&hs256(), Some(&bearer(&token)), "token has no subject").await;
    }

    #[tokio::test]
    async fn a_token_with_an_empty_sub_is_rejected() {
        let token = hs_token(SECRET, &valid_claims(""));
        assert_rejected(&hs256(), Some(&bearer(&token)), "token has no subject").await;
    }

    #[tokio::test]
    async fn a_token_with_a_non_string_sub_is_rejected() {
        let token = hs_token(SECRET, &json!({ "sub": 42, "exp": now() + 600 }));
        assert_rejected(&hs256(), Some(&bearer(&token)), "token is malformed").await;
    }

    #[tokio::test]
    async fn a_token_with_an_over_long_sub_is_rejected() {
        let token = hs_token(SECRET, &valid_claims(&"é".repeat(256)));
        let message = "token subject is longer than 255 characters";
        assert_rejected(&hs256(), Some(&bearer(&token)), message).await;
    }

    #[tokio::test]
    async fn a_sub_of_255_characters_is_accepted() {
        let sub = "é".repeat(255);
        let token = hs_token(SECRET, &valid_claims(&sub));
        let user = hs256()
            .authenticate(Some(&bearer(&token)))
            .await
            .expect("255 characters are allowed, whatever their byte length");
        assert_eq!(user.id, sub);
    }

    // Issuing, secrets and modes.

    #[tokio::test]
    async fn an_issued_hs256_token_round_trips() {
        let auth = hs256();
        let token = auth
            .issue_token("user-42", Duration::from_secs(300))
            .expect("HS256 issues");
        let user = auth
            .authenticate(Some(&bearer(&token)))
            .await
            .expect("its own token verifies");
        assert_eq!(
            user,
            AuthUser {
                id: "user-42".to_owned()
            }
        );
    }

    #[test]
    fn a_short_secret_is_rejected_with_a_message_naming_jwt_secret() {
        let err = Authenticator::hs256(&[b'x'; 31]).expect_err("31 bytes are too short");
        let text = err.to_string();
        assert!(text.contains("JWT_SECRET"), "{text}");
        assert!(text.contains("32"), "{text}");
        assert!(Authenticator::hs256(&[b'x'; 32]).is_ok());
    }

    #[tokio::test]
    async fn development_authenticators_are_marked_and_do_not_share_secrets() {
        let first = Authenticator::development();
        let second = Authenticator::development();
        assert!(first.is_development());
        assert!(!hs256().is_development());
        let token = first
            .issue_token("dev", Duration::from_secs(60))
            .expect("development issues");
        assert_eq!(
            first
                .authenticate(Some(&bearer(&token)))
                .await
                .expect("own token verifies")
                .id,
            "dev"
        );
        assert_rejected(&second, Some(&bearer(&token)), "token signature is invalid").await;
    }

    #[test]
    fn debug_output_does_not_show_the_secret() {
        let text = format!("{:?}", hs256().with_audience(Some("tasks".to_owned())));
        assert!(text.contains("hs256") && text.contains("tasks"), "{text}");
        assert!(!text.contains("an-hs256-test-secret"), "{text}");
    }

    // Audience and issuer.

    #[tokio::test]
    async fn a_configured_audience_is_required() {
        let auth = hs256().with_audience(Some("taskstream".to_owned()));
        let missing = hs_token(SECRET, &valid_claims("user-1"));
        assert_rejected(
            &auth,
            Some(&bearer(&missing)),
            "token has no audience (aud)",
        )
        .await;
        let claims = json!({ "sub": "user-1", "exp": now() + 600, "aud": "billing" });
        let wrong = hs_token(SECRET, &claims);
        assert_rejected(
            &auth,
            Some(&bearer(&wrong)),
            "token audience is not accepted",
        )
        .await;
        let claims =
            json!({ "sub": "user-1", "exp": now() + 600, "aud": ["billing", "taskstream"] });
        let right = hs_token(SECRET, &claims);
        assert!(auth.authenticate(Some(&bearer(&right))).await.is_ok());
        let issued = auth
            .issue_token("user-1", Duration::from_secs(60))
            .expect("HS256 issues");
        assert!(auth.authenticate(Some(&bearer(&issued))).await.is_ok());
    }

    #[tokio::test]
    async fn without_a_configured_audience_any_audience_is_accepted() {
        let auth = hs256().with_audience(Some(String::new()));
        let claims = json!({ "sub": "user-1", "exp": now() + 600, "aud": "anything" });
        let token = hs_token(SECRET, &claims);
        assert!(auth.authenticate(Some(&bearer(&token))).await.is_ok());
    }

    #[tokio::test]
    async fn a_configured_issuer_is_required() {
        let auth = hs256().with_issuer(Some("https://id.example".to_owned()));
        let missing = hs_token(SECRET, &valid_claims("user-1"));
        assert_rejected(&auth, Some(&bearer(&missing)), "token has no issuer (iss)").await;
        let claims = json!({ "sub": "user-1", "exp": now() + 600, "iss": "https://evil.example" });
        let wrong = hs_token(SECRET, &claims);
        assert_rejected(&auth, Some(&bearer(&wrong)), "token issuer is not accepted").await;
        let issued = auth
            .issue_token("user-1", Duration::from_secs(60))
            .expect("HS256 issues");
        assert!(auth.authenticate(Some(&bearer(&issued))).await.is_ok());
    }

    // JWKS.

    #[tokio::test]
    async fn rs256_and_es256_tokens_with_known_kids_are_accepted() {
        let server = serve_jwks(JWKS).await;
        let auth = Authenticator::jwks(&server.url).await.expect("JWKS loads");
        assert!(!auth.is_development());
        let rsa = rsa_token(Some("rsa-1"), &valid_claims("rsa-user"));
        let ec = ec_token(Some("ec-1"), &valid_claims("ec-user"));
        let rsa_user = auth
            .authenticate(Some(&bearer(&rsa)))
            .await
            .expect("RS256 verifies");
        let ec_user = auth
            .authenticate(Some(&bearer(&ec)))
            .await
            .expect("ES256 verifies");
        assert_eq!(rsa_user.id, "rsa-user");
        assert_eq!(ec_user.id, "ec-user");
        assert_eq!(
            server.hits.load(Ordering::SeqCst),
            1,
            "known kids need no refetch"
        );
    }

    #[tokio::test]
    async fn jwks_tokens_are_checked_like_any_other() {
        let server = serve_jwks(JWKS).await;
        let auth = Authenticator::jwks(&server.url)
            .await
            .expect("JWKS loads")
            .with_audience(Some("taskstream".to_owned()));
        let expired = rsa_token(
            Some("rsa-1"),
            &json!({ "sub": "u", "exp": now() - 3600, "aud": "taskstream" }),
        );
        assert_rejected(&auth, Some(&bearer(&expired)), "token has expired").await;
        let no_aud = ec_token(Some("ec-1"), &valid_claims("u"));
        assert_rejected(&auth, Some(&bearer(&no_aud)), "token has no audience (aud)").await;
        let token = rsa_token(Some("rsa-1"), &valid_claims("user-1"));
        let mut parts = token.split('.');
        let (header, _, signature) = (parts.next(), parts.next(), parts.next());
        let claims = json!({ "sub": "admin", "exp": now() + 600, "aud": "taskstream" });
        let forged = format!(
            "{}.{}.{}",
            header.expect("header part"),
            b64(&claims),
            signature.expect("signature part")
        );
        assert_rejected(&auth, Some(&bearer(&forged)), "token signature is invalid").await;
    }

    #[tokio::test]
    async fn an_hs256_token_is_rejected_by_a_jwks_authenticator() {
        let server = serve_jwks(JWKS).await;
        let auth = Authenticator::jwks(&server.url).await.expect("JWKS loads");
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".to_owned());
        // The classic confusion attack: the public key used as an HMAC secret.
        let token = sign(
            &header,
            &valid_claims("user-1"),
            &EncodingKey::from_secret(JWKS.as_bytes()),
        );
        let message = "token algorithm HS256 is not accepted";
        assert_rejected(&auth, Some(&bearer(&token)), message).await;
        let header = b64(&json!({ "alg": "none", "kid": "rsa-1" }));
        let none = format!("{header}.{}.", b64(&valid_claims("user-1")));
        let message = "token algorithm none is not accepted";
        assert_rejected(&auth, Some(&bearer(&none)), message).await;
    }

    #[tokio::test]
    async fn a_jwks_token_without_kid_is_rejected() {
        let server = serve_jwks(JWKS).await;
        let auth = Authenticator::jwks(&server.url).await.expect("JWKS loads");
        let token = rsa_token(None, &valid_claims("user-1"));
        assert_rejected(&auth, Some(&bearer(&token)), "token has no key id (kid)").await;
    }

    #[tokio::test]
    async fn a_token_whose_alg_does_not_fit_its_key_is_rejected() {
        let server = serve_jwks(JWKS).await;
        let auth = Authenticator::jwks(&server.url).await.expect("JWKS loads");
        let token = ec_token(Some("rsa-1"), &valid_claims("user-1"));
        let message = "token algorithm does not match its signing key";
        assert_rejected(&auth, Some(&bearer(&token)), message).await;
    }

    #[tokio::test]
    async fn an_unknown_kid_is_rejected_and_refetches_at_most_once_per_interval() {
        let server = serve_jwks(JWKS).await;
        let auth = Authenticator::jwks(&server.url).await.expect("JWKS loads");
        assert_eq!(server.hits.load(Ordering::SeqCst), 1);
        let token = rsa_token(Some("rsa-unknown"), &valid_claims("user-1"));
        let message = "token signing key (kid) is unknown";

        // Right after the start-up fetch: no refetch.
        assert_rejected(&auth, Some(&bearer(&token)), message).await;
        assert_eq!(server.hits.load(Ordering::SeqCst), 1);

        // Once the interval has passed: one refetch, then none for the next attempts.
        forget_last_fetch(&auth).await;
        for _ in 0..3 {
            assert_rejected(&auth, Some(&bearer(&token)), message).await;
        }
        assert_eq!(server.hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_rotated_key_is_picked_up_without_a_restart() {
        let mut only_rsa: Value = serde_json::from_str(JWKS).expect("fixture is JSON");
        if let Some(keys) = only_rsa["keys"].as_array_mut() {
            keys.retain(|key| key["kid"] == "rsa-1");
        }
        let server = serve_jwks(&only_rsa.to_string()).await;
        let auth = Authenticator::jwks(&server.url).await.expect("JWKS loads");
        let token = ec_token(Some("ec-1"), &valid_claims("user-1"));
        assert_rejected(
            &auth,
            Some(&bearer(&token)),
            "token signing key (kid) is unknown",
        )
        .await;

        *server.body.lock().expect("body lock") = JWKS.to_owned();
        forget_last_fetch(&auth).await;
        let user = auth
            .authenticate(Some(&bearer(&token)))
            .await
            .expect("the new key is fetched");
        assert_eq!(user.id, "user-1");
        assert_eq!(server.hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_refetch_keeps_the_cached_keys() {
        let server = serve_jwks(JWKS).await;
        let auth = Authenticator::jwks(&server.url).await.expect("JWKS loads");
        *server.body.lock().expect("body lock") = "not json".to_owned();
        forget_last_fetch(&auth).await;
        let unknown = rsa_token(Some("rsa-unknown"), &valid_claims("user-1"));
        assert_rejected(
            &auth,
            Some(&bearer(&unknown)),
            "token signing key (kid) is unknown",
        )
        .await;
        assert_eq!(server.hits.load(Ordering::SeqCst), 2);
        let known = rsa_token(Some("rsa-1"), &valid_claims("user-1"));
        assert!(auth.authenticate(Some(&bearer(&known))).await.is_ok());
    }

    #[tokio::test]
    async fn an_unreachable_jwks_url_fails_with_a_message_naming_jwt_jwks_url() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        drop(listener);
        let err = Authenticator::jwks(&format!("http://{addr}/jwks.json"))
            .await
            .expect_err("nothing listens there");
        let text = err.to_string();
        assert!(text.contains("JWT_JWKS_URL"), "{text}");
        assert!(text.contains(&addr.to_string()), "{text}");
    }

    #[tokio::test]
    async fn a_jwks_url_answering_an_error_status_fails() {
        let server = serve_jwks(JWKS).await;
        let url = server.url.replace("/jwks.json", "/missing");
        let err = Authenticator::jwks(&url).await.expect_err("404 fails");
        let text = err.to_string();
        assert!(
            text.contains("JWT_JWKS_URL") && text.contains("HTTP 404"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_jwks_without_usable_keys_fails() {
        let body = json!({ "keys": [
            { "kty": "oct", "kid": "shared", "k": "c2VjcmV0" },
            { "kty": "RSA", "n": "AQAB", "e": "AQAB" },
            { "kty": "EC", "kid": "enc", "use": "enc", "crv": "P-256", "x": "AA", "y": "AA" },
        ] });
        let server = serve_jwks(&body.to_string()).await;
        let err = Authenticator::jwks(&server.url)
            .await
            .expect_err("no usable keys");
        let text = err.to_string();
        assert!(
            text.contains("JWT_JWKS_URL") && text.contains("no usable signing keys"),
            "{text}"
        );
        let server = serve_jwks(r#"{"keys":[]}"#).await;
        assert!(Authenticator::jwks(&server.url).await.is_err());
    }

    #[tokio::test]
    async fn a_non_http_jwks_url_is_rejected() {
        for url in [
            "ftp://127.0.0.1/jwks.json",
            "file:///etc/jwks.json",
            "not a url",
            "",
        ] {
            let err = Authenticator::jwks(url).await.expect_err("only http(s)");
            let text = err.to_string();
            assert!(text.contains("JWT_JWKS_URL"), "{text}");
        }
    }

    #[tokio::test]
    async fn a_jwks_authenticator_issues_no_tokens() {
        let server = serve_jwks(JWKS).await;
        let auth = Authenticator::jwks(&server.url).await.expect("JWKS loads");
        assert!(
            auth.issue_token("user-1", Duration::from_secs(60))
                .is_none()
        );
    }

    #[test]
    fn jwk_keys_are_bound_to_the_algorithms_that_fit_them() {
        let jwks: Value = serde_json::from_str(JWKS).expect("fixture is JSON");
        let mut rsa = jwks["keys"][0].clone();
        let jwk: Jwk = serde_json::from_value(rsa.clone()).expect("RSA JWK");
        assert_eq!(
            jwk_key(&jwk).expect("usable").1.algorithms,
            [Algorithm::RS256]
        );
        rsa.as_object_mut().expect("object").remove("alg");
        let jwk: Jwk = serde_json::from_value(rsa.clone()).expect("RSA JWK");
        assert_eq!(jwk_key(&jwk).expect("usable").1.algorithms, RSA_ALGORITHMS);
        rsa["alg"] = json!("ES256");
        let jwk: Jwk = serde_json::from_value(rsa).expect("RSA JWK");
        assert!(jwk_key(&jwk).is_err());
        let mut ec = jwks["keys"][1].clone();
        ec.as_object_mut().expect("object").remove("alg");
        let jwk: Jwk = serde_json::from_value(ec).expect("EC JWK");
        assert_eq!(
            jwk_key(&jwk).expect("usable").1.algorithms,
            [Algorithm::ES256]
        );
    }

    #[test]
    fn bit_length_counts_significant_bits() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[0, 1]), 1);
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(bit_length(&[0, 0x7f, 0]), 15);
    }
}
