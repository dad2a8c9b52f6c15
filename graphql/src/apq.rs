//! Automatic persisted queries, Apollo's protocol, over POST and GET.
//!
//! A client sends `extensions.persistedQuery = { version: 1, sha256Hash }` without a query;
//! the gateway answers `PersistedQueryNotFound` (message and `extensions.code`
//! `PERSISTED_QUERY_NOT_FOUND`, HTTP 200) until the client sends the query together with its
//! hash, which is checked and, once the operation has passed parsing and validation,
//! remembered. With the cache turned off (`APQ_CACHE_ENTRIES=0`) every such request gets
//! `PersistedQueryNotSupported`, and Apollo Client falls back to sending whole queries.
//!
//! This is deliberately not async-graphql's `ApolloPersistedQueries` extension: that one stores
//! the parsed document and hands it to the engine with an empty query text, so the document
//! limits (which measure the text before parsing) and the idempotency hash (which covers the
//! text) would see nothing, it parses a registering query itself before the nesting guard runs,
//! its errors carry no code, and it cannot be turned off. Here the transport resolves the
//! hash to the query text before anything else sees the request, so a persisted query is
//! measured, validated and executed exactly like a sent one.
//!
//! Entries are per user (the key is the user id and the hash): the cache cannot tell one user
//! that another has run a given query text, and one user's registrations never answer another's.
//! It is bounded by entries (`APQ_CACHE_ENTRIES`) and by bytes ([`MAX_CACHE_BYTES`]),
//! least recently used first out.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use async_graphql::{ErrorExtensions, ServerError};
use sha2::{Digest, Sha256};

/// The request extension that carries the hash.
pub const EXTENSION: &str = "persistedQuery";

/// The default of `APQ_CACHE_ENTRIES`: a web app has tens of distinct operations, so a
/// thousand covers many clients' worth per gateway.
pub const DEFAULT_CACHE_ENTRIES: usize = 1_000;

/// The most query text the cache holds, whatever the entry count: a thousand entries of a
/// request body each (`MAX_BODY_BYTES`, 1 MiB) would otherwise be a gigabyte.
pub const MAX_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Why a persisted-query request cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersistedQueryError {
    /// The hash is not (or no longer) in the cache: send the query with it.
    #[error("PersistedQueryNotFound")]
    NotFound,
    /// The cache is off (`APQ_CACHE_ENTRIES=0`).
    #[error("PersistedQueryNotSupported")]
    NotSupported,
    /// A malformed extension, an unknown version or a hash that does not match the query.
    #[error("{0}")]
    Invalid(String),
}

impl PersistedQueryError {
    /// `extensions.code` as Apollo Client and Apollo Server spell it (and `BAD_USER_INPUT`
    /// for a malformed request).
    pub fn code(&self) -> &'static str {
        match self {
            PersistedQueryError::NotFound => "PERSISTED_QUERY_NOT_FOUND",
            PersistedQueryError::NotSupported => "PERSISTED_QUERY_NOT_SUPPORTED",
            PersistedQueryError::Invalid(_) => "BAD_USER_INPUT",
        }
    }

    /// Whether the request itself is malformed (HTTP 400) rather than a protocol answer the
    /// client acts on (HTTP 200).
    pub fn is_bad_request(&self) -> bool {
        matches!(self, PersistedQueryError::Invalid(_))
    }

    pub fn into_server_error(self) -> ServerError {
        let code = self.code();
        async_graphql::Error::new(self.to_string())
            .extend_with(|_, e| e.set("code", code))
            .into_server_error(async_graphql::Pos::default())
    }
}

/// A query sent with its hash, to be remembered once it has passed validation.
#[derive(Debug)]
pub struct Registration {
    key: String,
    query: String,
}

/// The bounded cache of persisted query texts, shared by every request of the gateway.
#[derive(Debug)]
pub struct PersistedQueries {
    /// `None` when turned off.
    cache: Option<Mutex<Cache>>,
    /// [`MAX_CACHE_BYTES`] (smaller in tests).
    max_bytes: usize,
}

#[derive(Debug)]
struct Cache {
    entries: lru::LruCache<String, String>,
    bytes: usize,
}

