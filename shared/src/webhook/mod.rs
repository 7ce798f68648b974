//! Fintoc webhooks: signature verification and lenient event parsing.

pub mod event;
pub mod service;
pub mod signature;
