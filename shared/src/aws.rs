//! AWS SDK clients, built once at cold start.

use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use std::time::Duration;

/// Loads region and credentials the standard way (environment, Lambda role).
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// How long DynamoDB may take: to connect, per attempt, and per operation with its
/// retries. A webhook or create that cannot store in this time answers a retryable
/// 5xx well before the invocation's own timeout.
pub fn dynamodb_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .read_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build()
}

/// A DynamoDB client with [`dynamodb_timeouts`]; `endpoint` points it at DynamoDB
/// Local.
pub fn dynamodb_client(
    sdk: &aws_config::SdkConfig,
    endpoint: Option<&str>,
) -> aws_sdk_dynamodb::Client {
    let mut builder =
        aws_sdk_dynamodb::config::Builder::from(sdk).timeout_config(dynamodb_timeouts());
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dynamodb_calls_have_every_timeout() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        let client = dynamodb_client(&sdk, Some("http://127.0.0.1:9"));
        let timeouts = client.config().timeout_config().expect("timeouts set");
        assert_eq!(timeouts.connect_timeout(), Some(Duration::from_secs(1)));
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(Duration::from_secs(2))
        );
        assert_eq!(timeouts.operation_timeout(), Some(Duration::from_secs(5)));
    }
}
