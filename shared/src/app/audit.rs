//! The invariant audit (`check-invariants`): the whole table read once — a
//! parallel scan, every segment at once — each order checked with its payments
//! and each payment alone (`domain::invariants`); a suspect is read again, strongly
//! consistent, and reported only if it still breaks the rule (the scan is not a
//! snapshot: an order paid between the reads of its item and its payment's is no
//! violation). Read only: it writes nothing, so a read-only role runs it.

use crate::domain::invariants::{
    check_order, check_payment, AuditedOrder, AuditedPayment, Invariant, Violation,
};
use crate::domain::payment::StoredPayment;
use crate::store::{AuditStore, AuditedItem, StoreError};
use std::collections::{BTreeMap, BTreeSet};

/// What an audit found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditReport {
    /// Items checked (orders and payments).
    pub checked: usize,
    /// Items scanned (every item of the table).
    pub scanned: usize,
    /// The violations confirmed, by rule then subject.
    pub violations: Vec<Violation>,
    /// Read units the scan consumed (the confirming reads, one item each, are
    /// few: one per suspect's order and payment).
    pub read_units: f64,
    /// Suspects the confirming read cleared.
    pub cleared: usize,
}

/// An order with its payments, as one read of the table saw them.
struct Group {
    order: Option<AuditedOrder>,
    payments: Vec<(StoredPayment, bool)>,
}

fn violations_of(group: &Group, now_ms: i64) -> Vec<Violation> {
    let payments: Vec<AuditedPayment<'_>> = group
        .payments
        .iter()
        .map(|(payment, flagged)| AuditedPayment {
            payment,
            flagged: *flagged,
        })
        .collect();
    let mut found: Vec<Violation> = payments
        .iter()
        .flat_map(|p| check_payment(*p, now_ms))
        .collect();
    if let Some(order) = &group.order {
        found.extend(check_order(order, &payments, now_ms));
    }
    found
}

fn key(v: &Violation) -> (Invariant, String) {
    (v.invariant, v.subject.clone())
}

/// Runs the audit over `segments` scan segments at `now_ms`.
pub async fn check_invariants<S: AuditStore>(
    store: &S,
    segments: i32,
    now_ms: i64,
) -> Result<AuditReport, StoreError> {
    let segments = segments.max(1);
    let scans = (0..segments).map(|segment| store.scan_segment(segment, segments));
    let mut report = AuditReport::default();
    // Grouped by order; payments without an order in groups of their own.
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for segment in futures::future::try_join_all(scans).await? {
        report.scanned += segment.scanned;
        report.read_units += segment.read_units;
        for item in segment.items {
            report.checked += 1;
            let (group_key, order, payment) = match item {
                AuditedItem::Order(order) => {
                    (format!("order {}", order.order_id), Some(order), None)
                }
                AuditedItem::Payment { payment, flagged } => {
                    let key = match &payment.order_id {
                        Some(order_id) => format!("order {order_id}"),
                        None => format!("payment {}", payment.id),
                    };
                    (key, None, Some((*payment, flagged)))
                }
            };
            let group = groups.entry(group_key).or_insert(Group {
                order: None,
                payments: Vec::new(),
            });
            if order.is_some() {
                group.order = order;
            }
            group.payments.extend(payment);
        }
    }
    for group in groups.values() {
        let suspected = violations_of(group, now_ms);
        if suspected.is_empty() {
            continue;
        }
        let before = store_reads(store, group).await?;
        let confirmed: BTreeSet<(Invariant, String)> =
            violations_of(&before, now_ms).iter().map(key).collect();
        for violation in suspected {
            if confirmed.contains(&key(&violation)) {
                report.violations.push(violation);
            } else {
                report.cleared += 1;
            }
        }
    }
    report
        .violations
        .sort_by(|a, b| (a.invariant, &a.subject).cmp(&(b.invariant, &b.subject)));
    report.violations.dedup_by(|a, b| key(a) == key(b));
    Ok(report)
}

/// The group read again, strongly consistent: the order, the payments the scan
/// saw and the payment the order names now.
async fn store_reads<S: AuditStore>(store: &S, group: &Group) -> Result<Group, StoreError> {
    let order = match &group.order {
        Some(order) => store.audited_order(&order.order_id).await?,
        None => None,
    };
    let mut wanted: Vec<(crate::domain::payment::PaymentKind, String)> = group
        .payments
        .iter()
        .map(|(p, _)| (p.kind, p.id.clone()))
        .collect();
    if let Some(order) = &order {
        if let Some(named) = &order.payment_id {
            if !wanted.iter().any(|(_, id)| id == named) {
                wanted.push((order.payment_kind, named.clone()));
            }
        }
    }
    let mut payments = Vec::new();
    for (kind, id) in wanted {
        payments.extend(store.audited_payment(kind, &id).await?);
    }
    Ok(Group { order, payments })
}
