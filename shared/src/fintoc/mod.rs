//! The only module that talks to Fintoc's REST API, cut by port: the ports and
//! their errors (`ports`: [`FintocApi`], [`FintocLookup`], [`FintocRefunds`],
//! [`FintocError`]), the HTTP client behind them with its retries (`http`:
//! [`FintocHttpClient`]), and the verdicts on Fintoc's answers (`verdicts`: which
//! answer is done, refused or worth a retry). The bodies it sends and reads are in
//! [`types`], the lenient reading of Fintoc's objects in [`wire`].

mod http;
mod ports;
pub mod types;
mod verdicts;
pub mod wire;

pub use http::*;
pub use ports::*;
pub use types::*;

#[cfg(test)]
use http::extra_roots;
#[cfg(test)]
use verdicts::*;

#[cfg(test)]
mod tests;
