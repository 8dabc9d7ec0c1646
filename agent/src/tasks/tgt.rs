//! `tgt_account`: tgtd's incoming CHAP account, made by speaking tgtd's management socket
//! (`/var/run/tgtd/socket.0`, the protocol `tgtadm` speaks) instead of running `tgtadm --password`,
//! whose command line every user of the host can read in /proc (tgt-admin runs exactly that for
//! an account tgtd does not have yet). With the account in tgtd first, tgt-admin only binds it.
//!
//! The user and secret come from a root-only file (`user` line, then `password` line). tgtd never
//! shows a secret back, so what the account was made with is remembered as a digest in /run
//! together with tgtd's start (its socket lock's mtime): a restarted tgtd, or a new secret, makes
//! the account again. Also `groundwork-agent tgt-account FILE` for tgt.service's start (before
//! `tgt-admin -e`, which then finds the account and never needs the secret).

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use groundwork_protocol::Report;
use sha2::{Digest, Sha256};

const SOCKET: &str = "/var/run/tgtd/socket.0";
const MARK: &str = "/run/groundwork/tgt-account";

// tgtadm.h: enum tgtadm_mode, enum tgtadm_op.
const MODE_TARGET: u32 = 1;
const MODE_ACCOUNT: u32 = 7;
const OP_NEW: u32 = 0;
const OP_DELETE: u32 = 1;
const OP_SHOW: u32 = 2;
const OP_BIND: u32 = 3;
/// sizeof(struct tgtadm_req).
const REQ_LEN: usize = 120;
/// Answers larger than this are not tgtd's.
const MAX_ANSWER: usize = 16 << 20;

