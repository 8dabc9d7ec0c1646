//! The bundle's signing key as apt needs it: an OpenPGP v4 public key (EdDSA on Ed25519, the
//! "EdDSALegacy" form that GnuPG 2.2, Debian 12's gpgv, reads) and detached signatures of an apt
//! repository's `Release` file, both made from the same Ed25519 key that signs the bundle's
//! `SHA256SUMS` (see `signature`). One key pinned in the inventory then vouches for the bundle and
//! for the packages apt installs from it, and apt verifies them itself (`signed-by=`), with no
//! `trusted=yes`.
//!
//! Written here rather than with an OpenPGP crate: apt needs one key type, one user id and one
//! signature type, about a hundred lines of RFC 4880 packet framing, where a full implementation
//! (rPGP, Sequoia) brings RSA, ECC, encryption, compression and armour parsing into the
//! controller for nothing it would use. The unit tests check the output with GnuPG's own `gpgv`.

use ed25519_dalek::{Signer, SigningKey};

/// The public-key algorithm id of EdDSA (RFC 4880bis; "EdDSALegacy" in RFC 9580).
const EDDSA: u8 = 22;
/// SHA2-256's hash algorithm id.
const SHA256: u8 = 8;
/// The curve OID of Ed25519 (1.3.6.1.4.1.11591.15.1), DER body only.
const ED25519_OID: [u8; 9] = [0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01];
/// The OpenPGP key's creation time, fixed: the fingerprint covers it, so the same Ed25519 key
/// always gives the same OpenPGP key (2024-01-01T00:00:00Z).
const KEY_CREATED: u32 = 1_704_067_200;

/// Signature types (RFC 4880 5.2.1).
const BINARY_DOCUMENT: u8 = 0x00;
const POSITIVE_CERTIFICATION: u8 = 0x13;

/// An Ed25519 key in OpenPGP's framing.
pub struct OpenPgpKey {
    signing: SigningKey,
    user_id: String,
}

impl OpenPgpKey {
    /// From the key's 32-byte Ed25519 seed; `user_id` names it in the keyring (e.g. the minisign
    /// key id, so an operator sees which bundle key it is).
    pub fn from_seed(seed: &[u8; 32], user_id: &str) -> OpenPgpKey {
        OpenPgpKey { signing: SigningKey::from_bytes(seed), user_id: user_id.to_string() }
    }

    /// The raw Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The v4 fingerprint, in upper-case hex (as `gpg --list-keys` and apt's `Signed-By` write it).
    pub fn fingerprint(&self) -> String {
        hex::encode_upper(self.fingerprint_bytes())
    }

    /// A keyring holding the public key, its user id and the self-signature binding them: what
    /// apt's `signed-by=` file takes (binary, `.gpg`).
    pub fn public_keyring(&self, now: u32) -> Vec<u8> {
        let body = self.public_body();
        let user_id = self.user_id.as_bytes();
        let mut certified = public_key_hash_prefix(&body);
        certified.push(0xB4);
        certified.extend_from_slice(&(user_id.len() as u32).to_be_bytes());
        certified.extend_from_slice(user_id);
        let mut out = packet(6, &body);
        out.extend(packet(13, user_id));
        out.extend(self.signature(POSITIVE_CERTIFICATION, &certified, now.max(KEY_CREATED)));
        out
    }

    /// A detached signature of `data` (binary document), ASCII-armoured: apt takes only an
    /// armoured `Release.gpg` (a binary one is "NODATA" to it, though gpgv itself reads both).
    pub fn sign_detached(&self, data: &[u8], now: u32) -> Vec<u8> {
        armor("SIGNATURE", &self.signature(BINARY_DOCUMENT, data, now.max(KEY_CREATED))).into_bytes()
    }

