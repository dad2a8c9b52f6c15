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
//!
//! Module map:
//! - this file: the public API ([`AuthUser`], [`AuthError`], [`AuthSetupError`],
//!   [`Authenticator`]) and the verify and issue paths;
//! - `token`: reading the bearer token and its header before the signature is checked, and
//!   mapping jsonwebtoken's failures to an [`AuthError`];
//! - `jwks`: the JWKS key cache, fetching and parsing the set, and the URL and redirect policy.
//! - `test_support` and `tests` (test builds only): the fixtures all auth unit tests share, and
//!   the tests of shared-secret authenticators; the header tests sit in `token`, the JWKS tests
//!   in `jwks/tests.rs`.

mod jwks;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
mod token;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;

use jwks::{JWKS_ALGORITHMS, JwksKeys};
use token::{Claims, IssuedClaims, bearer_token, parse_header, printable_algorithm, rejection};

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
    #[error("token subject contains a NUL character")]
    SubjectHasNul,
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
        Ok(Authenticator {
            verifier: Arc::new(Verifier::Jwks(JwksKeys::load(url).await?)),
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
    /// and `sub` must be a string of at most 255 characters with a non-whitespace character and no
    /// NUL. Tokens with a `crit`
    /// header are rejected, as no extension is understood.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<AuthUser, AuthError> {
        self.authenticate_until(authorization)
            .await
            .map(|(user, _)| user)
    }

    /// As [`Authenticator::authenticate`], also returning when the token expires (its `exp`,
    /// seconds since the epoch): a WebSocket authenticated once is closed then.
    pub async fn authenticate_until(
        &self,
        authorization: Option<&str>,
    ) -> Result<(AuthUser, u64), AuthError> {
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
            .filter(|sub| !sub.trim().is_empty())
            .ok_or(AuthError::MissingSubject)?;
        if sub.chars().count() > MAX_SUBJECT_CHARS {
            return Err(AuthError::SubjectTooLong);
        }
        // The subject is the owner id of every row the caller touches; PostgreSQL cannot
        // store or compare a NUL, so such a token names no user at all.
        if entities::limits::no_nul("sub", &sub).is_err() {
            return Err(AuthError::SubjectHasNul);
        }
        // `exp` is required and was checked above; a float saturates into whole seconds.
        let expires = data.claims.exp.map_or(u64::MAX, |exp| exp.max(0.0) as u64);
        Ok((AuthUser { id: sub }, expires))
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

fn non_empty(value: Option<String>) -> Option<Arc<str>> {
    value
        .filter(|value| !value.trim().is_empty())
        .map(Arc::from)
}
