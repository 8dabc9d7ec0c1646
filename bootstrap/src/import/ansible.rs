//! Ansible inventories as Kubespray lays them out: an INI or YAML inventory file (groups, their
//! hosts, `:children`, `:vars`), and `group_vars/` and `host_vars/` beside it (one YAML file per
//! group or host, or a directory of them). Only what an inventory states is read: no plugins, no
//! Jinja, no patterns (`host[01:03]` ranges are expanded, as Ansible does).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub value: String,
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Located {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Group {
    /// Where the group is first named (0 when only group_vars/ names it).
    pub file: PathBuf,
    pub line: usize,
    pub hosts: Vec<String>,
    pub children: Vec<String>,
    pub vars: BTreeMap<String, Located>,
}

#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Hosts in the order they first appear, with their own variables.
    pub hosts: Vec<(String, BTreeMap<String, Located>)>,
    pub groups: BTreeMap<String, Group>,
}

#[derive(Debug, thiserror::Error)]
pub enum AnsibleError {
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}:{line}: {message}", path.display())]
    Syntax { path: PathBuf, line: usize, message: String },
}

impl Inventory {
    /// Reads `path` (INI, or YAML when it ends in .yml/.yaml or starts like YAML) and the
    /// group_vars/ and host_vars/ beside it.
    pub fn read(path: &Path) -> Result<Inventory, AnsibleError> {
        let text = std::fs::read_to_string(path).map_err(|source| AnsibleError::Read { path: path.into(), source })?;
        let yaml = path.extension().is_some_and(|e| e == "yml" || e == "yaml")
            || text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .is_some_and(|l| l == "all:" || l == "---");
        let mut inv = if yaml { parse_yaml(path, &text)? } else { parse_ini(path, &text)? };
        // Every host is in `all`, whether or not the file names it (group_vars/all/ applies to all).
        inv.group("all");
        let dir = path.parent().unwrap_or(Path::new("."));
        for (name, group) in inv.groups.iter_mut() {
            for (file, text) in vars_files(&dir.join("group_vars"), name)? {
                group.vars.extend(flat_vars(&file, &text)?);
            }
        }
        for (name, vars) in inv.hosts.iter_mut() {
            for (file, text) in vars_files(&dir.join("host_vars"), name)? {
                vars.extend(flat_vars(&file, &text)?);
            }
        }
        Ok(inv)
    }

    /// Every host of `group`, its children's included, in inventory order.
    pub fn hosts_of(&self, group: &str) -> Vec<String> {
        if group == "all" {
            return self.hosts.iter().map(|(h, _)| h.clone()).collect();
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![group.to_string()];
        let mut members = std::collections::BTreeSet::new();
        while let Some(g) = stack.pop() {
            if !seen.insert(g.clone()) {
                continue;
            }
            if let Some(group) = self.groups.get(&g) {
                members.extend(group.hosts.iter().cloned());
                stack.extend(group.children.iter().cloned());
            }
        }
        self.hosts.iter().map(|(h, _)| h.clone()).filter(|h| members.contains(h)).collect()
    }

    /// The groups `host` is in, directly or through a parent group.
    pub fn groups_of(&self, host: &str) -> Vec<String> {
        self.groups.keys().filter(|g| self.hosts_of(g).iter().any(|h| h == host)).cloned().collect()
    }

    /// `name` for `host`: its own variable, else a group's (a group it is in directly first),
    /// else `all`'s.
    pub fn var(&self, host: &str, name: &str) -> Option<&Located> {
        if let Some(v) = self.hosts.iter().find(|(h, _)| h == host).and_then(|(_, vars)| vars.get(name)) {
            return Some(v);
        }
        let mut groups = self.groups_of(host);
        groups.sort_by_key(|g| (g == "all", !self.groups[g].hosts.iter().any(|h| h == host)));
        groups.iter().find_map(|g| self.groups[g].vars.get(name))
    }

    fn host(&mut self, name: &str) -> &mut BTreeMap<String, Located> {
        if let Some(i) = self.hosts.iter().position(|(h, _)| h == name) {
            return &mut self.hosts[i].1;
        }
        self.hosts.push((name.to_string(), BTreeMap::new()));
        &mut self.hosts.last_mut().expect("just pushed").1
    }

    fn group(&mut self, name: &str) -> &mut Group {
        self.groups.entry(name.to_string()).or_default()
    }

    /// Records where `name` is first named.
    fn named_at(&mut self, name: &str, file: &Path, line: usize) {
        let g = self.group(name);
        if g.line == 0 {
            g.file = file.to_path_buf();
            g.line = line;
        }
    }
}

/// `node[01:03]` is node01, node02, node03 (Ansible's numeric ranges, leading zeros kept).
fn expand(pattern: &str) -> Vec<String> {
    let (Some(open), Some(close)) = (pattern.find('['), pattern.find(']')) else { return vec![pattern.to_string()] };
    let Some((from, to)) = pattern[open + 1..close].split_once(':') else { return vec![pattern.to_string()] };
    let (Ok(a), Ok(b)) = (from.parse::<u32>(), to.parse::<u32>()) else { return vec![pattern.to_string()] };
    let width = from.len();
    (a..=b).map(|n| format!("{}{n:0width$}{}", &pattern[..open], &pattern[close + 1..])).collect()
}

/// `key=value key2="a b"` after a host name on an INI line.
fn ini_pairs(rest: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        if key.is_empty() {
            break;
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        let value: String = match chars.peek() {
            Some(&q @ ('"' | '\'')) => {
                chars.next();
                let v = std::iter::from_fn(|| chars.next_if(|c| *c != q)).collect();
                chars.next();
                v
            }
            _ => std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())).collect(),
        };
        pairs.push((key, value));
    }
    pairs
}

