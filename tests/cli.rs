//! The binaries as an administrator runs them: arguments, output, exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sentryd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sentryd"))
        .args(args)
        .output()
        .expect("run sentryd")
}

fn sentryctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sentryctl"))
        .args(args)
        .output()
        .expect("run sentryctl")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn shared(name: &str) -> String {
    root()
        .join("../shared/pcaps")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// A temporary file with `text`, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("scansentry-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn validate_accepts_the_shipped_example() {
    let example = root().join("packaging/scansentry.toml");
    let o = sentryctl(&["validate", example.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("{}: configuration is valid\n", example.display())
    );
}

#[test]
fn an_unknown_key_exits_78_with_line_and_column_from_both_binaries() {
    let f = TempFile::new("unknown.toml", "[detect]\nthreshold = 5\ntreshold = 20\n");
    for (program, o) in [
        ("sentryctl", sentryctl(&["validate", f.path()])),
        ("sentryd", sentryd(&["--check-config", f.path()])),
    ] {
        assert_eq!(o.status.code(), Some(78), "{program}");
        let err = stderr(&o);
        assert!(
            err.starts_with(&format!(
                "{program}: error: invalid configuration in {}\nTOML parse error at line 3, column 1\n",
                f.path()
            )),
            "{program}: {err}"
        );
        assert!(err.contains("unknown field `treshold`"), "{err}");
        assert_eq!(stdout(&o), "");
    }
}

#[test]
fn semantic_problems_are_all_listed_with_path_key_and_value() {
    let f = TempFile::new(
        "semantic.toml",
        "[detect]\nwindow = \"0s\"\nexclude-tcp = [0]\n[never-block]\naddresses = [\"203.0.113.0/33\"]\n",
    );
    let o = sentryd(&["--check-config", f.path()]);
    assert_eq!(o.status.code(), Some(78));
    let p = f.path();
    assert_eq!(
        stderr(&o),
        format!(
            "sentryd: error: {p}: [detect] window = \"0s\": must be at least 1s\n\
             {p}: [detect] exclude-tcp: port 0 is not a valid port (1-65535)\n\
             {p}: [never-block] addresses: \"203.0.113.0/33\" is not an IP address or CIDR \
             (like \"198.51.100.7\" or \"2001:db8::/32\")\n"
        )
    );
}

#[test]
fn check_config_uses_the_file_given_with_c() {
    let f = TempFile::new("ok.toml", "[respond]\nblock-for = \"2h\"\n");
    let o = sentryd(&["-c", f.path(), "--check-config"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("{}: configuration is valid\n", f.path())
    );
}

#[test]
fn a_missing_config_file_named_explicitly_is_an_error() {
    let o = sentryctl(&["validate", "/nonexistent/scansentry.toml"]);
    assert_eq!(o.status.code(), Some(78));
    assert_eq!(
        stderr(&o),
        "sentryctl: error: cannot read configuration /nonexistent/scansentry.toml: \
         No such file or directory (os error 2)\n"
    );
}

#[test]
fn replay_prints_one_line_per_detection_then_a_summary() {
    let o = sentryd(&["--replay", &shared("tcp_0_1000_20190821.pcap")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "2019-08-21T18:16:47.946644Z would block 172.31.15.102 for 1h: syn scan, 7 ports in 0.1s"
    );
    assert!(lines[1].starts_with("replayed "), "{out}");
    assert!(
        lines[1].ends_with("tcp_0_1000_20190821.pcap: 1005 frames over 10.0s"),
        "{out}"
    );
    assert!(out.contains("local addresses (inferred from the capture): 198.124.152.15\n"));
    assert!(out.contains(
        "detections: 1 (would block 1, already blocked 0, never-block 0, over budget 0)"
    ));
}

#[test]
fn replay_json_is_one_object_per_line() {
    let o = sentryd(&[
        "--replay",
        &shared("tcp_0_1000_20190821.pcap"),
        "--json",
        "--local",
        "198.124.152.15",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let objects: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0]["type"], "detection");
    assert_eq!(objects[0]["target"], "172.31.15.102/32");
    assert_eq!(objects[0]["kinds"], serde_json::json!(["syn"]));
    assert_eq!(objects[0]["seconds"], 3600);
    assert_eq!(objects[1]["type"], "summary");
    assert_eq!(objects[1]["locals_inferred"], false);
    assert_eq!(objects[1]["counters"]["probes"], 999);
}

#[test]
fn replay_of_something_that_is_not_a_capture_says_so() {
    let f = TempFile::new("not-a-capture.pcap", "hello\n");
    let o = sentryd(&["--replay", f.path()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "sentryd: error: cannot open capture {}: libpcap error: unknown file format\n",
            f.path()
        )
    );
}

#[test]
fn replay_with_a_bad_config_exits_78_before_reading_the_capture() {
    let f = TempFile::new("bad.toml", "[detect]\nthreshold = -1\n");
    let o = sentryd(&["-c", f.path(), "--replay", &shared("whois.pcap")]);
    assert_eq!(o.status.code(), Some(78));
    assert!(stderr(&o).contains("[detect] threshold = -1: must be from 1 to 1000000"));
}

#[test]
fn argument_errors_exit_2() {
    let o = sentryd(&["--local", "198.51.100.1"]);
    assert_eq!(o.status.code(), Some(2));
    let o = sentryd(&["--replay", "x.pcap", "--local", "198.51.100.300"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("invalid value '198.51.100.300' for '--local <ADDR>'"));
    let o = sentryctl(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}
