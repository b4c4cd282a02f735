//! The TeleMessage archive API: its data model, a client, and (in
//! [`crate::simulator`]) a server that plays it for tests and the demo.

pub mod model;

pub use model::{Item, ItemType, Participant, Platform};
