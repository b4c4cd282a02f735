//! The TeleMessage archive API: its data model and a client. The
//! simulator that plays the API for tests and the demo is
//! [`crate::simulator`].

pub mod client;
pub mod model;
#[cfg(test)]
mod model_props;
pub mod retry;

pub use client::{Client, ClientError, ClientOptions, Listing};
pub use model::{Item, ItemType, Participant, Platform};
