//! Packet sources. **Shell**: this is where bytes come from.
//!
//! [`PcapFile`] reads a capture file (pcap or pcapng) through libpcap, for `sentryd --replay`
//! and the replay tests; [`LiveCapture`] captures on the daemon's interfaces through libpcap
//! (cooked, so that each frame carries the kernel's packet type and interface), [`raw`] through
//! a packet socket of its own, and [`connect`] binds trap ports instead of capturing.

pub mod bpf;
pub mod coalesce;
pub mod connect;
pub mod raw;

use std::path::{Path, PathBuf};

use crate::time::Timestamp;
use crate::wire::{Direction, LinkType};

/// One captured frame, borrowed from the source until the next call.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Capture time.
    pub at: Timestamp,
    /// The captured bytes (possibly fewer than were on the wire).
    pub data: &'a [u8],
    /// Which way it went, when the source knows it apart from the bytes (the raw method's
    /// socket address); [`Direction::Unknown`] when the bytes say it (cooked captures) or
    /// nothing does.
    pub direction: Direction,
    /// The interface, when the source knows it apart from the bytes (the raw method).
    pub ifindex: Option<u32>,
    /// Whether the source knows, apart from the bytes, that the frame crossed a loopback
    /// device (the raw method's socket address).
    pub loopback: bool,
    /// Whether `data` is the whole frame (libpcap's captured length is its length on the wire;
    /// the raw method's read did not fill its buffer).
    pub whole: bool,
}

impl<'a> From<pcap::Packet<'a>> for Frame<'a> {
    fn from(packet: pcap::Packet<'a>) -> Self {
        let ts = packet.header.ts;
        Frame {
            at: Timestamp::from_timeval(ts.tv_sec, ts.tv_usec),
            data: packet.data,
            direction: Direction::Unknown,
            ifindex: None,
            loopback: false,
            whole: packet.header.caplen >= packet.header.len,
        }
    }
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
                Ok(Some(Frame::from(packet)))
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

/// Settings of a live capture.
#[derive(Clone, Debug)]
pub struct LiveSettings {
    /// The device: `any`, or an interface name.
    pub device: String,
    /// Bytes kept of each frame: enough for every header up to TCP's flags.
    pub snaplen: i32,
    /// Kernel buffer, bytes: at 8 MiB no drops were seen up to ~450k probes/s.
    pub buffer: i32,
    /// Hand each frame over at once; otherwise in batches, at most `timeout_ms` late.
    pub immediate: bool,
    /// How long the kernel may hold captured frames before handing them over, ms (when not
    /// immediate).
    pub timeout_ms: i32,
    /// The kernel (BPF) filter.
    pub filter: String,
}

impl LiveSettings {
    /// The captures the configuration calls for, one per device.
    pub fn for_config(config: &crate::config::CaptureConfig) -> Vec<LiveSettings> {
        let filter = bpf::filter(&config.interfaces);
        bpf::devices(&config.interfaces)
            .into_iter()
            .map(|device| LiveSettings {
                device,
                snaplen: 160,
                buffer: 8 << 20,
                immediate: config.immediate,
                timeout_ms: 5,
                filter: filter.clone(),
            })
            .collect()
    }
}

/// A live capture through libpcap.
pub struct LiveCapture {
    capture: pcap::Capture<pcap::Active>,
    link: LinkType,
    device: String,
}

/// Why a live capture failed.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The device could not be opened (commonly: no permission).
    #[error("cannot capture on {device}")]
    Open {
        /// The device.
        device: String,
        /// libpcap's reason.
        #[source]
        source: pcap::Error,
    },
    /// The capture's link type is not one scansentry parses.
    #[error("cannot capture on {device}: link type {dlt} is not supported")]
    UnsupportedLink {
        /// The device.
        device: String,
        /// The DLT number.
        dlt: i32,
    },
    /// The raw method's packet socket failed.
    #[error("cannot capture on {device}")]
    Raw {
        /// What was captured.
        device: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Reading failed.
    #[error("capture on {device} failed")]
    Read {
        /// The device.
        device: String,
        /// libpcap's reason.
        #[source]
        source: pcap::Error,
    },
}

