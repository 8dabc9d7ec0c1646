use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn spec2() -> PkiSpec {
    PkiSpec { etcd_members: vec![("m1".into(), ip("10.0.0.1")), ("m2".into(), ip("10.0.0.2"))], ..Default::default() }
}

/// Every regular file under `dir`, relative path -> bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Runs openssl; panics (with its stderr) if it cannot be run or fails.
fn openssl(args: &[&str], cwd: &Path, stdin: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl CLI is needed by these tests (apt-get install -y openssl)");
    {
        let mut i = child.stdin.take().unwrap();
        if let Some(input) = stdin {
            i.write_all(input).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn openssl_text(args: &[&str], cwd: &Path) -> String {
    String::from_utf8(openssl(args, cwd, None)).unwrap()
}

const LEAVES: &[(&str, &str, &str)] = &[
    // (CA, leaf, openssl purpose)
    ("ca.crt", "groundwork-admin.crt", "sslclient"),
    ("etcd/ca.crt", "apiserver-etcd-client.crt", "sslclient"),
    ("etcd/ca.crt", "etcd/healthcheck-client.crt", "sslclient"),
    ("etcd/ca.crt", "etcd/m1/server.crt", "sslserver"),
    ("etcd/ca.crt", "etcd/m1/server.crt", "sslclient"),
    ("etcd/ca.crt", "etcd/m1/peer.crt", "sslserver"),
    ("etcd/ca.crt", "etcd/m1/peer.crt", "sslclient"),
    ("etcd/ca.crt", "etcd/m2/server.crt", "sslserver"),
    ("etcd/ca.crt", "etcd/m2/peer.crt", "sslclient"),
];

#[test]
fn first_run_creates_everything_and_second_run_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let (pki, created) = ClusterPki::load_or_create(&dir, &spec2()).unwrap();
    assert!(!created.is_empty());
    let files = snapshot(&dir);
    for f in [
        "ca.crt",
        "ca.key",
        "front-proxy-ca.crt",
        "front-proxy-ca.key",
        "sa.key",
        "sa.pub",
        "etcd/ca.crt",
        "etcd/ca.key",
        "etcd/m1/server.crt",
        "etcd/m1/server.key",
        "etcd/m1/peer.crt",
        "etcd/m1/peer.key",
        "etcd/m2/server.crt",
        "etcd/m2/peer.key",
        "apiserver-etcd-client.crt",
        "apiserver-etcd-client.key",
        "etcd/healthcheck-client.crt",
        "etcd/healthcheck-client.key",
        "groundwork-admin.crt",
        "groundwork-admin.key",
    ] {
        assert!(files.contains_key(f), "{f} missing; have {:?}", files.keys().collect::<Vec<_>>());
    }
    assert!(!files.keys().any(|k| k.contains(".tmp")), "temporary files left: {:?}", files.keys());

    let (again, created) = ClusterPki::load_or_create(&dir, &spec2()).unwrap();
    assert!(created.is_empty(), "second run created {created:?}");
    assert_eq!(snapshot(&dir), files, "second run changed files");
    assert_eq!(again.ca_cert_pem(), pki.ca_cert_pem());
    assert_eq!(again.admin().key(), pki.admin().key());
    assert_eq!(again.discovery_hash(), pki.discovery_hash());
}

#[test]
fn keys_are_0600_certs_0644_dirs_0700() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    ClusterPki::load_or_create(&dir, &spec2()).unwrap();
    for d in [dir.clone(), dir.join("etcd"), dir.join("etcd/m1"), dir.join("etcd/m2")] {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }
    for f in snapshot(&dir).keys() {
        let want = if f.ends_with(".key") { 0o600 } else { 0o644 };
        assert_eq!(mode(&dir.join(f)), want, "{f}");
    }
}

#[test]
fn openssl_verifies_every_leaf_against_its_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    ClusterPki::load_or_create(&dir, &spec2()).unwrap();
    for (ca, leaf, purpose) in LEAVES {
        let out = openssl_text(&["verify", "-x509_strict", "-purpose", purpose, "-CAfile", ca, leaf], &dir);
        assert_eq!(out.trim(), format!("{leaf}: OK"), "{leaf} against {ca} for {purpose}");
    }
    // A leaf of one CA must not verify against another.
    let out = Command::new("openssl")
        .args(["verify", "-CAfile", "ca.crt", "etcd/m1/server.crt"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    // The CAs are CAs, with the kubeadm subjects.
    for (ca, cn) in [("ca.crt", "kubernetes"), ("front-proxy-ca.crt", "front-proxy-ca"), ("etcd/ca.crt", "etcd-ca")] {
        let text = openssl_text(&["x509", "-noout", "-subject", "-ext", "basicConstraints", "-in", ca], &dir);
        assert!(text.contains(&format!("CN = {cn}")), "{ca}: {text}");
        assert!(text.contains("CA:TRUE"), "{ca}: {text}");
    }
    let text = openssl_text(&["x509", "-noout", "-subject", "-in", "groundwork-admin.crt"], &dir);
    assert_eq!(text.trim(), "subject=O = system:masters, CN = groundwork-admin");
    let text = openssl_text(&["x509", "-noout", "-subject", "-in", "etcd/healthcheck-client.crt"], &dir);
    assert_eq!(text.trim(), "subject=CN = kube-etcd-healthcheck-client");
    let text = openssl_text(&["x509", "-noout", "-subject", "-in", "apiserver-etcd-client.crt"], &dir);
    assert_eq!(text.trim(), "subject=CN = kube-apiserver-etcd-client");
    // Keys are ECDSA P-256.
    let text = openssl_text(&["x509", "-noout", "-text", "-in", "ca.crt"], &dir);
    assert!(text.contains("ecdsa-with-SHA256") && text.contains("prime256v1"), "{text}");
}

fn san_line(dir: &Path, cert: &str) -> String {
    let text = openssl_text(&["x509", "-noout", "-ext", "subjectAltName", "-in", cert], dir);
    text.lines().nth(1).unwrap_or_default().trim().to_string()
}

#[test]
fn openssl_sees_the_etcd_sans() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    ClusterPki::load_or_create(&dir, &spec2()).unwrap();
    assert_eq!(
        san_line(&dir, "etcd/m1/server.crt"),
        "DNS:localhost, DNS:m1, IP Address:10.0.0.1, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"
    );
    assert_eq!(san_line(&dir, "etcd/m1/peer.crt"), "DNS:localhost, DNS:m1, IP Address:10.0.0.1, IP Address:127.0.0.1");
    assert_eq!(
        san_line(&dir, "etcd/m2/server.crt"),
        "DNS:localhost, DNS:m2, IP Address:10.0.0.2, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"
    );
}

#[test]
fn sa_pub_is_the_public_half_of_sa_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let (pki, _) = ClusterPki::load_or_create(&dir, &spec2()).unwrap();
    let derived = openssl(&["ec", "-in", "sa.key", "-pubout"], &dir, None);
    assert_eq!(String::from_utf8(derived).unwrap(), std::fs::read_to_string(dir.join("sa.pub")).unwrap());
    assert_eq!(pki.sa_pub_pem(), std::fs::read_to_string(dir.join("sa.pub")).unwrap());
    let text = openssl_text(&["ec", "-in", "sa.key", "-noout", "-text"], &dir);
    assert!(text.contains("prime256v1"), "{text}");

    // sa.pub lost: derived again from sa.key, which is kept.
    let key = std::fs::read(dir.join("sa.key")).unwrap();
    std::fs::remove_file(dir.join("sa.pub")).unwrap();
    let (_, created) = ClusterPki::load_or_create(&dir, &spec2()).unwrap();
    assert_eq!(created.len(), 1, "{created:?}");
    assert!(created[0].starts_with("sa.pub"), "{created:?}");
    assert_eq!(std::fs::read(dir.join("sa.key")).unwrap(), key);
    let derived = openssl(&["ec", "-in", "sa.key", "-pubout"], &dir, None);
    assert_eq!(derived, std::fs::read(dir.join("sa.pub")).unwrap());
}

