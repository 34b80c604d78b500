//! The local callback server of a real login (a child process, its browser
//! the recording `$BROWSER`) under 1,000 junk requests: wrong paths, no or
//! a wrong `state`, huge query strings, other methods, garbage, pipelined
//! requests, and slowloris connections that never finish their request or
//! body. The login still succeeds, within its timeout, and the server
//! listens on 127.0.0.1 only. All traffic goes to 127.0.0.1 (and one
//! connection attempt to 127.0.0.2, also loopback).

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use carto_auth::CartoAuth;
use support::FakeCarto;

const JUNK: usize = 1000;
const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);
/// No single junk exchange may take longer than this.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn child_login() {
    let timeout = Duration::from_millis(
        std::env::var("CARTO_TEST_LOGIN_TIMEOUT_MS")
            .unwrap()
            .parse()
            .unwrap(),
    );
    match CartoAuth::oauth().login_timeout(timeout).login() {
        // A leading newline: libtest has printed "test name ... " unterminated.
        Ok(auth) => println!("\nRESULT ok {}", auth.get_api_base_url().unwrap_or("-")),
        Err(e) => println!("\nRESULT err {e}"),
    }
}

fn connect(port: u16) -> TcpStream {
    let stream =
        TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), IO_TIMEOUT)
            .unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// Sends one raw request on its own connection and returns the status of
/// the answer (0 when the server closed without one).
fn exchange(port: u16, raw: &[u8]) -> u16 {
    let mut stream = connect(port);
    // The server may answer and close before reading a huge request whole.
    let _ = stream.write_all(raw);
    let _ = stream.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset) => {}
        Err(e) => panic!(
            "no answer within {IO_TIMEOUT:?} to {:?}: {e}",
            String::from_utf8_lossy(&raw[..raw.len().min(80)])
        ),
    }
    status_of(&answer)
}

fn status_of(answer: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(answer);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").into_bytes()
}

/// The junk: each item is the raw request and the statuses it may get
/// (tiny_http's own answers to malformed requests included; 0 = closed).
fn junk(path: &str, state: &str, i: usize) -> (Vec<u8>, &'static [u16]) {
    let near_state = format!(
        "{}{}",
        &state[..state.len() - 1],
        if state.ends_with('A') { 'B' } else { 'A' }
    );
    match i % 20 {
        0 => (get("/"), &[404]),
        1 => (get("/favicon.ico"), &[404]),
        2 => (get(path.trim_end_matches('/')), &[404]),
        3 => (get(&format!("{}?code=forged&state={state}", path.to_uppercase())), &[404]),
        4 => (get(&format!("{path}?code=forged{i}")), &[400]),
        5 => (get(&format!("{path}?code=forged{i}&state=wrong")), &[400]),
        6 => (get(&format!("{path}?code=forged{i}&state={near_state}")), &[400]),
        7 => (get(&format!("{path}?code=forged&state={}", &state[..state.len() - 1])), &[400]),
        8 => (get(&format!("{path}?error=access_denied&state=wrong")), &[400]),
        // This login's state, but no usable code: ignored too.
        9 => (get(&format!("{path}?state={state}")), &[400]),
        10 => (get(&format!("{path}?code=&state={state}")), &[400]),
        11 => (get(&format!("{path}?code=two%20words&state={state}")), &[400]),
        // Huge query strings: 8 KiB to 512 KiB.
        // Over 64 KiB the head is refused whole (431), or the connection
        // is reset while the rest is still being sent (0).
        12 => (get(&format!("{path}?code={}&state=wrong", "A".repeat(8192 << (i / 20 % 7)))), &[400, 431, 0]),
        13 => (format!("POST {path}?code=forged&state={state} HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nConnection: close\r\n\r\ncode=nope").into_bytes(), &[405]),
        14 => {
            let method = ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "FOO"][i / 20 % 7];
            (format!("{method} {path}?code=forged&state={state} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes(), &[405])
        }
        15 => (format!("HEAD {path}?code=forged&state={state} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes(), &[405]),
        16 => (b"\x00\x01\x02garbage\xff\xfe\r\n\r\n".to_vec(), &[400]),
        17 => (format!("GET {path}?code=\u{e9}&state={state} HTTP/1.1\r\n\r\n").into_bytes(), &[400]),
        18 => (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(), &[400]),
        _ => (format!("GET {path}?code=forged HTTP/1.1\r\nX-Junk: {}\r\nConnection: close\r\n\r\n", "j".repeat(4096)).into_bytes(), &[400]),
    }
}

/// Local IPv4 listening sockets on `port`, from /proc/net/tcp: the
/// addresses (hex, as the kernel prints them) of sockets in state LISTEN.
fn listeners(table: &str, port: u16) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(table) else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (addr, p) = fields.get(1)?.rsplit_once(':')?;
            (u16::from_str_radix(p, 16).ok()? == port && *fields.get(3)? == "0A")
                .then(|| addr.to_string())
        })
        .collect()
}

