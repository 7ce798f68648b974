//! The simulator's own tests, as one test binary: its command line, its widget
//! stand-in, and its injected clock.

mod cli;
mod clock;
mod failure_modes;
mod sessions;
mod widget;
