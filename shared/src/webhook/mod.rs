//! Fintoc webhooks on the wire: signature verification and lenient event parsing.

pub mod event;
pub mod signature;
