//! The Prometheus endpoint, `[metrics] listen`: `GET /metrics` over TCP or a Unix socket.
//! **Shell.**
//!
//! One thread accepts connections and serves each on a thread of its own, [`MAX_CLIENTS`] at
//! once at most (past that a connection is closed at once). Each connection has [`PATIENCE`]
//! in all to send its request (at most 8 KiB of it; a byte now and then does not stretch it:
//! past the deadline it is answered 408 and closed), and as long again to take the answer.
//! So whatever connects, the endpoint holds a few connections and fixed buffers, and a slow
//! client delays nobody else's scrape. The numbers come from the main loop (each scrape asks
//! it through the same channel as the control socket), so a scrape sees one consistent moment
//! of the engine; the exposition itself is `metrics::exposition`, in the format the request's
//! `Accept` header chooses (`metrics::Format::negotiate`: text unless OpenMetrics is asked).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::config::MetricsListen;
use crate::control::server::{Deadline, Timed};
use crate::metrics::Format;
use crate::time::{Clock, SteadyClock};

/// How long a connection has to send its whole request, and then to take the whole answer.
pub const PATIENCE: Duration = Duration::from_secs(2);
/// Connections served at once at most.
pub const MAX_CLIENTS: usize = 4;
/// The longest request read.
const MAX_REQUEST: usize = 8 * 1024;

/// A bound endpoint, not yet served.
pub enum Endpoint {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix socket.
    Unix(UnixListener),
}

/// An accepted connection of either kind.
enum Connection {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Timed for Connection {
    fn set_read_timeout(&self, limit: Option<Duration>) -> io::Result<()> {
        match self {
            Connection::Tcp(s) => s.set_read_timeout(limit),
            Connection::Unix(s) => s.set_read_timeout(limit),
        }
    }
}

impl Connection {
    fn set_write_timeout(&self, limit: Option<Duration>) -> io::Result<()> {
        match self {
            Connection::Tcp(s) => s.set_write_timeout(limit),
            Connection::Unix(s) => s.set_write_timeout(limit),
        }
    }
}

impl Read for &Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Connection::Tcp(s) => (&*s).read(buf),
            Connection::Unix(s) => (&*s).read(buf),
        }
    }
}

impl Write for &Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Connection::Tcp(s) => (&*s).write(buf),
            Connection::Unix(s) => (&*s).write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A connection's share of [`MAX_CLIENTS`], given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(busy: &Arc<AtomicUsize>) -> Option<Slot> {
        busy.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < MAX_CLIENTS).then_some(n + 1)
        })
        .ok()
        .map(|_| Slot(Arc::clone(busy)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
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

    /// Serves on threads of its own: `scrape` gives the exposition in the format asked for
    /// (or `None` when the main loop did not answer in time).
    ///
    /// # Errors
    ///
    /// The thread cannot be started.
    pub fn spawn(
        self,
        scrape: impl Fn(Format) -> Option<String> + Send + Sync + 'static,
    ) -> io::Result<()> {
        let scrape = Arc::new(scrape);
        let busy = Arc::new(AtomicUsize::new(0));
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                loop {
                    let accepted = match &self {
                        Endpoint::Tcp(l) => l.accept().map(|(s, _)| Connection::Tcp(s)),
                        Endpoint::Unix(l) => l.accept().map(|(s, _)| Connection::Unix(s)),
                    };
                    let Ok(connection) = accepted else { continue };
                    // Every slot taken: closed unanswered.
                    let Some(slot) = Slot::take(&busy) else {
                        continue;
                    };
                    let scrape = Arc::clone(&scrape);
                    // A thread that cannot start drops the connection and gives the slot back.
                    let _ = std::thread::Builder::new()
                        .name("metrics-client".into())
                        .spawn(move || {
                            // A client that went away, or was too slow, costs nothing more.
                            let _ = serve(&connection, &*scrape);
                            drop(slot);
                        });
                }
            })?;
        Ok(())
    }
}

/// Answers one request on `connection` within the deadlines, then closes it.
fn serve(connection: &Connection, scrape: &impl Fn(Format) -> Option<String>) -> io::Result<()> {
    let answer = match read_request(&mut Deadline::new(connection, PATIENCE)) {
        Ok(request) => respond(&request, scrape),
        Err(e) if e.kind() == io::ErrorKind::TimedOut => http(
            "408 Request Timeout",
            "text/plain; charset=utf-8",
            &format!(
                "the request did not arrive within {}s\n",
                PATIENCE.as_secs()
            ),
        ),
        Err(e) => return Err(e),
    };
    write_within(connection, &answer, PATIENCE)
}