/// One request to tgtd: `struct tgtadm_req` (x86_64 layout), then `key=value,...` and a NUL.
fn request(mode: u32, op: u32, tid: i32, params: &str) -> Result<String, String> {
    let body = if params.is_empty() { Vec::new() } else { [params.as_bytes(), b"\0"].concat() };
    let mut req = vec![0u8; REQ_LEN];
    req[0..4].copy_from_slice(&mode.to_ne_bytes());
    req[4..8].copy_from_slice(&op.to_ne_bytes());
    req[8..13].copy_from_slice(b"iscsi");
    req[72..76].copy_from_slice(&((REQ_LEN + body.len()) as u32).to_ne_bytes());
    req[76..80].copy_from_slice(&tid.to_ne_bytes());
    req[88..96].copy_from_slice(&u64::MAX.to_ne_bytes()); // lun: none
    let mut s = UnixStream::connect(SOCKET).map_err(|e| format!("cannot reach tgtd at {SOCKET}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    s.set_write_timeout(Some(Duration::from_secs(30))).ok();
    s.write_all(&[req, body].concat()).map_err(|e| format!("tgtd: sending a request: {e}"))?;
    let mut head = [0u8; 8];
    s.read_exact(&mut head).map_err(|e| format!("tgtd: reading its answer: {e}"))?;
    let err = u32::from_ne_bytes(head[0..4].try_into().expect("4 bytes"));
    let len = (u32::from_ne_bytes(head[4..8].try_into().expect("4 bytes")) as usize).saturating_sub(8);
    if err != 0 {
        return Err(format!("tgtd refused the request ({})", tgtadm_error(err)));
    }
    if len > MAX_ANSWER {
        return Err(format!("tgtd answered {len} bytes (more than {MAX_ANSWER})"));
    }
    let mut data = vec![0u8; len];
    s.read_exact(&mut data).map_err(|e| format!("tgtd: reading its answer: {e}"))?;
    Ok(String::from_utf8_lossy(&data).trim_end_matches('\0').to_string())
}

/// tgtadm_error.h's codes an operator may meet here.
fn tgtadm_error(code: u32) -> String {
    match code {
        4 => "can't find the target".into(),
        12 => "this account already exists".into(),
        13 => "can't find the account".into(),
        14 => "too many accounts".into(),
        15 => "invalid request".into(),
        other => format!("error {other}"),
    }
}

/// The accounts tgtd has (`tgtadm --mode account --op show`: a header, then one indented name a line).
fn accounts() -> Result<Vec<String>, String> {
    let shown = request(MODE_ACCOUNT, OP_SHOW, -1, "")?;
    Ok(shown.lines().filter(|l| l.starts_with(char::is_whitespace)).map(|l| l.trim().to_string()).collect())
}

/// Every target: (tid, name, its bound accounts), from `tgtadm --mode target --op show`.
pub fn parse_targets(shown: &str) -> Vec<(i32, String, Vec<String>)> {
    let mut targets: Vec<(i32, String, Vec<String>)> = vec![];
    let mut in_accounts = false;
    for line in shown.lines() {
        if let Some(rest) = line.strip_prefix("Target ") {
            if let Some((tid, name)) = rest.split_once(": ")
                && let Ok(tid) = tid.parse()
            {
                targets.push((tid, name.trim().to_string(), vec![]));
            }
            in_accounts = false;
        } else if line.trim() == "Account information:" {
            in_accounts = true;
        } else if line.starts_with("    ") && !line.starts_with("     ") {
            in_accounts = false; // the next section of this target
        } else if in_accounts
            && !line.trim().is_empty()
            && let Some(t) = targets.last_mut()
        {
            t.2.push(line.trim().to_string());
        }
    }
    targets
}

/// The user and secret from `file` (root only: it holds the secret).
fn read_credentials(file: &str) -> Result<(String, String), String> {
    let meta = std::fs::metadata(file).map_err(|e| format!("{file}: {e}"))?;
    if meta.mode() & 0o077 != 0 {
        return Err(format!("{file}: holds a CHAP secret and must not be readable by others (chmod 600)"));
    }
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let mut lines = text.lines();
    let (user, password) = (lines.next().unwrap_or_default(), lines.next().unwrap_or_default());
    // tgtd splits its parameters at commas; blanks would split tgt's configuration file.
    let bad = |s: &str| s.is_empty() || s.contains(|c: char| c == ',' || c.is_whitespace() || c.is_control());
    if bad(user) || bad(password) {
        return Err(format!("{file}: needs a user line and a password line, without blanks or commas"));
    }
    Ok((user.to_string(), password.to_string()))
}

/// What the account was made with and which tgtd made it: remembered in /run.
fn mark(user: &str, password: &str) -> Result<String, String> {
    let started = std::fs::metadata(format!("{SOCKET}.lock"))
        .map(|m| format!("{}.{}", m.mtime(), m.mtime_nsec()))
        .map_err(|e| format!("tgtd is not running ({SOCKET}.lock: {e})"))?;
    let digest = Sha256::digest(format!("{user}\n{password}\n").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{hex} {started}\n"))
}

pub fn ensure(file: &str, targets: &[String], dry: bool) -> Result<Report, String> {
    // A plan before the file or tgtd exist: this run would make both.
    if dry && !(Path::new(file).exists() && Path::new(SOCKET).exists()) {
        return Ok(Report { changed: true, summary: "would make the CHAP account in tgtd".into(), diff: None });
    }
    let (user, password) = read_credentials(file)?;
    let want_mark = mark(&user, &password)?;
    let current = std::fs::read_to_string(MARK).ok();
    let exists = accounts()?.contains(&user);
    let mut done = vec![];
    if !exists || current.as_deref() != Some(want_mark.as_str()) {
        done.push(format!("{} the CHAP account {user} in tgtd", if exists { "remade" } else { "made" }));
        if !dry {
            if exists {
                request(MODE_ACCOUNT, OP_DELETE, -1, &format!("user={user}"))?;
            }
            request(MODE_ACCOUNT, OP_NEW, -1, &format!("user={user},password={password}"))?;
            super::fsx::mkdir_p(Path::new(MARK).parent().expect("a directory"))?;
            super::fsx::write(Path::new(MARK), want_mark.as_bytes(), 0o600, None)?;
        }
    }
    // Deleting an account unbinds it: bind it again wherever it is wanted and missing.
    let mut bound = 0;
    for (tid, name, accounts) in parse_targets(&request(MODE_TARGET, OP_SHOW, -1, "")?) {
        if targets.contains(&name) && (!accounts.contains(&user) || !done.is_empty()) {
            bound += 1;
            if !dry {
                request(MODE_ACCOUNT, OP_BIND, tid, &format!("user={user}"))
                    .or_else(|e| if e.contains("already exists") { Ok(String::new()) } else { Err(e) })?;
            }
        }
    }
    if bound > 0 {
        done.push(format!("bound it to {bound} target(s)"));
    }
    let verb = if dry { "would: " } else { "" };
    Ok(if done.is_empty() {
        Report { changed: false, summary: format!("tgtd has the CHAP account {user}"), diff: None }
    } else {
        Report { changed: true, summary: format!("{verb}{}", done.join(", ")), diff: None }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_their_accounts_are_read_from_tgtadms_show() {
        let shown = "Target 1: iqn.x:a\n    System information:\n        Driver: iscsi\n    LUN information:\n        LUN: 0\n            Type: controller\n    Account information:\n        groundwork\n        other (outgoing)\n    ACL information:\n        0.0.0.0/32\nTarget 2: iqn.x:b\n    System information:\n    Account information:\n    ACL information:\n        ALL\n";
        assert_eq!(
            parse_targets(shown),
            vec![
                (1, "iqn.x:a".to_string(), vec!["groundwork".to_string(), "other (outgoing)".to_string()]),
                (2, "iqn.x:b".to_string(), vec![]),
            ]
        );
    }

    #[test]
    fn credentials_come_from_a_private_file_without_commas() {
        use std::os::unix::fs::PermissionsExt;
        let t = super::super::testdir::TempDir::new("tgt-chap");
        let f = t.path("chap");
        std::fs::write(&f, "groundwork\ns3cret-pass\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_credentials(f.to_str().unwrap()).unwrap_err().contains("chmod 600"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_credentials(f.to_str().unwrap()).unwrap(), ("groundwork".into(), "s3cret-pass".into()));
        std::fs::write(&f, "groundwork\na,b\n").unwrap();
        assert!(read_credentials(f.to_str().unwrap()).unwrap_err().contains("commas"));
    }
}