#[test]
fn changed_ip_regenerates_only_that_members_leaves() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    ClusterPki::load_or_create(&dir, &spec2()).unwrap();
    let before = snapshot(&dir);

    let spec = PkiSpec {
        etcd_members: vec![("m1".into(), ip("10.0.0.11")), ("m2".into(), ip("10.0.0.2"))],
        ..Default::default()
    };
    let (pki, created) = ClusterPki::load_or_create(&dir, &spec).unwrap();
    assert_eq!(created.len(), 2, "{created:?}");
    assert!(created[0].starts_with("etcd/m1/server.crt + etcd/m1/server.key (replaced: SANs are"), "{created:?}");
    assert!(created[0].contains("10.0.0.1,") && created[0].contains("10.0.0.11"), "{created:?}");
    assert!(created[1].starts_with("etcd/m1/peer.crt + etcd/m1/peer.key (replaced:"), "{created:?}");

    let after = snapshot(&dir);
    for (f, bytes) in &before {
        let changed = after[f] != *bytes;
        assert_eq!(changed, f.starts_with("etcd/m1/"), "{f} changed={changed}");
    }
    assert!(san_line(&dir, "etcd/m1/server.crt").contains("IP Address:10.0.0.11,"));
    assert!(san_line(&dir, "etcd/m1/peer.crt").contains("IP Address:10.0.0.11,"));
    for leaf in ["etcd/m1/server.crt", "etcd/m1/peer.crt"] {
        let out = openssl_text(&["verify", "-CAfile", "etcd/ca.crt", leaf], &dir);
        assert_eq!(out.trim(), format!("{leaf}: OK"));
    }
    assert_eq!(pki.etcd_members().collect::<Vec<_>>(), vec![("m1", ip("10.0.0.11")), ("m2", ip("10.0.0.2"))]);
    let (_, created) = ClusterPki::load_or_create(&dir, &spec).unwrap();
    assert!(created.is_empty(), "{created:?}");
}

