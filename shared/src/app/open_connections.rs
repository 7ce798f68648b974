//! Opening the functions' connections during init (`CONNECT_AT_INIT`): a cold start
//! pays DNS, TCP and the TLS handshakes to DynamoDB and Fintoc before the first
//! request instead of inside it. Best effort and bounded: a failure is logged and the
//! first request connects as it always did.

use crate::fintoc::FintocHttpClient;
use crate::store::DynamoStore;
use std::time::{Duration, Instant};

/// How long init waits for each connection.
pub const CONNECT_AT_INIT_TIMEOUT: Duration = Duration::from_secs(2);

/// How opening one connection went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// Not asked for.
    Skipped,
    /// Open; the answer took this long.
    Open(Duration),
    /// Fintoc answered, but refused the secret key (HTTP 401 or 403).
    KeyRefused,
    /// No connection (timeout, refused, DNS, TLS, credentials or table): the first
    /// request will try again.
    Failed(String),
}

/// Opens DynamoDB's and, when given, Fintoc's connection concurrently, each bounded
/// by [`CONNECT_AT_INIT_TIMEOUT`], and logs how it went (never a key or token).
pub async fn open_connections(
    store: &DynamoStore,
    fintoc: Option<&FintocHttpClient>,
) -> (Opened, Opened) {
    let dynamodb = async {
        let started = Instant::now();
        match tokio::time::timeout(CONNECT_AT_INIT_TIMEOUT, store.open_connection()).await {
            Ok(Ok(())) => Opened::Open(started.elapsed()),
            Ok(Err(e)) => Opened::Failed(e.to_string()),
            Err(_) => Opened::Failed("timeout".into()),
        }
    };
    let fintoc = async {
        let Some(fintoc) = fintoc else {
            return Opened::Skipped;
        };
        let started = Instant::now();
        match fintoc.open_connection(CONNECT_AT_INIT_TIMEOUT).await {
            Ok(401 | 403) => Opened::KeyRefused,
            Ok(_) => Opened::Open(started.elapsed()),
            Err(e) => Opened::Failed(e.to_string()),
        }
    };
    let (dynamodb, fintoc) = tokio::join!(dynamodb, fintoc);
    log(&dynamodb, "dynamodb");
    log(&fintoc, "fintoc");
    (dynamodb, fintoc)
}

fn log(opened: &Opened, to: &'static str) {
    match opened {
        Opened::Skipped => {}
        Opened::Open(took) => {
            tracing::info!(
                to,
                ms = took.as_millis() as u64,
                "connection opened at init"
            )
        }
        Opened::KeyRefused => {
            tracing::error!(to, "Fintoc refused the secret key at init (HTTP 401/403)")
        }
        Opened::Failed(why) => {
            tracing::warn!(to, error = %why, "could not open the connection at init; the first request will")
        }
    }
}
