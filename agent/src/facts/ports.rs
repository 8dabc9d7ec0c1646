//! TCP ports something listens on, from /proc/net/tcp and tcp6.

use super::read;

pub fn listening_tcp_ports() -> Vec<u16> {
    let mut ports: Vec<u16> =
        ["/proc/net/tcp", "/proc/net/tcp6"].iter().filter_map(|p| read(p)).flat_map(|t| parse_listening(&t)).collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Local ports of sockets in state 0A (LISTEN).
pub fn parse_listening(text: &str) -> Vec<u16> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.get(3) != Some(&"0A") {
                return None;
            }
            let port = f.get(1)?.rsplit_once(':')?.1;
            u16::from_str_radix(port, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_sockets_v4_and_v6() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
                  0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n\
                  1: 0B004E0A:0016 0200000A:C35A 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n";
        assert_eq!(parse_listening(v4), vec![22]);
        let v6 = "  sl  local_address                         remote_address                        st\n\
                  0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 0\n";
        assert_eq!(parse_listening(v6), vec![8080]);
    }
}
