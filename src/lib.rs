//! wechat-archiver core: everything but argument parsing and presentation.
//!
//! The modules follow the path an item takes: [`telemessage`] lists and
//! downloads it, [`mapping`] decides whose mailboxes it belongs in,
//! [`mailbox`] writes the copies, [`ledger`] remembers what was written,
//! and [`sync`] runs the whole pipeline.

pub mod config;
pub mod content;
pub mod custody;
pub mod email;
pub mod faultpoint;
pub mod http;
pub mod ledger;
pub mod lock;
pub mod mailbox;
pub mod mapping;
pub mod runlog;
pub mod secrets;
pub mod simulator;
pub mod sync;
pub mod telemessage;
pub mod text;
pub mod types;
pub mod verify;

pub use types::{E164, ItemId, Mailbox};
