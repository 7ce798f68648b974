//! The intent state machine as webhooks drive it: pure, so every rule is unit-tested.
//!
//! - an event id already applied changes nothing;
//! - non-final statuses move forward (`created` → `in_progress` → `requires_action` →
//!   `pending`), never back;
//! - a final status (`succeeded`, `failed`, `rejected`, `expired`) is never left: a
//!   conflicting final event is kept as an anomaly, a late non-final one is noted;
//! - an intent the table does not know is created from the event.

use super::intent::IntentStatus;
use std::collections::BTreeSet;

/// What a webhook needs to know of a stored intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentState {
    /// Current status.
    pub status: IntentStatus,
    /// Event ids applied so far.
    pub applied_event_ids: BTreeSet<String>,
    /// Optimistic-concurrency version: every webhook write increments it.
    pub version: u64,
}

/// What one event does to one intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The event id was already applied: nothing to write.
    Duplicate,
    /// The intent is unknown here: create it from the event's data.
    Create {
        /// Status to create it with.
        status: IntentStatus,
    },
    /// The status moves.
    Transition {
        /// Status before.
        from: IntentStatus,
        /// Status after.
        to: IntentStatus,
    },
    /// Same status again under another event id: only the id is recorded.
    SameStatus,
    /// A final event that contradicts the final status: kept as an anomaly for a human.
    ConflictingFinal {
        /// The final status, which stays.
        current: IntentStatus,
        /// What the event claimed.
        claimed: IntentStatus,
    },
    /// A non-final event older than the current status: noted, status unchanged.
    Late {
        /// Status, which stays.
        current: IntentStatus,
        /// What the event claimed.
        claimed: IntentStatus,
    },
}

impl Effect {
    /// Short name for logs and answers.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Duplicate => "duplicate",
            Self::Create { .. } => "created",
            Self::Transition { .. } => "applied",
            Self::SameStatus => "recorded",
            Self::ConflictingFinal { .. } => "anomaly",
            Self::Late { .. } => "late",
        }
    }
}

/// Order of non-final statuses; unknown ones rank lowest, finals highest.
fn rank(status: &IntentStatus) -> u8 {
    match status {
        IntentStatus::Other(_) | IntentStatus::Created => 0,
        IntentStatus::InProgress => 1,
        IntentStatus::RequiresAction => 2,
        IntentStatus::Pending => 3,
        IntentStatus::Succeeded
        | IntentStatus::Failed
        | IntentStatus::Rejected
        | IntentStatus::Expired => 4,
    }
}

/// Decides the effect of event `event_id` claiming `claimed` on `current`.
pub fn decide(current: Option<&IntentState>, event_id: &str, claimed: &IntentStatus) -> Effect {
    let Some(current) = current else {
        return Effect::Create {
            status: claimed.clone(),
        };
    };
    if current.applied_event_ids.contains(event_id) {
        return Effect::Duplicate;
    }
    if &current.status == claimed {
        return Effect::SameStatus;
    }
    if current.status.is_final() {
        return if claimed.is_final() {
            Effect::ConflictingFinal {
                current: current.status.clone(),
                claimed: claimed.clone(),
            }
        } else {
            Effect::Late {
                current: current.status.clone(),
                claimed: claimed.clone(),
            }
        };
    }
    if claimed.is_final() || rank(claimed) > rank(&current.status) {
        Effect::Transition {
            from: current.status.clone(),
            to: claimed.clone(),
        }
    } else {
        Effect::Late {
            current: current.status.clone(),
            claimed: claimed.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use IntentStatus::*;

    fn state(status: IntentStatus, applied: &[&str]) -> IntentState {
        IntentState {
            status,
            applied_event_ids: applied.iter().map(|s| s.to_string()).collect(),
            version: 1,
        }
    }

    #[test]
    fn unknown_intent_is_created() {
        assert_eq!(
            decide(None, "e1", &Succeeded),
            Effect::Create { status: Succeeded }
        );
    }

    #[test]
    fn applied_event_is_a_duplicate_whatever_it_says() {
        let s = state(Succeeded, &["e1"]);
        assert_eq!(decide(Some(&s), "e1", &Succeeded), Effect::Duplicate);
        assert_eq!(decide(Some(&s), "e1", &Failed), Effect::Duplicate);
    }

    #[test]
    fn non_final_moves_forward_to_final() {
        for from in [
            Created,
            InProgress,
            Pending,
            RequiresAction,
            Other("x".into()),
        ] {
            for to in [Succeeded, Failed, Rejected, Expired] {
                assert_eq!(
                    decide(Some(&state(from.clone(), &[])), "e", &to),
                    Effect::Transition {
                        from: from.clone(),
                        to: to.clone()
                    }
                );
            }
        }
        assert!(matches!(
            decide(Some(&state(Created, &[])), "e", &Pending),
            Effect::Transition { .. }
        ));
    }

    #[test]
    fn finals_are_never_left() {
        for current in [Succeeded, Failed, Rejected, Expired] {
            for claimed in [Succeeded, Failed, Rejected, Expired] {
                let effect = decide(Some(&state(current.clone(), &[])), "e", &claimed);
                if claimed == current {
                    assert_eq!(effect, Effect::SameStatus);
                } else {
                    assert_eq!(
                        effect,
                        Effect::ConflictingFinal {
                            current: current.clone(),
                            claimed
                        }
                    );
                }
            }
            assert_eq!(
                decide(Some(&state(current.clone(), &[])), "e", &Pending),
                Effect::Late {
                    current: current.clone(),
                    claimed: Pending
                }
            );
        }
    }

    #[test]
    fn non_final_never_moves_back() {
        assert_eq!(
            decide(Some(&state(Pending, &[])), "e", &InProgress),
            Effect::Late {
                current: Pending,
                claimed: InProgress
            }
        );
        assert_eq!(
            decide(Some(&state(Pending, &[])), "e", &Pending),
            Effect::SameStatus
        );
    }

    /// Whatever order a set of events arrives in, and however often, the end state
    /// is the same final status when exactly one final event is in the set.
    #[test]
    fn any_order_of_pending_and_one_final_ends_final() {
        let events = [
            ("p", Pending),
            ("f", Succeeded),
            ("p", Pending),
            ("f", Succeeded),
        ];
        let orders: [[usize; 4]; 4] = [[0, 1, 2, 3], [1, 0, 3, 2], [3, 2, 1, 0], [1, 1, 0, 0]];
        for order in orders {
            let mut s = state(Created, &[]);
            let mut transitions_to_final = 0;
            for i in order {
                let (id, status) = &events[i];
                match decide(Some(&s), id, status) {
                    Effect::Transition { to, .. } => {
                        if to.is_final() {
                            transitions_to_final += 1;
                        }
                        s.status = to;
                        s.applied_event_ids.insert(id.to_string());
                    }
                    Effect::Duplicate => {}
                    _ => {
                        s.applied_event_ids.insert(id.to_string());
                    }
                }
            }
            assert_eq!(s.status, Succeeded, "{order:?}");
            assert_eq!(transitions_to_final, 1, "{order:?}");
        }
    }
}
