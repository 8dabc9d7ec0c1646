//! The report as one HTML page, a pure function of [`ReportData`]: inline CSS (print CSS too),
//! the picture as inline SVG, no script and nothing fetched (its Content-Security-Policy forbids
//! both). Every string from the inventory, the state or a host is escaped ([`text::esc`]).

mod svg;
pub mod text;

use std::fmt::Write;

use text::{bytes, duration_ms, esc, utc};

use super::data::{HostEntry, Live, Reach, ReportData};
use crate::ops::certs::{CertInfo, Health};
use crate::ops::check::Status;

const STYLE: &str = include_str!("style.css");

/// The whole page.
pub fn render(data: &ReportData) -> String {
    let mut page = String::new();
    let title = format!("Handover report: cluster {}", data.cluster.name);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n",
        t = esc(&title)
    );
    let _ = writeln!(
        page,
        "<p class=\"meta\">Made {} by {} from <code>{}</code> and the state directory <code>{}</code>{}.</p>",
        esc(&utc(data.generated_at)),
        esc(&data.generated_by),
        esc(&data.inventory_file),
        esc(&data.state_dir),
        if data.offline { " (offline: the hosts were not asked)" } else { ", the hosts asked through the bastion" }
    );
    not_gathered(&mut page, data);
    cluster(&mut page, data);
    hosts(&mut page, data);
    versions(&mut page, data);
    volumes(&mut page, data);
    database(&mut page, data);
    certificates(&mut page, data);
    last_apply(&mut page, data);
    let _ = writeln!(
        page,
        "<footer>No password or key is in this page: passwords are kept where the inventory says or in the state \
         directory's <code>secrets/</code>, keys in its <code>pki/</code> (mode 0600). Made by {}.</footer>\n</body></html>",
        esc(&data.generated_by)
    );
    page
}

fn not_gathered(page: &mut String, data: &ReportData) {
    if data.not_gathered.is_empty() {
        return;
    }
    // Sections missing for the same reason on one line.
    let mut by_reason: Vec<(&str, Vec<&str>)> = Vec::new();
    for n in &data.not_gathered {
        match by_reason.iter_mut().find(|(r, _)| *r == n.reason) {
            Some((_, sections)) => sections.push(&n.section),
            None => by_reason.push((&n.reason, vec![&n.section])),
        }
    }
    page.push_str("<div class=\"notice\"><strong>Not gathered</strong> (the page shows what the inventory and the state say instead):<ul>");
    for (reason, sections) in by_reason {
        let _ = write!(page, "<li>{}: {}</li>", esc(&sections.join(", ")), esc(reason));
    }
    page.push_str("</ul></div>\n");
}

/// `<p class="absent">` saying why a part is missing.
fn absent(page: &mut String, what: &str, reason: &str) {
    let _ = writeln!(page, "<p class=\"absent\">{}: not gathered ({}).</p>", esc(what), esc(reason));
}

