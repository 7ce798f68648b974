//! Orders in memory: reserved once, opened by their holder.

use super::*;

impl Tables {
    /// [`OrderStore::reserve_order`], on the locked tables.
    pub(super) fn reserve_order(
        &mut self,
        request: &ReserveRequest<'_>,
    ) -> Result<ReserveOutcome, StoreError> {
        let tables = self;
        if let Some(existing) = tables.orders.get(request.order_id) {
            if !can_reserve(&existing.record, request.holder, request.now_ms) {
                return Ok(classify_reserve_conflict(&existing.record, request.now_ms));
            }
        }
        let entry = tables
            .orders
            .entry(request.order_id.to_string())
            .or_insert_with(|| MemoryOrder::first(OrderState::Reserved, PaymentKind::Intent));
        entry.record.state = OrderState::Reserved;
        entry.record.holder = request.holder.to_string();
        entry.record.reserved_until_ms = request.reserved_until_ms;
        Ok(ReserveOutcome::Reserved)
    }

    /// [`OrderStore::open_order`], on the locked tables.
    pub(super) fn open_order(&mut self, request: &OpenRequest<'_>) -> Result<bool, StoreError> {
        let tables = self;
        let order = tables.orders.get_mut(request.order_id);
        if !can_open(order.as_ref().map(|o| &o.record), request.holder) {
            return Ok(false);
        }
        let order = order.expect("can_open needs an order");
        order.record.state = OrderState::Open;
        order.record.intent_id = Some(request.intent_id.to_string());
        order.record.payment_kind = request.kind;
        if let Some(payment_ref) = request.payment_ref {
            order
                .record
                .session_refs
                .insert(payment_ref.to_string(), request.intent_id.to_string());
        }
        Ok(true)
    }
}

impl OrderStore for MemoryStore {
    async fn reserve_order(
        &self,
        request: &ReserveRequest<'_>,
    ) -> Result<ReserveOutcome, StoreError> {
        self.begin(Operation::ReserveOrder)?.reserve_order(request)
    }

    async fn open_order(&self, request: &OpenRequest<'_>) -> Result<bool, StoreError> {
        self.begin(Operation::OpenOrder)?.open_order(request)
    }
}