#[test]
fn new_member_gets_only_its_certs_signed_by_the_loaded_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    ClusterPki::load_or_create(
        &dir,
        &PkiSpec { etcd_members: vec![("m1".into(), ip("10.0.0.1"))], ..Default::default() },
    )
    .unwrap();
    let before = snapshot(&dir);
    let (pki, created) = ClusterPki::load_or_create(&dir, &spec2()).unwrap();
    assert_eq!(created, vec!["etcd/m2/server.crt + etcd/m2/server.key", "etcd/m2/peer.crt + etcd/m2/peer.key"]);
    let after = snapshot(&dir);
    for (f, bytes) in &before {
        assert_eq!(&after[f], bytes, "{f} changed");
    }
    assert!(pki.has_etcd_member("m2"));
    // Signed through a CA read back from disk: the issuer must be byte-identical to the CA's
    // subject (Go matches raw bytes) and OpenSSL must accept the chain.
    let issuer =
        openssl(&["x509", "-noout", "-issuer", "-nameopt", "RFC2253", "-in", "etcd/m2/server.crt"], &dir, None);
    let subject = openssl(&["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", "etcd/ca.crt"], &dir, None);
    assert_eq!(
        String::from_utf8_lossy(&issuer).replace("issuer=", ""),
        String::from_utf8_lossy(&subject).replace("subject=", "")
    );
    let leaf = x509_der(&dir.join("etcd/m2/server.crt"));
    let ca = x509_der(&dir.join("etcd/ca.crt"));
    let (_, leaf) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    let (_, ca) = x509_parser::parse_x509_certificate(&ca).unwrap();
    assert_eq!(leaf.issuer().as_raw(), ca.subject().as_raw());
    for leaf in ["etcd/m2/server.crt", "etcd/m2/peer.crt"] {
        let out = openssl_text(&["verify", "-x509_strict", "-CAfile", "etcd/ca.crt", leaf], &dir);
        assert_eq!(out.trim(), format!("{leaf}: OK"));
    }
}

fn x509_der(path: &Path) -> Vec<u8> {
    certs::parse_pem(&std::fs::read_to_string(path).unwrap(), "CERTIFICATE").unwrap()
}

#[test]
fn leaf_from_another_ca_or_with_wrong_key_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, other) = (tmp.path().join("pki"), tmp.path().join("other"));
    ClusterPki::load_or_create(&dir, &spec2()).unwrap();
    ClusterPki::load_or_create(&other, &spec2()).unwrap();
    for f in ["etcd/m1/server.crt", "etcd/m1/server.key"] {
        std::fs::copy(other.join(f), dir.join(f)).unwrap();
    }
    std::fs::copy(other.join("groundwork-admin.key"), dir.join("groundwork-admin.key")).unwrap();
    let (_, created) = ClusterPki::load_or_create(&dir, &spec2()).unwrap();
    assert_eq!(created.len(), 2, "{created:?}");
    assert!(created.iter().any(|c| c.contains("groundwork-admin.crt") && c.contains("the key does not match")));
    assert!(created.iter().any(|c| c.contains("etcd/m1/server.crt") && c.contains("not signed by the current CA")));
    for (ca, leaf) in [("ca.crt", "groundwork-admin.crt"), ("etcd/ca.crt", "etcd/m1/server.crt")] {
        let out = openssl_text(&["verify", "-CAfile", ca, leaf], &dir);
        assert_eq!(out.trim(), format!("{leaf}: OK"));
    }
}

