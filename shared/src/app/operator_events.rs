//! Operators' use cases on merchant events (the operations API): resend one event,
//! recover every delivery left undelivered since a time, list the destinations and
//! disable or enable one. Each write carries its audit entry, in one transaction.
//! A resend only makes a delivery due now on a new ladder: the dispatcher's sweep
//! (every minute deployed, every 2 s locally) sends it, so the signing secrets stay
//! with the dispatcher alone.

use crate::app::operations::{rejected, OperationsError, OperatorAct};
use crate::clock::format_rfc3339_ms;
use crate::http::ApiError;
use crate::store::{DeliveryRef, DeliveryStore, DestinationState, OperationsStore, RecordedEvent};
use serde::Serialize;
use serde_json::{json, Value};

/// How many undelivered deliveries one recover takes at most (run it again for more).
pub const RECOVER_LIMIT: i32 = 500;

/// What an operator's `POST` on events or endpoints may carry (every field
/// optional; an empty body is `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActBody {
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
    /// The ticket it answers.
    #[serde(default)]
    pub ticket: Option<String>,
    /// `events resend`: one destination (default: every configured one).
    #[serde(default)]
    pub destination: Option<String>,
    /// `events recover`: RFC 3339 (required there).
    #[serde(default)]
    pub since: Option<String>,
    /// `queue acknowledge`: the queue item's id (required there).
    #[serde(default)]
    pub id: Option<String>,
}

/// Reads an operator's action body.
pub fn parse_act_body(body: &[u8]) -> Result<ActBody, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ActBody::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid_request(
            400,
            "invalid_json",
            format!(r#"The body must be a JSON object of "reason", "ticket", "destination", "since", "id" ({e})."#),
        )
    })
}

/// `since` as Unix ms: required, RFC 3339.
pub fn parse_since(since: Option<&str>) -> Result<i64, ApiError> {
    since
        .and_then(crate::clock::parse_rfc3339_ms)
        .ok_or_else(|| {
            ApiError::invalid_param(
                "invalid_since",
                "since",
                "`since` is required: an RFC 3339 time, such as 2026-12-01T00:00:00Z.",
            )
        })
}

/// A delivery made due again, or left as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resent {
    /// The event.
    pub event_id: String,
    /// The destination.
    pub destination: String,
    /// `due` (the next sweep sends it) or `in_flight` (an attempt of it is being
    /// made now: nothing changed).
    pub state: &'static str,
}

/// The destinations `wanted` names (every configured one when `None`), each
/// known and enabled.
async fn targets<S: DeliveryStore>(
    store: &S,
    configured: &[String],
    wanted: Option<&str>,
) -> Result<Vec<String>, OperationsError> {
    let names: Vec<String> = match wanted {
        Some(name) if configured.iter().any(|c| c == name) => vec![name.to_string()],
        Some(name) => return Err(endpoint_not_found(name, configured)),
        None if configured.is_empty() => {
            return Err(rejected(
                409,
                "no_endpoints",
                "No destination of merchant events is configured (MERCHANT_WEBHOOK_URL, EVENT_BUS_NAME).",
            ))
        }
        None => configured.to_vec(),
    };
    let states = store.destination_states(&names).await?;
    if let Some(disabled) = states.iter().find(|d| d.disabled) {
        return Err(rejected(
            409,
            "endpoint_disabled",
            format!(
                "The destination {} is disabled: enable it first (its held deliveries then come back with `events recover`).",
                disabled.name
            ),
        ));
    }
    Ok(names)
}

fn endpoint_not_found(name: &str, configured: &[String]) -> OperationsError {
    rejected(
        404,
        "endpoint_not_found",
        format!(
            "No destination is named {name:?}; configured: {}.",
            match configured.is_empty() {
                true => "none".to_string(),
                false => configured.join(", "),
            }
        ),
    )
}

/// One delivery made due now, with its audit entry (`n`th of the act).
async fn resend_one<S: DeliveryStore + OperationsStore>(
    store: &S,
    event: &RecordedEvent,
    destination: &str,
    act: &OperatorAct,
    n: usize,
    action: &str,
) -> Result<Resent, OperationsError> {
    let delivery = DeliveryRef {
        event_id: event.id.clone(),
        destination: destination.to_string(),
    };
    let before = match store.delivery(&delivery).await? {
        Some(view) => json!({
            "state": view.state.as_str(),
            "attempts": view.attempts,
            "next_at": view.next_at_ms.map(format_rfc3339_ms),
        }),
        None => Value::Null,
    };
    let after = json!({"state": "pending", "attempts": 0, "next_at": format_rfc3339_ms(act.at_ms)});
    let subject = format!("{}/{destination}", event.id);
    let entry = act.entry(n, action, &subject, before, after);
    let written = store
        .resend_delivery(event, destination, act.at_ms, &entry)
        .await?;
    Ok(Resent {
        event_id: event.id.clone(),
        destination: destination.to_string(),
        state: if written { "due" } else { "in_flight" },
    })
}

