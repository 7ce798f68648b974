//! A Fintoc API simulator for tests and local development.
//!
//! It serves, on loopback, the Fintoc endpoints this product uses and behaves like
//! the real API as documented (see `fintoc.md` in the project's reference):
//!
//! - raw-key `Authorization` header; anything else is a 401 with Fintoc's envelope;
//! - `POST /v1/payment_intents`, `GET /v1/payment_intents[/{id}]`,
//!   `POST /v1/payment_intents/{id}/expire`;
//! - Checkout Sessions: `POST /v1|v2/checkout_sessions`, `GET .../{id}`,
//!   `POST .../{id}/expire`, and the `/v2` list with cursors (`Fintoc-Version`
//!   2026-02-01 or later); each payer attempt is a payment intent carrying the
//!   session's metadata, a success finishes the session, sessions expire on the
//!   simulator's clock, and `redirect_url` serves a hosted payment page;
//! - Refunds: `POST /v1/refunds` (a succeeded intent's, never more than is left),
//!   `GET /v1/refunds[/{id}]`, `POST /v1/refunds/{id}/cancel` (while `pending`);
//!   the control API settles them and sends signed `refund.*` events;
//! - `Idempotency-Key` on POST: the first status and body are stored and replayed;
//!   the same key with different parameters is an error; nothing is stored when
//!   authentication fails;
//! - validation errors in the `{"error": {type, code, message, param, doc_url}}`
//!   envelope; `widget_token` only in the create response.
//!
//! Faults can be queued for the next API requests (5xx, 429, latency, a dropped
//! connection), in process with [`Simulator::push_fault`] or over HTTP with the
//! control API under `/_sim/` (see [`CONTROL_API`]). Its clock is injected
//! ([`SimulatorConfig::clock`]), so tests move time instead of waiting.
//!
//! Modules, from the bottom (no circle: `tests/simulator/layers.rs`): `config`,
//! `responses`, `status` (Fintoc's intent statuses, the simulator's own), `state`
//! (typed state), `signing` (signatures and the CLI's signing commands),
//! `create_core` (what every create shares: the first answer per
//! `Idempotency-Key`, payment parameters), `delivery` (finishing intents, webhook
//! delivery), the resources `sessions` (checkout sessions and their hosted page)
//! and `refunds`, `api` (Fintoc's endpoints, intents), `due` (what the clock
//! releases), `widget` (the widget stand-in), `control` (the control API), `server`
//! (binding, routing, faults).

mod api;
mod config;
mod control;
mod create_core;
mod delivery;
mod due;
mod refunds;
mod responses;
mod server;
mod sessions;
mod signing;
mod state;
mod status;
mod widget;

pub use config::{
    DeliveryMode, DeliveryPolicy, Fault, Finish, Settle, SimulatorConfig, WebhookEndpoint,
    DEFAULT_SECRET_KEY,
};
pub use control::CONTROL_API;
pub use create_core::IDEMPOTENCY_KEY_TTL_MS;
pub use server::Simulator;
pub use signing::{resign_event_file, send_signed, sign, unix_now};
pub use state::{DeliveryRecord, SimAccount, SimIntent, SimRefund, SimSession};
pub use widget::WIDGET_SCRIPT;