#[test]
fn leaf_close_to_expiry_is_renewed_but_not_the_cas() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let now = time::OffsetDateTime::now_utc();
    ClusterPki::load_or_create_at(&dir, &spec2(), now).unwrap();
    let (_, created) = ClusterPki::load_or_create_at(&dir, &spec2(), now + time::Duration::days(300)).unwrap();
    assert!(created.is_empty(), "{created:?}");
    let (_, created) = ClusterPki::load_or_create_at(&dir, &spec2(), now + time::Duration::days(340)).unwrap();
    assert_eq!(created.len(), 7, "{created:?}");
    assert!(created.iter().all(|c| c.contains("(replaced: expires")), "{created:?}");
    assert!(!created.iter().any(|c| c.contains("ca.")), "{created:?}");
}

#[test]
fn ca_certificate_without_its_key_is_an_error_not_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    ClusterPki::load_or_create(&dir, &spec2()).unwrap();
    let key = std::fs::read(dir.join("ca.key")).unwrap();
    std::fs::remove_file(dir.join("ca.key")).unwrap();
    let ca = std::fs::read(dir.join("ca.crt")).unwrap();
    let err = ClusterPki::load_or_create(&dir, &spec2()).unwrap_err();
    assert!(matches!(err, PkiError::Incomplete { .. }), "{err}");
    assert!(err.to_string().contains("ca.crt is present without"), "{err}");
    assert_eq!(std::fs::read(dir.join("ca.crt")).unwrap(), ca);
    std::fs::write(dir.join("ca.key"), key).unwrap();

    // A key that is not the CA's.
    std::fs::copy(dir.join("ca.key"), dir.join("etcd/ca.key")).unwrap();
    let err = ClusterPki::load_or_create(&dir, &spec2()).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");

    // sa.pub without sa.key.
    let tmp2 = tempfile::tempdir().unwrap();
    ClusterPki::load_or_create(tmp2.path(), &PkiSpec::default()).unwrap();
    std::fs::remove_file(tmp2.path().join("sa.key")).unwrap();
    let err = ClusterPki::load_or_create(tmp2.path(), &PkiSpec::default()).unwrap_err();
    assert!(matches!(err, PkiError::Incomplete { .. }), "{err}");
}

#[test]
fn ca_key_without_certificate_gets_a_certificate_for_that_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    ClusterPki::load_or_create(&dir, &spec2()).unwrap();
    let key = std::fs::read(dir.join("front-proxy-ca.key")).unwrap();
    std::fs::remove_file(dir.join("front-proxy-ca.crt")).unwrap();
    let (_, created) = ClusterPki::load_or_create(&dir, &spec2()).unwrap();
    assert_eq!(created, vec!["front-proxy-ca.crt (CA \"front-proxy-ca\", for the existing front-proxy-ca.key)"]);
    assert_eq!(std::fs::read(dir.join("front-proxy-ca.key")).unwrap(), key);
    let (_, created) = ClusterPki::load_or_create(&dir, &spec2()).unwrap();
    assert!(created.is_empty(), "{created:?}");
}

#[test]
fn bad_member_names_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["", "M1", "m_1", "../x", "a/b", "ca.crt", "-m"] {
        let spec = PkiSpec { etcd_members: vec![(name.into(), ip("10.0.0.1"))], ..Default::default() };
        let err = ClusterPki::load_or_create(tmp.path(), &spec).unwrap_err();
        assert!(matches!(err, PkiError::Member { .. }), "{name}: {err}");
    }
    let spec = PkiSpec {
        etcd_members: vec![("m1".into(), ip("10.0.0.1")), ("m1".into(), ip("10.0.0.2"))],
        ..Default::default()
    };
    assert!(ClusterPki::load_or_create(tmp.path(), &spec).is_err());
}

