//! Which IP address a job advertises in Consul: ContainerPilot's `interfaces`.
//!
//! A job's `interfaces` is a list of specs, tried in order; the first spec
//! that matches an address of this container wins:
//!
//! | spec            | matches                                             |
//! |-----------------|-----------------------------------------------------|
//! | `eth0`          | the first IPv4 address of eth0 (same as `eth0:inet`) |
//! | `eth0:inet6`    | the first IPv6 address of eth0                      |
//! | `eth0[1]`       | the second address of eth0, either family           |
//! | `10.0.0.0/16`   | the first address inside the network                |
//! | `inet`, `inet6` | the first non-loopback IPv4 / IPv6 address          |
//! | `static:IP`     | that address, whatever the interfaces               |
//!
//! "First" is ContainerPilot's order: interfaces sorted by name, each one's
//! addresses sorted by their 16-byte form. Without `interfaces`, the specs are
//! `eth0:inet`, `inet` (ContainerPilot's default), and when neither matches
//! (a network namespace with only `lo`) the loopback address is used.

use std::net::{IpAddr, Ipv4Addr};

/// One parsed entry of `interfaces`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// `eth0`, `eth0:inet`, `eth0:inet6`; `inet`/`inet6` when `name` is `None`
    /// (any interface but loopback).
    Family { name: Option<String>, v6: bool },
    /// `eth0[1]`: the address at that position on the interface.
    Index { name: String, index: usize },
    /// `10.0.0.0/16`.
    Network { base: IpAddr, prefix: u8 },
    /// `static:192.168.1.10`.
    Static(IpAddr),
}

/// The default specs when a job gives no `interfaces`.
pub const DEFAULT_SPECS: [&str; 2] = ["eth0:inet", "inet"];

impl Spec {
    pub fn parse(text: &str) -> Result<Spec, String> {
        let s = text.trim();
        let hint = "write an interface (`eth0`, `eth0:inet6`, `eth0[1]`), a network (`10.0.0.0/16`), \
                    `inet`, `inet6` or `static:IP`";
        if s == "inet" || s == "inet6" {
            return Ok(Spec::Family {
                name: None,
                v6: s == "inet6",
            });
        }
        if let Some(ip) = s.strip_prefix("static:") {
            return ip
                .trim()
                .parse()
                .map(Spec::Static)
                .map_err(|_| format!("{text:?}: {ip:?} is not an IP address; {hint}"));
        }
        if let Some((base, prefix)) = s.split_once('/') {
            let base: IpAddr = base
                .parse()
                .map_err(|_| format!("{text:?}: {base:?} is not a network address; {hint}"))?;
            let max = if base.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix
                .parse()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?;
            return Ok(Spec::Network { base, prefix });
        }
        if let Some(open) = s.find('[') {
            let name = &s[..open];
            let index = s[open + 1..]
                .strip_suffix(']')
                .and_then(|i| i.parse().ok())
                .filter(|_| is_interface_name(name))
                .ok_or_else(|| format!("{text:?} is not an interface spec; {hint}"))?;
            return Ok(Spec::Index {
                name: name.to_string(),
                index,
            });
        }
        let (name, v6) = match s.rsplit_once(':') {
            Some((name, "inet")) => (name, false),
            Some((name, "inet6")) => (name, true),
            Some(_) => return Err(format!("{text:?} is not an interface spec; {hint}")),
            None => (s, false),
        };
        if !is_interface_name(name) {
            return Err(format!("{text:?} is not an interface spec; {hint}"));
        }
        Ok(Spec::Family {
            name: Some(name.to_string()),
            v6,
        })
    }

    /// Whether `addr`, the `index`-th address of its interface, matches.
    fn matches(&self, index: usize, addr: &IfaceAddr) -> bool {
        match self {
            Spec::Family { name, v6 } => {
                let name_ok = match name {
                    Some(n) => *n == addr.name,
                    None => !addr.ip.is_loopback(),
                };
                name_ok && addr.ip.is_ipv6() == *v6
            }
            Spec::Index { name, index: want } => *name == addr.name && *want == index,
            Spec::Network { base, prefix } => in_network(addr.ip, *base, *prefix),
            Spec::Static(_) => false,
        }
    }
}

