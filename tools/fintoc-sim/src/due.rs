//! What the simulator's clock releases when it moves: held intents finish,
//! sessions past their expiry expire, held refunds settle — each through its own
//! resource, so this module sits above them all.

use crate::delivery::finish_intent;
use crate::refunds::release_due_refunds;
use crate::sessions::expire_due_sessions;
use crate::state::{take_due, State};
use std::sync::Arc;

/// Finishes every held intent whose time has come (their final events go out).
pub(crate) fn release_due_holds(state: &Arc<State>) {
    let now = state.now_ms();
    let due = take_due(&mut state.lock().holds, now);
    for (id, finish) in due {
        if let Err(e) = finish_intent(state, &id, &finish) {
            eprintln!("fintoc-sim: held intent {id} could not finish: {e}");
        }
    }
    expire_due_sessions(state);
    release_due_refunds(state);
}
