//! The shared crate's tests from outside it, as one binary: the layering of its
//! modules, the log markers against the template's filters, the parsers on hostile input, events whose fields changed type, the
//! write-first condition against the decision, and the route table against
//! `template.yaml`.

mod layers;
mod log_markers;
mod parsers_never_panic;
mod retyped_event_fields;
mod routes;
mod write_first_equivalence;