/// Linux interface names: up to 15 bytes, no `/`, `:` or spaces; we accept
/// letters, digits and `_ - . @` (a superset of ContainerPilot's `\w+`).
fn is_interface_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
}

fn in_network(ip: IpAddr, base: IpAddr, prefix: u8) -> bool {
    match (ip, base) {
        (IpAddr::V4(ip), IpAddr::V4(base)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(base) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(base)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(base) & mask
        }
        _ => false,
    }
}

/// An address of a local interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceAddr {
    pub name: String,
    pub ip: IpAddr,
}

/// The addresses of this network namespace, in ContainerPilot's order.
pub fn local_addresses() -> Result<Vec<IfaceAddr>, String> {
    let all =
        nix::ifaddrs::getifaddrs().map_err(|e| format!("cannot list network interfaces: {e}"))?;
    let mut addrs: Vec<IfaceAddr> = all
        .filter_map(|ifa| {
            let sa = ifa.address?;
            let ip = if let Some(v4) = sa.as_sockaddr_in() {
                IpAddr::V4(v4.ip())
            } else {
                IpAddr::V6(sa.as_sockaddr_in6()?.ip())
            };
            Some(IfaceAddr {
                name: ifa.interface_name,
                ip,
            })
        })
        .collect();
    sort(&mut addrs);
    Ok(addrs)
}

/// By interface name, then by address in its 16-byte form (IPv4 as
/// `::ffff:a.b.c.d`), as ContainerPilot sorts them.
fn sort(addrs: &mut [IfaceAddr]) {
    let key = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    };
    addrs.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then_with(|| key(&a.ip).cmp(&key(&b.ip)))
    });
}

/// How the advertised address was found, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// A spec matched (the one written, e.g. `eth0:inet`).
    Matched { ip: IpAddr, spec: String },
    /// No default spec matched: the loopback address is advertised.
    Loopback { ip: IpAddr },
}

impl Choice {
    pub fn ip(&self) -> IpAddr {
        match self {
            Choice::Matched { ip, .. } | Choice::Loopback { ip } => *ip,
        }
    }
}