#[test]
fn files_for_nodes_match_disk_with_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let (pki, _) = ClusterPki::load_or_create(&dir, &spec2()).unwrap();
    let check = |files: Vec<PkiFile>, want: &[(&str, &str)]| {
        let got: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        let want_paths: Vec<&str> = want.iter().map(|(p, _)| *p).collect();
        assert_eq!(got, want_paths);
        for (f, (_, src)) in files.iter().zip(want) {
            assert_eq!(f.content, std::fs::read(dir.join(src)).unwrap(), "{}", f.path);
            assert_eq!(f.mode, if f.path.ends_with(".key") { 0o600 } else { 0o644 }, "{}", f.path);
            assert!(!format!("{f:?}").contains("PRIVATE"), "{f:?}");
        }
    };
    check(
        pki.files_for_master("m1"),
        &[
            ("ca.crt", "ca.crt"),
            ("ca.key", "ca.key"),
            ("front-proxy-ca.crt", "front-proxy-ca.crt"),
            ("front-proxy-ca.key", "front-proxy-ca.key"),
            ("sa.key", "sa.key"),
            ("sa.pub", "sa.pub"),
            ("etcd/ca.crt", "etcd/ca.crt"),
            ("apiserver-etcd-client.crt", "apiserver-etcd-client.crt"),
            ("apiserver-etcd-client.key", "apiserver-etcd-client.key"),
        ],
    );
    check(
        pki.files_for_etcd_member("m2"),
        &[
            ("etcd/ca.crt", "etcd/ca.crt"),
            ("etcd/server.crt", "etcd/m2/server.crt"),
            ("etcd/server.key", "etcd/m2/server.key"),
            ("etcd/peer.crt", "etcd/m2/peer.crt"),
            ("etcd/peer.key", "etcd/m2/peer.key"),
        ],
    );
    check(pki.files_for_worker(), &[("ca.crt", "ca.crt")]);
    check(vec![pki.etcd_ca_key_file().unwrap()], &[("etcd/ca.key", "etcd/ca.key")]);
    assert!(pki.files_for_etcd_member("m9").is_empty());
}

#[test]
fn debug_output_never_shows_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let (pki, _) = ClusterPki::load_or_create(tmp.path(), &spec2()).unwrap();
    let debug = format!("{pki:?}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
    for f in ["ca.key", "sa.key", "etcd/ca.key", "groundwork-admin.key", "etcd/m1/server.key"] {
        let pem = std::fs::read_to_string(tmp.path().join(f)).unwrap();
        let body = pem.lines().nth(1).unwrap();
        assert!(!debug.contains(body), "{f} leaked");
    }
    assert!(debug.contains("<redacted>"));
}

#[test]
fn discovery_hash_equals_openssls() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let (pki, _) = ClusterPki::load_or_create(&dir, &PkiSpec::default()).unwrap();
    // openssl x509 -pubkey -in ca.crt | openssl pkey -pubin -outform der | sha256sum
    let pubkey = openssl(&["x509", "-pubkey", "-noout", "-in", "ca.crt"], &dir, None);
    let der = openssl(&["pkey", "-pubin", "-outform", "der"], &dir, Some(&pubkey));
    let digest = openssl(&["dgst", "-sha256", "-r"], &dir, Some(&der));
    let hex = String::from_utf8(digest).unwrap().split_whitespace().next().unwrap().to_string();
    assert_eq!(hex.len(), 64);
    assert_eq!(pki.discovery_hash(), format!("sha256:{hex}"));
    assert_eq!(discovery_hash(pki.ca_cert_pem()).unwrap(), format!("sha256:{hex}"));
    assert!(discovery_hash("not a pem").is_err());
}

fn is_token(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 23
        && b[6] == b'.'
        && b.iter().enumerate().all(|(i, c)| i == 6 || c.is_ascii_lowercase() || c.is_ascii_digit())
}

#[test]
fn token_format_randomness_and_redaction() {
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let t = BootstrapToken::generate().unwrap();
        let secret = t.expose_secret().to_string();
        assert!(is_token(&secret), "{secret}");
        assert_eq!(t.id(), &secret[..6]);
        assert_eq!(t.to_string(), format!("{}.****", t.id()));
        let debug = format!("{t:?}");
        assert!(!debug.contains(&secret[7..]), "{debug}");
        assert!(seen.insert(secret));
    }
    assert!("abcdef.0123456789abcdef".parse::<BootstrapToken>().is_ok());
    for bad in
        ["abcdef.0123456789abcde", "ABCDEF.0123456789abcdef", "abcdef0123456789abcdef", "abcde.0123456789abcdefg"]
    {
        let err = bad.parse::<BootstrapToken>().unwrap_err();
        assert!(!err.to_string().contains(bad), "{err}");
    }
}

