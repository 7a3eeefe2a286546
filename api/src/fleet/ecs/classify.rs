//! What an ECS error means for the caller: wait and retry (throttling, capacity, a server or
//! network fault), or stop (bad configuration, missing permissions).

use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};

/// How a failed ECS call should be handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EcsFault {
    /// Over the API rate, or no capacity now: back off and retry.
    Throttled(String),
    /// A server or network fault: retry.
    Transient(String),
    /// Retrying cannot help.
    Permanent(String),
}

impl EcsFault {
    pub fn message(&self) -> &str {
        match self {
            EcsFault::Throttled(m) | EcsFault::Transient(m) | EcsFault::Permanent(m) => m,
        }
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self, EcsFault::Permanent(_))
    }
}

const THROTTLING_CODES: [&str; 6] = [
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServerException",
    "ServiceUnavailable",
];

/// Classifies a failed SDK call to `operation`.
pub fn classify<E>(operation: &str, err: &SdkError<E>) -> EcsFault
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let status = service.raw().status().as_u16();
            classify_code(operation, e.code(), e.message(), status)
        }
        SdkError::ConstructionFailure(_) => EcsFault::Permanent(format!(
            "{operation} could not be built: {}",
            aws_sdk_ecs::error::DisplayErrorContext(err)
        )),
        // Timeouts, connection failures, unparseable responses (an emulator's HTML 500): the
        // call may succeed later; `clientToken` keeps a retried RunTask idempotent.
        _ => EcsFault::Transient(format!(
            "{operation} failed: {}",
            aws_sdk_ecs::error::DisplayErrorContext(err)
        )),
    }
}

/// Classifies an error by its code, message and HTTP status.
pub fn classify_code(
    operation: &str,
    code: Option<&str>,
    message: Option<&str>,
    status: u16,
) -> EcsFault {
    let code = code.unwrap_or("UnknownError");
    let message = message.unwrap_or("");
    let text = format!("{operation}: {code}: {message}");
    if THROTTLING_CODES.contains(&code)
        || message
            .to_ascii_lowercase()
            .contains("request limit exceeded")
        || message.to_ascii_lowercase().contains("rate exceeded")
    {
        return EcsFault::Throttled(text);
    }
    match code {
        "AccessDeniedException" | "UnauthorizedOperation" => EcsFault::Permanent(format!(
            "{text} (the API's task role needs ecs:RunTask, ecs:ListTasks, ecs:DescribeTasks and \
             ecs:StopTask on the cluster, and iam:PassRole on the worker's task and execution \
             roles; see deploy/README.md)"
        )),
        "ClusterNotFoundException" => {
            EcsFault::Permanent(format!("{text} (check ECS_CLUSTER and AWS_REGION)"))
        }
        "ClientException"
        | "InvalidParameterException"
        | "PlatformUnknownException"
        | "PlatformTaskDefinitionIncompatibilityException"
        | "UnsupportedFeatureException"
        | "BlockedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "ValidationException" => EcsFault::Permanent(text),
        _ if status >= 500 => EcsFault::Transient(text),
        _ => EcsFault::Permanent(text),
    }
}

/// Phrases of `failures[].reason` that mean "no capacity or quota now, try later". Fargate
/// reports these with HTTP 200.
const CAPACITY_REASONS: [&str; 9] = [
    "capacity is unavailable",
    "reached the limit",
    "limit on the number of",
    "resource:",
    "agent",
    "try again",
    "throttl",
    "rate exceeded",
    "quota",
];

/// Classifies one entry of `RunTask`'s `failures[]`.
pub fn classify_failure(reason: Option<&str>, detail: Option<&str>) -> EcsFault {
    let reason = reason.unwrap_or("unknown reason");
    let text = match detail {
        Some(d) if !d.is_empty() => format!("RunTask failure: {reason} ({d})"),
        _ => format!("RunTask failure: {reason}"),
    };
    let lower = reason.to_ascii_lowercase();
    if CAPACITY_REASONS.iter().any(|p| lower.contains(p)) {
        EcsFault::Throttled(text)
    } else {
        EcsFault::Permanent(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_capacity_are_retryable_and_configuration_is_not() {
        let c =
            |code: &str, msg: &str, status| classify_code("RunTask", Some(code), Some(msg), status);
        assert!(matches!(
            c("ThrottlingException", "Rate exceeded", 400),
            EcsFault::Throttled(_)
        ));
        assert!(matches!(
            c("ServerException", "internal", 500),
            EcsFault::Throttled(_)
        ));
        assert!(matches!(
            c("InvalidParameterException", "Request limit exceeded.", 400),
            EcsFault::Throttled(_)
        ));
        assert!(matches!(
            c("InternalFailure", "", 503),
            EcsFault::Transient(_)
        ));
        let denied = c(
            "AccessDeniedException",
            "User is not authorized to perform: iam:PassRole",
            400,
        );
        assert!(denied.is_permanent());
        assert!(
            denied.message().contains("iam:PassRole on the worker"),
            "{denied:?}"
        );
        for code in [
            "ClientException",
            "InvalidParameterException",
            "ClusterNotFoundException",
        ] {
            assert!(c(code, "bad", 400).is_permanent(), "{code}");
        }
        assert!(c("SomethingNew", "bad", 400).is_permanent());

        assert!(matches!(
            classify_failure(
                Some(
                    "Capacity is unavailable at this time. Please try again later or in a different availability zone"
                ),
                None
            ),
            EcsFault::Throttled(_)
        ));
        assert!(matches!(
            classify_failure(
                Some(
                    "You\u{2019}ve reached the limit on the number of vCPUs you can run concurrently"
                ),
                None
            ),
            EcsFault::Throttled(_)
        ));
        assert!(
            classify_failure(Some("MISSING"), Some("arn:aws:ecs:task-definition/x")).is_permanent()
        );
    }
}
