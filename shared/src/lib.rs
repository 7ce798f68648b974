//! Shared library of the Fintoc Payment Intents merchant backend.
//!
//! The Lambda handlers in `functions/` stay thin: they parse the HTTP request, call
//! a use case in [`app`] and render its answer with [`http`]. Layers, from the
//! bottom (see `ARCHITECTURE.md`):
//!
//! - [`domain`]: pure rules (validation, statuses, idempotency decisions, what each
//!   event writes); no I/O, no HTTP;
//! - [`store`]: the only module that talks to DynamoDB, behind small ports;
//! - [`fintoc`]: the only module that talks to Fintoc, behind a small port;
//! - [`webhook`]: Fintoc's webhooks on the wire (signature, event parsing);
//! - [`destinations`]: the only module that talks to the merchant's endpoints
//!   (merchant events, signed per Standard Webhooks);
//! - [`http`]: the HTTP contract (replies, the error envelope, status mapping);
//! - [`app`]: the two engines (record a report exactly once, run a command once per
//!   key) and the use cases on them;
//! - [`routes`]: the one route table of the API;
//! - [`config`], [`secrets`], [`aws`], [`clock`], [`logging`], [`metrics`]: what the
//!   functions are built from at cold start, and what they report;
//! - [`testkit`]: payments as a create leaves them, for tests and benchmarks.

pub mod app;
pub mod aws;
pub mod clock;
pub mod config;
pub mod destinations;
pub mod domain;
pub mod fintoc;
pub mod http;
pub mod log_markers;
pub mod logging;
pub mod metrics;
pub mod routes;
pub mod secrets;
pub mod store;
pub mod testkit;
pub mod webhook;
