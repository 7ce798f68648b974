//! An operator's `show`: one order, payment or refund whole — our record, Fintoc's
//! answer fetched now beside it, the fields where the two disagree, and one
//! timeline (the payment's record, the reconciler's next check, refunds, operators'
//! audit entries, merchant events and each delivery attempt). Read only. Fintoc
//! failing to answer does not hide our side: `fintoc_error` says why it is missing.

use crate::app::operations::{find, fintoc_answer, Match, OperationsError, FINTOC_BUDGET};
use crate::app::reconcile::{Pause, ReconcileService};
use crate::clock::Clock;
use crate::clock::{format_rfc3339_ms, parse_rfc3339_ms};
use crate::domain::inspection::{
    discrepancies, in_order, payment_timeline, possible_event_ids, Discrepancy, TimelineEntry,
};
use crate::domain::order::OrderRecord;
use crate::domain::payment::{PaymentKind, StoredPayment};
use crate::domain::refund_id::RefundId;
use crate::fintoc::FintocLookup;
use crate::http::ApiError;
use crate::store::{
    DeliveryRef, DeliveryStore, EventStore, OperationsStore, PaymentStore, RefundStore,
    ScheduleStore,
};
use serde_json::{json, Value};

/// Everything `show` answers.
pub async fn show<S, F>(
    store: &S,
    fintoc: &F,
    destinations: &[String],
    id: &str,
) -> Result<Value, OperationsError>
where
    S: EventStore + PaymentStore + DeliveryStore + OperationsStore,
    F: FintocLookup,
{
    let Located {
        subject,
        order,
        payment,
    } = locate(store, id).await?;
    let order_id = subject.order_id.clone();
    let mut answer = json!({
        "kind": subject.kind,
        "id": subject.id,
        "order_id": order_id,
        "ours": {"order": order.as_ref().map(order_json), "payment": null},
        "fintoc": null,
        "discrepancies": [],
        "webhook_events_applied": [],
        "timeline": [],
    });
    let mut timeline: Vec<TimelineEntry> = Vec::new();
    let mut subjects: Vec<String> = order_id.iter().cloned().collect();
    if let Some(payment) = &payment {
        subjects.push(payment.id.clone());
        answer["ours"]["payment"] = payment_json(payment);
        let applied = store.payment_state(payment.kind, &payment.id).await?;
        answer["webhook_events_applied"] = json!(applied
            .map(|s| s.applied_event_ids.into_iter().collect::<Vec<_>>())
            .unwrap_or_default());
        let (fintoc_side, found): (Value, Vec<Discrepancy>) = if subject.kind == "refund" {
            refund_side(fintoc, payment, &subject.id).await
        } else {
            match fintoc_answer(fintoc, payment.kind, &payment.id).await {
                Ok(now) => (
                    now.as_ref()
                        .map(|a| json!({"status": a.status.as_str(), "amount": a.amount, "currency": a.currency}))
                        .unwrap_or(json!({"found": false})),
                    discrepancies(payment, now.as_ref()),
                ),
                Err(e) => (json!({"error": e.to_string()}), Vec::new()),
            }
        };
        answer["fintoc"] = fintoc_side;
        answer["discrepancies"] = json!(found);
        timeline.extend(payment_timeline(
            payment,
            parse_rfc3339_ms,
            format_rfc3339_ms,
        ));
        timeline.extend(event_timeline(store, destinations, payment).await?);
    }
    for subject in &subjects {
        for entry in store.audit_log(Some(subject)).await? {
            timeline.push(TimelineEntry {
                at: entry.at.clone(),
                at_ms: entry.at_ms,
                what: entry.action.clone(),
                detail: json!({"actor": entry.actor, "reason": entry.reason, "ticket": entry.ticket, "entry": entry.id}),
            });
        }
    }
    answer["timeline"] = json!(in_order(timeline));
    Ok(answer)
}

