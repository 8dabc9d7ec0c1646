//! Leaf certificates (checked against their spec, replaced when they drift) and helpers shared
//! with the CAs: PEM parsing, serial numbers, the discovery hash.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PublicKeyData, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::ca::{BACKDATE, Signer};
use super::store::{self, CERT_MODE, KEY_MODE};
use super::{CertAndKey, KeyPem, PkiError};

/// kubeadm's leaf certificate lifetime.
pub const LEAF_VALIDITY: Duration = Duration::days(365);
/// A leaf that expires sooner than this is renewed.
pub const RENEW_BEFORE: Duration = Duration::days(30);

/// What a leaf certificate must be. `base` is its path without extension (`etcd/m1/server`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpec {
    pub base: String,
    pub cn: String,
    pub orgs: BTreeSet<String>,
    pub dns: BTreeSet<String>,
    pub ips: BTreeSet<IpAddr>,
    pub server_auth: bool,
    pub client_auth: bool,
}

impl LeafSpec {
    pub fn client(base: &str, cn: &str, orgs: &[&str]) -> Self {
        LeafSpec {
            base: base.into(),
            cn: cn.into(),
            orgs: orgs.iter().map(|o| o.to_string()).collect(),
            dns: BTreeSet::new(),
            ips: BTreeSet::new(),
            server_auth: false,
            client_auth: true,
        }
    }

    pub fn server(base: &str, cn: &str, dns: &[String], ips: &[IpAddr]) -> Self {
        LeafSpec { client_auth: false, ..Self::server_and_client(base, cn, dns, ips) }
    }

    pub fn server_and_client(base: &str, cn: &str, dns: &[String], ips: &[IpAddr]) -> Self {
        LeafSpec {
            base: base.into(),
            cn: cn.into(),
            orgs: BTreeSet::new(),
            dns: dns.iter().cloned().collect(),
            ips: ips.iter().copied().collect(),
            server_auth: true,
            client_auth: true,
        }
    }
}

/// Loads the leaf `spec.base`.{crt,key} signed by `ca`, or (re)makes it; what was made, and why
/// if it replaced something, is pushed on `created`.
pub fn ensure(
    dir: &Path,
    spec: &LeafSpec,
    ca: Signer<'_>,
    now: OffsetDateTime,
    created: &mut Vec<String>,
) -> Result<CertAndKey, PkiError> {
    let (crt_rel, key_rel) = (format!("{}.crt", spec.base), format!("{}.key", spec.base));
    let (crt_path, key_path) = (dir.join(&crt_rel), dir.join(&key_rel));
    let cert = store::read_text_opt(&crt_path)?;
    let key = store::read_text_opt(&key_path)?;
    let why = match (cert, key) {
        (Some(cert_pem), Some(key_pem)) => match check(&cert_pem, &key_pem, spec, ca.der(), now) {
            Ok(()) => return Ok(CertAndKey { cert_pem, key: KeyPem(key_pem) }),
            Err(why) => Some(why),
        },
        (None, None) => None,
        (Some(_), None) => Some(format!("{key_rel} was missing")),
        (None, Some(_)) => Some(format!("{crt_rel} was missing")),
    };
    let Some(issuer) = ca.issuer() else {
        return Err(PkiError::NoCaKey { leaf: crt_rel, why: why.unwrap_or_else(|| "it is missing".into()) });
    };
    let made = generate(spec, issuer, now, LEAF_VALIDITY)?;
    store::write_atomic(&key_path, made.key.expose_secret().as_bytes(), KEY_MODE)?;
    store::write_atomic(&crt_path, made.cert_pem.as_bytes(), CERT_MODE)?;
    created.push(match why {
        None => format!("{crt_rel} + {key_rel}"),
        Some(why) => format!("{crt_rel} + {key_rel} (replaced: {why})"),
    });
    Ok(made)
}