    fn public_body(&self) -> Vec<u8> {
        let mut body = vec![4];
        body.extend_from_slice(&KEY_CREATED.to_be_bytes());
        body.push(EDDSA);
        body.push(ED25519_OID.len() as u8);
        body.extend_from_slice(&ED25519_OID);
        // The point in its native form, prefixed 0x40, as one MPI.
        let mut point = vec![0x40];
        point.extend_from_slice(self.signing.verifying_key().as_bytes());
        body.extend(mpi(&point));
        body
    }

    fn fingerprint_bytes(&self) -> Vec<u8> {
        let digest =
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &public_key_hash_prefix(&self.public_body()));
        digest.as_ref().to_vec()
    }

    /// A v4 signature packet of `sig_type` over `hashed_data` (RFC 4880 5.2.3, 5.2.4).
    fn signature(&self, sig_type: u8, hashed_data: &[u8], created: u32) -> Vec<u8> {
        let fingerprint = self.fingerprint_bytes();
        let mut subpackets = subpacket(2, &created.to_be_bytes());
        let mut issuer_fingerprint = vec![4];
        issuer_fingerprint.extend_from_slice(&fingerprint);
        subpackets.extend(subpacket(33, &issuer_fingerprint));
        if sig_type == POSITIVE_CERTIFICATION {
            // Key flags: certify and sign.
            subpackets.extend(subpacket(27, &[0x03]));
        }
        let mut hashed = vec![4, sig_type, EDDSA, SHA256];
        hashed.extend_from_slice(&(subpackets.len() as u16).to_be_bytes());
        hashed.extend(subpackets);

        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(hashed_data);
        context.update(&hashed);
        context.update(&[4, 0xFF]);
        context.update(&(hashed.len() as u32).to_be_bytes());
        let digest = context.finish();
        // EdDSA in OpenPGP signs the digest itself.
        let signature = self.signing.sign(digest.as_ref()).to_bytes();

        let issuer = subpacket(16, &fingerprint[12..20]);
        let mut body = hashed;
        body.extend_from_slice(&(issuer.len() as u16).to_be_bytes());
        body.extend(issuer);
        body.extend_from_slice(&digest.as_ref()[..2]);
        body.extend(mpi(&signature[..32]));
        body.extend(mpi(&signature[32..]));
        packet(2, &body)
    }
}

/// ASCII armour (RFC 4880 6.2): base64 in lines of 64, and the CRC-24 of the data.
fn armor(kind: &str, data: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = b64.encode(data);
    let lines: Vec<&str> =
        body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64 is ASCII")).collect();
    let crc = crc24(data).to_be_bytes();
    format!(
        "-----BEGIN PGP {kind}-----\n\n{}\n={}\n-----END PGP {kind}-----\n",
        lines.join("\n"),
        b64.encode(&crc[1..])
    )
}

/// The CRC-24 of RFC 4880 6.1.
fn crc24(data: &[u8]) -> u32 {
    let mut crc: u32 = 0xB7_04CE;
    for &byte in data {
        crc ^= u32::from(byte) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x100_0000 != 0 {
                crc ^= 0x186_4CFB;
            }
        }
    }
    crc & 0xFF_FFFF
}

/// What a v4 key is hashed as, for its fingerprint and for signatures over it.
fn public_key_hash_prefix(body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x99];
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A packet with a new-format header (RFC 4880 4.2.2).
fn packet(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0xC0 | tag];
    let n = body.len();
    if n < 192 {
        out.push(n as u8);
    } else if n < 8384 {
        let m = n - 192;
        out.push(((m >> 8) + 192) as u8);
        out.push((m & 0xFF) as u8);
    } else {
        out.push(0xFF);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(body);
    out
}

/// A signature subpacket (all of ours are shorter than 192 bytes).
fn subpacket(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut out = vec![(data.len() + 1) as u8, kind];
    out.extend_from_slice(data);
    out
}

