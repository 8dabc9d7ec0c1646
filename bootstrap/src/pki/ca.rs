//! The certificate authorities and the service-account key pair: created once, never replaced.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PublicKeyData,
};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::certs::{parse_pem, random_serial};
use super::store::{self, CERT_MODE, KEY_MODE};
use super::{CertAndKey, KeyPem, PkiError};

/// kubeadm's CA lifetime.
pub const CA_VALIDITY: Duration = Duration::days(3650);
/// Certificates are valid from a little before "now", for hosts whose clocks lag the controller's.
pub const BACKDATE: Duration = Duration::minutes(5);

/// A CA, loaded or made: its PEMs, its certificate's DER and what signs leaves.
pub struct Ca {
    pub pem: CertAndKey,
    pub der: Vec<u8>,
    pub issuer: Issuer<'static, KeyPair>,
}

/// A CA whose key this PKI does not hold: leaves it signed can be checked, not made.
pub struct CaCert {
    pub cert_pem: String,
    pub der: Vec<u8>,
}

/// What a leaf is checked against and, when the key is held, signed with.
#[derive(Clone, Copy)]
pub enum Signer<'a> {
    Key(&'a Ca),
    CertOnly(&'a CaCert),
}

impl Signer<'_> {
    pub fn der(&self) -> &[u8] {
        match self {
            Signer::Key(ca) => &ca.der,
            Signer::CertOnly(ca) => &ca.der,
        }
    }
    pub fn issuer(&self) -> Option<&Issuer<'static, KeyPair>> {
        match self {
            Signer::Key(ca) => Some(&ca.issuer),
            Signer::CertOnly(_) => None,
        }
    }
}

/// Loads `BASE.crt` alone (its key is absent): a CA certificate that must be valid and a CA.
pub fn load_cert_only(dir: &Path, base: &str, now: OffsetDateTime) -> Result<CaCert, PkiError> {
    let crt_path = dir.join(format!("{base}.crt"));
    let cert_pem = store::read_text_opt(&crt_path)?.ok_or_else(|| PkiError::invalid(crt_path.display(), "missing"))?;
    let der = parse_pem(&cert_pem, "CERTIFICATE").map_err(|r| PkiError::invalid(crt_path.display(), r))?;
    let (_, x509) = X509Certificate::from_der(&der)
        .map_err(|e| PkiError::invalid(crt_path.display(), format!("not an X.509 certificate: {e}")))?;
    if !x509.is_ca() {
        return Err(PkiError::invalid(crt_path.display(), "not a CA certificate"));
    }
    if x509.validity().not_after.timestamp() <= now.unix_timestamp() {
        return Err(PkiError::invalid(crt_path.display(), "the CA has expired"));
    }
    Ok(CaCert { cert_pem, der })
}

/// Loads `BASE.crt` + `BASE.key` from `dir`, or makes a self-signed CA with common name `cn`.
pub fn load_or_create(
    dir: &Path,
    base: &str,
    cn: &str,
    now: OffsetDateTime,
    created: &mut Vec<String>,
) -> Result<Ca, PkiError> {
    let (crt_rel, key_rel) = (format!("{base}.crt"), format!("{base}.key"));
    let (crt_path, key_path) = (dir.join(&crt_rel), dir.join(&key_rel));
    let cert = store::read_text_opt(&crt_path)?;
    let key = store::read_text_opt(&key_path)?;
    match (cert, key) {
        (Some(cert_pem), Some(key_pem)) => load(&crt_path, &key_path, cert_pem, key_pem, now),
        (Some(_), None) => Err(PkiError::Incomplete { have: crt_path, missing: key_path }),
        (None, key_pem) => {
            // A key without its certificate: a run stopped between the two writes. Nothing can
            // have been signed by it yet, so a certificate for that key is made.
            let existing = key_pem.is_some();
            let key = match key_pem {
                Some(pem) => KeyPair::from_pem(&pem)
                    .map_err(|e| PkiError::invalid(key_path.display(), format!("not a usable private key: {e}")))?,
                None => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::crypto(key_rel.clone()))?,
            };
            let params = ca_params(cn, now)?;
            let cert = params.self_signed(&key).map_err(PkiError::crypto(crt_rel.clone()))?;
            let key_pem = KeyPem(key.serialize_pem());
            if !existing {
                // Key first: a crash between the two writes leaves a state the branch above repairs.
                store::write_atomic(&key_path, key_pem.expose_secret().as_bytes(), KEY_MODE)?;
            }
            store::write_atomic(&crt_path, cert.pem().as_bytes(), CERT_MODE)?;
            created.push(if existing {
                format!("{crt_rel} (CA \"{cn}\", for the existing {key_rel})")
            } else {
                format!("{crt_rel} + {key_rel} (CA \"{cn}\")")
            });
            let der = cert.der().to_vec();
            let issuer = Issuer::new(params, key);
            Ok(Ca { pem: CertAndKey { cert_pem: cert.pem(), key: key_pem }, der, issuer })
        }
    }
}

