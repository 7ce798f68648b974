//! The only module that talks to where merchant events go: the port
//! ([`EventSender`]: one attempt of one delivery, every outcome an answer, never
//! an error), its adapters — HTTPS endpoints signed per Standard Webhooks
//! ([`SignedEndpoints`]) and the stack's EventBridge bus ([`EventBus`]) — and the
//! deployment's set of them ([`Destinations`]). Endpoints and their secrets come
//! from configuration, never from a request.

use crate::domain::delivery::{answer_head, BUS_DESTINATION};
use crate::domain::standard_webhooks::{signature_header, SigningSecret};
use std::future::Future;
use std::time::{Duration, Instant};

/// What one attempt got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendAnswer {
    /// The answer's status; `None`: no answer (a timeout, no connection).
    pub status: Option<u16>,
    /// How long the attempt took.
    pub duration_ms: u64,
    /// The first bytes of the answer, or why there was none.
    pub answer_head: String,
}

/// Sends merchant events to their destinations.
pub trait EventSender: Send + Sync {
    /// The destinations it knows, by name.
    fn destinations(&self) -> Vec<String>;

    /// One attempt of sending `body` (the event `event_id`) to `destination`, at
    /// `now_ms`; every outcome is an answer.
    fn send(
        &self,
        destination: &str,
        event_id: &str,
        body: &str,
        now_ms: i64,
    ) -> impl Future<Output = SendAnswer> + Send;
}

/// A merchant's HTTPS endpoint: its name (stable: deliveries are kept under it),
/// its URL and its signing secrets (the newest first; two during a rotation).
#[derive(Clone)]
pub struct Endpoint {
    /// Its name: letters, digits, `-` and `_`.
    pub name: String,
    /// Where deliveries are posted.
    pub url: String,
    /// Every delivery is signed with each.
    pub secrets: Vec<SigningSecret>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

/// Whether `name` can name an endpoint (it is part of storage keys, and the bus
/// has its own).
pub fn valid_endpoint_name(name: &str) -> bool {
    name != BUS_DESTINATION
        && (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// HTTPS endpoints, each delivery a signed `POST` bounded by a timeout.
#[derive(Debug, Clone)]
pub struct SignedEndpoints {
    client: reqwest::Client,
    endpoints: Vec<Endpoint>,
}

/// The `User-Agent` of every delivery.
pub const USER_AGENT: &str = concat!("fintoc-merchant-backend-events/", env!("CARGO_PKG_VERSION"));

impl SignedEndpoints {
    /// Endpoints posted to by `client` (built once, with its timeouts).
    pub fn new(client: reqwest::Client, endpoints: Vec<Endpoint>) -> Self {
        Self { client, endpoints }
    }

    /// The client every deployment uses — the crate's one HTTPS client setup
    /// (`fintoc::http_client_builder`: its TLS provider and roots) — with `timeout`
    /// per attempt and no redirects followed (a redirect is a failed attempt, as
    /// Standard Webhooks advises).
    pub fn client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
        crate::fintoc::http_client_builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .build()
    }
}

impl EventSender for SignedEndpoints {
    fn destinations(&self) -> Vec<String> {
        self.endpoints.iter().map(|e| e.name.clone()).collect()
    }

    async fn send(&self, destination: &str, event_id: &str, body: &str, now_ms: i64) -> SendAnswer {
        let started = Instant::now();
        let Some(endpoint) = self.endpoints.iter().find(|e| e.name == destination) else {
            return SendAnswer {
                status: None,
                duration_ms: 0,
                answer_head: "no endpoint of this name is configured".into(),
            };
        };
        let timestamp = now_ms.div_euclid(1000);
        let result = self
            .client
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("webhook-id", event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signature_header(&endpoint.secrets, event_id, timestamp, body),
            )
            .body(body.to_string())
            .send()
            .await;
        let (status, answer) = match result {
            Ok(response) => {
                let status = response.status().as_u16();
                let head = match response.bytes().await {
                    Ok(bytes) => answer_head(&bytes),
                    Err(e) => format!("answer unreadable: {}", error_kind(&e)),
                };
                (Some(status), head)
            }
            Err(e) => (None, error_kind(&e).to_string()),
        };
        SendAnswer {
            status,
            duration_ms: started.elapsed().as_millis() as u64,
            answer_head: answer,
        }
    }
}

/// The `Source` of every entry this backend puts on its bus.
pub const BUS_SOURCE: &str = "fintoc-payments";

/// The stack's EventBridge bus: each event one entry — `Source` [`BUS_SOURCE`],
/// `DetailType` its type, `Detail` its body — so merchants attach rules to it.
#[derive(Debug, Clone)]
pub struct EventBus {
    client: aws_sdk_eventbridge::Client,
    name: String,
}

impl EventBus {
    /// The bus `name`, reached with `client` (built once, at init).
    pub fn new(client: aws_sdk_eventbridge::Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    /// One `PutEvents` of one entry: `200` when EventBridge took it, no status
    /// (retried on the ladder) when it refused it or could not be reached.
    async fn publish(&self, body: &str) -> SendAnswer {
        let started = Instant::now();
        let detail_type = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|event| event["type"].as_str().map(str::to_string))
            .unwrap_or_default();
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.name)
            .source(BUS_SOURCE)
            .detail_type(detail_type)
            .detail(body)
            .build();
        let (status, answer) = match self.client.put_events().entries(entry).send().await {
            Ok(out) if out.failed_entry_count() == 0 => (Some(200), "published".to_string()),
            Ok(out) => {
                let refused = out.entries().first();
                let code = refused.and_then(|e| e.error_code()).unwrap_or("refused");
                (None, format!("EventBridge refused the entry: {code}"))
            }
            Err(e) => {
                use aws_sdk_eventbridge::error::ProvideErrorMetadata;
                let code = e.code().unwrap_or("no answer").to_string();
                (None, format!("PutEvents failed: {code}"))
            }
        };
        SendAnswer {
            status,
            duration_ms: started.elapsed().as_millis() as u64,
            answer_head: answer,
        }
    }
}

/// Every destination of a deployment: its endpoints, and its bus when it has one.
#[derive(Debug, Clone)]
pub struct Destinations {
    /// The HTTPS endpoints.
    pub endpoints: SignedEndpoints,
    /// The bus, named [`BUS_DESTINATION`].
    pub bus: Option<EventBus>,
}

impl EventSender for Destinations {
    fn destinations(&self) -> Vec<String> {
        let mut names = self.endpoints.destinations();
        if self.bus.is_some() {
            names.push(BUS_DESTINATION.to_string());
        }
        names
    }

