//! The Graph writer against the Graph simulator: every copy lands once as a
//! received message, whole, and the writer keeps to Graph's limits (the
//! simulator fails any request that breaks them).

mod auth;
mod fallback;
mod fidelity;
mod fixtures;
mod folders;
mod limits;
mod recovery;
mod users;

pub use fixtures::assert_limits_kept;
