mod imap;
mod support;
