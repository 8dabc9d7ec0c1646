//! /etc/os-release.

use groundwork_protocol::facts::Os;

/// KEY=value lines; values may be quoted with " or '.
pub fn parse_os_release(text: &str) -> Os {
    let get = |key: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
    };
    Os {
        id: get("ID").unwrap_or_default(),
        version_id: get("VERSION_ID").unwrap_or_default(),
        codename: get("VERSION_CODENAME").filter(|c| !c.is_empty()),
        pretty_name: get("PRETTY_NAME").unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_and_ubuntu() {
        let d = parse_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n",
        );
        assert_eq!((d.id.as_str(), d.version_id.as_str()), ("debian", "12"));
        assert_eq!(d.codename.as_deref(), Some("bookworm"));
        assert_eq!(d.pretty_name, "Debian GNU/Linux 12 (bookworm)");
        let u = parse_os_release("ID=ubuntu\nID_LIKE=debian\nVERSION_ID='24.04'\n");
        assert_eq!((u.id.as_str(), u.version_id.as_str(), u.codename), ("ubuntu", "24.04", None));
    }
}
