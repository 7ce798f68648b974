//! Property test: a correctly signed `payment_intent.*` event whose optional fields
//! carry any JSON value (an account pinned to another API version may retype them)
//! is answered 2xx and applies the right transition; only `id`, `type`, `data.id`
//! and `data.status` are required.

use proptest::prelude::*;
use serde_json::{json, Value};
use shared::app::receive_webhook::{Delivery, WebhookService, WebhookSettings};
use shared::clock::ManualClock;
use shared::domain::deployment::Deployment;
use shared::domain::order::OrderState;
use shared::domain::payment::PaymentStatus;
use shared::secrets::SecretString;
use shared::store::memory::MemoryStore;
use shared::webhook::signature::compute_signature;

const T0: i64 = 1_767_225_600_000;
const SECRET: &str = "whsec_prop_7Hq2Lx9PzR4mVb1cK3sW";

/// Every optional field of a signed event, as a JSON pointer.
const OPTIONAL_FIELDS: &[&str] = &[
    "/mode",
    "/created_at",
    "/data/amount",
    "/data/currency",
    "/data/error_reason",
    "/data/transaction_date",
    "/data/reference_id",
    "/data/mode",
    "/data/created_at",
    "/data/customer_email",
    "/data/metadata",
    "/data/metadata/order_id",
    "/data/metadata/deployment_tag",
    "/data/sender_account",
    "/data/sender_account/number",
    "/data/sender_account/holder_id",
    "/data/sender_account/institution_id",
    "/data/sender_account/type",
    "/data/expires_at",
    "/data/recipient_account",
];

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[a-zA-Z0-9_ .@-]{0,16}".prop_map(Value::from),
        Just(Value::from("100")),
        Just(Value::from("CLP")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn base_event(status: &str) -> Value {
    json!({
        "id": "evt_prop", "type": format!("payment_intent.{status}"), "mode": "test",
        "created_at": "2026-01-01T00:00:00Z",
        "data": {
            "id": "pi_1", "object": "payment_intent", "status": status, "amount": 100,
            "currency": "CLP", "error_reason": null, "transaction_date": "2026-01-01",
            "reference_id": "123", "mode": "test", "created_at": "2026-01-01T00:00:00Z",
            "customer_email": "payer@example.cl", "expires_at": null,
            "metadata": {"order_id": "o-1", "deployment_tag": "prop"},
            "sender_account": {"holder_id": "1", "number": "000012345678",
                               "type": "checking_account", "institution_id": "cl_bank"},
            "recipient_account": null
        }
    })
}

/// Sets the value at `pointer`, creating the parent object if a substitution above
/// it replaced it with something else.
fn substitute(event: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let parent = if parent.is_empty() {
        event
    } else {
        event.pointer_mut(parent).expect("a parent")
    };
    if !parent.is_object() {
        *parent = json!({});
    }
    parent
        .as_object_mut()
        .expect("an object")
        .insert(key.to_string(), value);
}

async fn deliver(body: &str) -> (MemoryStore, u16, Value) {
    let store = MemoryStore::default();
    let intent = shared::testkit::created_intent("pi_1", 100, "CLP", Some("o-1"));
    shared::testkit::seed_open(&store, &intent, "h", T0)
        .await
        .unwrap();
    let service = WebhookService::new(
        store.clone(),
        ManualClock::new(T0),
        WebhookSettings {
            secrets: vec![SecretString::new(SECRET)],
            refresh: None,
            tolerance_secs: 300,
            write_first: true,
            deployment: Deployment {
                tag: "prop".into(),
                mode: Some("test".into()),
            },
        },
    );
    let t = (T0 / 1000).to_string();
    let header = format!(
        "t={t},v1={}",
        hex::encode(compute_signature(SECRET, &t, body.as_bytes()))
    );
    let reply = service
        .receive(Delivery {
            signature: Some(&header),
            body: body.as_bytes(),
        })
        .await
        .unwrap_or_else(|e| panic!("refused: {e:?}"));
    let answer = serde_json::from_str(&reply.body).unwrap();
    (store, reply.status, answer)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn any_value_in_any_optional_field_is_accepted_and_applied(
        status in prop_oneof![Just("succeeded"), Just("failed"), Just("pending")],
        substitutions in prop::collection::vec(
            (prop::sample::select(OPTIONAL_FIELDS), any_json()),
            1..6,
        ),
    ) {
        // Naming the other mode is not a retyping: such an event is foreign.
        prop_assume!(!substitutions.iter().any(|(p, v)| p.ends_with("/mode") && v == "live"));
        let mut event = base_event(status);
        for (pointer, value) in &substitutions {
            substitute(&mut event, pointer, value.clone());
        }
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (store, code, answer) = runtime.block_on(deliver(&event.to_string()));
        prop_assert_eq!(code, 200);
        prop_assert_eq!(answer["outcome"].as_str(), Some("applied"));
        let intent = store.intent("pi_1").unwrap();
        let claimed = PaymentStatus::parse(status);
        prop_assert_eq!(intent.status.as_ref(), Some(&claimed));
        prop_assert_eq!(intent.version, 1);
        let order = store.order("o-1").unwrap();
        match claimed {
            PaymentStatus::Succeeded if intent.review.is_none() => {
                prop_assert_eq!(order.record.state, OrderState::Paid);
                prop_assert_eq!(order.paid_intent_id.as_deref(), Some("pi_1"));
            }
            PaymentStatus::Succeeded => {
                prop_assert_eq!(order.record.state, OrderState::Review, "a mismatch pays nothing");
            }
            PaymentStatus::Failed => prop_assert_eq!(order.record.state, OrderState::Closed),
            _ => prop_assert_eq!(order.record.state, OrderState::Open),
        }
        if let Some(outcome) = &intent.outcome {
            let masked = outcome.sender_account.as_ref().and_then(|a| a.number_last4.clone());
            prop_assert!(masked.is_none_or(|last4| last4.len() <= 4));
        }
    }
}
