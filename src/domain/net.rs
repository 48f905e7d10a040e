//! Which destinations herald may contact. Outside dev mode only public addresses are, plus the
//! networks an operator allows explicitly (`HERALD_ALLOWED_NETWORKS`).

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The destination rules, from configuration.
#[derive(Debug, Clone, Default)]
pub struct NetPolicy {
    /// Dev mode: `http://` URLs and any address are allowed.
    pub dev: bool,
    /// Networks delivered to even though they are not public.
    pub allowed: Vec<IpNet>,
}

/// An address herald may not contact, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{ip} is {reason}; herald delivers only to public addresses (see HERALD_ALLOWED_NETWORKS)")]
pub struct NotPublic {
    pub ip: IpAddr,
    /// What kind of address it is, as [`non_public_reason`] names it.
    pub reason: &'static str,
}

impl NetPolicy {
    /// `Err` with the reason when `ip` may not be contacted.
    pub fn check(&self, ip: IpAddr) -> Result<(), NotPublic> {
        if self.dev || self.allowed.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match non_public_reason(ip) {
            None => Ok(()),
            Some(reason) => Err(NotPublic { ip, reason }),
        }
    }
}

/// Why `ip` is not a public unicast address, or `None` when it is.
pub fn non_public_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_reason(v4).map(|_| "an IPv4-mapped non-public address");
            }
            v6_reason(v6)
        }
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(if ip.is_unspecified() {
        "unspecified"
    } else if ip.is_loopback() {
        "a loopback address"
    } else if ip.is_private() {
        "a private address"
    } else if ip.is_link_local() {
        // 169.254.0.0/16 holds the cloud metadata address 169.254.169.254.
        "a link-local address (cloud metadata lives here)"
    } else if ip.is_multicast() {
        "a multicast address"
    } else if ip.is_broadcast() {
        "the broadcast address"
    } else if a == 100 && (64..128).contains(&b) {
        "a shared (carrier-grade NAT) address"
    } else if a == 0 {
        "in 0.0.0.0/8"
    } else if a == 192 && b == 0 && c == 0 {
        "an IETF protocol assignment"
    } else if (a == 192 && b == 0 && c == 2)
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
    {
        "a documentation address"
    } else if a == 198 && (b == 18 || b == 19) {
        "a benchmarking address"
    } else if a >= 240 {
        "a reserved address"
    } else {
        return None;
    })
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    Some(if ip.is_unspecified() {
        "unspecified"
    } else if ip.is_loopback() {
        "a loopback address"
    } else if ip.is_multicast() {
        "a multicast address"
    } else if seg[0] & 0xfe00 == 0xfc00 {
        "a unique-local address"
    } else if seg[0] & 0xffc0 == 0xfe80 {
        "a link-local address"
    } else if seg[0] & 0xffc0 == 0xfec0 {
        "a site-local address"
    } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
        "a documentation address"
    } else if seg[0] == 0x0064 && seg[1] == 0xff9b {
        // NAT64 can reach any IPv4 address, private ones included.
        "a NAT64 address"
    } else if seg[..6] == [0, 0, 0, 0, 0, 0] {
        "an IPv4-compatible address"
    } else if seg[0] == 0x2002 {
        "a 6to4 address"
    } else if seg[0] == 0x2001 && seg[1] == 0 {
        "a Teredo address"
    } else if seg[0] == 0xfd00 && seg[1] == 0x0ec2 {
        "the cloud metadata address"
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> bool {
        NetPolicy::default().check(s.parse().expect("ip")).is_err()
    }

    #[test]
    fn non_public_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "::127.0.0.1",
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:93.184.216.34",
        ] {
            assert!(!refused(ip), "{ip} must pass");
        }
    }

    #[test]
    fn allowed_networks_and_dev_mode_exempt() {
        let policy = NetPolicy {
            dev: false,
            allowed: vec!["10.0.0.0/8".parse().expect("cidr")],
        };
        assert!(policy.check("10.9.9.9".parse().expect("ip")).is_ok());
        assert!(policy.check("192.168.0.1".parse().expect("ip")).is_err());
        let dev = NetPolicy {
            dev: true,
            allowed: vec![],
        };
        assert!(dev.check("127.0.0.1".parse().expect("ip")).is_ok());
    }

    #[test]
    fn a_refusal_says_what_the_address_is_and_what_to_do() {
        let refusal = NetPolicy::default()
            .check("10.0.0.1".parse().expect("ip"))
            .expect_err("private");
        assert_eq!(
            refusal.to_string(),
            "10.0.0.1 is a private address; herald delivers only to public addresses (see HERALD_ALLOWED_NETWORKS)"
        );
    }
}
