//! The lab services of `lab_services.py` (an SSH banner on 22, a web server on 80 and 8080, TLS
//! on 443, DNS on 53 over UDP and TCP) in a namespace, and ordinary clients of them: what a
//! version scan and a false positive are both tried against.

use std::process::Command;
use std::time::Duration;

use super::netns::{KillOnDrop, NetnsPair, wait_until};

/// The services, in the victim's namespace of `lab`, for at most `seconds`; ended on drop.
pub fn start(lab: &NetnsPair, seconds: u32) -> KillOnDrop {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/lab_services.py");
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.a, "timeout", &seconds.to_string()])
        .args(["python3", script, &seconds.to_string()])
        .spawn()
        .expect("python3");
    let guard = KillOnDrop(child);
    let up = wait_until(Duration::from_secs(10), || {
        let out = lab.exec(&lab.a, &["ss", "-ltnH"]);
        String::from_utf8_lossy(&out.stdout).lines().count() >= 5
    });
    assert!(up, "the lab services did not start");
    guard
}

/// Ordinary clients of the services from `from` (an IPv4 address of the scanner's namespace)
/// to `to`: curl (HTTP/1.0, HTTP/1.1, HTTPS), python's TLS client, dig over TCP and UDP
/// (version.bind CH TXT too), ssh, three HAProxy-style `OPTIONS / HTTP/1.0` health checks to
/// each web port and one minimal `GET / HTTP/1.0`. Each bounded by a timeout.
pub fn ordinary_clients(lab: &NetnsPair, from: &str, to: &str) {
    let python = |code: String| {
        lab.exec(&lab.b, &["timeout", "10", "python3", "-c", &code]);
    };
    for url in [
        format!("http://{to}/"),
        format!("http://{to}:8080/index.html"),
        format!("https://{to}/"),
    ] {
        let http10 = if url.starts_with("http://") && url.ends_with('/') {
            "--http1.0"
        } else {
            "--http1.1"
        };
        lab.exec(
            &lab.b,
            &[
                "curl",
                "-s",
                "-k",
                "-m",
                "5",
                "--interface",
                from,
                http10,
                "-o",
                "/dev/null",
                &url,
            ],
        );
    }
    python(format!(
        "import socket, ssl\n\
         c = ssl.create_default_context(); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE\n\
         s = c.wrap_socket(socket.create_connection(('{to}', 443), 5, ('{from}', 0)))\n\
         s.sendall(b'GET / HTTP/1.1\\r\\nHost: lab\\r\\n\\r\\n'); s.recv(100); s.close()"
    ));
    let server = format!("@{to}");
    for args in [
        &["+tcp", "example.org", "A"][..],
        &["example.org", "AAAA"],
        &["+tcp", "version.bind", "CH", "TXT"],
        &["version.bind", "CH", "TXT"],
    ] {
        let mut dig = vec!["dig", "+time=2", "+tries=1", "-b", from, &server];
        dig.extend_from_slice(args);
        lab.exec(&lab.b, &dig);
    }
    lab.exec(
        &lab.b,
        &[
            "timeout",
            "5",
            "ssh",
            "-b",
            from,
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=3",
            &format!("lab@{to}"),
            "true",
        ],
    );
    for _ in 0..3 {
        for port in [80, 8080] {
            python(format!(
                "import socket\n\
                 s = socket.create_connection(('{to}', {port}), 5, ('{from}', 0))\n\
                 s.sendall(b'OPTIONS / HTTP/1.0\\r\\n\\r\\n'); s.recv(200); s.close()"
            ));
        }
    }
    python(format!(
        "import socket\n\
         s = socket.create_connection(('{to}', 80), 5, ('{from}', 0))\n\
         s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n'); s.recv(200); s.close()"
    ));
}
