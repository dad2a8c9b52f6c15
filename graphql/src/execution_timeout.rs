//! The execution timeout as an engine extension, so queries and mutations sent over the
//! WebSocket are cut off like those sent over HTTP (`REQUEST_TIMEOUT_SECS`). Subscriptions are
//! long-lived by design and are not timed.
//!
//! The HTTP handler keeps its own timeout around the whole request (parsing and validation
//! included) as a backstop; both say the same thing.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
use async_graphql::{ErrorExtensions, Response, ServerError};

/// The reply to an operation cut off by the timeout. Root fields of a mutation run one after
/// another, each in its own transaction, so the ones that finished before the cut-off are
/// committed: the outcome is unknown, and the message says how to find out.
pub fn timeout_message(timeout: Duration) -> String {
    format!(
        "the operation took longer than {} s (REQUEST_TIMEOUT_SECS) and was cancelled; its \
         outcome is unknown: root fields that completed before the cut-off are saved, the \
         rest are not. Query the affected data before retrying; a retry with the same \
         Idempotency-Key is refused, never run twice",
        timeout.as_secs()
    )
}

/// One error, code INTERNAL, with [`timeout_message`].
pub fn timeout_error(timeout: Duration) -> ServerError {
    async_graphql::Error::new(timeout_message(timeout))
        .extend_with(|_, e| e.set("code", "INTERNAL"))
        .into_server_error(async_graphql::Pos::default())
}

/// Whether `response` is the reply of an operation the timeout cut off.
pub fn is_timeout(response: &Response) -> bool {
    response.data == async_graphql::Value::Null
        && response.errors.len() == 1
        && response.errors[0]
            .message
            .contains("(REQUEST_TIMEOUT_SECS) and was cancelled")
}

/// Cuts off query and mutation execution after `0`.
pub struct ExecutionTimeout(pub Duration);

impl ExtensionFactory for ExecutionTimeout {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ExecutionTimeoutExtension(self.0))
    }
}

struct ExecutionTimeoutExtension(Duration);

#[async_graphql::async_trait::async_trait]
impl Extension for ExecutionTimeoutExtension {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        match tokio::time::timeout(self.0, next.run(ctx, operation_name)).await {
            Ok(response) => response,
            Err(_) => {
                tracing::warn!(timeout = ?self.0, "an operation timed out and was cancelled");
                Response::from_errors(vec![timeout_error(self.0)])
            }
        }
    }
}
