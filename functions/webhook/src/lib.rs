//! The webhook Lambda: `POST /webhooks/fintoc` behind an API Gateway HTTP API
//! (payload v2), with no API authorizer — the signature is the authentication.
//!
//! Thin by design: route, take the `Fintoc-Signature` header and the raw body bytes
//! (lambda_http has already base64-decoded them when `isBase64Encoded` is set), call
//! [`shared::app::receive_webhook::WebhookService`], map its answer to HTTP.

use lambda_http::{Body, Request, Response};
use shared::app::receive_webhook::{
    Accepted, Delivery, SecretFetch, SecretRefresh, WebhookService, WebhookSettings,
};
use shared::clock::{Clock, SystemClock};
use shared::config::WebhookConfig;
use shared::http::{error_response, method_not_allowed_response, to_response, ApiError};
use shared::routes::{self, Function, Matched};
use shared::secrets::split_secrets;
use shared::secrets::SecretSource;
use shared::store::{DynamoStore, EventStore, PaymentStore, RefundStore};
use shared::webhook::signature::check_secret_strength;
use shared::webhook::signature::SignatureError;
use std::sync::Arc;

/// The service as deployed.
pub type DeployedService = WebhookService<DynamoStore, SystemClock>;

/// Builds every client once, at cold start, reads the webhook secret(s) and opens
/// DynamoDB's connection (unless `CONNECT_AT_INIT=false`).
pub async fn init(config: &WebhookConfig) -> Result<DeployedService, lambda_http::Error> {
    let sdk = shared::aws::load_sdk_config().await;
    let secret = config
        .secret_source
        .resolve(&sdk)
        .await
        .map_err(|e| format!("loading the webhook secret: {e}"))?;
    let secrets = split_secrets(&secret);
    if secrets.is_empty() {
        return Err("the webhook secret is empty".into());
    }
    for (i, secret) in secrets.iter().enumerate() {
        check_secret_strength(secret)
            .map_err(|e| format!("webhook secret #{} is refused: {e}", i + 1))?;
    }
    // Read again while warm, so a rotation (`new,old`) takes effect without a cold
    // start; a value in the environment cannot change.
    let refresh = match &config.secret_source {
        SecretSource::Value(_) => None,
        _ if config.secret_refresh.is_zero() => None,
        source => {
            let (source, sdk) = (source.clone(), sdk.clone());
            let fetch: SecretFetch = Arc::new(move || {
                let (source, sdk) = (source.clone(), sdk.clone());
                Box::pin(async move { source.resolve(&sdk).await })
            });
            Some(SecretRefresh {
                fetch,
                every_ms: config.secret_refresh.as_millis() as i64,
            })
        }
    };
    let dynamodb = shared::aws::dynamodb_client(&sdk, config.table.endpoint.as_deref());
    let store = DynamoStore::new(dynamodb, &config.table.table_name);
    if config.connect_at_init {
        shared::app::open_connections::open_connections(&store, None).await;
    }
    Ok(WebhookService::new(
        store,
        SystemClock,
        WebhookSettings {
            secrets,
            refresh,
            tolerance_secs: config.tolerance_secs,
            deployment: config.deployment.clone(),
            write_first: config.write_first,
        },
    ))
}

/// Handles one HTTP request. Never fails: every problem is an HTTP answer.
pub async fn handle<S: EventStore + PaymentStore + RefundStore, C: Clock>(
    service: &WebhookService<S, C>,
    request: Request,
) -> Response<Body> {
    let path = request.uri().path().trim_end_matches('/');
    let method = request.method().as_str();
    match routes::resolve(Function::Webhook, method, path) {
        Matched::Route { .. } => {}
        Matched::MethodNotAllowed { allowed } => {
            return method_not_allowed_response(method, path, &allowed)
        }
        Matched::NotFound => return error_response(&ApiError::route_not_found(method, path)),
    }
    let signature = request
        .headers()
        .get("fintoc-signature")
        .and_then(|v| v.to_str().ok());
    let delivery = Delivery {
        signature,
        body: request.body().as_ref(),
    };
    let result = service.accept(delivery).await;
    let now_ms = SystemClock.now_ms();
    let accepted_recently = ACCEPTED.observe(result.is_ok(), now_ms);
    emit_metrics(&result, accepted_recently, now_ms);
    to_response(result.map(|accepted| accepted.reply()))
}

/// How long after this instance accepted a delivery a refused signed one is taken
/// for noise, not a broken rotation: the signature alarm's two 5-minute periods
/// and some.
pub const ACCEPTED_WINDOW_MS: i64 = 15 * 60_000;

/// When this instance last accepted a delivery (Unix ms; 0: never).
pub struct LastAccepted(std::sync::atomic::AtomicI64);

impl LastAccepted {
    /// Notes a delivery (`accepted` or not) at `now_ms`; answers whether this
    /// instance has accepted one within [`ACCEPTED_WINDOW_MS`], this one included.
    pub fn observe(&self, accepted: bool, now_ms: i64) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        if accepted {
            self.0.fetch_max(now_ms, Relaxed);
        }
        now_ms - self.0.load(Relaxed) < ACCEPTED_WINDOW_MS
    }
}

/// This instance's [`LastAccepted`].
static ACCEPTED: LastAccepted = LastAccepted(std::sync::atomic::AtomicI64::new(0));