/// What an id names, read: the subject (a refund, a payment, an order or an
/// event, in that preference), its order and the payment concerned.
pub struct Located {
    /// What the id names.
    pub subject: Match,
    /// Its order, when it has one.
    pub order: Option<OrderRecord>,
    /// The payment: the one named, the refund's, or the order's.
    pub payment: Option<StoredPayment>,
}

/// Reads what `id` names; `not_found` (404) when it names nothing.
pub async fn locate<S>(store: &S, id: &str) -> Result<Located, OperationsError>
where
    S: EventStore + PaymentStore + DeliveryStore,
{
    let matches = find(store, id).await?;
    let rank = |kind: &str| {
        ["refund", "payment", "order", "event"]
            .iter()
            .position(|k| *k == kind)
    };
    let Some(subject) = matches.into_iter().min_by_key(|m| rank(m.kind)) else {
        return Err(OperationsError::Rejected(ApiError::invalid_request(
            404,
            "not_found",
            format!("No order, payment, refund or merchant event is named {id:?}."),
        )));
    };
    let order = match &subject.order_id {
        Some(order_id) => store.order(order_id).await?,
        None => None,
    };
    let payment = match (subject.kind, &order) {
        ("payment", _) => payment_named(store, &subject.id).await?,
        ("refund", _) => match RefundId::parse(&subject.id) {
            Some(r) => payment_named(store, &r.payment_id).await?,
            None => None,
        },
        (_, Some(order)) => match &order.intent_id {
            Some(intent) => store.get_payment(order.payment_kind, intent).await?,
            None => None,
        },
        _ => None,
    };
    Ok(Located {
        subject,
        order,
        payment,
    })
}

/// An operator's `reconcile`: the payment `id` names (or its refund's, or its
/// order's) checked with Fintoc now, through the reconciler's own decision and
/// write (`ReconcileService::check_now`); what the check found and the payment
/// after it.
pub async fn reconcile<S, F, C, P>(
    reconciler: &ReconcileService<S, F, C, P>,
    id: &str,
) -> Result<Value, OperationsError>
where
    S: EventStore + PaymentStore + DeliveryStore + ScheduleStore + RefundStore,
    F: FintocLookup,
    C: Clock,
    P: Pause,
{
    let store = reconciler.store();
    let Some(payment) = locate(store, id).await?.payment else {
        return Err(OperationsError::Rejected(ApiError::invalid_request(
            404,
            "payment_not_found",
            format!("{id:?} names no payment of ours to check."),
        )));
    };
    let Some(result) = reconciler.check_now(payment.kind, &payment.id).await? else {
        return Err(OperationsError::Rejected(ApiError::invalid_request(
            409,
            "not_scheduled",
            format!(
                "{} is {} and no refund of it is open: the reconciler has nothing to check.",
                payment.id,
                payment.status.as_str()
            ),
        )));
    };
    let after = store.get_payment(payment.kind, &payment.id).await?;
    Ok(json!({
        "payment_id": payment.id,
        "result": result,
        "payment": after.as_ref().map(payment_json),
    }))
}

/// The payment an id of ours or Fintoc's names (`pi_…` or `cs_…`).
async fn payment_named<S: PaymentStore>(
    store: &S,
    id: &str,
) -> Result<Option<StoredPayment>, OperationsError> {
    let kind = match id.starts_with("cs_") {
        true => PaymentKind::Session,
        false => PaymentKind::Intent,
    };
    Ok(store.get_payment(kind, id).await?)
}

