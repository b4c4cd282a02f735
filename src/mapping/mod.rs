//! The user mapping (`user-mapping.md`): which employees' mailboxes an
//! item belongs in, and the checks that make a mapping file trustworthy
//! before a sync relies on it.
//!
//! - [`load`] reads the custom mapping CSV for a run and refuses a file
//!   with any error;
//! - [`Resolver`] applies the precedence rules to each item;
//! - [`validate_file`] (and [`validate_reader`]) report every finding in
//!   one streaming pass, for `map validate`;
//! - [`check_telemessage`] and [`check_target`] compare the mapping with
//!   the account's registered users and the target's users.

mod checks;
mod header;
mod phone;
#[cfg(test)]
mod props;
mod records;
mod report;
mod resolve;
mod rows;
mod table;
mod validate;

pub use checks::{check_target, check_telemessage};
pub use phone::{DefaultRegion, PhoneError, UnknownRegion, normalise};
pub use report::{Code, Dialect, Finding, Level, Report};
pub use resolve::{Resolution, Resolver, Unmapped};
pub use table::{Entry, MappingError, MappingTable, load, validate_file, validate_with_table};
pub use validate::{GoodRow, ValidateOptions, scan, validate_reader};
