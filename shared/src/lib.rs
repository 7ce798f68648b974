//! Shared library of the Fintoc Payment Intents merchant backend.
//!
//! The Lambda handlers in `functions/` stay thin: they parse the HTTP request, call
//! [`service::PaymentIntentService`] and map its answer to HTTP. Everything that
//! decides something lives here:
//!
//! - [`domain`]: pure rules (validation, intent statuses, idempotency decisions);
//! - [`store`]: the only module that talks to DynamoDB, behind small traits;
//! - [`fintoc`]: the only module that talks to Fintoc, behind a small trait;
//! - [`service`]: the create / get use cases that combine them;
//! - [`config`] and [`secrets`]: configuration read and validated once at cold start.

pub mod aws;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod fintoc;
pub mod http;
pub mod secrets;
pub mod service;
pub mod store;
pub mod webhook;
