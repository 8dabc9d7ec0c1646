//! groundwork: from one inventory file to a Kubernetes cluster behind a bastion.
//!
//! `inventory` holds the file format; `ops` the operations, free of any command-line parsing;
//! the `groundwork` binary's `commands` turn arguments into calls of `ops`.

pub mod agent;
pub mod bundle;
pub mod database;
pub mod digit;
pub mod etcd;
pub mod handoff;
pub mod import;
pub mod inventory;
pub mod kube;
pub mod ops;
pub mod os_packages;
pub mod phases;
pub mod pki;
pub mod playbooks;
pub mod redact;
pub mod registry;
pub mod sanitize;
pub mod secrets;
pub mod state;
pub mod storage;
pub mod transport;
