//! Idempotency records in memory: taken, resumed, completed, released as the
//! DynamoDB store's conditions decide (`domain::idempotency`).

use super::*;

impl Tables {
    /// Whether `acquire`'s key is held by a record that has not expired: such a key
    /// goes the one-write way ([`IdempotencyStore::acquire`]), never with a first write.
    pub(super) fn key_is_live(&self, acquire: &AcquireRequest<'_>) -> bool {
        self.records
            .get(acquire.key)
            .is_some_and(|r| !is_expired(&r.record, acquire.now_ms))
    }

    /// Whether `complete`'s lease still holds its key, in progress.
    pub(super) fn holds(&self, complete: &CompleteRequest<'_>) -> bool {
        self.records.get(complete.key).is_some_and(|r| {
            r.lease_id == *complete.lease_id && r.record.status == RecordStatus::InProgress
        })
    }

    /// [`IdempotencyStore::acquire`], on the locked tables.
    pub(super) fn acquire(
        &mut self,
        request: &AcquireRequest<'_>,
    ) -> Result<AcquireOutcome, StoreError> {
        let tables = self;
        let lease_id = LeaseId::random();
        // Whole seconds, as the TTL attribute keeps it.
        let expires_at_ms = request.expires_at_ms.div_euclid(1000) * 1000;
        match tables.records.get_mut(request.key) {
            Some(existing) if !is_expired(&existing.record, request.now_ms) => {
                if !can_resume(&existing.record, request.request_hash, request.now_ms) {
                    return Ok(classify_conflict(
                        &existing.record,
                        request.request_hash,
                        request.now_ms,
                    ));
                }
                // Resumed under a new lease; the reservation stays.
                existing.record.status = RecordStatus::InProgress;
                existing.record.lease_expires_at_ms = request.lease_expires_at_ms;
                existing.record.expires_at_ms = expires_at_ms;
                existing.lease_id = lease_id.clone();
                let reservation_id = existing
                    .record
                    .reservation_id
                    .clone()
                    .unwrap_or_else(|| ReservationId::of_legacy_record(request.key));
                Ok(AcquireOutcome::Acquired {
                    lease_id,
                    reservation_id,
                    resumed: Some(existing.record.history),
                })
            }
            _ => {
                let reservation_id = ReservationId::random();
                tables.records.insert(
                    request.key.clone(),
                    MemoryRecord {
                        record: IdempotencyRecord {
                            status: RecordStatus::InProgress,
                            request_hash: request.request_hash.to_string(),
                            lease_expires_at_ms: request.lease_expires_at_ms,
                            expires_at_ms,
                            response: None,
                            reservation_id: Some(reservation_id.clone()),
                            history: KeyHistory {
                                taken_at_ms: request.now_ms,
                                fintoc_key_generation: 0,
                            },
                        },
                        lease_id: lease_id.clone(),
                        intent_id: None,
                    },
                );
                Ok(AcquireOutcome::Acquired {
                    lease_id,
                    reservation_id,
                    resumed: None,
                })
            }
        }
    }

    /// [`IdempotencyStore::complete`], on the locked tables.
    pub(super) fn complete(&mut self, request: &CompleteRequest<'_>) -> Result<bool, StoreError> {
        let tables = self;
        match tables.records.get_mut(request.key) {
            Some(held)
                if held.lease_id == *request.lease_id
                    && held.record.status == RecordStatus::InProgress =>
            {
                held.record.status = RecordStatus::Completed;
                held.record.response = Some(request.response.clone());
                held.intent_id = request.intent_id.map(str::to_string);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl IdempotencyStore for MemoryStore {
    async fn acquire(&self, request: &AcquireRequest<'_>) -> Result<AcquireOutcome, StoreError> {
        self.begin(Operation::Acquire)?.acquire(request)
    }

    async fn complete(&self, request: &CompleteRequest<'_>) -> Result<bool, StoreError> {
        self.begin(Operation::Complete)?.complete(request)
    }

    async fn release(&self, key: &IdempotencyKey, lease_id: &LeaseId) -> Result<(), StoreError> {
        let mut tables = self.begin(Operation::Release)?;
        if let Some(held) = tables
            .records
            .get_mut(key)
            .filter(|r| r.lease_id == *lease_id && r.record.status == RecordStatus::InProgress)
        {
            held.record.status = RecordStatus::Released;
        }
        Ok(())
    }

    async fn next_fintoc_key_generation(
        &self,
        key: &IdempotencyKey,
        lease_id: &LeaseId,
        from: u32,
    ) -> Result<bool, StoreError> {
        let mut tables = self.begin(Operation::Release)?;
        let Some(held) = tables.records.get_mut(key).filter(|r| {
            r.lease_id == *lease_id
                && r.record.status == RecordStatus::InProgress
                && r.record.history.fintoc_key_generation == from
        }) else {
            return Ok(false);
        };
        held.record.history.fintoc_key_generation = from + 1;
        Ok(true)
    }
}