fn ca_params(cn: &str, now: OffsetDateTime) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_VALIDITY;
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

fn load(
    crt_path: &Path,
    key_path: &Path,
    cert_pem: String,
    key_pem: String,
    now: OffsetDateTime,
) -> Result<Ca, PkiError> {
    let der = parse_pem(&cert_pem, "CERTIFICATE").map_err(|r| PkiError::invalid(crt_path.display(), r))?;
    let (_, x509) = X509Certificate::from_der(&der)
        .map_err(|e| PkiError::invalid(crt_path.display(), format!("not an X.509 certificate: {e}")))?;
    // rcgen reads the subject back to sign with it, and supports one attribute per RDN only.
    if x509.subject().iter().any(|rdn| rdn.iter().count() != 1) {
        return Err(PkiError::invalid(crt_path.display(), "subject has multi-valued or empty name components"));
    }
    if !x509.is_ca() {
        return Err(PkiError::invalid(crt_path.display(), "not a CA certificate"));
    }
    let key = KeyPair::from_pem(&key_pem)
        .map_err(|e| PkiError::invalid(key_path.display(), format!("not a usable private key: {e}")))?;
    if key.subject_public_key_info() != x509.public_key().raw {
        return Err(PkiError::invalid(key_path.display(), format!("does not match {}", crt_path.display())));
    }
    let not_after = x509.validity().not_after.timestamp();
    if not_after <= now.unix_timestamp() {
        return Err(PkiError::invalid(
            crt_path.display(),
            "the CA has expired; rotating a CA is not automated: see kubeadm's manual CA rotation",
        ));
    }
    if not_after - now.unix_timestamp() < Duration::days(365).whole_seconds() {
        tracing::warn!("pki: {} expires in less than a year; CA rotation is not automated", crt_path.display());
    }
    let issuer = Issuer::from_ca_cert_der(&der.as_slice().into(), key)
        .map_err(|e| PkiError::invalid(crt_path.display(), format!("cannot sign with this CA: {e}")))?;
    Ok(Ca { pem: CertAndKey { cert_pem, key: KeyPem(key_pem) }, der, issuer })
}

/// Loads or makes `sa.key` (private, PKCS#8 PEM) and `sa.pub` (public key PEM).
pub fn load_or_create_sa(dir: &Path, created: &mut Vec<String>) -> Result<(KeyPem, String), PkiError> {
    use super::paths::{SA_KEY, SA_PUB};
    let (key_path, pub_path) = (dir.join(SA_KEY), dir.join(SA_PUB));
    let key_pem = store::read_text_opt(&key_path)?;
    let pub_pem = store::read_text_opt(&pub_path)?;
    match (key_pem, pub_pem) {
        (Some(key_pem), pub_pem) => {
            let key = KeyPair::from_pem(&key_pem)
                .map_err(|e| PkiError::invalid(key_path.display(), format!("not a usable private key: {e}")))?;
            let pub_pem = match pub_pem {
                Some(p) => {
                    let der = parse_pem(&p, "PUBLIC KEY").map_err(|r| PkiError::invalid(pub_path.display(), r))?;
                    if der != key.subject_public_key_info() {
                        return Err(PkiError::invalid(pub_path.display(), format!("does not match {SA_KEY}")));
                    }
                    p
                }
                None => {
                    let p = key.public_key_pem();
                    store::write_atomic(&pub_path, p.as_bytes(), CERT_MODE)?;
                    created.push(format!("{SA_PUB} (from the existing {SA_KEY})"));
                    p
                }
            };
            Ok((KeyPem(key_pem), pub_pem))
        }
        (None, Some(_)) => Err(PkiError::Incomplete { have: pub_path, missing: key_path }),
        (None, None) => {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::crypto(SA_KEY))?;
            let key_pem = KeyPem(key.serialize_pem());
            let pub_pem = key.public_key_pem();
            store::write_atomic(&key_path, key_pem.expose_secret().as_bytes(), KEY_MODE)?;
            store::write_atomic(&pub_path, pub_pem.as_bytes(), CERT_MODE)?;
            created.push(format!("{SA_KEY} + {SA_PUB} (service-account signing key)"));
            Ok((key_pem, pub_pem))
        }
    }
}
