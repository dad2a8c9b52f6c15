//! W3C trace context (`traceparent`) between processes: written into each event when it is
//! appended to the outbox (and rewritten by the relay to its publish span), read back by the
//! consumer runtime to make the handler's span a child. So one trace runs mutation → outbox →
//! relay → broker → subscriber → follow-up event.
//!
//! Without an exporter ([`crate::exporting`] false) spans have no OpenTelemetry context: these
//! functions then return `None` / `false` and cost almost nothing.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The header (and CloudEvents extension attribute) name.
pub const TRACEPARENT: &str = "traceparent";

/// The `traceparent` of `span`, or `None` when it has no valid trace context.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    if !crate::exporting() || span.is_disabled() {
        return None;
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// The `traceparent` of the current span (see [`traceparent_of`]).
pub fn current_traceparent() -> Option<String> {
    traceparent_of(&tracing::Span::current())
}

/// Makes `span` a child of the remote span named by `traceparent`, or, when there is none (or
/// it is malformed), the root of a new trace: never a child of the long-lived local span it
/// was created in (a consumer's partition loop), which would put every record of a process
/// in one endless trace. Call it before the span is first entered. Returns whether it
/// continued a remote trace.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) -> bool {
    if !crate::exporting() || span.is_disabled() {
        return false;
    }
    let mut carrier: HashMap<String, String> = HashMap::new();
    if let Some(traceparent) = traceparent {
        carrier.insert(TRACEPARENT.to_owned(), traceparent.to_owned());
    }
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        span.set_parent(cx).is_ok()
    } else {
        let _ = span.set_parent(opentelemetry::Context::new());
        false
    }
}
