//! The committed JSON Schema is the one the types generate, and every example inventory
//! validates against it (what an editor with yaml-language-server would check).

use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn yaml_as_json(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&groundwork::inventory::json_schema()).expect("the generated schema compiles")
}

#[test]
fn committed_schema_matches_the_types() {
    let committed =
        std::fs::read_to_string(repo().join("inventory/schema.json")).expect("inventory/schema.json exists");
    assert!(
        committed == groundwork::ops::schema::schema_json(),
        "inventory/schema.json is stale: run `cargo run -p groundwork -- schema > inventory/schema.json`"
    );
}

#[test]
fn example_inventories_validate_against_the_schema() {
    let v = validator();
    for path in ["inventory/sdc-example.yaml", "inventory/lab.yaml"] {
        let doc = yaml_as_json(path);
        let errors: Vec<String> = v.iter_errors(&doc).map(|e| format!("{} at {}", e, e.instance_path)).collect();
        assert!(errors.is_empty(), "{path} does not match the schema:\n{}", errors.join("\n"));
    }
}

#[test]
fn the_schema_rejects_what_the_loader_rejects() {
    let v = validator();
    let mut doc = yaml_as_json("inventory/sdc-example.yaml");
    doc["hosts"][0]["adress"] = serde_json::json!("10.0.0.1");
    assert!(!v.is_valid(&doc), "an unknown key must fail the schema");

    let mut doc = yaml_as_json("inventory/sdc-example.yaml");
    doc["ssh"]["sudoPassword"] = serde_json::json!("hunter2");
    assert!(!v.is_valid(&doc), "an inline secret must fail the schema");

    let mut doc = yaml_as_json("inventory/sdc-example.yaml");
    doc["storage"]["volumes"][0]["size"] = serde_json::json!("200");
    assert!(!v.is_valid(&doc), "a size without a unit must fail the schema");
}