impl LiveError {
    /// Whether the failure is a missing privilege (CAP_NET_RAW).
    pub fn is_permission(&self) -> bool {
        match self {
            LiveError::Open { source, .. } => {
                let text = source.to_string();
                text.contains("permission") || text.contains("not permitted")
            }
            LiveError::Raw { source, .. } => source.kind() == std::io::ErrorKind::PermissionDenied,
            _ => false,
        }
    }
}

impl LiveCapture {
    /// Opens a live capture with `settings`.
    ///
    /// # Errors
    ///
    /// When the device cannot be opened or the filter compiled.
    pub fn open(settings: &LiveSettings) -> Result<Self, LiveError> {
        let open_err = |source| LiveError::Open {
            device: settings.device.clone(),
            source,
        };
        let mut capture = pcap::Capture::from_device(settings.device.as_str())
            .map_err(open_err)?
            .snaplen(settings.snaplen)
            .buffer_size(settings.buffer)
            .immediate_mode(settings.immediate)
            .timeout(settings.timeout_ms)
            .open()
            .and_then(pcap::Capture::setnonblock)
            .map_err(open_err)?;
        // Cooked mode, v2 where offered: its header carries the kernel's packet type, the
        // direction of every frame, and the interface it came in on (what the reverse-path
        // check needs); v1 only the packet type. A device that offers neither keeps its own
        // link type, and direction is inferred from addresses.
        if let Ok(offered) = capture.list_datalinks() {
            let current = capture.get_datalink();
            let cooked = [pcap::Linktype(276), pcap::Linktype(113)];
            if let Some(&want) = cooked.iter().find(|l| offered.contains(l))
                && want != current
            {
                let _ = capture.set_datalink(want);
            }
        }
        capture.filter(&settings.filter, true).map_err(open_err)?;
        // libpcap opens its packet socket without SOCK_CLOEXEC.
        {
            use std::os::fd::AsFd;
            crate::process::close_on_exec(capture.as_fd()).map_err(|source| LiveError::Raw {
                device: settings.device.clone(),
                source,
            })?;
        }
        let dlt = capture.get_datalink().0;
        let link = LinkType::from_dlt(dlt).ok_or_else(|| LiveError::UnsupportedLink {
            device: settings.device.clone(),
            dlt,
        })?;
        Ok(LiveCapture {
            capture,
            link,
            device: settings.device.clone(),
        })
    }

    /// The device captured on.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The link type of every frame.
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// The descriptor to poll: it becomes readable when frames are waiting (at the latest
    /// `timeout_ms` after the first of them arrived).
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.capture.as_fd()
    }

    /// The next frame, or `None` when none is waiting (the capture never blocks).
    ///
    /// # Errors
    ///
    /// When reading fails.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, LiveError> {
        match self.capture.next_packet() {
            Ok(packet) => Ok(Some(Frame::from(packet))),
            Err(pcap::Error::TimeoutExpired) => Ok(None),
            Err(source) => Err(LiveError::Read {
                device: self.device.clone(),
                source,
            }),
        }
    }

    /// Frames the kernel dropped because the buffer was full, and those the interface dropped.
    pub fn drops(&mut self) -> (u32, u32) {
        self.capture
            .stats()
            .map_or((0, 0), |s| (s.dropped, s.if_dropped))
    }
}

/// A live packet source: libpcap, or the raw method's packet socket.
pub enum Live {
    /// `method = "pcap"`.
    Pcap(LiveCapture),
    /// `method = "raw"`.
    Raw(raw::RawCapture),
}

impl Live {
    /// What is captured, for the log.
    pub fn device(&self) -> &str {
        match self {
            Live::Pcap(c) => c.device(),
            Live::Raw(c) => c.device(),
        }
    }

    /// The link type of every frame.
    pub fn link(&self) -> LinkType {
        match self {
            Live::Pcap(c) => c.link(),
            Live::Raw(c) => c.link(),
        }
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Live::Pcap(c) => c.fd(),
            Live::Raw(c) => c.fd(),
        }
    }

    /// The next frame, or `None` when none is waiting.
    ///
    /// # Errors
    ///
    /// When reading fails.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, LiveError> {
        match self {
            Live::Pcap(c) => c.next_frame(),
            Live::Raw(c) => c.next_frame(),
        }
    }

    /// Frames dropped by the kernel and by the interface (0 for the raw method).
    pub fn drops(&mut self) -> (u32, u32) {
        match self {
            Live::Pcap(c) => c.drops(),
            Live::Raw(c) => c.drops(),
        }
    }
}
