//! The merchant's stand-in endpoint for merchant events (`POST /_merchant/events`):
//! each delivery's Standard Webhooks signature checked with the reference crate
//! (`standardwebhooks`) before it is kept; a forged or stale one is refused `401`
//! and kept apart as refused. The order page lists what an order received.

use serde::Serialize;
use std::sync::Mutex;

/// One delivery as the stand-in got it.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// `webhook-id`.
    pub id: String,
    /// The event's type.
    pub event_type: String,
    /// The order it concerns, if any.
    pub order_id: Option<String>,
    /// Whether the signature held.
    pub verified: bool,
    /// The headers Standard Webhooks signs with, as received.
    pub headers: std::collections::BTreeMap<String, String>,
    /// The body, as received.
    pub body: String,
}

/// The deliveries received, in order.
pub struct Inbox {
    secret: Option<standardwebhooks::Webhook>,
    deliveries: Mutex<Vec<Delivery>>,
}

impl Inbox {
    /// An inbox checking signatures with `secret` (`whsec_…`); without one, every
    /// delivery is refused.
    pub fn new(secret: Option<&str>) -> Result<Self, String> {
        let secret = secret
            .map(standardwebhooks::Webhook::new)
            .transpose()
            .map_err(|_| {
                "the merchant webhook secret is not a Standard Webhooks secret".to_string()
            })?;
        Ok(Self {
            secret,
            deliveries: Mutex::new(Vec::new()),
        })
    }

    /// Receives one delivery: `true` when its signature holds (answer 2xx).
    pub fn receive(&self, headers: &http::HeaderMap, body: &[u8]) -> bool {
        let verified = self
            .secret
            .as_ref()
            .is_some_and(|secret| secret.verify(body, headers).is_ok());
        let text = String::from_utf8_lossy(body).to_string();
        let event: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let delivery = Delivery {
            id: header("webhook-id"),
            event_type: event["type"].as_str().unwrap_or_default().to_string(),
            order_id: event["data"]["order_id"].as_str().map(str::to_string),
            verified,
            headers: ["webhook-id", "webhook-timestamp", "webhook-signature"]
                .into_iter()
                .map(|name| (name.to_string(), header(name)))
                .collect(),
            body: text,
        };
        self.deliveries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(delivery);
        verified
    }

    /// Every delivery received, oldest first.
    pub fn all(&self) -> Vec<Delivery> {
        self.deliveries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The verified deliveries of `order_id`, oldest first.
    pub fn of_order(&self, order_id: &str) -> Vec<Delivery> {
        self.all()
            .into_iter()
            .filter(|d| d.verified && d.order_id.as_deref() == Some(order_id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn headers(signature: &str, timestamp: i64) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("webhook-id", "evt_1".parse().unwrap());
        h.insert("webhook-timestamp", timestamp.to_string().parse().unwrap());
        h.insert("webhook-signature", signature.parse().unwrap());
        h
    }

    #[test]
    fn only_signed_deliveries_count_for_their_order() {
        let inbox = Inbox::new(Some(SECRET)).unwrap();
        let body = r#"{"id":"evt_1","type":"order.paid","data":{"order_id":"o-1"}}"#;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let signature = standardwebhooks::Webhook::new(SECRET)
            .unwrap()
            .sign("evt_1", now, body.as_bytes())
            .unwrap();
        assert!(inbox.receive(&headers(&signature, now), body.as_bytes()));
        assert!(
            !inbox.receive(&headers("v1,", now), body.as_bytes()),
            "empty signature"
        );
        assert!(
            !inbox.receive(&headers(&signature, now - 3_600), body.as_bytes()),
            "stale"
        );
        assert_eq!(inbox.of_order("o-1").len(), 1);
        assert_eq!(inbox.all().len(), 3);
        assert!(Inbox::new(Some("not-a-secret")).is_err());
    }
}