pub fn generate(
    spec: &LeafSpec,
    issuer: &Issuer<'static, KeyPair>,
    now: OffsetDateTime,
    validity: Duration,
) -> Result<CertAndKey, PkiError> {
    let what = || format!("{}.crt", spec.base);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::crypto(what()))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for o in &spec.orgs {
        dn.push(DnType::OrganizationName, o.as_str());
    }
    dn.push(DnType::CommonName, spec.cn.as_str());
    params.distinguished_name = dn;
    let mut sans = Vec::new();
    for d in &spec.dns {
        let name = d.clone().try_into().map_err(PkiError::crypto(what()))?;
        sans.push(SanType::DnsName(name));
    }
    sans.extend(spec.ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if spec.server_auth {
        params.extended_key_usages.push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    if spec.client_auth {
        params.extended_key_usages.push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    params.not_before = now - BACKDATE;
    params.not_after = now + validity;
    params.serial_number = Some(random_serial()?);
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, issuer).map_err(PkiError::crypto(what()))?;
    Ok(CertAndKey { cert_pem: cert.pem(), key: KeyPem(key.serialize_pem()) })
}

/// Why the existing leaf cannot be kept, if it cannot.
fn check(cert_pem: &str, key_pem: &str, spec: &LeafSpec, ca_der: &[u8], now: OffsetDateTime) -> Result<(), String> {
    let der = parse_pem(cert_pem, "CERTIFICATE")?;
    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| format!("unreadable certificate: {e}"))?;
    let key = KeyPair::from_pem(key_pem).map_err(|e| format!("unreadable key: {e}"))?;
    if key.subject_public_key_info() != cert.public_key().raw {
        return Err("the key does not match the certificate".into());
    }
    let (_, ca_cert) = X509Certificate::from_der(ca_der).map_err(|e| format!("unreadable CA certificate: {e}"))?;
    if cert.issuer().as_raw() != ca_cert.subject().as_raw()
        || cert.verify_signature(Some(ca_cert.public_key())).is_err()
    {
        return Err("not signed by the current CA".into());
    }

    let cn: Vec<&str> = cert.subject().iter_common_name().filter_map(|a| a.as_str().ok()).collect();
    if cn != [spec.cn.as_str()] {
        return Err(format!("common name is {cn:?}, want {:?}", spec.cn));
    }
    let orgs: BTreeSet<String> =
        cert.subject().iter_organization().filter_map(|a| a.as_str().ok()).map(String::from).collect();
    if orgs != spec.orgs {
        return Err(format!("organizations are {orgs:?}, want {:?}", spec.orgs));
    }

    let eku = cert.extended_key_usage().map_err(|e| format!("unreadable extended key usage: {e}"))?;
    let (server, client) = eku.map(|e| (e.value.server_auth, e.value.client_auth)).unwrap_or((false, false));
    if (server, client) != (spec.server_auth, spec.client_auth) {
        return Err(format!(
            "usages are serverAuth={server} clientAuth={client}, want serverAuth={} clientAuth={}",
            spec.server_auth, spec.client_auth
        ));
    }

    let mut dns = BTreeSet::new();
    let mut ips = BTreeSet::new();
    let san = cert.subject_alternative_name().map_err(|e| format!("unreadable subject alternative names: {e}"))?;
    for name in san.iter().flat_map(|s| s.value.general_names.iter()) {
        match name {
            GeneralName::DNSName(d) => {
                dns.insert(d.to_ascii_lowercase());
            }
            GeneralName::IPAddress(b) => {
                let ip = match b.len() {
                    4 => IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])),
                    16 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(b);
                        IpAddr::V6(Ipv6Addr::from(a))
                    }
                    _ => return Err("malformed IP address SAN".into()),
                };
                ips.insert(ip);
            }
            other => return Err(format!("unexpected SAN {other:?}")),
        }
    }
    if dns != spec.dns || ips != spec.ips {
        return Err(format!("SANs are {}, want {}", describe_sans(&dns, &ips), describe_sans(&spec.dns, &spec.ips)));
    }

    let not_after = cert.validity().not_after.timestamp();
    if not_after - now.unix_timestamp() < RENEW_BEFORE.whole_seconds() {
        let when = cert.validity().not_after.to_rfc2822().unwrap_or_else(|_| not_after.to_string());
        return Err(format!("expires {when}"));
    }
    Ok(())
}

fn describe_sans(dns: &BTreeSet<String>, ips: &BTreeSet<IpAddr>) -> String {
    let all: Vec<String> = dns.iter().cloned().chain(ips.iter().map(IpAddr::to_string)).collect();
    format!("[{}]", all.join(", "))
}

/// The DER inside the first PEM block, which must be labelled `label`.
pub fn parse_pem(pem: &str, label: &str) -> Result<Vec<u8>, String> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| format!("not PEM: {e}"))?;
    if p.label != label {
        return Err(format!("PEM block is \"{}\", want \"{label}\"", p.label));
    }
    Ok(p.contents)
}

/// A random positive 127-bit serial number (RFC 5280 allows up to 20 octets).
pub fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes).map_err(|_| PkiError::Random)?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x40; // no leading zero octet, so the DER encoding keeps all 16 bytes
    Ok(SerialNumber::from_slice(&bytes))
}

/// `sha256:<hex>` of the DER SubjectPublicKeyInfo of the CA certificate in `ca_cert_pem`: the
/// value of `kubeadm join --discovery-token-ca-cert-hash`.
pub fn discovery_hash(ca_cert_pem: &str) -> Result<String, PkiError> {
    let der = parse_pem(ca_cert_pem, "CERTIFICATE").map_err(|r| PkiError::invalid("CA certificate", r))?;
    let (_, cert) = X509Certificate::from_der(&der)
        .map_err(|e| PkiError::invalid("CA certificate", format!("not an X.509 certificate: {e}")))?;
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(cert.public_key().raw))))
}
