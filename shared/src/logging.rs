//! The functions' logs: the level from `AWS_LAMBDA_LOG_LEVEL` (as the template's
//! `LogLevel` sets it), JSON when Lambda asks for it, and the libraries that could
//! print a request or response — with a widget token, a key or an account number in
//! it — pinned at INFO whatever the level.

use tracing_subscriber::filter::{EnvFilter, LevelFilter};

/// The libraries held at INFO: HTTP clients, TLS, the AWS SDK's request pipeline and
/// the Lambda runtime (which print bodies and headers at DEBUG and TRACE).
pub const PINNED_AT_INFO: [&str; 13] = [
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_sdk_dynamodb",
    "aws_sdk_ssm",
    "aws_config",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
    "lambda_runtime",
    "lambda_http",
];

/// The filter for `level` (`DEBUG`, `INFO`, `WARN`, `ERROR`; `TRACE` is read as
/// `DEBUG`, anything else as `INFO`): this project's logs at that level, the
/// libraries above at INFO at most.
pub fn filter(level: &str) -> EnvFilter {
    let level = match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" | "DEBUG" => LevelFilter::DEBUG,
        "WARN" => LevelFilter::WARN,
        "ERROR" | "FATAL" => LevelFilter::ERROR,
        _ => LevelFilter::INFO,
    };
    let mut filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .parse_lossy("");
    for library in PINNED_AT_INFO {
        let pinned = level.min(LevelFilter::INFO);
        if let Ok(directive) = format!("{library}={pinned}").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Installs the subscriber of a function, once, at cold start.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").unwrap_or_else(|_| "INFO".into());
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter(&level));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_stay_at_info_at_any_level() {
        for level in ["TRACE", "DEBUG", "INFO"] {
            let text = filter(level).to_string();
            assert!(text.contains("aws_smithy_runtime=info"), "{level}: {text}");
            assert!(text.contains("hyper=info"), "{text}");
            assert!(!text.contains("trace"), "{level}: {text}");
        }
        assert!(filter("WARN").to_string().contains("reqwest=warn"));
    }
}
