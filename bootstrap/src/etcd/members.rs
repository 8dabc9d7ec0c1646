//! The etcd cluster's membership as `etcdctl member list -w simple` prints it, for adding a member
//! to a running cluster (a master joined later) and removing one (`groundwork node remove`).

/// One line of `member list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Hexadecimal, as `member remove` takes it.
    pub id: String,
    /// false: added but never started (its name is empty until it first joins).
    pub started: bool,
    pub name: String,
    pub peer_url: String,
}

/// Parses `etcdctl member list -w simple`: `ID, STATUS, NAME, PEER ADDRS, CLIENT ADDRS, IS LEARNER`.
pub fn parse(simple: &str) -> Result<Vec<Member>, String> {
    let mut members = Vec::new();
    for line in simple.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() < 4 || !fields[0].chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("unexpected line from etcdctl member list: {line}"));
        }
        members.push(Member {
            id: fields[0].to_string(),
            started: fields[1] == "started",
            name: fields[2].to_string(),
            // Several peer URLs are separated by commas too; groundwork's members have one.
            peer_url: fields[3].to_string(),
        });
    }
    Ok(members)
}

/// The peer URL of a member at `address` (the etcd unit's `--initial-advertise-peer-urls`).
pub fn peer_url(address: &str) -> String {
    format!("https://{address}:2380")
}

/// `--initial-cluster` for a member joining `members`: every started member and itself.
pub fn initial_cluster_for_join(members: &[Member], name: &str, address: &str) -> String {
    let me = peer_url(address);
    members
        .iter()
        .filter(|m| m.started && m.peer_url != me)
        .map(|m| format!("{}={}", m.name, m.peer_url))
        .chain(std::iter::once(format!("{name}={me}")))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "\
8e9e05c52164694d, started, master-1, https://10.78.0.11:2380, https://10.78.0.11:2379, false
91bc3c398fb3c146, started, master-2, https://10.78.0.12:2380, https://10.78.0.12:2379, false
fd422379fda50e48, unstarted, , https://10.78.0.13:2380, , false
";

    #[test]
    fn member_list_lines_are_parsed_with_hex_ids_and_unstarted_members() {
        let m = parse(LIST).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[0],
            Member {
                id: "8e9e05c52164694d".into(),
                started: true,
                name: "master-1".into(),
                peer_url: "https://10.78.0.11:2380".into()
            }
        );
        assert!(!m[2].started);
        assert_eq!(m[2].name, "");
        assert!(parse("Error: context deadline exceeded").is_err());
    }

    #[test]
    fn a_joining_member_starts_with_the_started_members_and_itself() {
        let m = parse(LIST).unwrap();
        assert_eq!(
            initial_cluster_for_join(&m, "master-3", "10.78.0.13"),
            "master-1=https://10.78.0.11:2380,master-2=https://10.78.0.12:2380,master-3=https://10.78.0.13:2380"
        );
    }
}
