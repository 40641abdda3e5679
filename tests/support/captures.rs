//! Captures as the daemon's kernel filter would hand them over.

use std::path::{Path, PathBuf};

/// `capture` as the kernel would hand it over with the daemon's capture filter: a copy with
/// only the frames [`scansentry::capture::bpf::PROBES`] passes, compiled for its link type.
pub fn filtered(capture: &Path) -> PathBuf {
    let mut input = pcap::Capture::from_file(capture).unwrap();
    input
        .filter(scansentry::capture::bpf::PROBES, true)
        .expect("the filter compiles for the capture's link type");
    let dir = std::env::temp_dir().join(format!("scansentry-filtered-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(capture.file_name().unwrap());
    let mut save = input.savefile(&out).unwrap();
    while let Ok(packet) = input.next_packet() {
        save.write(&packet);
    }
    save.flush().unwrap();
    out
}

/// A capture of `tests/data` (see its README for how each was made).
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// What `sentryd --replay` finds in `capture` with the built-in default configuration: each
/// detection with the responder's decision, and the summary.
pub fn replay(
    capture: &Path,
) -> (
    Vec<(scansentry::detect::Detection, scansentry::respond::Decision)>,
    scansentry::replay::Summary,
) {
    let mut found = Vec::new();
    let summary = scansentry::replay::run(
        &scansentry::replay::ReplayOptions {
            capture: capture.to_path_buf(),
            config: scansentry::config::Config::default(),
            locals: Vec::new(),
            disable_local_check: false,
        },
        |d, decision| found.push((d.clone(), decision.clone())),
    )
    .unwrap_or_else(|e| panic!("replay of {} failed: {e}", capture.display()));
    (found, summary)
}