fn parse_ini(path: &Path, text: &str) -> Result<Inventory, AnsibleError> {
    let mut inv = Inventory::default();
    let mut section = ("ungrouped".to_string(), "hosts");
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let at = |value: String| Located { value, file: path.into(), line: i + 1 };
        if let Some(header) = line.strip_prefix('[') {
            let header = header.strip_suffix(']').ok_or_else(|| AnsibleError::Syntax {
                path: path.into(),
                line: i + 1,
                message: format!("`{line}` opens a section without closing it"),
            })?;
            section = match header.split_once(':') {
                Some((g, "children")) => (g.to_string(), "children"),
                Some((g, "vars")) => (g.to_string(), "vars"),
                Some((_, kind)) => {
                    return Err(AnsibleError::Syntax {
                        path: path.into(),
                        line: i + 1,
                        message: format!("`:{kind}` is not a section kind (children, vars)"),
                    });
                }
                None => (header.to_string(), "hosts"),
            };
            inv.named_at(&section.0, path, i + 1);
            continue;
        }
        match section.1 {
            "children" => {
                inv.group(&section.0.clone()).children.push(line.to_string());
                inv.named_at(line, path, i + 1);
            }
            "vars" => {
                let (k, v) = line.split_once('=').ok_or_else(|| AnsibleError::Syntax {
                    path: path.into(),
                    line: i + 1,
                    message: format!("`{line}` is not `name=value`"),
                })?;
                let v = v.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
                inv.group(&section.0.clone()).vars.insert(k.trim().to_string(), at(v));
            }
            _ => {
                // An inline comment ends a host line (Kubespray's sample keeps `# ip=...` there).
                let line = line.find(" #").or_else(|| line.find("\t#")).map_or(line, |i| line[..i].trim_end());
                let (name, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                for host in expand(name) {
                    let vars: Vec<_> = ini_pairs(rest).into_iter().map(|(k, v)| (k, at(v))).collect();
                    inv.host(&host).extend(vars);
                    let group = section.0.clone();
                    let g = inv.group(&group);
                    if !g.hosts.contains(&host) {
                        g.hosts.push(host);
                    }
                }
            }
        }
    }
    Ok(inv)
}

fn parse_yaml(path: &Path, text: &str) -> Result<Inventory, AnsibleError> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| AnsibleError::Syntax {
        path: path.into(),
        line: e.location().map_or(0, |l| l.line()),
        message: e.to_string(),
    })?;
    let mut inv = Inventory::default();
    let mut cursor = 0;
    for (name, group) in doc.as_mapping().into_iter().flatten() {
        let name = name.as_str().unwrap_or_default().to_string();
        yaml_group(path, text, &mut inv, &name, group, &mut cursor);
    }
    Ok(inv)
}

/// One group of a YAML inventory: `hosts:` (each with its variables), `vars:`, `children:`.
fn yaml_group(
    path: &Path,
    text: &str,
    inv: &mut Inventory,
    name: &str,
    group: &serde_yaml_ng::Value,
    cursor: &mut usize,
) {
    *cursor = line_of(text, name, *cursor).unwrap_or(*cursor);
    inv.named_at(name, path, *cursor);
    for (host, vars) in group.get("hosts").and_then(|h| h.as_mapping()).into_iter().flatten() {
        let host = host.as_str().unwrap_or_default().to_string();
        *cursor = line_of(text, &host, *cursor).unwrap_or(*cursor);
        let located = located_map(path, text, vars, cursor);
        inv.host(&host).extend(located);
        let g = inv.group(name);
        if !g.hosts.contains(&host) {
            g.hosts.push(host);
        }
    }
    if let Some(vars) = group.get("vars") {
        let located = located_map(path, text, vars, cursor);
        inv.group(name).vars.extend(located);
    }
    for (child, sub) in group.get("children").and_then(|c| c.as_mapping()).into_iter().flatten() {
        let child = child.as_str().unwrap_or_default().to_string();
        inv.group(name).children.push(child.clone());
        yaml_group(path, text, inv, &child, sub, cursor);
    }
}

