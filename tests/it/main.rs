//! The one integration-test binary: every test runs the real
//! `wechat-archiver` against real parts on this machine.

mod adopt;
mod adopt_graph;
mod adopt_imap;
mod archive_tree;
mod bad_input;
mod bad_items;
mod crash;
mod email;
mod email_adopt;
mod email_postfix;
mod email_targets;
mod faults;
mod graph;
mod graph_sync;
mod hostile_server;
mod imap;
mod imap_sync;
mod keyring_sync;
mod login;
mod login_support;
mod map_validate;
mod operations;
mod output;
mod overlap;
mod secret_fallbacks;
mod support;
mod sync;
mod terminal_text;
mod verify;
