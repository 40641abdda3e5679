//! scansentry: recognise port scans in captured packets and answer them in the firewall.
//!
//! The crate is a functional core with an imperative shell (see `DESIGN.md` in the project's
//! shared notes). Pure modules take plain data and time as arguments and return plain data;
//! only the shell modules do I/O.
//!
//! | module | pure? | owns |
//! |---|---|---|
//! | [`time`] | yes (plus the one system clock) | `Timestamp`, the `Clock` trait |
//! | [`wire`] | yes | link/IP/TCP/UDP parsing, TCP flag classification |
//! | [`never_block`] | yes | the never-block list: CIDR lookup with a reason per entry |
//! | [`detect`] | yes | trap ports, per-source scoring over a sliding window, bounded memory |
//! | [`pipeline`] | yes | packet → (local? reply? never-block?) → detector, with counters |
//! | [`first_line`] | yes | the kernel's first line as a model: what its rules would hold, for replay |
//! | [`respond`] | yes | detections → block decisions and firewall `Action`s |
//! | [`engine`] | yes (drives the ports it is handed: clock, host, firewall) | everything the daemon decides: inputs as values, effects out |
//! | [`fleet`] | yes | fleet mode's messages, the floor, the receiver's gate, the sweep count |
//! | [`metrics`] | yes | the metrics exposition, made from the status answer |
//! | [`trust`] | yes | what evidence counts: sources no scanner can have, … |
//! | [`netlink`] | yes | the netlink message format: one builder, one reader |
//! | [`firewall`] | shell (its trait, encoders and in-memory firewall pure) | nftables over netlink; blackhole routes; dry-run; in-memory |
//! | [`report`] | yes | log lines and JSON for detections and decisions |
//! | [`host`] | parsers pure, readers shell | the host's addresses and listening sockets (sock_diag) |
//! | [`audit`] | policy, diff, codecs pure; collection and history shell | the local exposure audit |
//! | [`config`] | yes | TOML → validated `Config`, of plain types it owns |
//! | [`config_file`] | shell | reads the configuration file for `config` |
//! | [`capture`] | shell | packet sources: capture files and live libpcap capture |
//! | [`replay`] | shell | `sentryd --replay`: the engine over a capture file |
//! | [`state`] | format pure, files shell | blocks and offences kept across restarts |
//! | [`control`] | protocol pure, sockets shell | `sentryctl` ↔ `sentryd` |
//! | [`process`] | shell | programs sentryd starts: no inherited descriptor or environment |
//! | [`daemon`], [`ctl`] | shell | the two binaries: the daemon carries the engine's effects out |
//!
//! Dependency direction: `wire → detect → respond`; `pipeline` joins them; `engine` owns them
//! and the ports (the `Firewall` trait, its `Host`, which reports facts only), and the shell
//! modules carry its effects out. A pure module names only the items of one allow-list
//! (`tests/architecture.rs`, each item with its reason): no shell module, no `pcap`, sockets,
//! files or system calls; and only `time` reads the clock (clippy.toml).

pub mod audit;
pub mod capture;
pub mod config;
pub mod config_file;
pub mod control;
pub mod ctl;
pub mod daemon;
pub mod detect;
pub mod engine;
pub mod exit;
pub mod firewall;
pub mod first_line;
pub mod fleet;
pub mod host;
pub mod metrics;
pub mod netlink;
pub mod never_block;
pub mod pipeline;
pub mod process;
pub mod replay;
pub mod report;
pub mod respond;
pub mod state;
pub mod text;
pub mod time;
pub mod trust;
pub mod wire;
