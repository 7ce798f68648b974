//! AWS SDK clients, built once at cold start.

use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_http_client::Builder as HttpClientBuilder;
use std::time::Duration;

/// The roots of every certificate AWS's service endpoints serve (Amazon Trust
/// Services: Amazon Root CA 1–4 and the Starfield Services Root G2 they are
/// cross-signed by), as AWS documents them.
const AWS_ROOTS_PEM: &str = include_str!("../certs/aws-roots.pem");

/// Loads region and credentials the standard way (environment, Lambda role), with
/// [`aws_https_client`] for every AWS call.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(aws_https_client(
            std::env::var_os("SSL_CERT_FILE")
                .and_then(|path| std::fs::read(path).ok())
                .as_deref(),
        ))
        .load()
        .await
}

/// The AWS SDK's HTTPS client (rustls on aws-lc-rs, as its default), trusting
/// [`AWS_ROOTS_PEM`] instead of the OS certificate store: the default client reads
/// and parses every file of `/etc/ssl/certs` at each cold start, which was the
/// largest part of init (docs/performance.md). `extra_pem` (the contents of
/// `SSL_CERT_FILE`, when set: the benchmark's throwaway CA) is trusted too when it
/// holds PEM certificates.
pub fn aws_https_client(extra_pem: Option<&[u8]>) -> aws_sdk_dynamodb::config::SharedHttpClient {
    let mut trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AWS_ROOTS_PEM.as_bytes());
    if let Some(pem) = extra_pem.filter(|pem| holds_certificates(pem)) {
        trust = trust.with_pem_certificate(pem);
    }
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("a TLS context of PEM certificates");
    HttpClientBuilder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

/// Whether `pem` parses as one or more certificates and nothing else (the SDK
/// panics on an unparsable one at its first connection).
fn holds_certificates(pem: &[u8]) -> bool {
    matches!(reqwest::Certificate::from_pem_bundle(pem), Ok(certs) if !certs.is_empty())
        && std::str::from_utf8(pem).is_ok_and(|text| {
            text.matches("-----BEGIN CERTIFICATE-----").count()
                == text.matches("-----BEGIN").count()
        })
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

/// An EventBridge client (merchant events' bus), with the timeouts of
/// [`dynamodb_timeouts`]: a publish is a delivery attempt, bounded the same way.
pub fn eventbridge_client(sdk: &aws_config::SdkConfig) -> aws_sdk_eventbridge::Client {
    let config = aws_sdk_eventbridge::config::Builder::from(sdk)
        .timeout_config(dynamodb_timeouts())
        .build();
    aws_sdk_eventbridge::Client::from_conf(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aws_roots_are_the_five_amazon_trust_services_roots() {
        assert!(holds_certificates(AWS_ROOTS_PEM.as_bytes()));
        let roots = reqwest::Certificate::from_pem_bundle(AWS_ROOTS_PEM.as_bytes()).unwrap();
        assert_eq!(roots.len(), 5);
    }

    #[test]
    fn only_pem_certificates_are_added_to_the_trust_store() {
        let root = include_bytes!("../testdata/isrg-root-x1.pem");
        assert!(holds_certificates(root));
        assert!(!holds_certificates(b"not a certificate"));
        assert!(!holds_certificates(b""));
        let mut with_key = root.to_vec();
        with_key
            .extend_from_slice(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        // The SDK would panic at its first connection on a block it cannot parse.
        assert!(!holds_certificates(&with_key));
    }

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