impl PersistedQueries {
    /// A cache of at most `entries` queries; 0 turns persisted queries off.
    pub fn new(entries: usize) -> PersistedQueries {
        PersistedQueries::with_byte_budget(entries, MAX_CACHE_BYTES)
    }

    fn with_byte_budget(entries: usize, max_bytes: usize) -> PersistedQueries {
        PersistedQueries {
            max_bytes,
            cache: NonZeroUsize::new(entries).map(|cap| {
                Mutex::new(Cache {
                    entries: lru::LruCache::new(cap),
                    bytes: 0,
                })
            }),
        }
    }

    /// Applies the protocol to `request` for `user`: without the extension nothing happens;
    /// a hash alone is replaced by its query text (or refused); a query with its hash is
    /// checked and returned as a [`Registration`] to [`PersistedQueries::register`] once the
    /// operation has passed validation. The extension is removed from the request.
    pub fn resolve(
        &self,
        user: &str,
        request: &mut async_graphql::Request,
    ) -> Result<Option<Registration>, PersistedQueryError> {
        let Some(extension) = request.extensions.remove(EXTENSION) else {
            return Ok(None);
        };
        let Some(cache) = &self.cache else {
            return Err(PersistedQueryError::NotSupported);
        };
        let hash = parse_extension(extension)?;
        let key = format!("{user}\u{0}{hash}");
        if request.query.is_empty() {
            let mut cache = lock(cache);
            return match cache.entries.get(&key) {
                Some(query) => {
                    request.query = query.clone();
                    Ok(None)
                }
                None => Err(PersistedQueryError::NotFound),
            };
        }
        if sha256_hex(&request.query) != hash {
            return Err(PersistedQueryError::Invalid(
                "provided sha does not match query".into(),
            ));
        }
        Ok(Some(Registration {
            key,
            query: request.query.clone(),
        }))
    }

    /// Remembers a query sent with its hash, evicting the least recently used entries to stay
    /// within both bounds. A query larger than the whole byte budget is not kept.
    pub fn register(&self, registration: Registration) {
        let Some(cache) = &self.cache else {
            return;
        };
        let size = registration.key.len() + registration.query.len();
        if size > self.max_bytes {
            return;
        }
        let mut cache = lock(cache);
        if let Some(old) = cache.entries.pop(&registration.key) {
            cache.bytes -= registration.key.len() + old.len();
        }
        while cache.bytes + size > self.max_bytes {
            match cache.entries.pop_lru() {
                Some((key, query)) => cache.bytes -= key.len() + query.len(),
                None => break,
            }
        }
        if let Some((key, query)) = cache.entries.push(registration.key, registration.query) {
            cache.bytes -= key.len() + query.len();
        }
        cache.bytes += size;
    }

    /// How many queries are remembered.
    pub fn len(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| lock(c).entries.len())
    }

    /// Whether no query is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The lowercase hex SHA-256 of `query`, as clients compute it.
