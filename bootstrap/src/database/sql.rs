//! SQL for roles, databases and grants. Passwords are sent as SCRAM-SHA-256 verifiers computed
//! here: the server stores a verifier as given, so the plaintext never leaves the controller and
//! cannot turn up in a server log even when a statement fails.

use crate::inventory::model::DatabaseAccess;

use super::roles::{LoginRole, RoleKind};

/// `"name"`, with embedded quotes doubled.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, with embedded quotes doubled.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The verifier PostgreSQL keeps for `password` (fresh salt each time).
pub fn scram_verifier(password: &str) -> String {
    postgres_protocol::password::scram_sha_256(password.as_bytes())
}

pub fn create_role(role: &LoginRole) -> String {
    format!("CREATE ROLE {} LOGIN PASSWORD {};", ident(&role.name), literal(&scram_verifier(role.password.expose())))
}

pub fn set_password(role: &LoginRole) -> String {
    format!("ALTER ROLE {} PASSWORD {};", ident(&role.name), literal(&scram_verifier(role.password.expose())))
}

/// Run outside a transaction (CREATE DATABASE cannot run in one).
pub fn create_database(name: &str, owner: &str) -> String {
    format!("CREATE DATABASE {} OWNER {};", ident(name), ident(owner))
}

/// Grants for an application role, run in its database. Idempotent: granting twice is no change.
/// `readwrite` may also create tables in `public` (PostgreSQL 15 no longer lets everyone);
/// default privileges cover the tables the owner creates later (Flyway migrations).
pub fn grants(role: &str, database: &str, owner: &str, access: DatabaseAccess) -> String {
    let (r, d, o) = (ident(role), ident(database), ident(owner));
    let (schema, tables, sequences) = match access {
        DatabaseAccess::Readwrite => ("USAGE, CREATE", "SELECT, INSERT, UPDATE, DELETE", "USAGE, SELECT, UPDATE"),
        DatabaseAccess::Readonly => ("USAGE", "SELECT", "SELECT"),
    };
    format!(
        "GRANT CONNECT ON DATABASE {d} TO {r};\n\
         GRANT {schema} ON SCHEMA public TO {r};\n\
         GRANT {tables} ON ALL TABLES IN SCHEMA public TO {r};\n\
         GRANT {sequences} ON ALL SEQUENCES IN SCHEMA public TO {r};\n\
         ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA public GRANT {tables} ON TABLES TO {r};\n\
         ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA public GRANT {sequences} ON SEQUENCES TO {r};\n"
    )
}

/// One row, `t` or `f`: whether `grants` are in place (checked in the role's database).
pub fn grants_in_place(role: &str, database: &str, owner: &str, access: DatabaseAccess) -> String {
    let (r, d, o) = (literal(role), literal(database), literal(owner));
    let schema = match access {
        DatabaseAccess::Readwrite => "USAGE,CREATE",
        DatabaseAccess::Readonly => "USAGE",
    };
    format!(
        "SELECT has_database_privilege({r}, {d}, 'CONNECT') AND has_schema_privilege({r}, 'public', '{schema}') \
         AND EXISTS (SELECT 1 FROM pg_default_acl a JOIN pg_roles o ON o.oid = a.defaclrole \
         WHERE o.rolname = {o} AND a.defaclobjtype = 'r' AND array_to_string(a.defaclacl, ',') LIKE {pattern});",
        pattern = literal(&format!("%{}=%", role.replace('%', "\\%").replace('_', "\\_"))),
    )
}

/// What a role is for, in reports.
pub fn describe(role: &LoginRole) -> String {
    match &role.kind {
        RoleKind::Owner => format!("owner of {}", role.database),
        RoleKind::App(DatabaseAccess::Readwrite) => format!("read/write on {}", role.database),
        RoleKind::App(DatabaseAccess::Readonly) => format!("read-only on {}", role.database),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_cannot_break_out() {
        assert_eq!(ident(r#"a"; DROP"#), r#""a""; DROP""#);
        assert_eq!(literal("it's"), "'it''s'");
    }

    #[test]
    fn passwords_travel_as_scram_verifiers_only() {
        let role = LoginRole {
            name: "egov_app".into(),
            database: "egov".into(),
            kind: RoleKind::App(DatabaseAccess::Readwrite),
            password: crate::secrets::Secret::from_prompt("hunter2-correct-horse".into(), "test"),
        };
        let sql = create_role(&role);
        assert!(sql.starts_with("CREATE ROLE \"egov_app\" LOGIN PASSWORD 'SCRAM-SHA-256$4096:"), "{sql}");
        assert!(!sql.contains("hunter2"), "{sql}");
        assert_ne!(set_password(&role), set_password(&role), "a fresh salt each time");
    }

    #[test]
    fn readonly_grants_select_only() {
        let g = grants("viewer", "egov", "egov_owner", DatabaseAccess::Readonly);
        assert!(g.contains("GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"viewer\""));
        assert!(!g.contains("INSERT"));
    }
}
