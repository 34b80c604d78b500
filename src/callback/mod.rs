//! The loopback server that receives the browser's redirect in the local flow.
//!
//! A few dozen lines of HTTP/1.1 on std's `TcpListener` instead of a server
//! crate: each connection gets a short-lived thread of its own, with a
//! deadline for its request head and a cap on its size, so that junk or
//! slow clients can hold up neither the login nor each other (tiny_http,
//! used before, queued new connections behind pool threads blocked on
//! clients that never finished a request; `tests/callback_junk.rs` is the
//! proof).
//!
//! The port is the one registered at CARTO (10000), which every other login
//! on the machine needs too (another kernel, the CLI, the Python package):
//! the listeners are closed the moment a login ends in any way (code,
//! error, timeout, stop, drop), and the result is handed over only once
//! they are, so a browser arriving later gets a refused connection, never
//! a socket that accepts and never answers.

mod request;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use request::{Login, handle};
#[cfg(feature = "fuzzing")]
pub(crate) use request::{Verdict, judge, judge_head};

use crate::secret::AuthorizationCode;

/// Connections served at once. More are closed at once (a flood); the
/// browser's gets through as soon as slow ones reach their deadline.
const MAX_CONNECTIONS: usize = 256;
/// How often an idle accept loop looks whether the login has ended.
const ACCEPT_POLL: Duration = Duration::from_millis(25);
/// How long `stop` waits for the listeners to close.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How a wait for the callback ended.
#[derive(Debug)]
pub(crate) enum CallbackResult {
    Code(AuthorizationCode),
    Denied {
        error: String,
        description: Option<String>,
    },
    /// This login's `state`, but another issuer (RFC 9207).
    WrongIssuer(String),
    TimedOut,
    Stopped,
}

/// Why the server could not start; the login falls back to pasting.
#[derive(Debug)]
pub(crate) enum BindError {
    /// `127.0.0.1:<port>` is taken (another login, another program).
    Taken(std::io::Error),
    /// Another program listens on `[::1]:<port>`, where browsers go first
    /// for `localhost`: the browser would reach it, not us.
    ForeignIpv6(std::io::Error),
    /// No thread could be started.
    Thread(std::io::Error),
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindError::Taken(e) => write!(f, "it is in use ({e})"),
            BindError::ForeignIpv6(e) => write!(
                f,
                "another program listens on its IPv6 loopback address [::1], where browsers \
                 go first for localhost ({e})"
            ),
            BindError::Thread(e) => write!(f, "no thread could be started ({e})"),
        }
    }
}

/// What one login's server is for.
pub(crate) struct CallbackConfig {
    pub(crate) port: u16,
    pub(crate) path: String,
    pub(crate) state: String,
    pub(crate) issuer: String,
    pub(crate) success_page: String,
    pub(crate) error_page: String,
    pub(crate) timeout: Duration,
}

/// A running callback server: `127.0.0.1:<port>` and, where the machine has
/// IPv6, `[::1]:<port>`. Loopback only, never reachable from another
/// machine (nor from another loopback address).
pub(crate) struct CallbackServer {
    port: u16,
    /// Sends `Stopped` to the controller.
    events: Sender<CallbackResult>,
    result: Mutex<Option<Receiver<CallbackResult>>>,
    closed: Arc<(Mutex<bool>, Condvar)>,
}