#[test]
fn token_is_saved_0600_and_reused_while_young() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let now = SystemTime::now();
    let (t1, created) = BootstrapToken::load_or_create_at(&dir, now).unwrap();
    assert!(created);
    let file: PathBuf = dir.join("bootstrap-token");
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&dir), 0o700);
    let (t2, created) = BootstrapToken::load_or_create_at(&dir, now + Duration::from_secs(19 * 3600)).unwrap();
    assert!(!created);
    assert_eq!(t2.expose_secret(), t1.expose_secret());
    assert_eq!(t2.expires_at(), t1.expires_at());
    let (t3, created) = BootstrapToken::load_or_create_at(&dir, now + Duration::from_secs(21 * 3600)).unwrap();
    assert!(created);
    assert_ne!(t3.expose_secret(), t1.expose_secret());
    let (t4, created) = BootstrapToken::load_or_create(&dir).unwrap();
    // t3 was "made" 21h from now: in the future beyond clock skew, so not trusted.
    assert!(created);
    assert_ne!(t4.expose_secret(), t3.expose_secret());
    let (t5, created) = BootstrapToken::load_or_create(&dir).unwrap();
    assert!(!created);
    assert_eq!(t5.expose_secret(), t4.expose_secret());

    std::fs::write(&file, "garbage").unwrap();
    let (t6, created) = BootstrapToken::load_or_create(&dir).unwrap();
    assert!(created && is_token(t6.expose_secret()));
}

#[test]
fn admin_kubeconfig_embeds_the_pems() {
    use base64::Engine;
    let tmp = tempfile::tempdir().unwrap();
    let (pki, _) = ClusterPki::load_or_create(tmp.path(), &PkiSpec::default()).unwrap();
    let text = pki.admin_kubeconfig("lab", "https://10.0.0.10:6443").unwrap();
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let decode = |v: &serde_yaml_ng::Value| {
        let b = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
        String::from_utf8(b).unwrap()
    };
    assert_eq!(v["apiVersion"].as_str(), Some("v1"));
    assert_eq!(v["kind"].as_str(), Some("Config"));
    assert_eq!(v["current-context"].as_str(), Some("groundwork-admin@lab"));
    assert_eq!(v["clusters"][0]["name"].as_str(), Some("lab"));
    assert_eq!(v["clusters"][0]["cluster"]["server"].as_str(), Some("https://10.0.0.10:6443"));
    assert_eq!(decode(&v["clusters"][0]["cluster"]["certificate-authority-data"]), pki.ca_cert_pem());
    assert_eq!(v["users"][0]["name"].as_str(), Some("groundwork-admin"));
    assert_eq!(decode(&v["users"][0]["user"]["client-certificate-data"]), pki.admin().cert_pem());
    assert_eq!(decode(&v["users"][0]["user"]["client-key-data"]), pki.admin().key().expose_secret());
    assert_eq!(v["contexts"][0]["name"].as_str(), Some("groundwork-admin@lab"));
    assert_eq!(v["contexts"][0]["context"]["cluster"].as_str(), Some("lab"));
    assert_eq!(v["contexts"][0]["context"]["user"].as_str(), Some("groundwork-admin"));
}

/// A state adopted from the masters of an external etcd holds the etcd CA's certificate, not its
/// key: what exists is loaded and checked, and what would have to be made is a clear error.
#[test]
fn an_etcd_ca_without_its_key_checks_its_certificates_and_makes_none() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let (made, _) = ClusterPki::load_or_create(&dir, &spec2()).unwrap();
    std::fs::remove_file(dir.join("etcd/ca.key")).unwrap();
    std::fs::remove_file(dir.join("etcd/healthcheck-client.crt")).unwrap();
    std::fs::remove_file(dir.join("etcd/healthcheck-client.key")).unwrap();
    let (pki, created) = ClusterPki::load_or_create(&dir, &spec2()).unwrap();
    assert!(created.is_empty(), "{created:?}");
    assert!(pki.etcd_ca_key_file().is_none());
    assert!(pki.etcd_healthcheck_client().is_none());
    assert_eq!(pki.files_for_etcd_member("m1"), made.files_for_etcd_member("m1"));
    assert_eq!(pki.files_for_master("m1"), made.files_for_master("m1"));

    // A new member's certificates cannot be made without the key.
    let mut three = spec2();
    three.etcd_members.push(("m3".into(), ip("10.0.0.3")));
    let err = ClusterPki::load_or_create(&dir, &three).unwrap_err();
    assert!(matches!(err, PkiError::NoCaKey { .. }), "{err}");
    assert!(err.to_string().contains("etcd/m3/server.crt must be made"), "{err}");
    assert!(!dir.join("etcd/m3/server.crt").exists());
}