/// The counts one delivery adds to the webhook's CloudWatch metrics (EMF):
/// deliveries accepted, events applied, anomalies, signature refusals — all of
/// them, and (`SignedDeliveriesRefused`, the signature alarm's metric) those of
/// deliveries signed in Fintoc's format (a `t` and a `v1` that match no secret,
/// or a `t` out of tolerance) while this instance has accepted none in
/// [`ACCEPTED_WINDOW_MS`] (`accepted_recently` false): refused *and* none accepted
/// is a broken secret rotation, while forged signatures among accepted deliveries
/// are anyone's noise and never page; an unsigned or malformed request never
/// counts either — and storage errors.
pub fn delivery_counts(
    result: &Result<Accepted, ApiError>,
    accepted_recently: bool,
) -> [(&'static str, u64); 6] {
    let accepted = result.as_ref().ok();
    let error = result.as_ref().err();
    let refused_signed = !accepted_recently
        && error.is_some_and(|e| {
            e.code == SignatureError::Mismatch.code()
                || e.code == SignatureError::OutsideTolerance.code()
        });
    [
        ("DeliveriesAccepted", u64::from(result.is_ok())),
        (
            "EventsAppliedByWebhook",
            u64::from(accepted.is_some_and(|a| a.outcome.applied())),
        ),
        (
            "Anomalies",
            u64::from(accepted.is_some_and(|a| a.anomaly().is_some())),
        ),
        (
            "SignatureRefusals",
            u64::from(error.is_some_and(|e| e.code.contains("signature"))),
        ),
        ("SignedDeliveriesRefused", u64::from(refused_signed)),
        (
            "StorageErrors",
            u64::from(error.is_some_and(|e| e.status == 503)),
        ),
    ]
}

fn emit_metrics(result: &Result<Accepted, ApiError>, accepted_recently: bool, now_ms: i64) {
    shared::metrics::emit(
        now_ms,
        &[("Function", "webhook")],
        &delivery_counts(result, accepted_recently),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::app::outcome::{Anomaly, EventOutcome};

    fn count(result: &Result<Accepted, ApiError>, name: &str) -> u64 {
        delivery_counts(result, false)
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .unwrap()
    }

    #[test]
    fn every_anomaly_counts_toward_the_metric_and_nothing_else_does() {
        for outcome in EventOutcome::ALL {
            let delivery = Ok(Accepted {
                outcome,
                flagged: None,
                event_id: "evt_1".into(),
            });
            assert_eq!(
                count(&delivery, "Anomalies"),
                u64::from(outcome.anomaly().is_some()),
                "{outcome:?}"
            );
        }
        // An anomaly a move recorded (another amount, an order that refused it).
        for kind in Anomaly::ALL {
            let delivery = Ok(Accepted {
                outcome: EventOutcome::Applied,
                flagged: Some(kind),
                event_id: "evt_1".into(),
            });
            assert_eq!(count(&delivery, "Anomalies"), 1, "{kind:?}");
            assert_eq!(count(&delivery, "EventsAppliedByWebhook"), 1, "{kind:?}");
        }
        assert_eq!(
            count(
                &Ok(Accepted {
                    outcome: EventOutcome::Anomaly(Anomaly::Refund),
                    flagged: None,
                    event_id: "evt_r".into(),
                }),
                "Anomalies"
            ),
            1,
            "a refund anomaly, which the metric once missed"
        );
    }

    #[test]
    fn each_delivery_counts_what_became_of_it() {
        let ok = |outcome| {
            Ok(Accepted {
                outcome,
                flagged: None,
                event_id: "evt_1".into(),
            })
        };
        assert_eq!(
            count(&ok(EventOutcome::Applied), "EventsAppliedByWebhook"),
            1
        );
        assert_eq!(
            count(&ok(EventOutcome::Duplicate), "EventsAppliedByWebhook"),
            0
        );
        let refused = Err(ApiError::from(SignatureError::Mismatch));
        assert_eq!(count(&refused, "SignatureRefusals"), 1);
        assert_eq!(count(&refused, "SignedDeliveriesRefused"), 1);
        assert_eq!(count(&refused, "DeliveriesAccepted"), 0);
        assert_eq!(count(&refused, "StorageErrors"), 0);
        assert_eq!(count(&ok(EventOutcome::Duplicate), "DeliveriesAccepted"), 1);
        let stale = Err(ApiError::from(SignatureError::OutsideTolerance));
        assert_eq!(count(&stale, "SignedDeliveriesRefused"), 1);
        // Anyone's unsigned or malformed POST: counted, never toward the alarm.
        for noise in [SignatureError::Missing, SignatureError::Malformed] {
            let noise = Err(ApiError::from(noise));
            assert_eq!(count(&noise, "SignatureRefusals"), 1);
            assert_eq!(count(&noise, "SignedDeliveriesRefused"), 0);
        }
        let unavailable = Err(ApiError::event_not_recorded());
        assert_eq!(count(&unavailable, "StorageErrors"), 1);
        assert_eq!(count(&unavailable, "SignatureRefusals"), 0);
    }

    #[test]
    fn forged_signatures_among_accepted_deliveries_never_count_toward_the_alarm() {
        let refused = Err(ApiError::from(SignatureError::Mismatch));
        let counted = |recently| {
            delivery_counts(&refused, recently)
                .iter()
                .find(|(n, _)| *n == "SignedDeliveriesRefused")
                .map(|(_, v)| *v)
                .unwrap()
        };
        assert_eq!(counted(true), 0, "this instance accepts deliveries");
        assert_eq!(counted(false), 1, "refused and none accepted");
        let last = LastAccepted(std::sync::atomic::AtomicI64::new(0));
        assert!(!last.observe(false, 1_000_000), "none accepted yet");
        assert!(last.observe(true, 1_000_000));
        assert!(last.observe(false, 1_000_000 + ACCEPTED_WINDOW_MS - 1));
        assert!(
            !last.observe(false, 1_000_000 + ACCEPTED_WINDOW_MS),
            "the window passed"
        );
    }
}
