//! The integration tests: each runs the real binary against real servers.

mod login;
mod login_support;
mod secret_fallbacks;
