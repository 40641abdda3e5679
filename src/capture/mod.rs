//! Packet sources. **Shell**: this is where bytes come from.
//!
//! [`PcapFile`] reads a capture file (pcap or pcapng) through libpcap, for `sentryd --replay`
//! and the replay tests. Live capture joins it with the daemon.

use std::path::{Path, PathBuf};

use crate::time::Timestamp;
use crate::wire::LinkType;

/// One captured frame, borrowed from the source until the next call.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Capture time.
    pub at: Timestamp,
    /// The captured bytes (possibly fewer than were on the wire).
    pub data: &'a [u8],
}

/// Why a capture could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened as a capture.
    #[error("cannot open capture {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// libpcap's reason.
        #[source]
        source: pcap::Error,
    },
    /// The capture's link type is not one scansentry parses.
    #[error(
        "cannot replay {}: link type {name} ({dlt}) is not supported \
         (Ethernet, Linux cooked v1/v2, raw IP and loopback are)",
        path.display()
    )]
    UnsupportedLink {
        /// The file.
        path: PathBuf,
        /// The DLT number.
        dlt: i32,
        /// Its name, as libpcap knows it.
        name: String,
    },
    /// Reading stopped part-way (a truncated or corrupt file).
    #[error("cannot read capture {} after {frames} frames", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Frames read before the error.
        frames: u64,
        /// libpcap's reason.
        #[source]
        source: pcap::Error,
    },
}

/// A capture file, read frame by frame.
pub struct PcapFile {
    capture: pcap::Capture<pcap::Offline>,
    link: LinkType,
    path: PathBuf,
    frames: u64,
}

impl PcapFile {
    /// Opens `path` and checks its link type.
    ///
    /// # Errors
    ///
    /// [`CaptureError::Open`] when libpcap cannot read it as a capture;
    /// [`CaptureError::UnsupportedLink`] for link types [`crate::wire`] does not parse.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let capture = pcap::Capture::from_file(path).map_err(|source| CaptureError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let dlt = capture.get_datalink();
        let link = LinkType::from_dlt(dlt.0).ok_or_else(|| CaptureError::UnsupportedLink {
            path: path.to_path_buf(),
            dlt: dlt.0,
            name: dlt.get_name().unwrap_or_else(|_| "unknown".into()),
        })?;
        Ok(PcapFile {
            capture,
            link,
            path: path.to_path_buf(),
            frames: 0,
        })
    }

    /// The link type of every frame.
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// The next frame, or `None` at the end of the file.
    ///
    /// # Errors
    ///
    /// [`CaptureError::Read`] when the file is truncated or corrupt.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        match self.capture.next_packet() {
            Ok(packet) => {
                self.frames += 1;
                let ts = packet.header.ts;
                Ok(Some(Frame {
                    at: Timestamp::from_timeval(ts.tv_sec, ts.tv_usec),
                    data: packet.data,
                }))
            }
            Err(pcap::Error::NoMorePackets) => Ok(None),
            Err(source) => Err(CaptureError::Read {
                path: self.path.clone(),
                frames: self.frames,
                source,
            }),
        }
    }
}