/// Picks the address for `interfaces` (empty: the default) among `addrs`
/// (sorted as [`local_addresses`] returns them).
pub fn choose(interfaces: &[String], addrs: &[IfaceAddr]) -> Result<Choice, String> {
    let defaulted = interfaces.is_empty();
    let texts: Vec<String> = if defaulted {
        DEFAULT_SPECS.iter().map(|s| s.to_string()).collect()
    } else {
        interfaces.to_vec()
    };
    let mut specs = Vec::new();
    for text in &texts {
        specs.push((text, Spec::parse(text)?));
    }
    for (text, spec) in &specs {
        if let Spec::Static(ip) = spec {
            return Ok(Choice::Matched {
                ip: *ip,
                spec: text.to_string(),
            });
        }
        let mut index = 0;
        for (i, addr) in addrs.iter().enumerate() {
            index = if i > 0 && addrs[i - 1].name == addr.name {
                index + 1
            } else {
                0
            };
            if spec.matches(index, addr) {
                return Ok(Choice::Matched {
                    ip: addr.ip,
                    spec: text.to_string(),
                });
            }
        }
    }
    if defaulted {
        let ip = addrs
            .iter()
            .map(|a| a.ip)
            .find(|ip| ip.is_loopback() && ip.is_ipv4())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        return Ok(Choice::Loopback { ip });
    }
    let have: Vec<String> = addrs
        .iter()
        .map(|a| format!("{}:{}", a.name, a.ip))
        .collect();
    Err(format!(
        "no address matches `interfaces` {:?}; this container has {}",
        interfaces,
        if have.is_empty() {
            "no addresses".to_string()
        } else {
            have.join(", ")
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[(&str, &str)]) -> Vec<IfaceAddr> {
        let mut v: Vec<IfaceAddr> = list
            .iter()
            .map(|(n, ip)| IfaceAddr {
                name: n.to_string(),
                ip: ip.parse().unwrap(),
            })
            .collect();
        sort(&mut v);
        v
    }

    fn pick(specs: &[&str], list: &[(&str, &str)]) -> Result<String, String> {
        let specs: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        choose(&specs, &addrs(list)).map(|c| c.ip().to_string())
    }

    const HOST: &[(&str, &str)] = &[
        ("lo", "127.0.0.1"),
        ("lo", "::1"),
        ("eth0", "10.0.0.5"),
        ("eth0", "192.168.1.9"),
        ("eth0", "fe80::1"),
        ("eth1", "172.16.0.3"),
        ("eth1", "2001:db8::3"),
    ];

    #[test]
    fn every_containerpilot_form() {
        assert_eq!(pick(&["eth0"], HOST).unwrap(), "10.0.0.5");
        assert_eq!(pick(&["eth0:inet"], HOST).unwrap(), "10.0.0.5");
        assert_eq!(pick(&["eth0:inet6"], HOST).unwrap(), "fe80::1");
        assert_eq!(pick(&["eth0[1]"], HOST).unwrap(), "192.168.1.9");
        assert_eq!(pick(&["eth0[2]"], HOST).unwrap(), "fe80::1");
        assert_eq!(pick(&["172.16.0.0/12"], HOST).unwrap(), "172.16.0.3");
        assert_eq!(pick(&["2001:db8::/32"], HOST).unwrap(), "2001:db8::3");
        assert_eq!(pick(&["inet"], HOST).unwrap(), "10.0.0.5");
        assert_eq!(pick(&["inet6"], HOST).unwrap(), "fe80::1");
        assert_eq!(pick(&["static:192.0.2.7"], HOST).unwrap(), "192.0.2.7");
        assert_eq!(pick(&["lo"], HOST).unwrap(), "127.0.0.1");
    }

    #[test]
    fn specs_are_tried_in_order() {
        assert_eq!(pick(&["eth2", "eth1"], HOST).unwrap(), "172.16.0.3");
        assert_eq!(
            pick(&["10.9.0.0/16", "eth0[1]"], HOST).unwrap(),
            "192.168.1.9"
        );
    }

    #[test]
    fn the_default_falls_back_to_another_interface_then_loopback() {
        let c = choose(&[], &addrs(HOST)).unwrap();
        assert_eq!(
            c,
            Choice::Matched {
                ip: "10.0.0.5".parse().unwrap(),
                spec: "eth0:inet".into()
            }
        );
        let c = choose(&[], &addrs(&[("lo", "127.0.0.1"), ("ens3", "10.1.1.1")])).unwrap();
        assert_eq!(
            c,
            Choice::Matched {
                ip: "10.1.1.1".parse().unwrap(),
                spec: "inet".into()
            }
        );
        let c = choose(&[], &addrs(&[("lo", "127.0.0.1"), ("lo", "::1")])).unwrap();
        assert_eq!(
            c,
            Choice::Loopback {
                ip: "127.0.0.1".parse().unwrap()
            }
        );
        let c = choose(&[], &[]).unwrap();
        assert_eq!(c.ip().to_string(), "127.0.0.1");
    }

    #[test]
    fn an_explicit_spec_that_matches_nothing_is_an_error() {
        let e = pick(&["eth9"], HOST).unwrap_err();
        assert!(
            e.contains("no address matches") && e.contains("eth0:10.0.0.5"),
            "{e}"
        );
    }

    #[test]
    fn bad_specs_are_errors() {
        for bad in [
            "static:nope",
            "10.0.0.0/40",
            "eth0:inet7",
            "eth0[x]",
            "eth 0",
            "",
            "x/y",
        ] {
            assert!(Spec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn this_machine_has_addresses() {
        let local = local_addresses().unwrap();
        assert!(local.iter().any(|a| a.ip.is_loopback()), "{local:?}");
    }
}
