//! `POST /refunds/{id}/cancel`: a refund Fintoc has not started to pay out,
//! canceled there and recorded as Fintoc answers.

use super::*;
use crate::log_markers::ANOMALY;

impl<S, F, C> PaymentService<S, F, C>
where
    S: CreateStore + PaymentStore + OrderStore + EventStore + RefundStore,
    F: FintocApi + FintocRefunds + FintocLookup,
    C: Clock,
{
    /// `POST /refunds/{id}/cancel`: cancels a refund Fintoc has not started to pay
    /// out, and records what Fintoc answers (its amount is released then). A
    /// refund canceled already answers as it is; any other is a 409.
    pub async fn cancel_refund(
        &self,
        id: &str,
        deadline_ms: Option<i64>,
    ) -> Result<Reply, ApiError> {
        let (payment, refund) = self.find_refund(id).await?;
        if refund.status == RefundStatus::Canceled {
            return Ok(refund_reply(200, &payment, &refund));
        }
        let fintoc_id = match (&refund.status, &refund.fintoc_id) {
            (RefundStatus::Pending, Some(fintoc_id)) => fintoc_id.clone(),
            (status, _) => return Err(ApiError::refund_not_cancelable(status.as_str())),
        };
        let now_ms = self.clock.now_ms();
        let answer = self
            .fintoc
            .cancel_refund(&fintoc_id, fintoc_budget(deadline_ms, now_ms))
            .await;
        let report = match answer {
            Ok(Some(report)) => report,
            Ok(None) => {
                // Fintoc told this backend of the refund, and now says it does not
                // know it (another account's key, another mode): a human must look.
                tracing::error!(payment_id = %payment.id, refund_key = refund.key.as_str(), fintoc_refund_id = %fintoc_id, "{ANOMALY}: Fintoc does not know a refund this deployment made; nothing canceled");
                return Err(ApiError::dependency(
                    502,
                    "fintoc_refund_unknown",
                    "Fintoc does not know this refund; nothing was canceled. The operator has been alerted.",
                ));
            }
            // Fintoc started paying it out meanwhile: what it says now is recorded
            // by its event or the reconciler.
            Err(FintocError::Rejected { .. }) => {
                return Err(ApiError::refund_not_cancelable("past pending at Fintoc"))
            }
            Err(e) => return Err(fintoc_error(&e)),
        };
        let now = format_rfc3339_ms(self.clock.now_ms());
        let (_, recorded) = record_refund_report(&self.store, &payment, &refund.key, &report, &now)
            .await
            .map_err(store_error)?;
        let recorded = recorded.ok_or_else(|| refund_not_found(id))?;
        Ok(refund_reply(200, &payment, &recorded))
    }
}