/// Writes all of `bytes` within `limit` in all.
fn write_within(connection: &Connection, bytes: &[u8], limit: Duration) -> io::Result<()> {
    let clock = SteadyClock::new();
    let until = clock.now().saturating_add(limit);
    let mut rest = bytes;
    while !rest.is_empty() {
        let left = until.saturating_since(clock.now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        connection.set_write_timeout(Some(left))?;
        let mut writer = connection;
        match writer.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The request's head: read up to its blank line, the end of the stream, or 8 KiB.
fn read_request(stream: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut request = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < MAX_REQUEST {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    Ok(request)
}

/// The value of the request head's `Accept` header (its first, as text), if it has one.
fn accept(request: &[u8]) -> Option<&str> {
    request
        .split(|&b| b == b'\n')
        .skip(1)
        .filter_map(|line| std::str::from_utf8(line).ok())
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("accept")
                .then(|| value.trim())
        })
}

/// The answer to `request`, whole.
fn respond(request: &[u8], scrape: &impl Fn(Format) -> Option<String>) -> Vec<u8> {
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, path) = (words.next(), words.next());
    let format = Format::negotiate(accept(request));
    match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => match scrape(format) {
            Some(text) => http("200 OK", format.content_type(), &text),
            None => http(
                "503 Service Unavailable",
                "text/plain; charset=utf-8",
                "sentryd did not answer in time\n",
            ),
        },
        (Some(b"GET"), _) => http(
            "404 Not Found",
            "text/plain; charset=utf-8",
            "scansentry serves /metrics only\n",
        ),
        _ => http(
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "GET /metrics only\n",
        ),
    }
}

fn http(status: &str, kind: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(request: &[u8], scrape: impl Fn(Format) -> Option<String>) -> String {
        let head = read_request(&mut io::Cursor::new(request.to_vec())).unwrap();
        String::from_utf8(respond(&head, &scrape)).unwrap()
    }

    /// Issue 24, 12: one client sending a byte every 1.5 s held the endpoint for ever (the
    /// 2 s were per read, and one connection was served at a time). Here a client trickles a
    /// request that never ends, a byte every 300 ms: a scrape on another connection meanwhile
    /// is answered while the slow one still holds its connection, and the slow one is answered
    /// 408 and cut at the deadline, long before it would have stopped.
    #[test]
    fn issue_24_a_slow_client_is_cut_at_the_deadline_and_delays_no_scrape() {
        let dir = std::env::temp_dir().join(format!("scansentry-slow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.sock");
        Endpoint::bind(&MetricsListen::Unix(path.clone()))
            .unwrap()
            .spawn(|_| Some("scansentry_up 1\n# EOF\n".into()))
            .unwrap();
        let mut slow = UnixStream::connect(&path).unwrap();
        slow.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        slow.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
        let (tx, scraped) = std::sync::mpsc::channel();
        let to = path.clone();
        let scraper = std::thread::spawn(move || {
            let mut s = UnixStream::connect(&to).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            let _ = tx.send(answer);
        });
        // At most 40 bytes, 12 s: the deadline is 2 s.
        let (mut scrape, mut slow_answer, mut cut) = (None, Vec::new(), false);
        for _ in 0..40 {
            if scrape.is_none() {
                scrape = scraped.try_recv().ok();
            }
            let _ = slow.write_all(b"X");
            let mut buf = [0u8; 512];
            match slow.read(&mut buf) {
                Ok(0) => {
                    cut = true;
                    break;
                }
                Ok(n) => slow_answer.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    cut = true;
                    break;
                }
            }
        }
        let scrape = scrape.expect("the scrape was not answered while the slow client held on");
        assert!(scrape.starts_with("HTTP/1.1 200 OK\r\n"), "{scrape}");
        assert!(scrape.ends_with("scansentry_up 1\n# EOF\n"), "{scrape}");
        assert!(cut, "the slow client was never cut");
        let slow_answer = String::from_utf8_lossy(&slow_answer);
        assert!(
            slow_answer.starts_with("HTTP/1.1 408 Request Timeout\r\n")
                && slow_answer.ends_with("the request did not arrive within 2s\n"),
            "{slow_answer}"
        );
        scraper.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
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
        let ok = answer(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", |_| {
            Some("scansentry_packets_total 1\n# EOF\n".into())
        });
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Length: 33\r\n"), "{ok}");
        assert!(
            ok.ends_with("\r\n\r\nscansentry_packets_total 1\n# EOF\n"),
            "{ok}"
        );
        let late = answer(b"GET /metrics HTTP/1.1\r\n\r\n", |_| None);
        assert!(late.starts_with("HTTP/1.1 503 "), "{late}");
        let elsewhere = answer(b"GET / HTTP/1.1\r\n\r\n", |_| unreachable!());
        assert!(elsewhere.starts_with("HTTP/1.1 404 "), "{elsewhere}");
        let post = answer(b"POST /metrics HTTP/1.1\r\n\r\n", |_| unreachable!());
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
        // Garbage, and a request that never ends its headers, get an answer and no more.
        let garbage = answer(&[0xff; 20_000], |_| unreachable!());
        assert!(garbage.starts_with("HTTP/1.1 405 "), "{garbage}");
    }

    /// Issue 26, 7: Prometheus's text format unless the scraper asks for OpenMetrics, as
    /// Prometheus negotiates: its own scrape header gets OpenMetrics, curl (`*/*`) and a
    /// request without the header get text, and the answer says which.
    #[test]
    fn issue_26_the_accept_header_chooses_the_format() {
        let by_format = |f: Format| Some(format!("{f:?}\n"));
        let prometheus = b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: \
            application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
            version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n\r\n";
        let om = answer(prometheus, by_format);
        assert!(
            om.contains(
                "\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"
            ) && om.ends_with("\r\n\r\nOpenMetrics\n"),
            "{om}"
        );
        for request in [
            &b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"GET /metrics HTTP/1.1\r\naccept: */*\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nAccept: text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5\r\n\r\n",
        ] {
            let text = answer(request, by_format);
            assert!(
                text.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n")
                    && text.ends_with("\r\n\r\nText\n"),
                "{text}"
            );
        }
    }
}