    async fn send(&self, destination: &str, event_id: &str, body: &str, now_ms: i64) -> SendAnswer {
        match (&self.bus, destination == BUS_DESTINATION) {
            (Some(bus), true) => bus.publish(body).await,
            _ => {
                self.endpoints
                    .send(destination, event_id, body, now_ms)
                    .await
            }
        }
    }
}

/// What went wrong, without the URL (it may carry credentials in its query).
fn error_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "broken answer"
    } else {
        "request failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Built as a function builds it at init, with no TLS provider installed by
    /// anything else first (it panicked so: "No provider set").
    #[test]
    fn the_client_builds_on_its_own() {
        assert!(SignedEndpoints::client(Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn the_bus_is_a_destination_only_when_configured() {
        let endpoints = SignedEndpoints::new(
            SignedEndpoints::client(Duration::from_secs(1)).unwrap(),
            vec![Endpoint {
                name: "shop".into(),
                url: "https://shop.example/hooks".into(),
                secrets: vec![],
            }],
        );
        let without = Destinations {
            endpoints: endpoints.clone(),
            bus: None,
        };
        assert_eq!(without.destinations(), ["shop"]);
        let config = aws_sdk_eventbridge::Config::builder()
            .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
            .region(aws_sdk_eventbridge::config::Region::new("us-east-1"))
            .build();
        let with = Destinations {
            endpoints,
            bus: Some(EventBus::new(
                aws_sdk_eventbridge::Client::from_conf(config),
                "payments-events",
            )),
        };
        assert_eq!(with.destinations(), ["shop", "eventbridge"]);
    }

    #[test]
    fn endpoint_names_are_safe_in_keys_and_secrets_never_shown() {
        assert!(valid_endpoint_name("shop-1_eu"));
        for bad in ["", "a#b", "a b", &"x".repeat(41), "eventbridge"] {
            assert!(!valid_endpoint_name(bad), "{bad:?}");
        }
        let endpoint = Endpoint {
            name: "shop".into(),
            url: "https://shop.example/hooks".into(),
            secrets: vec![SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()],
        };
        assert!(!format!("{endpoint:?}").contains("MfKQ"));
    }
}
