//! The simulator's own tests, as one test binary: its command line, its widget
//! stand-in, its injected clock, its failure modes, its sessions and its layering.

mod cli;
mod clock;
mod failure_modes;
mod layers;
mod sessions;
mod widget;
