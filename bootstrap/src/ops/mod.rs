//! What groundwork does, one module per operation; no command-line parsing in here.

pub mod schema;
pub mod validate;
