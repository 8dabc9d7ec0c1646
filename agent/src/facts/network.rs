//! Interfaces with their MAC and addresses, and the default route.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use groundwork_protocol::facts::{DefaultRoute, Interface};

use super::read_value;

pub fn interfaces() -> Vec<Interface> {
    let mut by_name: BTreeMap<String, Interface> = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir("/sys/class/net") {
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "lo" {
                continue;
            }
            let mac = read_value(&format!("/sys/class/net/{name}/address"))
                .map(|m| m.to_lowercase())
                .filter(|m| m.len() == 17 && m != "00:00:00:00:00:00");
            let up =
                read_value(&format!("/sys/class/net/{name}/operstate")).is_some_and(|s| s == "up" || s == "unknown");
            by_name.insert(name.clone(), Interface { name, mac, addresses: Vec::new(), up });
        }
    }
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            let Some(iface) = by_name.get_mut(&a.interface_name) else { continue };
            let (Some(addr), Some(mask)) = (a.address, a.netmask) else { continue };
            if let (Some(ip), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) {
                let prefix = u32::from(m.ip()).count_ones();
                iface.addresses.push(format!("{}/{prefix}", ip.ip()));
            } else if let (Some(ip), Some(m)) = (addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) {
                // Link-local addresses say nothing about how a node is reached: left out.
                if ip.ip().segments()[0] & 0xffc0 == 0xfe80 {
                    continue;
                }
                let prefix: u32 = m.ip().octets().iter().map(|b| b.count_ones()).sum();
                iface.addresses.push(format!("{}/{prefix}", ip.ip()));
            }
        }
    }
    by_name.into_values().collect()
}

/// The IPv4 default route from /proc/net/route (destination and mask 0; gateway in
/// little-endian hex).
pub fn parse_default_route(text: &str) -> Option<DefaultRoute> {
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 8 || f[1] != "00000000" || f[7] != "00000000" {
            return None;
        }
        let gw = u32::from_str_radix(f[2], 16).ok()?;
        let gateway = (gw != 0).then(|| Ipv4Addr::from(gw.swap_bytes()).to_string());
        Some(DefaultRoute { interface: f[0].to_string(), gateway })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_route_gateway_is_decoded() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00004E0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                    eth0\t00000000\t01004E0A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        let r = parse_default_route(text).unwrap();
        assert_eq!(r.interface, "eth0");
        assert_eq!(r.gateway.as_deref(), Some("10.78.0.1"));
        assert!(parse_default_route("Iface\tDestination\n").is_none());
    }
}
