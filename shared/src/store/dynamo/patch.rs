//! Rendering an [`PaymentPatch`] (decided in `domain::transition`) as one conditional
//! `UpdateItem`: each field of the patch becomes a `SET`, the event id an `ADD`, the
//! guard the condition. Nothing here decides what is written.

use super::attention::join_attention_queue;
use super::expr::Expr;
use super::orders::state_value;
use super::{n, s, PARTITION_KEY};
use crate::domain::order::{OrderOutcome, OrderPatch, OrderState};
use crate::domain::report::MaskedAccount;
use crate::domain::schedule::ScheduleChange;
use crate::domain::transition::{
    EventNote, Expectation, NoteList, Outcome, PaymentPatch, WriteGuard, CREATED_BY_WEBHOOK,
};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

fn map<'a>(entries: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> AttributeValue {
    AttributeValue::M(
        entries
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), s(v))))
            .collect::<HashMap<_, _>>(),
    )
}

fn account(a: &MaskedAccount) -> AttributeValue {
    map([
        ("institution_id", a.institution_id.as_deref()),
        ("holder_id", a.holder_id.as_deref()),
        ("number_last4", a.number_last4.as_deref()),
        ("type", a.account_type.as_deref()),
    ])
}

fn note(note: &EventNote) -> AttributeValue {
    map([
        ("event_id", Some(note.event_id.as_str())),
        ("event_type", Some(note.event_type.as_str())),
        ("claimed_status", Some(note.claimed_status.as_str())),
        ("received_at", Some(note.received_at.as_str())),
        ("error_reason", note.error_reason.as_deref()),
    ])
}

fn outcome(expr: &mut Expr, o: &Outcome) {
    expr.set_some("error_reason", o.error_reason.as_deref().map(s))
        .set_some("transaction_date", o.transaction_date.as_deref().map(s))
        .set_some("reference_id", o.reference_id.as_deref().map(s))
        .set_some("sender_account", o.sender_account.as_ref().map(account))
        .set_some("reported_amount", o.reported_amount.map(n))
        .set_some("reported_currency", o.reported_currency.as_deref().map(s))
        .set("outcome_event_id", s(&o.event_id))
        .set_some(
            "outcome_event_created_at",
            o.event_created_at.as_deref().map(s),
        )
        .set("finalized_at", s(&o.finalized_at))
        .set("decided_by", s(o.decided_by.as_str()));
}

/// The attributes of an intent's check schedule; only open intents carry them, so
/// the index over `due_shard` and `due_at` is sparse.
pub(crate) const SCHEDULE_ATTRIBUTES: [&str; 4] = ["due_shard", "due_at", "checks", "give_up_at"];

/// The count of a payment's consecutive failed checks, and since when they fail
/// (Unix ms): set while its checks fail, removed by the next answered check.
const FAILING_ATTRIBUTES: [&str; 2] = ["failed_checks", "failing_since_ms"];

/// `SET` or `REMOVE` the schedule's attributes.
pub(crate) fn schedule(expr: &mut Expr, change: &ScheduleChange) {
    let set = |expr: &mut Expr, s: &crate::domain::schedule::CheckSchedule| {
        expr.set("due_shard", n(s.shard))
            .set("due_at", n(s.due_at_ms))
            .set("checks", n(s.checks))
            .set("give_up_at", n(s.give_up_at_ms));
    };
    match change {
        ScheduleChange::Unchanged => {}
        ScheduleChange::Clear => {
            for attr in SCHEDULE_ATTRIBUTES.into_iter().chain(FAILING_ATTRIBUTES) {
                expr.remove(attr);
            }
        }
        ScheduleChange::Set(s) => {
            set(expr, s);
            for attr in FAILING_ATTRIBUTES {
                expr.remove(attr);
            }
        }
        ScheduleChange::Failed { next, at_ms } => {
            set(expr, next);
            expr.add("failed_checks", n(1))
                .set_if_absent("failing_since_ms", n(*at_ms));
        }
    }
}

/// The update, condition, names and values of `patch`.
pub(crate) fn render(patch: &PaymentPatch) -> Expr {
    let mut expr = Expr::default();
    expr.set("updated_at", s(&patch.updated_at));
    match patch.guard {
        WriteGuard::Expected(_) => expr.increment("version"),
        WriteGuard::Absent | WriteGuard::Version(_) => expr.set("version", n(patch.version)),
    };
    if let Some(c) = &patch.created {
        let metadata = c.metadata.iter().map(|(k, v)| (k.clone(), s(v))).collect();
        expr.set("entity", s(patch.kind.as_str()))
            .set("id", s(&patch.payment_id))
            .set_some("amount", c.amount.map(n))
            .set_some("currency", c.currency.as_deref().map(s))
            .set("metadata", AttributeValue::M(metadata))
            .set_some("order_id", c.order_id.as_deref().map(s))
            .set_some("mode", c.mode.as_deref().map(s))
            .set_some("customer_email", c.customer_email.as_deref().map(s))
            .set("created_at", s(&c.created_at))
            .set("created_by", s(CREATED_BY_WEBHOOK));
    }
    if let Some(status) = &patch.status {
        expr.set("status", s(status.as_str()));
    }
    if let Some(payment) = &patch.session_payment {
        expr.set("payment_intent_id", s(&payment.intent_id))
            .set("payment_status", s(payment.status.as_str()));
    }
    if let Some(o) = &patch.outcome {
        outcome(&mut expr, o);
    }
    if let Some(review) = &patch.review {
        expr.set("needs_review", s(review.reason.as_str()))
            .set("review_detail", s(&review.detail));
        join_attention_queue(&mut expr, &patch.updated_at);
    }
    if let Some(n) = &patch.note {
        let list = match n.list {
            NoteList::Anomalies => "anomalies",
            NoteList::LateEvents => "late_events",
        };
        expr.append(list, note(n));
    }
    schedule(&mut expr, &patch.schedule);
    expr.add(
        "applied_event_ids",
        AttributeValue::Ss(vec![patch.event_id.clone()]),
    );
    match &patch.guard {
        WriteGuard::Absent => {
            let pk = expr.name(PARTITION_KEY);
            expr.condition(format!("attribute_not_exists({pk})"));
        }
        WriteGuard::Version(v) => {
            let version = expr.name("version");
            let expected = expr.value("expected_version", n(*v));
            expr.condition(format!("{version} = {expected}"));
        }
        WriteGuard::Expected(expectation) => {
            let condition = expectation_condition(&mut expr, expectation);
            expr.condition(condition);
        }
    }
    expr
}

