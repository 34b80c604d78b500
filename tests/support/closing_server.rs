//! A loopback HTTP/1.1 server of std's own: each connection carries one
//! request, answered on a thread of its own and closed (`Connection:
//! close`). With tiny_http's keep-alive connections, Chromium sometimes
//! waited forever for the answer to a CORS preflight sent on a reused
//! connection (seen in its net log); a fake that a browser calls across
//! origins uses this instead.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::Recorded;

/// An answer: status, body, and headers besides Content-Length.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

pub type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

pub struct ClosingServer {
    pub base: String,
    stop: Arc<AtomicBool>,
}

impl ClosingServer {
    /// Serves `handler` on a free loopback port.
    pub fn start(handler: Handler) -> ClosingServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback server");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let handler = handler.clone();
                std::thread::spawn(move || serve(stream, &*handler));
            }
        });
        ClosingServer { base, stop }
    }
}

impl Drop for ClosingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then stops.
        let _ = TcpStream::connect(self.base.trim_start_matches("http://"));
    }
}

/// One request from `stream`: the head up to the blank line, then as many
/// body bytes as `Content-Length` says.
fn read_request(stream: &mut TcpStream) -> Option<Recorded> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let (method, target) = (words.next()?.to_string(), words.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let body = String::from_utf8_lossy(&body).into_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let form = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let authorization = headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone());
    Some(Recorded {
        method,
        path: path.to_string(),
        query,
        form,
        body,
        authorization,
        headers,
        at: Instant::now(),
        peer: stream.peer_addr().ok(),
    })
}

fn serve(mut stream: TcpStream, handler: &(dyn Fn(&Recorded) -> Reply + Send + Sync)) {
    let Some(r) = read_request(&mut stream) else {
        return;
    };
    let reply = handler(&r);
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        if reply.status < 300 { "OK" } else { "Error" },
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&reply.body);
    let _ = stream.flush();
}