/// A multiprecision integer: its bit count, then its bytes without leading zeros.
fn mpi(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let bytes = &bytes[start..];
    let bits = match bytes.first() {
        Some(first) => (bytes.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
        None => 0,
    };
    let mut out = (bits as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u8; 32] = [7; 32];
    const NOW: u32 = 1_780_000_000;

    #[test]
    fn mpis_and_packet_lengths_follow_rfc_4880() {
        assert_eq!(mpi(&[0x00, 0x01]), vec![0, 1, 1]);
        assert_eq!(mpi(&[0x40, 0xFF]), vec![0, 15, 0x40, 0xFF]);
        assert_eq!(mpi(&[0, 0]), vec![0, 0]);
        assert_eq!(packet(2, &[0; 191])[..2], [0xC2, 191]);
        assert_eq!(packet(2, &[0; 192])[..3], [0xC2, 192, 0]);
        assert_eq!(packet(2, &[0; 8383])[..3], [0xC2, 223, 255]);
        assert_eq!(packet(2, &[0; 8384])[..6], [0xC2, 0xFF, 0, 0, 0x20, 0xC0]);
    }

    #[test]
    fn armour_carries_the_crc_24_of_rfc_4880() {
        // The CRC-24 of no data is the initial value; of "123456789", RFC 4880's reference code
        // gives 0x21CF02.
        assert_eq!(crc24(b""), 0xB704CE);
        assert_eq!(crc24(b"123456789"), 0x21CF02);
        let a = armor("SIGNATURE", &[0u8; 100]);
        assert!(a.starts_with("-----BEGIN PGP SIGNATURE-----\n\nAAAA"), "{a}");
        assert!(a.lines().all(|l| l.len() <= 64), "{a}");
        assert!(a.ends_with("-----END PGP SIGNATURE-----\n"), "{a}");
    }

    #[test]
    fn the_same_seed_gives_the_same_key() {
        let a = OpenPgpKey::from_seed(&SEED, "a");
        let b = OpenPgpKey::from_seed(&SEED, "b");
        assert_eq!(a.fingerprint(), b.fingerprint(), "the user id is not part of the fingerprint");
        assert_eq!(a.fingerprint().len(), 40);
        assert_ne!(a.fingerprint(), OpenPgpKey::from_seed(&[8; 32], "a").fingerprint());
    }

    /// GnuPG's own verifier, as apt runs it, accepts the keyring and a detached signature, and
    /// refuses the signature over other data.
    #[test]
    fn gpgv_verifies_a_detached_signature_with_the_keyring() {
        let dir = tempfile::tempdir().unwrap();
        let key = OpenPgpKey::from_seed(&SEED, "groundwork bundle key (test)");
        let keyring = dir.path().join("key.gpg");
        std::fs::write(&keyring, key.public_keyring(NOW)).unwrap();
        let data = b"Origin: groundwork\nSuite: bookworm\n".repeat(300);
        std::fs::write(dir.path().join("Release"), &data).unwrap();
        std::fs::write(dir.path().join("Release.gpg"), key.sign_detached(&data, NOW)).unwrap();
        let gpgv = |file: &str| {
            std::process::Command::new("gpgv")
                .arg("--keyring")
                .arg(&keyring)
                .arg(dir.path().join("Release.gpg"))
                .arg(dir.path().join(file))
                .output()
                .expect("gpgv runs (Debian's apt depends on it)")
        };
        let good = gpgv("Release");
        let said = String::from_utf8_lossy(&good.stderr).to_string();
        assert!(good.status.success(), "{said}");
        assert!(said.contains("Good signature") && said.contains(&key.fingerprint()[24..]), "{said}");

        let mut changed = data.clone();
        changed[10] ^= 1;
        std::fs::write(dir.path().join("Changed"), &changed).unwrap();
        let bad = gpgv("Changed");
        assert!(!bad.status.success(), "{}", String::from_utf8_lossy(&bad.stderr));
        assert!(String::from_utf8_lossy(&bad.stderr).contains("BAD signature"));
    }
}
