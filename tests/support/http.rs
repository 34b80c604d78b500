//! Bare HTTP for the tests: a client that follows no redirect, and ports.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv6Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

/// A loopback port reserved for one test: no other test of this suite, in
/// any process, gets it while the lease lives, and the kernel never hands
/// it out by itself (it lies below the ephemeral range that `bind(0)` and
/// outgoing connections draw from). So a port picked now and bound later,
/// by a child's callback server, cannot be taken in between; and one left
/// unbound stays closed.
#[derive(Debug)]
pub struct PortLease {
    pub port: u16,
    /// Held locked (`flock`) while the lease lives.
    _lock: File,
}

/// Leases a loopback port that is free now on 127.0.0.1 and, where the
/// machine has IPv6, on [::1].
pub fn lease_port() -> PortLease {
    let (ephemeral_low, _) = ephemeral_ports();
    let low = ephemeral_low.saturating_sub(12_000).max(1025);
    let count = ephemeral_low.saturating_sub(low).max(1);
    let dir = port_lock_dir();
    let start = random_u16() % count;
    for i in 0..count {
        let port = low + (start.wrapping_add(i)) % count;
        let Ok(lock) = File::create(dir.join(port.to_string())) else {
            continue;
        };
        if lock.try_lock().is_err() {
            continue;
        }
        let v4 = TcpListener::bind(("127.0.0.1", port)).is_ok();
        let has_v6 = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok();
        if v4 && (!has_v6 || TcpListener::bind((Ipv6Addr::LOCALHOST, port)).is_ok()) {
            return PortLease { port, _lock: lock };
        }
    }
    panic!(
        "no loopback port in {low}..{} is free and unleased (locks in {})",
        low + count,
        dir.display()
    );
}

/// The kernel's range of ephemeral ports (Linux's default elsewhere).
fn ephemeral_ports() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut bounds = text.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((bounds.next()??, bounds.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// Where the leases' lock files live: one directory for every test process
/// of the machine, which any user may add to.
fn port_lock_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("carto-auth-test-ports");
    if std::fs::create_dir(&dir).is_ok() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777));
        }
    }
    dir
}

fn random_u16() -> u16 {
    let mut b = [0u8; 2];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    u16::from_le_bytes(b)
}

/// Whether this machine has an IPv6 loopback ([::1]). Where it has none,
/// says that `unchecked` was not tested, past libtest's capture (a passing
/// test's `eprintln!` is never shown), so that the run shows it; with
/// `CARTO_AUTH_TEST_IPV6=required` (a CI that must test IPv6), fails.
pub fn has_ipv6_loopback(unchecked: &str) -> bool {
    let has = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok();
    if !has {
        assert!(
            std::env::var("CARTO_AUTH_TEST_IPV6").as_deref() != Ok("required"),
            "{unchecked}: no IPv6 loopback here, and CARTO_AUTH_TEST_IPV6=required"
        );
        let _ = writeln!(
            std::io::stderr().lock(),
            "\nIPv6 NOT TESTED: {unchecked}: this machine has no IPv6 loopback ([::1])"
        );
    }
    has
}

/// A loopback address where nothing listens, and nothing will while this
/// test process runs: connecting is refused.
pub fn closed_port_url() -> String {
    let lease = lease_port();
    let url = format!("http://127.0.0.1:{}", lease.port);
    // Kept until the process ends: the URL may be used as long.
    std::mem::forget(lease);
    url
}

/// A bare HTTP/1.1 GET that follows no redirect: status, headers, body.
pub fn http_get(url: &str) -> (u16, Vec<(String, String)>, String) {
    http_request("GET", url)
}

pub fn http_request(method: &str, url: &str) -> (u16, Vec<(String, String)>, String) {
    http_request_with(method, url, &[])
}

/// [`http_request`] with request headers.
pub fn http_request_with(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, String) {
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let parsed = url::Url::parse(url).unwrap();
    let host = parsed.host_str().unwrap();
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    let mut stream = TcpStream::connect((host, parsed.port_or_known_default().unwrap())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let target = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

pub fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}
