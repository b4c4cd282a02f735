//! The one integration-test binary: every test runs the real
//! `wechat-archiver` against real parts on this machine.

mod bad_input;
mod map_validate;
mod support;