fn located_map(path: &Path, text: &str, vars: &serde_yaml_ng::Value, cursor: &mut usize) -> BTreeMap<String, Located> {
    let mut out = BTreeMap::new();
    for (k, v) in vars.as_mapping().into_iter().flatten() {
        let key = k.as_str().unwrap_or_default().to_string();
        let line = line_of(text, &key, *cursor).unwrap_or(*cursor);
        out.insert(key, Located { value: scalar(v), file: path.into(), line });
    }
    out
}

/// The first line at or after `from` (1-based) where `key` is a mapping key.
fn line_of(text: &str, key: &str, from: usize) -> Option<usize> {
    text.lines().enumerate().skip(from.saturating_sub(1)).find_map(|(i, l)| {
        let t = l.trim_start().trim_start_matches("- ");
        let k = t.split(':').next()?.trim().trim_matches(|c| c == '"' || c == '\'');
        (k == key && t[k.len()..].trim_start_matches(['"', '\'']).starts_with(':')).then_some(i + 1)
    })
}

fn scalar(v: &serde_yaml_ng::Value) -> String {
    match v {
        serde_yaml_ng::Value::String(s) => s.clone(),
        serde_yaml_ng::Value::Null => String::new(),
        other => serde_yaml_ng::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

/// A YAML file of variables, flattened to its top-level keys with their lines.
fn flat_vars(path: &Path, text: &str) -> Result<BTreeMap<String, Located>, AnsibleError> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| AnsibleError::Syntax {
        path: path.into(),
        line: e.location().map_or(0, |l| l.line()),
        message: e.to_string(),
    })?;
    let mut cursor = 1;
    Ok(located_map(path, text, &doc, &mut cursor))
}

/// `DIR/NAME.yml`, `DIR/NAME.yaml`, `DIR/NAME` and every YAML file in `DIR/NAME/`, sorted.
fn vars_files(dir: &Path, name: &str) -> Result<Vec<(PathBuf, String)>, AnsibleError> {
    let mut files = Vec::new();
    for candidate in [dir.join(format!("{name}.yml")), dir.join(format!("{name}.yaml")), dir.join(name)] {
        if candidate.is_file() {
            files.push(candidate);
        } else if candidate.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(&candidate)
                .map_err(|source| AnsibleError::Read { path: candidate.clone(), source })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
                .collect();
            inside.sort();
            files.extend(inside);
        }
    }
    files
        .into_iter()
        .map(|f| {
            std::fs::read_to_string(&f).map(|t| (f.clone(), t)).map_err(|source| AnsibleError::Read { path: f, source })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_groups_children_vars_and_ranges() {
        let text = "# a comment\nnode[1:3] ansible_user=ops\nbastion ansible_host=203.0.113.5 ansible_port=2222\n\n[kube_control_plane]\nnode1\n\n[kube_node]\nnode[2:3]\n\n[k8s_cluster:children]\nkube_control_plane\nkube_node\n\n[k8s_cluster:vars]\nkube_version=v1.33.3\n";
        let inv = parse_ini(Path::new("hosts.ini"), text).unwrap();
        assert_eq!(
            inv.hosts.iter().map(|(h, _)| h.as_str()).collect::<Vec<_>>(),
            ["node1", "node2", "node3", "bastion"]
        );
        assert_eq!(inv.hosts_of("k8s_cluster"), ["node1", "node2", "node3"]);
        assert_eq!(inv.var("node2", "kube_version").unwrap().line, 16);
        assert_eq!(inv.var("bastion", "ansible_port").unwrap().value, "2222");
        assert_eq!(
            ini_pairs("a=1 b=\"x y\" c='z'"),
            [("a".into(), "1".into()), ("b".into(), "x y".into()), ("c".into(), "z".into())]
        );
        assert_eq!(expand("w[08:10].dc"), ["w08.dc", "w09.dc", "w10.dc"]);
    }

    #[test]
    fn yaml_groups_with_host_vars_and_their_lines() {
        let text = "all:\n  hosts:\n    node1:\n      ansible_host: 10.0.0.1\n      ip: 10.0.0.1\n    node2:\n      ansible_host: 10.0.0.2\n  children:\n    kube_control_plane:\n      hosts:\n        node1:\n    kube_node:\n      hosts:\n        node2:\n      vars:\n        kube_pods_subnet: 10.233.64.0/18\n";
        let inv = parse_yaml(Path::new("hosts.yaml"), text).unwrap();
        assert_eq!(inv.hosts_of("kube_node"), ["node2"]);
        let host = inv.var("node2", "ansible_host").unwrap();
        assert_eq!((host.value.as_str(), host.line), ("10.0.0.2", 7));
        assert_eq!(inv.var("node2", "kube_pods_subnet").unwrap().line, 16);
        assert!(inv.var("node1", "kube_pods_subnet").is_none());
    }
}
