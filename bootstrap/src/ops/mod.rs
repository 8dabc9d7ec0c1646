//! What groundwork does, one module per operation; no command-line parsing in here.

pub mod access;
pub mod apply;
pub mod bundle_build;
pub mod bundle_packages;
pub mod bundle_trust;
pub mod certs;
pub mod check;
pub mod db;
pub mod etcd;
pub mod facts;
pub mod handoff;
pub mod host_reset;
pub mod images;
pub mod import;
pub mod init;
pub mod interrupt;
pub mod lease;
pub mod nodes;
pub mod output;
mod pipeline;
pub mod report;
pub mod reset;
pub mod schema;
pub mod state;
mod static_pods;
pub mod users;
pub mod validate;