/// A refund's side: Fintoc's refund now (when Fintoc gave it an id), and where
/// it and ours disagree.
async fn refund_side<F: FintocLookup>(
    fintoc: &F,
    payment: &StoredPayment,
    refund_id: &str,
) -> (Value, Vec<Discrepancy>) {
    let Some(ours) = RefundId::parse(refund_id)
        .and_then(|r| payment.refunds.entries.iter().find(|e| e.key == r.key))
    else {
        return (Value::Null, Vec::new());
    };
    let Some(fintoc_id) = &ours.fintoc_id else {
        return (
            json!({"found": false, "why": "Fintoc has not answered its create yet"}),
            Vec::new(),
        );
    };
    match fintoc.get_refund(fintoc_id, Some(FINTOC_BUDGET)).await {
        Ok(Some(report)) => {
            let mut found = Vec::new();
            if report.status != ours.status {
                found.push(Discrepancy {
                    field: "status",
                    ours: json!(ours.status.as_str()),
                    fintoc: json!(report.status.as_str()),
                });
            }
            if let Some(amount) = report.amount.filter(|a| *a != ours.amount) {
                found.push(Discrepancy {
                    field: "amount",
                    ours: json!(ours.amount),
                    fintoc: json!(amount),
                });
            }
            (
                json!({"id": report.id, "status": report.status.as_str(), "amount": report.amount,
                       "currency": report.currency, "failure_code": report.failure_code}),
                found,
            )
        }
        Ok(None) => (
            json!({"found": false}),
            vec![Discrepancy {
                field: "found",
                ours: json!(true),
                fintoc: json!(false),
            }],
        ),
        Err(e) => (json!({"error": e.to_string()}), Vec::new()),
    }
}

/// The merchant events the payment caused and every attempt of their deliveries.
async fn event_timeline<S: DeliveryStore>(
    store: &S,
    destinations: &[String],
    payment: &StoredPayment,
) -> Result<Vec<TimelineEntry>, OperationsError> {
    let mut entries = Vec::new();
    for event_id in possible_event_ids(payment) {
        let Some(event) = store.event(&event_id).await? else {
            continue;
        };
        entries.push(TimelineEntry {
            at: format_rfc3339_ms(event.recorded_ms),
            at_ms: event.recorded_ms,
            what: "merchant_event_recorded".into(),
            detail: json!({"event_id": event.id, "type": event.event_type}),
        });
        for destination in destinations {
            let delivery = DeliveryRef {
                event_id: event.id.clone(),
                destination: destination.clone(),
            };
            let Some(view) = store.delivery(&delivery).await? else {
                continue;
            };
            for attempt in &view.history {
                entries.push(TimelineEntry {
                    at: format_rfc3339_ms(attempt.at_ms),
                    at_ms: attempt.at_ms,
                    what: "delivery_attempt".into(),
                    detail: json!({
                        "event_id": event.id, "destination": destination,
                        "attempt": attempt.attempt, "status": attempt.status,
                        "duration_ms": attempt.duration_ms,
                    }),
                });
            }
        }
    }
    Ok(entries)
}

fn order_json(order: &OrderRecord) -> Value {
    json!({
        "state": order.state.as_str(),
        "payment_id": order.intent_id,
        "payment_kind": order.payment_kind.as_str(),
    })
}

/// Our record of a payment as an operator sees it (no payer email, no token).
pub fn payment_json(p: &StoredPayment) -> Value {
    json!({
        "id": p.id,
        "kind": p.kind.as_str(),
        "status": p.status.as_str(),
        "amount": p.amount,
        "currency": p.currency,
        "order_id": p.order_id,
        "mode": p.mode,
        "error_reason": p.error_reason,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "review": p.review.as_ref().map(|r| json!({"reason": r.reason.as_str(), "detail": r.detail})),
        "session_payment": p.session_payment.as_ref().map(|s| json!({"intent_id": s.intent_id, "status": s.status.as_str()})),
        "schedule": p.schedule.as_ref().map(|s| json!({
            "checks": s.checks,
            "due_at": format_rfc3339_ms(s.due_at_ms),
            "give_up_at": format_rfc3339_ms(s.give_up_at_ms),
        })),
        "refunds": {
            "reserved": p.refunds.reserved,
            "entries": p.refunds.entries.iter().map(|r| json!({
                "id": p.refund_id(&r.key).to_string(),
                "fintoc_id": r.fintoc_id,
                "amount": r.amount,
                "status": r.status.as_str(),
                "failure_code": r.failure_code,
                "origin": r.origin.as_str(),
                "created_at": r.created_at,
            })).collect::<Vec<_>>(),
        },
    })
}
