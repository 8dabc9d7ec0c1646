//! The cluster as a picture: this machine, the bastion, the node network with the API endpoint,
//! and every host in a row by what it is (masters, workers, storage, database, registry), each
//! named, coloured by what is known of it. Inline SVG drawn from the data, nothing fetched.

use std::fmt::Write;

use super::text::esc;
use crate::ops::check::Status;
use crate::ops::report::data::{HostEntry, Reach, ReportData};

const WIDTH: i32 = 1000;
const BOX_W: i32 = 150;
const BOX_H: i32 = 58;
const GAP: i32 = 12;
/// Host boxes start right of the row labels.
const ROW_X: i32 = 170;
const PER_ROW: usize = ((WIDTH - ROW_X - 30 + GAP) / (BOX_W + GAP)) as usize;

/// The rows of the picture, each host in the first that fits its roles.
const GROUPS: [(&str, &str); 5] = [
    ("master", "masters"),
    ("worker", "workers"),
    ("storage", "storage"),
    ("database", "database"),
    ("registry", "registry"),
];

/// What is known of a host, for its colour and its one word.
pub fn condition(h: &HostEntry) -> (&'static str, String) {
    match (&h.reach, h.baseline_status()) {
        (Reach::NotAsked, _) => ("unknown", "not asked".into()),
        (Reach::Unreachable { .. }, _) => ("fail", "UNREACHABLE".into()),
        (Reach::Reached(_), Some(Status::Fail)) => ("fail", "baseline FAIL".into()),
        (Reach::Reached(_), Some(Status::Warn)) => ("warn", "baseline warn".into()),
        (Reach::Reached(_), _) => ("ok", "baseline pass".into()),
    }
}

fn host_box(out: &mut String, h: &HostEntry, x: i32, y: i32) {
    let (class, word) = condition(h);
    // A long name is fitted into the box rather than cut: every name stays whole.
    let fit = if h.name.chars().count() > 15 {
        format!(r#" textLength="{}" lengthAdjust="spacingAndGlyphs""#, BOX_W - 14)
    } else {
        String::new()
    };
    let _ = write!(
        out,
        r#"<g class="host {class}"><title>{title}</title><rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6"/><text class="name" x="{tx}" y="{y1}"{fit}>{name}</text><text class="addr" x="{tx}" y="{y2}">{addr}</text><text class="word" x="{tx}" y="{y3}">{word}</text></g>"#,
        title = esc(&format!("{} ({}) {}", h.name, h.roles.join(", "), h.address)),
        tx = x + 7,
        y1 = y + 20,
        y2 = y + 37,
        y3 = y + 52,
        name = esc(&h.name),
        addr = esc(&h.address),
        word = esc(&word),
    );
}

fn label(out: &mut String, x: i32, y: i32, class: &str, text: &str) {
    let _ = write!(out, r#"<text class="{class}" x="{x}" y="{y}">{}</text>"#, esc(text));
}

/// The picture of `data`'s cluster, as an `<svg>` element.
pub fn picture(data: &ReportData) -> String {
    let mut body = String::new();
    let c = &data.cluster;

    // This machine and the bastion, above the network.
    let _ = write!(body, r#"<g class="box controller"><rect x="20" y="14" width="210" height="{BOX_H}" rx="6"/>"#);
    label(&mut body, 30, 38, "name", "this machine");
    label(&mut body, 30, 58, "addr", "groundwork, the state directory");
    body.push_str("</g>");
    let network_top = 120;
    match &data.bastion {
        Some(b) => {
            host_box(&mut body, b, 330, 14);
            body.push_str(r#"<line class="link" x1="230" y1="43" x2="330" y2="43"/>"#);
            label(&mut body, 250, 36, "small", "SSH");
            let _ = write!(body, r#"<line class="link" x1="405" y1="{}" x2="405" y2="{network_top}"/>"#, 14 + BOX_H);
        }
        None => {
            label(&mut body, 250, 36, "small", "SSH to every host directly (no bastion)");
            let _ = write!(body, r#"<line class="link" x1="125" y1="{}" x2="125" y2="{network_top}"/>"#, 14 + BOX_H);
        }
    }

    // The endpoint, inside the network.
    let ep_y = network_top + 36;
    let ep_w = 560;
    let ep_x = (WIDTH - ep_w) / 2;
    let ep_title = match (c.endpoint.mode.as_str(), &c.endpoint.address) {
        ("vip", Some(a)) => format!("API endpoint: virtual IP {a}:{}", c.endpoint.port),
        ("external", Some(a)) => format!("API endpoint: load balancer {a}:{}", c.endpoint.port),
        _ => format!("API endpoint: local proxy on every node, masters :{}", c.endpoint.port),
    };
    let _ = write!(body, r#"<g class="box endpoint"><rect x="{ep_x}" y="{ep_y}" width="{ep_w}" height="44" rx="22"/>"#);
    label(&mut body, ep_x + 20, ep_y + 27, "name", &ep_title);
    body.push_str("</g>");

    // One row (or more) per kind of host.
    let mut y = ep_y + 44 + 40;
    let mut placed: Vec<&str> = Vec::new();
    let mut master_tops: Vec<(i32, i32)> = Vec::new();
    for (role, title) in GROUPS {
        let members: Vec<&HostEntry> =
            data.hosts.iter().filter(|h| h.has_role(role) && !placed.contains(&h.name.as_str())).collect();
        if members.is_empty() {
            continue;
        }
        label(&mut body, 40, y + 26, "group", title);
        label(&mut body, 40, y + 44, "small", &format!("{} host(s)", members.len()));
        for (i, h) in members.iter().enumerate() {
            let (col, row) = ((i % PER_ROW) as i32, (i / PER_ROW) as i32);
            let (x, hy) = (ROW_X + col * (BOX_W + GAP), y + row * (BOX_H + GAP));
            host_box(&mut body, h, x, hy);
            if role == "master" {
                master_tops.push((x + BOX_W / 2, hy));
            }
            placed.push(&h.name);
        }
        let rows = members.len().div_ceil(PER_ROW) as i32;
        y += rows * (BOX_H + GAP) + 18;
    }
    for (x, top) in master_tops {
        let _ = write!(body, r#"<line class="api" x1="{}" y1="{}" x2="{x}" y2="{top}"/>"#, WIDTH / 2, ep_y + 44);
    }

    // The networks, at the foot of the node network's frame.
    let nets = format!("pods {} · services {} · CNI {} · etcd {}", c.pod_cidr, c.service_cidr, c.cni, c.etcd);
    label(&mut body, 40, y + 8, "small", &nets);
    let network_bottom = y + 22;
    let frame = format!(
        r#"<rect class="network" x="20" y="{network_top}" width="{}" height="{}" rx="10"/>"#,
        WIDTH - 40,
        network_bottom - network_top
    );
    let mut head = String::new();
    label(
        &mut head,
        36,
        network_top + 22,
        "netname",
        &match &c.node_network {
            Some(n) => format!("node network {n}"),
            None => "the hosts' network".to_string(),
        },
    );
    let height = network_bottom + 14;
    format!(
        r#"<svg class="picture" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="{aria}">{frame}{head}{body}</svg>"#,
        aria = esc(&format!("cluster {}", c.name)),
    )
}
