//! How the use cases of the merchant's API log a dependency's failure and answer
//! it: one mapping each for DynamoDB's and Fintoc's, both safe to retry when the
//! failure is the dependency's.

use crate::fintoc::FintocError;
use crate::http::ApiError;
use crate::store::StoreError;

/// Logs a storage failure and answers it (5xx, retryable, when DynamoDB failed).
pub fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Unavailable { .. } => {
            tracing::error!(error = %e.detail(), "DynamoDB call failed")
        }
        StoreError::Malformed(_) | StoreError::Conflict(_) => {
            tracing::error!(error = %e.detail(), "stored data needs a human")
        }
    }
    ApiError::storage(&e)
}

/// Answers a Fintoc failure (a rejection as the 4xx it is, the rest retryable).
pub fn fintoc_error(e: &FintocError) -> ApiError {
    ApiError::from(e)
}