fn kv(page: &mut String, rows: &[(&str, String)]) {
    page.push_str("<table class=\"kv\">");
    for (k, v) in rows {
        let _ = write!(page, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    page.push_str("</table>\n");
}

fn table_head(page: &mut String, heads: &[&str]) {
    page.push_str("<table><thead><tr>");
    for h in heads {
        let _ = write!(page, "<th>{}</th>", esc(h));
    }
    page.push_str("</tr></thead><tbody>");
}

fn cluster(page: &mut String, data: &ReportData) {
    let c = &data.cluster;
    page.push_str("<h2>1. The cluster</h2>\n");
    page.push_str(&svg::picture(data));
    page.push('\n');
    let running = data
        .kubernetes
        .gathered()
        .and_then(|k| k.server_version.clone())
        .map(|v| format!("{v} (the API server)"))
        .unwrap_or_else(|| "not asked".into());
    let mut rows = vec![
        ("Kubernetes", format!("{} asked by the inventory; running: {running}", c.kubernetes_version)),
        ("API endpoint", c.endpoint.description.clone()),
        ("Node network", c.node_network.clone().unwrap_or_else(|| "not set in the inventory".into())),
        ("Pod network", format!("{} (CNI {})", c.pod_cidr, c.cni)),
        ("Service network", c.service_cidr.clone()),
        ("etcd", c.etcd.clone()),
        ("Packages from", c.packages.clone()),
    ];
    if let Some(b) = &c.etcd_backup {
        rows.push(("etcd snapshots", b.clone()));
    }
    if let Some(b) = &data.bastion {
        rows.push(("Bastion", b.address.clone()));
    }
    if let Some(r) = &data.registry {
        rows.push((
            "Site registry",
            format!(
                "{} ({}:{}), mirrors {}; user {}, password {}",
                r.host,
                r.address,
                r.port,
                r.mirrors.join(", "),
                r.user,
                r.password
            ),
        ));
    }
    kv(page, &rows);
}

fn reach_cell(h: &HostEntry) -> String {
    match &h.reach {
        Reach::NotAsked => "<span class=\"unknown\">not asked</span>".into(),
        Reach::Reached(_) => "<span class=\"ok\">reached</span>".into(),
        Reach::Unreachable { reason } => format!("<span class=\"fail\">UNREACHABLE</span><br>{}", esc(reason)),
    }
}

fn baseline_cell(h: &HostEntry) -> String {
    let Some(worst) = h.baseline_status() else { return "<span class=\"unknown\">not checked</span>".into() };
    let (class, word) = match worst {
        Status::Pass => ("ok", "pass"),
        Status::Warn => ("warn", "warn"),
        Status::Fail => ("fail", "FAIL"),
    };
    let passed = h.baseline.iter().filter(|f| f.status == Status::Pass).count();
    let mut cell = format!("<span class=\"{class}\">{word}</span> ({passed} of {} checks pass)", h.baseline.len());
    let problems: Vec<String> = h
        .baseline
        .iter()
        .filter(|f| f.status != Status::Pass)
        .map(|f| {
            let advice = f.advice.as_deref().map(|a| format!(": {}", esc(a))).unwrap_or_default();
            format!(
                "<li>{} {}: {} (needs {}){advice}</li>",
                esc(f.check),
                word_of(f.status),
                esc(&f.measured),
                esc(&f.required)
            )
        })
        .collect();
    if !problems.is_empty() {
        let _ = write!(cell, "<ul class=\"findings\">{}</ul>", problems.join(""));
    }
    cell
}

fn word_of(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Warn => "warn",
        Status::Fail => "FAIL",
    }
}

fn everyone(data: &ReportData) -> impl Iterator<Item = &HostEntry> {
    data.bastion.iter().chain(&data.hosts)
}

fn hosts(page: &mut String, data: &ReportData) {
    page.push_str("<h2>2. Hosts against their baselines</h2>\n");
    table_head(
        page,
        &["Host", "Roles", "Address", "Reached", "OS, kernel", "CPUs", "Memory", "Root file system", "Baseline"],
    );
    for h in everyone(data) {
        let (os, cpus, memory, root) = match &h.reach {
            Reach::Reached(s) => (
                format!("{}<br><span class=\"mono\">{} {}</span>", esc(&s.os), esc(&s.kernel), esc(&s.architecture)),
                s.cpus.to_string(),
                bytes(s.memory_bytes),
                match (s.root_total_bytes, s.root_available_bytes) {
                    (Some(t), Some(a)) => format!("{} ({} free)", bytes(t), bytes(a)),
                    _ => "?".into(),
                },
            ),
            _ => (String::new(), String::new(), String::new(), String::new()),
        };
        let _ = write!(
            page,
            "<tr><td><strong>{}</strong></td><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{os}</td><td class=\"num\">{cpus}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&h.name),
            esc(&h.roles.join(", ")),
            esc(&h.address),
            reach_cell(h),
            esc(&memory),
            esc(&root),
            baseline_cell(h),
        );
    }
    page.push_str("</tbody></table>\n");
}

fn versions(page: &mut String, data: &ReportData) {
    page.push_str("<h2>3. Versions</h2>\n");
    let reached: Vec<&HostEntry> = data.hosts.iter().filter(|h| matches!(h.reach, Reach::Reached(_))).collect();
    if reached.is_empty() {
        let why = data
            .not_gathered
            .iter()
            .find(|n| n.section == super::FACTS)
            .map(|n| n.reason.as_str())
            .unwrap_or("no host was reached");
        absent(page, "Installed versions on the hosts", why);
    } else {
        table_head(page, &["Host", "containerd", "runc", "kubelet", "kubeadm", "kubectl", "Servers"]);
        let v = |o: &Option<String>| esc(o.as_deref().unwrap_or("-"));
        for h in reached {
            let Reach::Reached(s) = &h.reach else { continue };
            let i = &s.versions;
            let _ = write!(
                page,
                "<tr><td><strong>{}</strong></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&h.name),
                v(&i.containerd),
                v(&i.runc),
                v(&i.kubelet),
                v(&i.kubeadm),
                v(&i.kubectl),
                esc(&s.servers.join(", "))
            );
        }
        page.push_str("</tbody></table>\n");
    }
    page.push_str("<h3>Kubernetes nodes</h3>\n");
    match &data.kubernetes {
        Live::NotGathered { reason } => absent(page, "The API server's nodes", reason),
        Live::Gathered(k) => {
            let _ = writeln!(
                page,
                "<p>API server {} (asked through {}).</p>",
                esc(k.server_version.as_deref().unwrap_or("version unknown")),
                esc(&k.asked_via)
            );
            table_head(page, &["Node", "Ready", "kubelet", "Scheduling", "Taints"]);
            for n in &k.nodes {
                let _ = write!(
                    page,
                    "<tr><td><strong>{}</strong></td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
                    esc(&n.name),
                    if n.ready { "<span class=\"ok\">Ready</span>" } else { "<span class=\"fail\">NOT Ready</span>" },
                    esc(n.kubelet_version.as_deref().unwrap_or("?")),
                    if n.unschedulable { "cordoned" } else { "schedulable" },
                    esc(&n.taints.join(", "))
                );
            }
            page.push_str("</tbody></table>\n");
        }
    }
}

fn volumes(page: &mut String, data: &ReportData) {
    let v = &data.volumes;
    page.push_str("<h2>4. Volumes and what claims them</h2>\n");
    match &v.storage_host {
        None => {
            page.push_str("<p>The inventory has no storage section: no volumes are made outside the cluster.</p>\n")
        }
        Some(host) => {
            let _ = writeln!(page, "<p>Served by the storage host {}.</p>", esc(host));
            table_head(page, &["Volume", "Size", "Served as", "Made for the claim"]);
            for p in &v.planned {
                let _ = write!(
                    page,
                    "<tr><td><strong>{}</strong></td><td class=\"num\">{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
                    esc(&p.name),
                    esc(&p.size),
                    esc(&p.access),
                    esc(p.claim.as_deref().unwrap_or("none named (no DIGIT chart claims it)"))
                );
            }
            page.push_str("</tbody></table>\n");
        }
    }
    page.push_str("<h3>PersistentVolumes in the cluster</h3>\n");
    match &v.persistent_volumes {
        Live::NotGathered { reason } => absent(page, "The cluster's PersistentVolumes", reason),
        Live::Gathered(pvs) if pvs.is_empty() => page.push_str("<p>The cluster has no PersistentVolume.</p>\n"),
        Live::Gathered(pvs) => {
            table_head(page, &["PersistentVolume", "Capacity", "Phase", "Claimed by", "Class", "Source"]);
            for pv in pvs {
                let o = |s: &Option<String>| esc(s.as_deref().unwrap_or("-"));
                let _ = write!(
                    page,
                    "<tr><td><strong>{}</strong></td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
                    esc(&pv.name),
                    o(&pv.capacity),
                    o(&pv.phase),
                    esc(pv.claim.as_deref().unwrap_or("unclaimed")),
                    o(&pv.storage_class),
                    o(&pv.source)
                );
            }
            page.push_str("</tbody></table>\n");
        }
    }
}

fn database(page: &mut String, data: &ReportData) {
    page.push_str("<h2>5. The database</h2>\n");
    let Some(d) = &data.database else {
        page.push_str("<p>The inventory has no database section.</p>\n");
        return;
    };
    let mut rows = vec![
        ("Host", format!("{} ({}), port {}", d.host, d.address, d.port)),
        ("PostgreSQL", format!("{} from {}", d.postgresql_version, d.source)),
        ("Data directory", d.data_directory.clone().unwrap_or_else(|| "the package's".into())),
        ("Backups", d.backup.clone().unwrap_or_else(|| "none scheduled by groundwork".into())),
    ];
    if let Some(h) = data.hosts.iter().find(|h| h.name == d.host) {
        let running = match &h.reach {
            Reach::Reached(s) if s.servers.iter().any(|x| x == "postgresql") => "installed on the host".to_string(),
            Reach::Reached(_) => "NOT installed on the host".to_string(),
            Reach::Unreachable { reason } => format!("host unreachable: {reason}"),
            Reach::NotAsked => "not asked".to_string(),
        };
        rows.push(("Server", running));
    }
    kv(page, &rows);
    table_head(page, &["Database", "Owner"]);
    for (name, owner) in &d.databases {
        let _ = write!(page, "<tr><td><strong>{}</strong></td><td>{}</td></tr>", esc(name), esc(owner));
    }
    page.push_str("</tbody></table>\n");
    table_head(page, &["Login role", "Database", "Access", "Password"]);
    for r in &d.roles {
        let _ = write!(
            page,
            "<tr><td><strong>{}</strong></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.name),
            esc(&r.database),
            esc(&r.access),
            esc(&r.password)
        );
    }
    page.push_str("</tbody></table>\n");
}

fn health(c: &CertInfo) -> String {
    match (c.health, &c.problem) {
        (_, Some(p)) => format!("<span class=\"fail\">FAIL</span> ({})", esc(p)),
        (Health::Ok, None) => "<span class=\"ok\">ok</span>".into(),
        (Health::Warn, None) => "<span class=\"warn\">WARN</span>".into(),
        (Health::Fail, None) => "<span class=\"fail\">FAIL</span>".into(),
    }
}

fn cert_row(page: &mut String, where_: &str, c: &CertInfo) {
    let subject = if c.is_ca { format!("{} (CA)", c.subject) } else { c.subject.clone() };
    let _ = write!(
        page,
        "<tr><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
        esc(where_),
        esc(&c.path),
        esc(&subject),
        esc(&utc(c.not_after)),
        c.days_left,
        health(c)
    );
}

fn certificates(page: &mut String, data: &ReportData) {
    let certs = &data.certificates;
    page.push_str("<h2>6. Certificate expiries</h2>\n");
    let _ = writeln!(
        page,
        "<p>WARN below {} days left, FAIL below {} (as <code>groundwork certs check</code>); \
         <code>groundwork certs renew</code> renews every one but the CAs.</p>",
        certs.warn_days, certs.fail_days
    );
    page.push_str("<h3>In the state directory (this machine)</h3>\n");
    if certs.state.is_empty() {
        page.push_str(
            "<p class=\"absent\">The state holds no certificate: <code>groundwork apply</code> makes the cluster's PKI.</p>\n",
        );
    } else {
        table_head(page, &["Where", "Certificate", "Subject", "Expires", "Days left", "Status"]);
        for c in &certs.state {
            cert_row(page, "state", c);
        }
        page.push_str("</tbody></table>\n");
    }
    page.push_str("<h3>On the nodes</h3>\n");
    match &certs.nodes {
        Live::NotGathered { reason } => absent(page, "The nodes' certificates", reason),
        Live::Gathered(n) => {
            // Per node: how many, the soonest; every one that warns or fails in full.
            let mut by_host: Vec<(&str, Vec<&CertInfo>)> = Vec::new();
            for c in &n.certificates {
                match by_host.iter_mut().find(|(h, _)| *h == c.host) {
                    Some((_, list)) => list.push(c),
                    None => by_host.push((&c.host, vec![c])),
                }
            }
            table_head(page, &["Node", "Certificates", "Soonest to expire", "Expires", "Days left", "Status"]);
            for (host, list) in &by_host {
                let Some(soonest) = list.iter().min_by_key(|c| c.days_left) else { continue };
                let worst = list.iter().max_by_key(|c| c.health).map(|c| health(c)).unwrap_or_default();
                let _ = write!(
                    page,
                    "<tr><td><strong>{}</strong></td><td class=\"num\">{}</td><td class=\"mono\">{}</td><td>{}</td><td class=\"num\">{}</td><td>{worst}</td></tr>",
                    esc(host),
                    list.len(),
                    esc(&soonest.path),
                    esc(&utc(soonest.not_after)),
                    soonest.days_left
                );
            }
            for (host, why) in &n.unreachable {
                let _ = write!(
                    page,
                    "<tr><td><strong>{}</strong></td><td colspan=\"5\"><span class=\"fail\">UNREACHABLE</span>: {}</td></tr>",
                    esc(host),
                    esc(why)
                );
            }
            page.push_str("</tbody></table>\n");
            let due: Vec<&&CertInfo> =
                by_host.iter().flat_map(|(_, l)| l.iter()).filter(|c| c.health != Health::Ok).collect();
            if !due.is_empty() {
                page.push_str("<h3>Due or unreadable on the nodes</h3>\n");
                table_head(page, &["Where", "Certificate", "Subject", "Expires", "Days left", "Status"]);
                for c in due {
                    cert_row(page, &c.host, c);
                }
                page.push_str("</tbody></table>\n");
            }
        }
    }
}

fn last_apply(page: &mut String, data: &ReportData) {
    let a = &data.last_apply;
    page.push_str("<h2>7. The last apply: phases and times</h2>\n");
    if let Some(p) = &a.problem {
        let _ = writeln!(page, "<p class=\"absent\">{}</p>", esc(p));
        return;
    }
    if a.phases.is_empty() {
        page.push_str("<p class=\"absent\">The journal records no phase.</p>\n");
        return;
    }
    let first = a.phases.iter().flat_map(|p| &p.hosts).map(|h| h.at.saturating_sub(h.took_ms / 1000)).min();
    let last = a.phases.iter().map(|p| p.finished()).max();
    if let (Some(first), Some(last)) = (first, last) {
        let _ = writeln!(
            page,
            "<p>From the journal (each host's last outcome of each phase): the first recorded phase started about {}, \
             the last finished {}.</p>",
            esc(&utc(first as i64)),
            esc(&utc(last as i64))
        );
    }
    table_head(page, &["Phase", "Hosts", "Outcome", "Finished", "Longest on a host", "Changes"]);
    for p in &a.phases {
        let failed = p.failed();
        let outcome = if failed == 0 {
            "<span class=\"ok\">done</span>".to_string()
        } else {
            format!("<span class=\"fail\">{failed} FAILED</span>")
        };
        let names: Vec<&str> = p.hosts.iter().map(|h| h.host.as_str()).collect();
        let _ = write!(
            page,
            "<tr><td><strong>{}</strong></td><td>{}</td><td>{outcome}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&p.phase),
            esc(&names.join(", ")),
            esc(&utc(p.finished() as i64)),
            esc(&duration_ms(p.longest_ms())),
            p.changes()
        );
    }
    page.push_str("</tbody></table>\n");
    let failures: Vec<(&str, &super::data::PhaseHost)> = a
        .phases
        .iter()
        .flat_map(|p| p.hosts.iter().filter(|h| h.status != "done").map(move |h| (p.phase.as_str(), h)))
        .collect();
    if !failures.is_empty() {
        page.push_str("<h3>Failures recorded</h3>\n");
        table_head(page, &["Phase", "Host", "When", "Error"]);
        for (phase, h) in failures {
            let _ = write!(
                page,
                "<tr><td>{}</td><td><strong>{}</strong></td><td>{}</td><td>{}</td></tr>",
                esc(phase),
                esc(&h.host),
                esc(&utc(h.at as i64)),
                esc(h.error.as_deref().unwrap_or("no message"))
            );
        }
        page.push_str("</tbody></table>\n");
    }
}
