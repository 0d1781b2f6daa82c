//! cairn-core: the data pipeline of cairn, with no I/O of its own.

pub mod id;

pub use id::{Id, ParseIdError};
