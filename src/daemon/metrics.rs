//! The Prometheus endpoint, `[metrics] listen`: `GET /metrics` over TCP or a Unix socket.
//! **Shell.**
//!
//! One thread serves one request at a time, and each connection gets two seconds to send its
//! request (at most 8 KiB of it) and take the answer: whatever connects, the endpoint holds one
//! connection and a fixed buffer, and a slow client only delays the next scrape. The numbers
//! come from the main loop (the thread asks it through the same channel as the control
//! socket), so a scrape sees one consistent moment of the engine; the exposition itself is
//! `metrics::exposition`.

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::time::Duration;

use crate::config::MetricsListen;

/// How long a connection may take to send its request and take the answer.
const PATIENCE: Duration = Duration::from_secs(2);
/// The longest request read.
const MAX_REQUEST: usize = 8 * 1024;

/// A bound endpoint, not yet served.
pub enum Endpoint {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix socket.
    Unix(UnixListener),
}

impl Endpoint {
    /// Binds `listen` (a stale Unix socket is replaced; never another file).
    ///
    /// # Errors
    ///
    /// The address is taken or not local, the path cannot be made.
    pub fn bind(listen: &MetricsListen) -> io::Result<Endpoint> {
        let named =
            |e: io::Error| io::Error::new(e.kind(), format!("[metrics] listen {listen}: {e}"));
        match listen {
            MetricsListen::Tcp(addr) => TcpListener::bind(addr).map(Endpoint::Tcp).map_err(named),
            MetricsListen::Unix(path) => {
                // A stale socket goes; another file, or a live socket, stays and is said.
                crate::control::server::clear_stale_socket(path)
                    .map_err(|e| named(io::Error::other(e.to_string())))?;
                UnixListener::bind(path).map(Endpoint::Unix).map_err(named)
            }
        }
    }

    /// Serves on a thread of its own: `scrape` gives the exposition (or `None` when the main
    /// loop did not answer in time).
    ///
    /// # Errors
    ///
    /// The thread cannot be started.
    pub fn spawn(self, scrape: impl Fn() -> Option<String> + Send + 'static) -> io::Result<()> {
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                loop {
                    let served = match &self {
                        Endpoint::Tcp(l) => l.accept().and_then(|(s, _)| {
                            s.set_read_timeout(Some(PATIENCE))?;
                            s.set_write_timeout(Some(PATIENCE))?;
                            serve(s, &scrape)
                        }),
                        Endpoint::Unix(l) => l.accept().and_then(|(s, _)| {
                            s.set_read_timeout(Some(PATIENCE))?;
                            s.set_write_timeout(Some(PATIENCE))?;
                            serve(s, &scrape)
                        }),
                    };
                    // A client that went away, or was too slow, costs nothing more.
                    drop(served);
                }
            })?;
        Ok(())
    }
}

/// Answers one request on `stream`, then closes it.
fn serve(mut stream: impl Read + Write, scrape: &impl Fn() -> Option<String>) -> io::Result<()> {
    let mut request = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < MAX_REQUEST {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, path) = (words.next(), words.next());
    let (status, kind, body) = match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => match scrape() {
            Some(text) => (
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                text,
            ),
            None => (
                "503 Service Unavailable",
                "text/plain; charset=utf-8",
                "sentryd did not answer in time\n".to_string(),
            ),
        },
        (Some(b"GET"), _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "scansentry serves /metrics only\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "GET /metrics only\n".to_string(),
        ),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request and the bytes written back, in memory.
    struct Exchange {
        request: io::Cursor<Vec<u8>>,
        answer: Vec<u8>,
    }

    impl Read for Exchange {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.request.read(buf)
        }
    }

    impl Write for Exchange {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.answer.write(buf)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn answer(request: &[u8], scrape: impl Fn() -> Option<String>) -> String {
        let mut exchange = Exchange {
            request: io::Cursor::new(request.to_vec()),
            answer: Vec::new(),
        };
        serve(&mut exchange, &scrape).unwrap();
        String::from_utf8(exchange.answer).unwrap()
    }

    /// `[metrics] listen` naming a file that is not a socket: refused, the file left as it was
    /// (a typo must not cost the administrator a file); a stale socket is replaced.
    #[test]
    fn a_unix_listen_path_never_removes_another_file() {
        let dir = std::env::temp_dir().join(format!("scansentry-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("precious");
        std::fs::write(&file, "keep me").unwrap();
        let refused = Endpoint::bind(&MetricsListen::Unix(file.clone()))
            .err()
            .expect("a regular file is refused");
        assert!(refused.to_string().contains("precious"), "{refused}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
        let socket = dir.join("metrics.sock");
        drop(UnixListener::bind(&socket).unwrap());
        assert!(
            Endpoint::bind(&MetricsListen::Unix(socket)).is_ok(),
            "a stale socket"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn get_metrics_is_served_and_nothing_else() {
        let ok = answer(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", || {
            Some("scansentry_packets_total 1\n# EOF\n".into())
        });
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Length: 33\r\n"), "{ok}");
        assert!(
            ok.ends_with("\r\n\r\nscansentry_packets_total 1\n# EOF\n"),
            "{ok}"
        );
        let late = answer(b"GET /metrics HTTP/1.1\r\n\r\n", || None);
        assert!(late.starts_with("HTTP/1.1 503 "), "{late}");
        let elsewhere = answer(b"GET / HTTP/1.1\r\n\r\n", || unreachable!());
        assert!(elsewhere.starts_with("HTTP/1.1 404 "), "{elsewhere}");
        let post = answer(b"POST /metrics HTTP/1.1\r\n\r\n", || unreachable!());
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
        // Garbage, and a request that never ends its headers, get an answer and no more.
        let garbage = answer(&[0xff; 20_000], || unreachable!());
        assert!(garbage.starts_with("HTTP/1.1 405 "), "{garbage}");
    }
}