/// `domain::transition::Expectation` as a condition expression: what
/// `Expectation::accepts` checks of the stored item (the contract suite holds
/// DynamoDB's answer to it for every kind of state).
fn expectation_condition(expr: &mut Expr, e: &Expectation) -> String {
    let (pk, status, applied) = (
        expr.name(PARTITION_KEY),
        expr.name("status"),
        expr.name("applied_event_ids"),
    );
    let event = expr.value("expected_new_event", s(&e.event_id));
    let statuses: Vec<String> = e
        .status_not_in
        .iter()
        .enumerate()
        .map(|(i, st)| expr.value(&format!("not_from_{i}"), s(st.as_str())))
        .collect();
    let mut parts = vec![
        format!("attribute_exists({pk})"),
        format!("attribute_exists({status})"),
        format!("NOT contains({applied}, {event})"),
        format!("NOT ({status} IN ({}))", statuses.join(", ")),
    ];
    match &e.order_id {
        None => {}
        Some(None) => {
            let order = expr.name("order_id");
            parts.push(format!("attribute_not_exists({order})"));
        }
        Some(Some(id)) => {
            let order = expr.name("order_id");
            let value = expr.value("expected_order_id", s(id));
            parts.push(format!("{order} = {value}"));
        }
    }
    if let Some((amount, currency)) = e
        .reported
        .as_ref()
        .filter(|(amount, currency)| amount.is_some() || currency.is_some())
    {
        let mut agrees = Vec::new();
        let (amount_n, currency_n) = (expr.name("amount"), expr.name("currency"));
        if let Some(a) = amount {
            let value = expr.value("reported_amount_check", n(a));
            agrees.push(format!("{amount_n} = {value}"));
        }
        if let Some(c) = currency {
            let value = expr.value("reported_currency_check", s(c));
            agrees.push(format!("{currency_n} = {value}"));
        }
        parts.push(format!(
            "(attribute_not_exists({amount_n}) OR attribute_not_exists({currency_n}) OR ({}))",
            agrees.join(" AND ")
        ));
    }
    if let Some(mode) = &e.mode {
        let name = expr.name("mode");
        let value = expr.value("stated_mode", s(mode));
        parts.push(format!(
            "(attribute_not_exists({name}) OR {name} = {value})"
        ));
    }
    parts.join(" AND ")
}

/// The order's part of a patch: paid, held for review or closed, under
/// `domain::order::order_accepts` as its condition.
pub(crate) fn render_order(order: &OrderPatch) -> Expr {
    let mut expr = Expr::default();
    match order.outcome {
        OrderOutcome::Paid | OrderOutcome::Review => {
            let (state, at) = match order.outcome {
                OrderOutcome::Review => (OrderState::Review, "review_at"),
                _ => (OrderState::Paid, "paid_at"),
            };
            let pk = expr.name(PARTITION_KEY);
            expr.set("entity", s("order"))
                .set("order_id", s(&order.order_id))
                .set("state", s(state.as_str()))
                .set("intent_id", s(&order.intent_id))
                .set("payment_kind", s(order.kind.as_str()))
                .set(at, s(&order.at));
            if order.outcome == OrderOutcome::Review {
                join_attention_queue(&mut expr, &order.at);
            }
            let paid = state_value(&mut expr, OrderState::Paid);
            let review = state_value(&mut expr, OrderState::Review);
            expr.condition(format!(
                "attribute_not_exists({pk}) OR (#state <> {paid} AND #state <> {review} AND \
                 (attribute_not_exists(#intent_id) OR #intent_id = :intent_id))"
            ));
        }
        OrderOutcome::Closed => {
            expr.set("state", s(OrderState::Closed.as_str()))
                .set("closed_at", s(&order.at));
            let intent = expr.name("intent_id");
            let value = expr.value("intent_id", s(&order.intent_id));
            let open = state_value(&mut expr, OrderState::Open);
            let reserved = state_value(&mut expr, OrderState::Reserved);
            expr.condition(format!(
                "{intent} = {value} AND (#state = {open} OR #state = {reserved})"
            ));
        }
    }
    expr
}

/// A payment the order refused (paid already, or by another intent), kept on the
/// order for a human.
pub(crate) fn render_order_anomaly(order: &OrderPatch) -> Expr {
    let mut expr = Expr::default();
    expr.set("entity", s("order"))
        .set_if_absent("order_id", s(&order.order_id))
        .append(
            "anomalies",
            map([
                ("kind", Some("payment_not_taken")),
                ("intent_id", Some(order.intent_id.as_str())),
                ("at", Some(order.at.as_str())),
            ]),
        );
    expr
}
