//! The check schedule in memory: the due payments by shard, moved under their
//! version.

use super::*;

pub(super) fn change_schedule(item: &mut MemoryIntent, change: &ScheduleChange) {
    match change {
        ScheduleChange::Unchanged => {}
        ScheduleChange::Clear => {
            item.schedule = None;
            item.failing = None;
        }
        ScheduleChange::Set(schedule) => {
            item.schedule = Some(*schedule);
            item.failing = None;
        }
        ScheduleChange::Failed { next, at_ms } => {
            item.schedule = Some(*next);
            let (count, since) = item.failing.unwrap_or((0, *at_ms));
            item.failing = Some((count + 1, since));
        }
    }
}

impl ScheduleStore for MemoryStore {
    async fn due_intents(
        &self,
        shard: u16,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<DuePayment>, StoreError> {
        let tables = self.begin(Operation::DueIntents)?;
        let mut due: Vec<DuePayment> = tables
            .intents
            .iter()
            .filter_map(|((kind, id), item)| {
                let schedule = item.schedule?;
                (schedule.shard == shard && schedule.due_at_ms <= now_ms).then(|| DuePayment {
                    intent_id: id.clone(),
                    kind: *kind,
                    state: item.state().expect("a scheduled intent has a status"),
                    schedule,
                })
            })
            .collect();
        due.sort_by_key(|d| (d.schedule.due_at_ms, d.intent_id.clone()));
        due.truncate(limit.max(1));
        Ok(due)
    }

    async fn update_schedule(&self, update: &ScheduleUpdate) -> Result<bool, StoreError> {
        let mut tables = self.begin(Operation::UpdateSchedule)?;
        let Some(item) = tables
            .intents
            .get_mut(&(update.kind, update.intent_id.clone()))
        else {
            return Ok(false);
        };
        if item.version != update.expected_version {
            return Ok(false);
        }
        change_schedule(item, &update.change);
        if let Some(flag) = update.flag {
            item.flagged = Some(flag.as_str().to_string());
        }
        Ok(true)
    }
}
