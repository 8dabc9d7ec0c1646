//! Small value types of the inventory that validate themselves while they are read, so that
//! a bad CIDR, size or secret is reported at its own line and column.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// An IP network in CIDR notation (`10.244.0.0/16`), host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(pub ipnet::IpNet);

impl Cidr {
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.0.contains(&other.0.network()) || other.0.contains(&self.0.network())
    }
    pub fn contains_ip(&self, ip: &std::net::IpAddr) -> bool {
        self.0.contains(ip)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let net: ipnet::IpNet = s.trim().parse().map_err(|_| {
            format!("`{s}` is not a network in CIDR notation; write ADDRESS/PREFIX, e.g. 10.244.0.0/16")
        })?;
        if net.trunc() != net {
            return Err(format!("`{s}` has host bits set; the network is `{}`", net.trunc()));
        }
        Ok(Cidr(net))
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Cidr {
    fn schema_name() -> Cow<'static, str> {
        "Cidr".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "An IP network in CIDR notation, e.g. 10.244.0.0/16",
            "pattern": r"^[0-9a-fA-F:.]+/[0-9]{1,3}$"
        })
    }
}

/// A quantity of bytes written with a unit, as Kubernetes writes quantities:
/// binary `Ki`, `Mi`, `Gi`, `Ti` or decimal `K`, `M`, `G`, `T` (`50Gi`, `512Mi`, `16G`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

const SIZE_UNITS: [(&str, u64); 8] = [
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("K", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
];

impl ByteSize {
    pub fn gib(n: u64) -> Self {
        ByteSize(n << 30)
    }
    pub fn mib(n: u64) -> Self {
        ByteSize(n << 20)
    }
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let hint = "write a number and a unit, e.g. 50Gi, 512Mi or 16G";
        let (number, factor) = SIZE_UNITS
            .iter()
            .find_map(|(unit, factor)| t.strip_suffix(unit).map(|n| (n, *factor)))
            .ok_or_else(|| format!("`{s}` has no size unit; {hint}"))?;
        let value: f64 = number
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("`{s}` is not a size; {hint}"))?;
        let bytes = value * factor as f64;
        if bytes > u64::MAX as f64 {
            return Err(format!("`{s}` is too large"));
        }
        Ok(ByteSize(bytes as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Print in the largest binary unit that divides evenly, else with one decimal.
        for (unit, factor) in SIZE_UNITS[..4].iter().rev() {
            if self.0 >= *factor {
                return if self.0.is_multiple_of(*factor) {
                    write!(f, "{}{unit}", self.0 / factor)
                } else {
                    write!(f, "{:.1}{unit}", self.0 as f64 / *factor as f64)
                };
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size with a unit, e.g. 50Gi")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Err(E::custom(format!("`{v}` has no size unit; write e.g. {v}Gi or {v}Mi")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                Err(E::custom(format!("`{v}` has no size unit; write e.g. 50Gi")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ByteSize, E> {
                Err(E::custom(format!("`{v}` has no size unit; write e.g. 1.5Gi")))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A size with a unit: Ki, Mi, Gi, Ti (binary) or K, M, G, T (decimal), e.g. 50Gi",
            "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*(Ki|Mi|Gi|Ti|K|M|G|T)\s*$"
        })
    }
}

/// Where a secret comes from. Secrets are never written in the inventory itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SecretRef {
    /// The secret is the value of this environment variable.
    Env(String),
    /// The secret is the content of this file (trailing newline removed); relative to the inventory.
    File(PathBuf),
}

impl fmt::Display for SecretRef {
    /// Names where the secret lives, never the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(v) => write!(f, "environment variable {v}"),
            SecretRef::File(p) => write!(f, "file {}", p.display()),
        }
    }
}

const INLINE_SECRET: &str = "secrets are never written in the inventory; \
     write `{env: VARIABLE}` to read it from an environment variable or `{file: PATH}` to read it from a file";

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SecretRef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`{env: VARIABLE}` or `{file: PATH}`")
            }
            // The value itself is deliberately not echoed: it may be a real password.
            fn visit_str<E: de::Error>(self, _: &str) -> Result<SecretRef, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretRef, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretRef, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretRef, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretRef, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
                let key: String = map.next_key()?.ok_or_else(|| {
                    de::Error::custom("empty secret reference; write `{env: VARIABLE}` or `{file: PATH}`")
                })?;
                let secret = match key.as_str() {
                    "env" => {
                        let name: String = map.next_value()?;
                        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                            return Err(de::Error::custom(format!(
                                "`{name}` is not an environment variable name; use letters, digits and `_`"
                            )));
                        }
                        SecretRef::Env(name)
                    }
                    "file" => SecretRef::File(map.next_value()?),
                    _ => return Err(de::Error::unknown_field(&key, &["env", "file"])),
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom("a secret reference has exactly one key: `env` or `file`"));
                }
                Ok(secret)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for SecretRef {
    fn schema_name() -> Cow<'static, str> {
        "SecretRef".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Where a secret comes from; secrets are never written inline.",
            "oneOf": [
                {
                    "type": "object",
                    "properties": { "env": { "type": "string", "description": "Environment variable holding the secret" } },
                    "required": ["env"],
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "properties": { "file": { "type": "string", "description": "File holding the secret, relative to the inventory" } },
                    "required": ["file"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_binary_and_decimal_units() {
        assert_eq!("50Gi".parse::<ByteSize>().unwrap(), ByteSize::gib(50));
        assert_eq!("512Mi".parse::<ByteSize>().unwrap(), ByteSize::mib(512));
        assert_eq!("16G".parse::<ByteSize>().unwrap(), ByteSize(16_000_000_000));
        assert_eq!("1.5Gi".parse::<ByteSize>().unwrap(), ByteSize(3 << 29));
        assert!("50".parse::<ByteSize>().unwrap_err().contains("no size unit"));
        assert!("-1Gi".parse::<ByteSize>().is_err());
        assert!("Gi".parse::<ByteSize>().is_err());
    }

    #[test]
    fn sizes_print_in_the_largest_even_unit() {
        assert_eq!(ByteSize::gib(50).to_string(), "50Gi");
        assert_eq!(ByteSize::mib(1536).to_string(), "1.5Gi");
        assert_eq!(ByteSize(512).to_string(), "512B");
    }

    #[test]
    fn cidr_rejects_host_bits_and_garbage() {
        assert!("10.244.0.0/16".parse::<Cidr>().is_ok());
        assert!("10.244.0.1/16".parse::<Cidr>().unwrap_err().contains("10.244.0.0/16"));
        assert!("10.244.0.0/33".parse::<Cidr>().is_err());
        assert!("banana".parse::<Cidr>().is_err());
    }

    #[test]
    fn cidr_overlap_is_symmetric() {
        let a: Cidr = "10.96.0.0/12".parse().unwrap();
        let b: Cidr = "10.100.0.0/16".parse().unwrap();
        let c: Cidr = "10.244.0.0/16".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c) && !c.overlaps(&a));
    }
}
