//! The inventory's JSON Schema as editors and CI validators consume it.

/// Pretty-printed JSON Schema of the inventory, ending with a newline.
pub fn schema_json() -> String {
    let mut text = serde_json::to_string_pretty(&crate::inventory::json_schema()).expect("schema serialises");
    text.push('\n');
    text
}