#[test]
fn a_thousand_junk_requests_then_the_real_callback() {
    let test = support::child_test!(child_login);
    let fake = FakeCarto::start();
    let started = Instant::now();
    let timeout = [(
        "CARTO_TEST_LOGIN_TIMEOUT_MS".into(),
        LOGIN_TIMEOUT.as_millis().to_string(),
    )];
    let (_home, mut child, opened) = test.local_flow(&fake, "login", &timeout);
    let url = support::wait_for_file(&opened, Duration::from_secs(30));
    let state = support::query_param(&url, "state").unwrap();
    let callback = url::Url::parse(&fake.redirect_uri).unwrap();
    let (port, path) = (callback.port().unwrap(), callback.path().to_string());

    // Loopback only: the kernel's table of listening sockets shows the port
    // bound to 127.0.0.1 (0100007F) and, where the machine has IPv6, [::1]
    // (browsers try it first for localhost), and nothing else; another
    // loopback address of this machine, which a wildcard bind would serve,
    // is refused.
    assert_eq!(
        listeners("/proc/net/tcp", port),
        ["0100007F"],
        "the callback port must be bound to 127.0.0.1 only"
    );
    let has_ipv6 = support::has_ipv6_loopback("the callback server's [::1] listener");
    let v6 = listeners("/proc/net/tcp6", port);
    if has_ipv6 {
        assert_eq!(v6, ["00000000000000000000000001000000"], "[::1] only");
        let mut s = TcpStream::connect_timeout(
            &SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
            IO_TIMEOUT,
        )
        .unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.write_all(b"GET /favicon.ico HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        assert_eq!(status_of(&answer), 404, "the [::1] listener answers");
    } else {
        assert!(v6.is_empty(), "{v6:?}");
    }
    let other = TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), port)),
        IO_TIMEOUT,
    );
    assert!(other.is_err(), "127.0.0.2 reached the callback server");

    // Slowloris: connections that start a request and never finish it:
    // the request line, the headers, or a body longer than what is sent.
    let mut slow: Vec<TcpStream> = Vec::new();
    for i in 0..30 {
        let mut s = connect(port);
        let partial = match i % 5 {
            0 => format!("GET {path}?code=slow{i}&state={state}"),
            1 => format!("GET {path}?code=slow{i}&state={state} HTTP/1.1\r\nHost: x\r\n"),
            2 => "G".to_string(),
            // Bodies announced and never sent: small ones are read by the
            // connection's thread, large ones by whoever drops the request.
            3 => format!(
                "POST {path}?state={state} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial"
            ),
            _ => format!(
                "POST {path}?state={state} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\npartial"
            ),
        };
        s.write_all(partial.as_bytes()).unwrap();
        slow.push(s);
    }

    // The junk, one connection each, except a batch pipelined on one
    // connection that reads no answer until it has sent everything (the
    // server answers one request per connection, then closes).
    let junk_started = Instant::now();
    let mut sent = 0;
    let mut pipelined = connect(port);
    for i in 0..50 {
        pipelined
            .write_all(
                format!("GET {path}?code=p{i}&state=wrong HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            )
            .unwrap();
        sent += 1;
    }
    pipelined.shutdown(Shutdown::Write).unwrap();
    let mut answers = String::new();
    pipelined.read_to_string(&mut answers).unwrap();
    assert_eq!(answers.matches("HTTP/1.1 ").count(), 1, "{answers}");
    assert!(answers.starts_with("HTTP/1.1 400 "), "{answers}");
    while sent < JUNK {
        let (raw, allowed) = junk(&path, &state, sent);
        let status = exchange(port, &raw);
        assert!(
            allowed.contains(&status),
            "junk #{sent} got {status}, expected one of {allowed:?}: {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(120)])
        );
        sent += 1;
    }
    let junk_took = junk_started.elapsed();
    assert!(
        child.child.try_wait().unwrap().is_none(),
        "junk ended the login"
    );

    // The real browser comes back.
    let back = fake.authorize(&url);
    let (status, headers, body) = support::http_get(&back);
    assert_eq!(status, 302, "{body}");
    assert_eq!(
        support::header(&headers, "location").as_deref(),
        Some("https://app.carto.com/auth/success")
    );
    let (result, stderr) = child.result(Duration::from_secs(30));
    let total = started.elapsed();
    assert_eq!(result, format!("ok {}", fake.api_base_url()), "{stderr}");
    assert!(total < LOGIN_TIMEOUT, "took {total:?}");

    let exchanges = fake.requests("/oauth/token");
    assert_eq!(exchanges.len(), 1);
    let code = exchanges[0].form_value("code").unwrap();
    assert!(
        !code.contains("forged") && !code.contains("slow"),
        "a junk code was exchanged: {code}"
    );
    drop(slow);
    eprintln!(
        "{JUNK} junk requests + 30 slowloris connections: junk answered in {junk_took:?}, login done in {total:?} (timeout {LOGIN_TIMEOUT:?})"
    );
}

/// The callback port of a test's fake is leased, not just free when picked:
/// no other lease, in this process or another, gets it while the fake
/// lives, and it lies below the range the kernel hands out by itself, so
/// nothing takes it before the child binds it.
#[test]
fn the_callback_port_is_leased_until_the_fake_ends() {
    let fake = FakeCarto::start();
    let port = url::Url::parse(&fake.redirect_uri).unwrap().port().unwrap();
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let low: u16 = range.split_whitespace().next().unwrap().parse().unwrap();
    assert!(port < low, "{port} is in the ephemeral range from {low}");
    let others: Vec<support::PortLease> = (0..50).map(|_| support::lease_port()).collect();
    assert!(others.iter().all(|l| l.port != port));
    let mut ports: Vec<u16> = others.iter().map(|l| l.port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), others.len(), "a port was leased twice");
}
