//! The one shape of every command's `-o json`: which schema and groundwork wrote it, the command
//! that ran, the `kind` of report that follows, and that report's own fields beside them (flattened,
//! so `jq .phases` reads the same as before the envelope). `groundwork schema --report` prints its
//! JSON Schema; `schema/report.json` is the committed copy a test keeps equal to the types.
//!
//! Versioning: a field may be added within `groundwork.report/v1`; renaming or removing one, or
//! changing its meaning, makes `v2`. A consumer checks `schema` before reading the rest.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Serialize;

use super::{
    apply::ApplyReport, bundle_build::Built, bundle_packages::Packaged, bundle_trust::BundleTrust, certs, check,
    db::DumpFile, etcd, facts::HostReport, images::PushReport, import::Imported, reset, state::AdoptReport, users,
    validate::Summary,
};
use crate::handoff::HandoffOutcome;
use crate::inventory::Diagnostic;
use crate::state::archive::ArchiveSummary;

/// The schema's name and version, the first field of every report.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
pub enum SchemaVersion {
    #[serde(rename = "groundwork.report/v1")]
    V1,
}

/// What any groundwork command prints with `-o json`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(title = "groundwork report", extend("$id" = "https://groundwork.invalid/schema/report.json"))]
pub struct Report {
    pub schema: SchemaVersion,
    /// The groundwork version that wrote the report.
    pub groundwork: String,
    /// The command that ran, as typed after `groundwork` (e.g. `certs check`, `node remove`).
    pub command: String,
    #[serde(flatten)]
    pub body: Body,
}

impl Report {
    pub fn new(command: &str, body: Body) -> Report {
        Report {
            schema: SchemaVersion::V1,
            groundwork: env!("CARGO_PKG_VERSION").to_string(),
            command: command.to_string(),
            body,
        }
    }
}

/// The report proper; `kind` names its shape (several commands share one: `plan`, `apply`,
/// `upgrade` and `node remove` all report phases as `apply` does).
#[derive(Debug, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Body {
    /// `validate`.
    Validation(Validation),
    /// `facts`: every host's facts, or why it gave none.
    Facts(FactsOutput),
    /// `check`: every host against its baselines.
    Check(check::CheckReport),
    /// `plan`, `apply`, `upgrade`, `node remove`: the phases, per host.
    Apply(ApplyReport),
    /// `handoff`.
    Handoff(HandoffOutcome),
    /// The `--plan` of a day-2 command (`certs renew`, `etcd restore`, `reset`, `kubeconfig`).
    Steps(Steps),
    /// `certs check`.
    Certificates(certs::CertsReport),
    /// `certs renew`.
    CertificateRenewal(certs::RenewReport),
    /// `etcd backup`.
    EtcdBackup(etcd::BackupReport),
    /// `etcd restore`.
    EtcdRestore(etcd::RestoreReport),
    /// `kubeconfig`: a user's access granted.
    UserAccess(users::UserReport),
    /// `kubeconfig --revoke`.
    UserRevoked(users::RevokeReport),
    /// `reset`.
    Reset(reset::ResetReport),
    /// `state adopt`.
    StateAdoption(AdoptReport),
    /// `state backup`, `state restore`.
    StateArchive(ArchiveSummary),
    /// `db backup`, `db restore`: the dumps written or restored.
    DatabaseDumps(DatabaseDumps),
    /// `images push`.
    Images(PushReport),
    /// `import ansible`.
    Import(Imported),
    /// `init`.
    Init(InitOutput),
    /// `bundle build`.
    BundleBuilt(BundleBuild),
    /// `bundle packages` (and `bundle build --os`).
    BundlePackages(Packaged),
    /// `bundle sign`, `bundle verify`: the bundle and who signed it.
    BundleSignature(BundleTrust),
    /// `bundle keygen`: the new key (the public half only).
    BundleKey(BundleKey),
    /// `report`: what the handover report shows (its files are written too).
    Report(Box<super::report::data::ReportData>),
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Validation {
    pub valid: bool,
    /// What the inventory describes (when it is valid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// Errors and warnings, each with its line and field.
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FactsOutput {
    pub hosts: Vec<HostReport>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Steps {
    /// What the command would do, in order (nothing was changed).
    pub steps: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DatabaseDumps {
    pub dumps: Vec<DumpFile>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct InitOutput {
    /// The inventory written.
    pub inventory: PathBuf,
    /// What it describes, as `validate` reads it.
    pub summary: Summary,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BundleBuild {
    #[serde(flatten)]
    pub built: Built,
    /// With `--os`: the OS packages added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<Packaged>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BundleKey {
    pub secret_key: PathBuf,
    pub encrypted: bool,
    pub public_key_file: PathBuf,
    pub key_id: String,
    /// The public key as `packages.bundleKey` pins it.
    pub public_key: String,
}

/// The report as pretty JSON, ending with a newline.
pub fn to_json(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("reports always serialise");
    text.push('\n');
    text
}

/// The JSON Schema of [`Report`], pretty-printed and ending with a newline.
pub fn schema_json() -> String {
    // What is written, not what would be read: a field skipped when empty is not required.
    let generator = schemars::generate::SchemaSettings::draft2020_12().for_serialize().into_generator();
    let schema = generator.into_root_schema_for::<Report>();
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema always serialises");
    text.push('\n');
    text
}
