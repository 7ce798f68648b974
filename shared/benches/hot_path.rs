//! CPU cost of the request hot paths, without I/O (`make bench`; `cargo test
//! --benches` runs each once as a smoke test).
//!
//! - webhook: verify the `Fintoc-Signature` of a typical event (≈1.3 KB), parse the
//!   envelope and the payment intent, plan the write (decision + patch) against the stored state;
//! - create: content type, body validation, the request fingerprint.

use criterion::{criterion_group, criterion_main, Criterion};
use shared::domain::create::{check_content_type, parse_create_request, CreateLimits};
use shared::domain::payment::PaymentStatus;
use shared::domain::transition::{plan_write, EventRef, PaymentState};
use shared::secrets::SecretString;
use shared::webhook::event::{Event, EventKind};
use shared::webhook::signature::{compute_signature, verify};
use std::collections::BTreeSet;
use std::hint::black_box;

const NOW: i64 = 1_767_225_600;

fn typical_event() -> Vec<u8> {
    serde_json::json!({
        "id": "evt_2vvHmCJ6zYvcVQXZ", "object": "event", "type": "payment_intent.succeeded",
        "mode": "live", "created_at": "2026-01-01T00:00:05.123Z",
        "data": {
            "id": "pi_2vvHlzX6fQBrZyGmH3BWOJOqZmo", "object": "payment_intent", "amount": 15000,
            "currency": "CLP", "status": "succeeded", "mode": "live",
            "metadata": {"order_id": "order-1001", "cart": "42"},
            "customer_email": "payer@example.cl", "error_reason": null,
            "expires_at": null, "created_at": "2026-01-01T00:00:00.000Z",
            "transaction_date": "2026-01-01T00:00:05.000Z", "reference_id": "90123712",
            "payment_type": "bank_transfer", "payment_type_options": {},
            "recipient_account": {"holder_id": "771433855", "number": "123456789",
                                  "type": "checking_account", "institution_id": "cl_banco_de_chile"},
            "sender_account": {"holder_id": "183917137", "number": "000012345678",
                               "type": "checking_account", "institution_id": "cl_banco_estado"},
            "business_profile": null, "widget_token": null
        }
    })
    .to_string()
    .into_bytes()
}

/// The work the webhook function does for one delivery before its DynamoDB calls.
fn webhook_hot_path(header: &str, body: &[u8], secrets: &[SecretString], state: &PaymentState) {
    verify(Some(header), body, secrets, NOW, 300).expect("valid signature");
    let event = Event::parse(body).expect("valid event");
    let EventKind::PaymentIntent(claimed) = event.kind() else {
        panic!("a payment_intent event")
    };
    let report = event.intent_report().expect("intent data");
    let event_ref = EventRef {
        id: &event.id,
        event_type: &event.event_type,
        created_at: event.created_at.as_deref(),
        source: shared::domain::transition::Source::Webhook,
    };
    black_box(plan_write(
        Some(state),
        &event_ref,
        &claimed,
        &report,
        "2026-01-01T00:00:00.000Z",
    ));
}

fn benches(c: &mut Criterion) {
    let body = typical_event();
    let secret = "whsec_bench_0123456789abcdef";
    let signature = hex::encode(compute_signature(secret, &NOW.to_string(), &body));
    let header = format!("t={NOW},v1={signature}");
    let secrets = [SecretString::new(secret)];
    let state = PaymentState {
        status: PaymentStatus::parse("pending"),
        applied_event_ids: BTreeSet::from(["evt_a".to_string(), "evt_b".to_string()]),
        version: 2,
        requested: Some((15000, "CLP".to_string())),
        order_id: Some("order-1001".to_string()),
        mode: Some("test".to_string()),
        session_attempt: None,
    };
    c.bench_function("webhook: verify + parse + plan write", |b| {
        b.iter(|| webhook_hot_path(black_box(&header), black_box(&body), &secrets, &state))
    });
    c.bench_function("webhook: verify only", |b| {
        b.iter(|| {
            verify(
                Some(black_box(&header)),
                black_box(&body),
                &secrets,
                NOW,
                300,
            )
        })
    });

    let create_body = br#"{"amount": 15000, "currency": "CLP", "order_id": "order-1001", "metadata": {"cart": "42"}, "customer_email": "payer@example.cl"}"#;
    let limits = CreateLimits::default();
    c.bench_function("create: validate + fingerprint", |b| {
        b.iter(|| {
            check_content_type(Some("application/json")).expect("json");
            let request =
                parse_create_request(Some("application/json"), black_box(create_body), &limits)
                    .expect("valid");
            black_box(request.fingerprint())
        })
    });
}

criterion_group!(hot_path, benches);
criterion_main!(hot_path);