/// `events resend`: the event sent again to `destination` (every configured
/// destination when `None`) on a new ladder, whatever its deliveries' states.
pub async fn resend_event<S: DeliveryStore + OperationsStore>(
    store: &S,
    configured: &[String],
    event_id: &str,
    destination: Option<&str>,
    act: &OperatorAct,
) -> Result<Vec<Resent>, OperationsError> {
    act.checked()?;
    let Some(event) = store.event(event_id).await? else {
        return Err(rejected(
            404,
            "event_not_found",
            format!("No merchant event {event_id} is recorded."),
        ));
    };
    let mut resent = Vec::new();
    for (n, name) in targets(store, configured, destination)
        .await?
        .iter()
        .enumerate()
    {
        resent.push(resend_one(store, &event, name, act, n, "resend_event").await?);
    }
    if resent.iter().all(|r| r.state == "in_flight") {
        return Err(rejected(
            409,
            "delivery_in_flight",
            "An attempt of this delivery is being made now; see its result with `show` and resend after it if needed.",
        ));
    }
    Ok(resent)
}

/// What `events recover` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recovered {
    /// Each undelivered delivery found, made due again (or in flight).
    pub resent: Vec<Resent>,
    /// Undelivered deliveries left held: their destination is disabled or no
    /// longer configured.
    pub held: usize,
    /// Whether more may be left than one recover takes ([`RECOVER_LIMIT`]).
    pub more: bool,
}

/// `events recover`: every delivery left undelivered (exhausted, or held while
/// its destination was disabled) of events recorded since `since_ms`, made due
/// again, each with its audit entry.
pub async fn recover_events<S: DeliveryStore + OperationsStore>(
    store: &S,
    configured: &[String],
    since_ms: i64,
    act: &OperatorAct,
) -> Result<Recovered, OperationsError> {
    act.checked()?;
    let undelivered = store.undelivered_since(since_ms, RECOVER_LIMIT).await?;
    let enabled: Vec<String> = store
        .destination_states(configured)
        .await?
        .into_iter()
        .filter(|d| !d.disabled)
        .map(|d| d.name)
        .collect();
    let mut report = Recovered {
        resent: Vec::new(),
        held: 0,
        more: undelivered.len() >= RECOVER_LIMIT as usize,
    };
    for delivery in &undelivered {
        if !enabled.contains(&delivery.destination) {
            report.held += 1;
            continue;
        }
        let Some(event) = store.event(&delivery.event_id).await? else {
            continue;
        };
        let n = report.resent.len();
        report.resent.push(
            resend_one(
                store,
                &event,
                &delivery.destination,
                act,
                n,
                "recover_delivery",
            )
            .await?,
        );
    }
    Ok(report)
}

/// `endpoints list`: every configured destination, enabled or not.
pub async fn endpoints<S: DeliveryStore>(
    store: &S,
    configured: &[String],
) -> Result<Vec<DestinationState>, OperationsError> {
    Ok(store.destination_states(configured).await?)
}

/// `endpoints enable|disable`: the destination's flag, with its audit entry.
/// Disabling holds its new deliveries; enabling sends nothing by itself (the
/// held ones come back with `events recover`).
pub async fn set_endpoint<S: DeliveryStore + OperationsStore>(
    store: &S,
    configured: &[String],
    name: &str,
    disabled: bool,
    act: &OperatorAct,
) -> Result<DestinationState, OperationsError> {
    act.checked()?;
    if !configured.iter().any(|c| c == name) {
        return Err(endpoint_not_found(name, configured));
    }
    let names = [name.to_string()];
    let before = store.destination_states(&names).await?.pop();
    let state = |disabled: bool| json!({ "disabled": disabled });
    let entry = act.entry(
        0,
        if disabled {
            "disable_endpoint"
        } else {
            "enable_endpoint"
        },
        name,
        state(before.as_ref().is_some_and(|b| b.disabled)),
        state(disabled),
    );
    store
        .change_destination(name, disabled, act.at_ms, &entry)
        .await?;
    Ok(DestinationState {
        name: name.to_string(),
        disabled,
        changed_ms: Some(act.at_ms),
    })
}
