//! One file per subcommand: arguments in, a call into `groundwork::ops`, output and exit code out.

pub mod schema;
pub mod validate;

/// Process exit codes shared by every command.
pub mod exit {
    pub const OK: u8 = 0;
    /// The operation ran and found problems (invalid inventory, failed check).
    pub const FAILED: u8 = 1;
}
