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