impl CallbackServer {
    /// Binds and starts serving at once (until then the kernel queues the
    /// browser's connection).
    pub(crate) fn start(config: CallbackConfig) -> Result<CallbackServer, BindError> {
        let v4 = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, config.port)))
            .map_err(BindError::Taken)?;
        let port = v4.local_addr().map_err(BindError::Taken)?.port();
        let v6 = match TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))) {
            Ok(listener) => Some(listener),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(BindError::ForeignIpv6(e));
            }
            // No IPv6 on this machine: browsers then use 127.0.0.1.
            Err(e) => {
                log::debug!("callback server: no IPv6 loopback ({e})");
                None
            }
        };
        let (events, outcomes) = channel();
        let login = Arc::new(Login {
            path: config.path,
            state: config.state,
            issuer: config.issuer,
            success_page: config.success_page,
            error_page: config.error_page,
            events: events.clone(),
        });
        let stopped = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicUsize::new(0));
        let mut accepting = Vec::new();
        for listener in std::iter::once(v4).chain(v6) {
            listener.set_nonblocking(true).map_err(BindError::Thread)?;
            let (login, stop, active) = (login.clone(), stopped.clone(), active.clone());
            let thread = std::thread::Builder::new()
                .name("carto-auth-accept".into())
                .spawn(move || accept_loop(listener, &stop, &active, &login))
                .map_err(BindError::Thread);
            match thread {
                Ok(t) => accepting.push(t),
                Err(e) => {
                    stopped.store(true, Ordering::SeqCst);
                    join_all(accepting);
                    return Err(e);
                }
            }
        }
        drop(login);

        let (result_tx, result_rx) = channel();
        let closed = Arc::new((Mutex::new(false), Condvar::new()));
        let closed_flag = closed.clone();
        let timeout = config.timeout;
        let stop_flag = stopped.clone();
        let controller = std::thread::Builder::new()
            .name("carto-auth-callback".into())
            .spawn(move || {
                // No printing here: evcxr forwards a background thread's
                // output only while some cell runs.
                let result = match outcomes.recv_timeout(timeout) {
                    Ok(result) => result,
                    Err(RecvTimeoutError::Timeout) => CallbackResult::TimedOut,
                    Err(RecvTimeoutError::Disconnected) => CallbackResult::Stopped,
                };
                stopped.store(true, Ordering::SeqCst);
                // The accept loops drop their listeners as they return.
                join_all(accepting);
                let (lock, cv) = &*closed_flag;
                *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
                cv.notify_all();
                let _ = result_tx.send(result);
            });
        if let Err(e) = controller {
            // Without a controller nobody would end the accept loops.
            stop_flag.store(true, Ordering::SeqCst);
            return Err(BindError::Thread(e));
        }
        Ok(CallbackServer {
            port,
            events,
            result: Mutex::new(Some(result_rx)),
            closed,
        })
    }

    /// The port listened on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// How the wait ended, delivered once the listeners are closed. `None`
    /// when it was taken already.
    pub(crate) fn take_result(&self) -> Option<Receiver<CallbackResult>> {
        self.result
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Ends the wait (a waiter gets `Stopped` unless something came first)
    /// and returns once the listeners are closed, or after [`CLOSE_WAIT`].
    pub(crate) fn stop(&self) {
        let _ = self.events.send(CallbackResult::Stopped);
        let (lock, cv) = &*self.closed;
        let closed = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = cv
            .wait_timeout_while(closed, CLOSE_WAIT, |closed| !*closed)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

impl Drop for CallbackServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn join_all(threads: Vec<JoinHandle<()>>) {
    for thread in threads {
        let _ = thread.join();
    }
}

/// Accepts until the login ends, then returns, which closes the listener.
/// Non-blocking with a short poll, so that ending needs no wake-up
/// connection (which a flood could delay).
fn accept_loop(
    listener: TcpListener,
    stopped: &AtomicBool,
    active: &Arc<AtomicUsize>,
    login: &Arc<Login>,
) {
    while !stopped.load(Ordering::SeqCst) {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL);
                continue;
            }
            Err(e) => {
                log::debug!("callback server: accept failed: {e}");
                // Out of file descriptors, say: do not spin.
                std::thread::sleep(ACCEPT_POLL * 2);
                continue;
            }
        };
        if stream.set_nonblocking(false).is_err() {
            continue;
        }
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let (login, active) = (login.clone(), active.clone());
        let spawned = std::thread::Builder::new()
            .name("carto-auth-conn".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                handle(stream, &login);
                active.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            log::debug!("callback server: no thread for a connection: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    fn config(port: u16, timeout: Duration) -> CallbackConfig {
        CallbackConfig {
            port,
            path: "/callback/".into(),
            state: "STATE123".into(),
            issuer: "https://auth.carto.com/".into(),
            success_page: "https://app.carto.com/auth/success".into(),
            error_page: "https://app.carto.com/auth/error".into(),
            timeout,
        }
    }

    /// The server binds a free port itself and says which: no port is
    /// picked here and bound later, when another process may have it.
    const ANY_PORT: u16 = 0;

    fn bindable(port: u16) -> bool {
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
    }

    fn get(addr: SocketAddr, target: &str) -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(s, "GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer)
    }

    #[test]
    fn the_port_is_free_once_the_result_is_delivered() {
        let server = CallbackServer::start(config(ANY_PORT, Duration::from_secs(30))).unwrap();
        let port = server.port();
        assert!(!bindable(port));
        let result = server.take_result().unwrap();
        let answer = get(
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            "/callback/?code=abc&state=STATE123",
        )
        .unwrap();
        assert!(answer.starts_with("HTTP/1.1 302"), "{answer}");
        let got = result.recv().unwrap();
        assert!(matches!(got, CallbackResult::Code(c) if c.secret() == "abc"));
        // The server value is still alive: the port is not.
        assert!(bindable(port));
        assert!(get(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), "/").is_err());
        drop(server);
    }

    #[test]
    fn a_timeout_closes_the_port_and_a_late_browser_is_refused() {
        let server = CallbackServer::start(config(ANY_PORT, Duration::from_millis(100))).unwrap();
        let port = server.port();
        let got = server.take_result().unwrap().recv().unwrap();
        assert!(matches!(got, CallbackResult::TimedOut));
        let refused = get(
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            "/callback/?code=late&state=STATE123",
        );
        assert_eq!(
            refused.unwrap_err().kind(),
            std::io::ErrorKind::ConnectionRefused
        );
        assert!(bindable(port));
    }

    #[test]
    fn stop_and_drop_close_the_port_before_they_return() {
        let server = CallbackServer::start(config(ANY_PORT, Duration::from_secs(30))).unwrap();
        let port = server.port();
        server.stop();
        assert!(bindable(port));
        assert!(matches!(
            server.take_result().unwrap().recv().unwrap(),
            CallbackResult::Stopped
        ));

        let server = CallbackServer::start(config(ANY_PORT, Duration::from_secs(30))).unwrap();
        let port = server.port();
        drop(server);
        assert!(bindable(port));
    }

    /// Whether the machine has an IPv6 loopback. Where it has none, says
    /// so past libtest's capture of a passing test's output, so that the
    /// run shows which test checked nothing of IPv6 (and fails with
    /// `CARTO_AUTH_TEST_IPV6=required`, for a CI that must test it).
    fn has_ipv6(test: &str) -> bool {
        let has = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok();
        if !has {
            assert!(
                std::env::var("CARTO_AUTH_TEST_IPV6").as_deref() != Ok("required"),
                "{test}: no IPv6 loopback here, and CARTO_AUTH_TEST_IPV6=required"
            );
            let _ = writeln!(
                std::io::stderr().lock(),
                "\nIPv6 NOT TESTED: {test}: this machine has no IPv6 loopback ([::1])"
            );
        }
        has
    }

    #[test]
    fn both_loopback_families_are_served_where_the_machine_has_ipv6() {
        let has_v6 = has_ipv6("callback: both loopback families are served");
        let server = CallbackServer::start(config(ANY_PORT, Duration::from_secs(30))).unwrap();
        let port = server.port();
        if has_v6 {
            let answer = get(
                SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
                "/favicon.ico",
            )
            .unwrap();
            assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
        }
        drop(server);
        if has_v6 {
            assert!(TcpListener::bind((Ipv6Addr::LOCALHOST, port)).is_ok());
        }
    }

    #[test]
    fn a_foreign_listener_on_ipv6_is_reported_and_nothing_stays_bound() {
        if !has_ipv6("callback: a foreign listener on IPv6 is reported") {
            return;
        }
        let foreign = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).unwrap();
        let port = foreign.local_addr().unwrap().port();
        match CallbackServer::start(config(port, Duration::from_secs(30))) {
            Err(BindError::ForeignIpv6(_)) => {}
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("started beside a foreign [::1] listener"),
        }
        // The IPv4 listener it had bound is closed again.
        assert!(bindable(port));
    }
}
