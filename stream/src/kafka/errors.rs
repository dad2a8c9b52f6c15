//! How rskafka's errors become [`LogError`]s: what a caller may retry (`Unavailable`), what
//! means "your offset is wrong" (`OffsetOutOfRange`, decided by the caller that knows the
//! offset), and everything else (`Fatal`).

use rskafka::ConnectionError;
use rskafka::client::error::{Error, ProtocolError, RequestError, ServerErrorResponse};

use crate::log::LogError;

/// `operation` names what failed, for the message (for example `produce to task-events[1]`).
pub(super) fn log_error(operation: &str, error: &Error) -> LogError {
    let message = format!("{operation}: {error}");
    if is_transient(error) {
        LogError::Unavailable(message)
    } else {
        LogError::Fatal(message)
    }
}

/// The high watermark a broker reported along with a fetch error, if it did.
pub(super) fn fetch_error_high_watermark(error: &Error) -> Option<i64> {
    match error {
        Error::ServerError {
            response: Some(ServerErrorResponse::PartitionFetchState { high_watermark, .. }),
            ..
        } => Some(*high_watermark),
        _ => None,
    }
}

/// Whether the broker answered "offset out of range".
pub(super) fn is_offset_out_of_range(error: &Error) -> bool {
    matches!(
        error,
        Error::ServerError {
            protocol_error: ProtocolError::OffsetOutOfRange,
            ..
        }
    )
}

fn is_transient(error: &Error) -> bool {
    match error {
        Error::Connection(error) => connection_is_transient(error),
        Error::Request(error) => request_is_transient(error),
        // rskafka retries only connection, IO and leadership errors, so running out of retries
        // means the cluster was unreachable for the whole deadline.
        Error::RetryFailed(_) | Error::Timeout => true,
        Error::ServerError { protocol_error, .. } => server_error_is_transient(*protocol_error),
        // A response rskafka could not make sense of: retrying will not fix it.
        Error::InvalidResponse(_) => false,
        _ => false,
    }
}

fn connection_is_transient(error: &ConnectionError) -> bool {
    match error {
        // Refused, reset, TLS handshake interrupted, DNS: the broker may come back.
        ConnectionError::Transport { .. } | ConnectionError::RetryFailed(_) => true,
        ConnectionError::Metadata(error) => request_is_transient(error),
        // No common protocol version, or bad credentials: configuration, not weather.
        ConnectionError::SyncVersions(_) | ConnectionError::SaslFailed(_) => false,
        _ => false,
    }
}

fn request_is_transient(error: &RequestError) -> bool {
    matches!(error, RequestError::IO(_) | RequestError::Poisoned(_))
}

/// Broker answers that mean "not now" rather than "never".
fn server_error_is_transient(error: ProtocolError) -> bool {
    matches!(
        error,
        ProtocolError::LeaderNotAvailable
            | ProtocolError::NotLeaderOrFollower
            | ProtocolError::RequestTimedOut
            | ProtocolError::BrokerNotAvailable
            | ProtocolError::ReplicaNotAvailable
            | ProtocolError::NetworkException
            | ProtocolError::CoordinatorLoadInProgress
            | ProtocolError::CoordinatorNotAvailable
            | ProtocolError::NotCoordinator
            | ProtocolError::NotEnoughReplicas
            | ProtocolError::NotEnoughReplicasAfterAppend
            | ProtocolError::NotController
            | ProtocolError::KafkaStorageError
            | ProtocolError::FencedLeaderEpoch
            | ProtocolError::UnknownLeaderEpoch
            | ProtocolError::OffsetNotAvailable
            | ProtocolError::PreferredLeaderNotAvailable
            | ProtocolError::EligibleLeadersNotAvailable
            | ProtocolError::ThrottlingQuotaExceeded
            | ProtocolError::ReassignmentInProgress
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_and_exhausted_retries_are_transient() {
        let io = Error::Request(RequestError::IO(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert!(
            matches!(log_error("produce", &io), LogError::Unavailable(m) if m.starts_with("produce: "))
        );
        assert!(log_error("fetch", &Error::Timeout).is_transient());
    }

    #[test]
    fn unknown_topic_and_bad_responses_are_fatal() {
        let unknown = Error::ServerError {
            protocol_error: ProtocolError::UnknownTopicOrPartition,
            error_message: None,
            request: rskafka::client::error::RequestContext::Topic("t".into()),
            response: None,
            is_virtual: false,
        };
        assert!(matches!(log_error("x", &unknown), LogError::Fatal(_)));
        let invalid = Error::InvalidResponse("garbage".into());
        assert!(matches!(log_error("x", &invalid), LogError::Fatal(_)));
    }

    #[test]
    fn leadership_changes_are_transient() {
        let moved = Error::ServerError {
            protocol_error: ProtocolError::NotLeaderOrFollower,
            error_message: None,
            request: rskafka::client::error::RequestContext::Partition("t".into(), 0),
            response: None,
            is_virtual: false,
        };
        assert!(log_error("x", &moved).is_transient());
    }
}
