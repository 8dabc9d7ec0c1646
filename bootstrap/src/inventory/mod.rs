//! The inventory: its types, reading it with located errors, and the checks that need all of it.

pub mod baseline;
pub mod deserialize;
pub mod diagnostic;
pub mod model;
pub mod semantic;
pub mod source_map;
pub mod storage_profile;
mod suggest;
pub mod values;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Location, Severity};
pub use model::*;
pub use semantic::LocalFiles;

/// An inventory that passed every check (warnings may remain), with what is needed to locate
/// later findings in it.
#[derive(Debug, Clone)]
pub struct LoadedInventory {
    pub inventory: Inventory,
    pub file: PathBuf,
    /// Directory relative paths in the inventory start from.
    pub base_dir: PathBuf,
    pub source: String,
    pub map: source_map::SourceMap,
    pub warnings: Vec<Diagnostic>,
}

impl LoadedInventory {
    pub fn resolve(&self, p: &Path) -> PathBuf {
        resolve_path(&self.base_dir, p)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read inventory {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("inventory {} has {} error(s)", path.display(), diagnostics.iter().filter(|d| d.is_error()).count())]
    Invalid { path: PathBuf, source_text: String, diagnostics: Vec<Diagnostic> },
}

/// Reads, parses and checks an inventory file.
pub fn load(path: &Path) -> Result<LoadedInventory, LoadError> {
    load_checking(path, LocalFiles::Required)
}

/// [`load`], with the local files it names required or only reported (see [`LocalFiles`]).
pub fn load_checking(path: &Path, local: LocalFiles) -> Result<LoadedInventory, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
    load_str_checking(path, text, local)
}

/// Parses and checks inventory text; `path` is used for messages and relative paths.
pub fn load_str(path: &Path, text: String) -> Result<LoadedInventory, LoadError> {
    load_str_checking(path, text, LocalFiles::Required)
}

pub fn load_str_checking(path: &Path, text: String, local: LocalFiles) -> Result<LoadedInventory, LoadError> {
    let invalid = |diagnostics, text| LoadError::Invalid { path: path.to_path_buf(), source_text: text, diagnostics };
    let (inventory, map) = match deserialize::parse(path, &text) {
        Ok(parsed) => parsed,
        Err(diagnostics) => return Err(invalid(diagnostics, text)),
    };
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut inventory = inventory;
    let mut diags = diagnostic::Diagnostics::new(path);
    if let Err(e) = attach_digit_claims(&mut inventory, &base_dir) {
        // A warning: the checkout may live elsewhere while the cluster is built. The storage then
        // follows the profile, and `handoff` fails on the same path until it is there.
        diags.push(
            diagnostic::Severity::Warning,
            map.locate_value("handoff.digit.source"),
            "handoff.digit.source",
            e.to_string(),
            Some(
                "point it at your checkout of DIGIT's deploy-as-code (relative to this file); until then the volumes follow storage.profile"
                    .into(),
            ),
        );
    }
    semantic::Checker::new(&inventory, &map, &base_dir, &mut diags, local).run();
    if diags.has_errors() {
        return Err(invalid(diags.sorted(), text));
    }
    Ok(LoadedInventory { inventory, file: path.to_path_buf(), base_dir, source: text, map, warnings: diags.sorted() })
}

/// `~/x` is under $HOME; a relative path starts at `base_dir`.
pub fn resolve_path(base_dir: &Path, p: &Path) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    if p.is_absolute() { p.to_path_buf() } else { base_dir.join(p) }
}

/// The inventory's JSON Schema, generated from the types above.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Inventory);
    serde_json::to_value(&schema).expect("a schema always serialises")
}

/// Reads the claims DIGIT's stateful charts will make from the checkout `handoff.digit.source`
/// names, so that the storage host's volumes follow them (see `Storage::effective_volumes`).
fn attach_digit_claims(inventory: &mut Inventory, base_dir: &Path) -> Result<(), crate::digit::DigitError> {
    let Some(digit) = &inventory.handoff.digit else { return Ok(()) };
    let path = resolve_path(base_dir, &digit.source);
    let claims = match digit.flow {
        model::DigitFlow::Helmfile => crate::digit::DigitSource::open(&path)?.claims()?,
        // The Go deployer's charts make their own PersistentVolumes (see handoff::digit_deployer):
        // the volumes follow the profile; the checkout only has to be one.
        model::DigitFlow::Deployer => {
            crate::digit::deployer_environments(&path)?;
            Vec::new()
        }
    };
    if let Some(storage) = inventory.storage.as_mut() {
        storage.digit_claims = claims;
    }
    Ok(())
}
