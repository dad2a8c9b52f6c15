//! The one error type at the gateway edge. Its variants are what a client can act on; each maps
//! to one `extensions.code` (see [`ApiError::code`], the single table). Internal causes are
//! logged with the request id and never returned. Database constraint violations are mapped by
//! the constraint's name ([`constraints`]).

pub mod constraints;

use async_graphql::ErrorExtensions;
use sea_orm::DbErr;

/// Errors a resolver returns. Messages of the client-facing variants are sentences that name
/// the offending field (e.g. `input.title must not be empty`).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Input the client must fix; `field` is the input path it concerns (`input.title`,
    /// `filter.or[1].dueBefore`), returned as `extensions.field`.
    #[error("{message}")]
    BadUserInput {
        message: String,
        field: Option<String>,
    },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state; `field` is the input path it concerns,
    /// when it concerns one (a tag's `name`, `input.expectedVersion`).
    #[error("{message}")]
    Conflict {
        message: String,
        field: Option<String>,
    },
    #[error("{0}")]
    RateLimited(String),
    /// Anything the client cannot fix. Display is generic; the cause is only logged.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// The `extensions.code` table (the README's error contract): one code per variant.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadUserInput { .. } => "BAD_USER_INPUT",
            ApiError::Unauthenticated(_) => "UNAUTHENTICATED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::Conflict { .. } => "CONFLICT",
            ApiError::RateLimited(_) => "RATE_LIMITED",
            ApiError::Internal(_) => "INTERNAL",
        }
    }

    /// Bad input that concerns no single field (e.g. two arguments that exclude each other).
    pub fn bad_input(message: impl Into<String>) -> ApiError {
        ApiError::BadUserInput {
            message: message.into(),
            field: None,
        }
    }

    /// Bad input at `field` (its input path); `message` is a sentence that names it too.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::BadUserInput {
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// `invalid(field, _)` as a function of the message, for `map_err` on validators that
    /// return their message.
    pub fn at(field: impl Into<String>) -> impl FnOnce(String) -> ApiError {
        let field = field.into();
        move |message| ApiError::invalid(field, message)
    }

    pub fn not_found(what: &str, id: &str) -> ApiError {
        ApiError::NotFound(format!("{what} {id} not found"))
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> ApiError {
        ApiError::Internal(err.into())
    }
}

/// A constraint a request can violate becomes its `CONFLICT`; any other database error is
/// `INTERNAL` (see [`constraints::api_error`]).
impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> ApiError {
        constraints::api_error(err)
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> async_graphql::Error {
        if let ApiError::Internal(cause) = &err {
            // The request id is on the enclosing span, so this line carries it.
            tracing::error!(error = ?cause, "internal error while resolving a request");
        }
        let code = err.code();
        let field = match &err {
            ApiError::BadUserInput { field, .. } | ApiError::Conflict { field, .. } => {
                field.clone()
            }
            _ => None,
        };
        async_graphql::Error::new(err.to_string()).extend_with(|_, e| {
            e.set("code", code);
            if let Some(field) = field {
                e.set("field", field);
            }
        })
    }
}

/// Result alias for service functions and resolvers.
pub type ApiResult<T> = Result<T, ApiError>;