pub fn sha256_hex(query: &str) -> String {
    Sha256::digest(query.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `{ version: 1, sha256Hash: "<64 hex digits>" }`; the hash comes back in lowercase.
fn parse_extension(value: async_graphql::Value) -> Result<String, PersistedQueryError> {
    let invalid =
        |why: &str| PersistedQueryError::Invalid(format!("extensions.persistedQuery {why}"));
    let async_graphql::Value::Object(fields) = value else {
        return Err(invalid("must be an object"));
    };
    match fields.get("version") {
        Some(async_graphql::Value::Number(n)) if n.as_i64() == Some(1) => {}
        Some(async_graphql::Value::Number(n)) => {
            return Err(PersistedQueryError::Invalid(format!(
                "unsupported persisted query version {n}; only version 1 is supported"
            )));
        }
        _ => return Err(invalid("needs `version: 1`")),
    }
    match fields.get("sha256Hash") {
        Some(async_graphql::Value::String(hash))
            if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok(hash.to_ascii_lowercase())
        }
        _ => Err(invalid(
            "needs `sha256Hash`: the query's SHA-256 as 64 hex digits",
        )),
    }
}

/// The cache's lock; a panic while holding it leaves at worst a wrong byte count.
fn lock(cache: &Mutex<Cache>) -> std::sync::MutexGuard<'_, Cache> {
    cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashed(hash: &str, version: i32) -> async_graphql::Request {
        let mut request = async_graphql::Request::new("");
        request.extensions.insert(
            EXTENSION.to_owned(),
            async_graphql::value!({ "version": version, "sha256Hash": hash }),
        );
        request
    }

    fn with_query(query: &str) -> async_graphql::Request {
        let mut request = hashed(&sha256_hex(query), 1);
        request.query = query.to_owned();
        request
    }

    #[test]
    fn a_hash_is_found_only_after_its_query_was_registered_by_the_same_user() {
        let apq = PersistedQueries::new(10);
        let query = "{ me { id } }";
        let hash = sha256_hex(query);
        assert_eq!(
            apq.resolve("alice", &mut hashed(&hash, 1)).unwrap_err(),
            PersistedQueryError::NotFound
        );
        let registration = apq.resolve("alice", &mut with_query(query)).unwrap();
        apq.register(registration.unwrap());

        let mut request = hashed(&hash.to_ascii_uppercase(), 1);
        assert!(apq.resolve("alice", &mut request).unwrap().is_none());
        assert_eq!(request.query, query);
        assert!(!request.extensions.contains_key(EXTENSION));
        assert_eq!(
            apq.resolve("bob", &mut hashed(&hash, 1)).unwrap_err(),
            PersistedQueryError::NotFound
        );
    }

    #[test]
    fn a_wrong_hash_an_unknown_version_and_a_malformed_extension_are_bad_requests() {
        let apq = PersistedQueries::new(10);
        let mut wrong = with_query("{ me { id } }");
        wrong.query = "{ me { timezone } }".into();
        let err = apq.resolve("alice", &mut wrong).unwrap_err();
        assert!(err.is_bad_request());
        assert_eq!(err.to_string(), "provided sha does not match query");

        let err = apq
            .resolve("alice", &mut hashed(&sha256_hex("{ x }"), 2))
            .unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
        assert!(err.is_bad_request());
        let err = apq.resolve("alice", &mut hashed("abc", 1)).unwrap_err();
        assert!(err.to_string().contains("sha256Hash"), "{err}");
    }

    #[test]
    fn the_cache_keeps_at_most_its_entry_count_dropping_the_least_recently_used() {
        let apq = PersistedQueries::new(2);
        for query in ["{ a }", "{ b }"] {
            let registration = apq.resolve("alice", &mut with_query(query)).unwrap();
            apq.register(registration.unwrap());
        }
        // Using `{ a }` makes `{ b }` the least recently used.
        apq.resolve("alice", &mut hashed(&sha256_hex("{ a }"), 1))
            .unwrap();
        let registration = apq.resolve("alice", &mut with_query("{ c }")).unwrap();
        apq.register(registration.unwrap());

        assert_eq!(apq.len(), 2);
        assert!(
            apq.resolve("alice", &mut hashed(&sha256_hex("{ a }"), 1))
                .is_ok()
        );
        assert_eq!(
            apq.resolve("alice", &mut hashed(&sha256_hex("{ b }"), 1))
                .unwrap_err(),
            PersistedQueryError::NotFound
        );
    }

    #[test]
    fn the_cache_keeps_within_its_byte_budget() {
        let budget = 30_000;
        let apq = PersistedQueries::with_byte_budget(1_000, budget);
        let big = format!("{{ me {{ id }} }} #{}", "x".repeat(budget / 3));
        for n in 0..5 {
            let query = format!("{big}{n}");
            let registration = apq.resolve("alice", &mut with_query(&query)).unwrap();
            apq.register(registration.unwrap());
        }
        assert_eq!(apq.len(), 2);
        let bytes = lock(apq.cache.as_ref().unwrap()).bytes;
        assert!(bytes <= budget, "{bytes}");
    }

    #[test]
    fn with_no_entries_persisted_queries_are_not_supported() {
        let apq = PersistedQueries::new(0);
        assert_eq!(
            apq.resolve("alice", &mut with_query("{ a }")).unwrap_err(),
            PersistedQueryError::NotSupported
        );
        let mut plain = async_graphql::Request::new("{ a }");
        assert!(apq.resolve("alice", &mut plain).unwrap().is_none());
    }
}
