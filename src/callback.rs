//! The loopback server that receives the browser's redirect in the local flow.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tiny_http::{Header, Method, Response, Server};

use crate::oauth::{CallbackOutcome, parse_callback_query};
use crate::secret::AuthorizationCode;

/// How a wait for the callback ended.
#[derive(Debug)]
pub(crate) enum CallbackResult {
    Code(AuthorizationCode),
    Denied { error: String, description: Option<String> },
    TimedOut,
    Stopped,
}

/// A server bound to `127.0.0.1:<port>`: loopback only, never reachable from
/// another machine.
pub(crate) struct CallbackServer {
    server: Server,
    path: String,
    stopped: AtomicBool,
}

impl CallbackServer {
    pub(crate) fn bind(port: u16, path: &str) -> Result<Arc<Self>, String> {
        let server = Server::http(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(CallbackServer { server, path: path.to_string(), stopped: AtomicBool::new(false) }))
    }

    /// Makes a running [`serve`](Self::serve) return `Stopped`.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.server.unblock();
    }

    /// Answers requests until one carries this login's code or error, the
    /// deadline passes, or [`stop`](Self::stop) is called. Stray requests (a
    /// favicon, another path, no or wrong `state`, other methods) get an
    /// answer and are otherwise ignored, so they can neither end the login
    /// nor inject a code.
    pub(crate) fn serve(
        &self,
        state: &str,
        timeout: Duration,
        success_page: &str,
        error_page: &str,
    ) -> CallbackResult {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stopped.load(Ordering::SeqCst) {
                return CallbackResult::Stopped;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return CallbackResult::TimedOut;
            }
            let request = match self.server.recv_timeout(left) {
                Ok(Some(request)) => request,
                Ok(None) => continue,
                Err(e) => {
                    log::debug!("callback server: {e}");
                    continue;
                }
            };
            let (path, query) = request.url().split_once('?').unwrap_or((request.url(), ""));
            let outcome = if *request.method() != Method::Get {
                respond(request, 405, "Only GET is served here.", None);
                continue;
            } else if path != self.path {
                respond(request, 404, "Not found.", None);
                continue;
            } else {
                parse_callback_query(query, state)
            };
            match outcome {
                CallbackOutcome::Stray => {
                    respond(
                        request,
                        400,
                        "This is not the CARTO login this program is waiting for. \
                         Use the sign-in link it printed.",
                        None,
                    );
                }
                CallbackOutcome::Code(code) => {
                    respond(request, 302, "Signed in to CARTO. You can close this tab.", Some(success_page));
                    return CallbackResult::Code(code);
                }
                CallbackOutcome::Denied { error, description } => {
                    respond(request, 302, "The CARTO login failed; see the notebook or terminal.", Some(error_page));
                    return CallbackResult::Denied { error, description };
                }
            }
        }
    }
}

fn respond(request: tiny_http::Request, status: u16, message: &str, location: Option<&str>) {
    // A redirect for browsers, and a page with a link for anything that does
    // not follow it. Neither holds a value from the request.
    let body = match location {
        Some(to) => format!(
            "<!doctype html><meta charset=utf-8><title>CARTO</title>\
             <p>{message}</p><p><a href=\"{to}\">Continue</a></p>"
        ),
        None => format!("<!doctype html><meta charset=utf-8><title>CARTO</title><p>{message}</p>"),
    };
    let mut response = Response::from_string(body).with_status_code(status);
    if let Ok(h) = Header::from_bytes("Content-Type", "text/html; charset=utf-8") {
        response.add_header(h);
    }
    if let Some(to) = location
        && let Ok(h) = Header::from_bytes("Location", to)
    {
        response.add_header(h);
    }
    if let Err(e) = request.respond(response) {
        log::debug!("callback server: could not answer: {e}");
    }
}
