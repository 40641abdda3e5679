//! The link to the fleet's NATS servers. **Shell.**
//!
//! A thread of its own runs the NATS client (async-nats, on a current-thread tokio runtime), so
//! that the main loop never waits on the network: it hands this host's messages to a bounded
//! outbox ([`Link::send`] takes a lock for a push, nothing more) and takes the others' from two
//! bounded queues ([`Link::take`]).
//!
//! - **Out**: the outbox holds at most [`OUTBOX`] messages; when full, the oldest is dropped and
//!   counted. While no server is connected, messages wait there. Each is published on its core
//!   subject (`PREFIX.block.HOST`: fast), and a block or an unblock is also put in the JetStream
//!   key-value bucket of active blocks under `HOST.NET` (state, for catch-up).
//! - **In**: four subscriptions, `PREFIX.block.*` and `PREFIX.unblock.*`, `PREFIX.heartbeat.*`
//!   and `PREFIX.probes.*.ITSELF`, each of at most [`SUBSCRIPTION_CAPACITY`] messages in the
//!   client (past that the client drops them), read without pause. A message is dropped
//!   (counted) when larger than [`MAX_MESSAGE`] before anything reads it, when its origin is over
//!   its cap ([`caps`]: blocks and unblocks apart from the rest), or when it fails
//!   [`Message::decode`] (schema, origin against subject, the body against the subject's kind).
//!   Blocks and unblocks wait for the main loop in a queue of their own ([`BLOCKS_WAITING`]),
//!   summaries and heartbeats in another ([`OTHERS_WAITING`]): a flood of one cannot crowd out
//!   the other, and past its bound a queue drops what comes (counted).
//! - **The bucket**: hosts do not make it (`sentryctl fleet init` does, see [`bucket`]). At every
//!   connection the link reads the stream's configuration and uses the bucket only when
//!   [`bucket::refusal`] finds nothing wrong; otherwise it says why (log and `status`), and blocks
//!   still go over core NATS.
//! - **Catch-up**: at every connection (the first and each reconnection), a task of its own, while
//!   the link goes on reading, reads the last entry of every key of the bucket in batches, at most
//!   [`CATCH_UP_PER_HOST`] per host and [`CATCH_UP_MAX`] in all; an entry whose key does not name
//!   its message's origin and network is refused (counted). It waits for room in the queue of
//!   blocks (half of it is kept for live blocks) rather than drop.
//! - **Members**: a heartbeat every [`HEARTBEAT_EVERY`], handed over like any message: the
//!   engine keeps the members (those heard from within [`crate::fleet::MEMBER_FOR`]), whose
//!   list says which host owns which scanner prefix's sweep count.

pub mod bucket;
pub mod caps;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;

use crate::config::fleet::{Credentials, FleetConfig};
use crate::engine::LinkFigures;
use crate::fleet::HEARTBEAT_EVERY;
use crate::fleet::message::{Body, HostName, MAX_MESSAGE, Message, Subject};
use crate::time::{Clock, SteadyClock};

pub use bucket::bucket_name;

/// Messages waiting to be sent at most (the oldest is dropped past this).
pub const OUTBOX: usize = 4096;
/// Received blocks and unblocks waiting for the main loop at most (more are dropped).
pub const BLOCKS_WAITING: usize = 4096;
/// Received summaries and heartbeats waiting for the main loop at most (more are dropped).
pub const OTHERS_WAITING: usize = 1024;
/// Messages each subscription holds in the client at most, unread (past that the client drops
/// them): with the example server's 64 KiB `max_payload`, 2 MiB a subscription.
pub const SUBSCRIPTION_CAPACITY: usize = 32;
/// Entries of the bucket read in one request at catch-up (within the subscription's capacity).
const CATCH_UP_BATCH: usize = 16;
/// Entries of the bucket handed over at a catch-up at most, in all.
pub const CATCH_UP_MAX: usize = 65_536;
/// Entries of the bucket handed over at a catch-up at most from one host: 66,000 keys under one
/// member's name do not push the others' blocks out of what a new host reads.
pub const CATCH_UP_PER_HOST: usize = 4096;
/// Entries of the bucket read at a catch-up at most (the bucket's bytes bound them too).
const CATCH_UP_READ_MAX: usize = 4 * CATCH_UP_MAX;
/// Hosts counted at a catch-up at most (the entries of others are not read).
const CATCH_UP_HOSTS: usize = 4096;
/// How often the round trip to the server is measured.
const ROUND_TRIP_EVERY: Duration = Duration::from_secs(5);
/// How long a stopping daemon gives the link to send what waits.
const CLOSE_WITHIN: Duration = Duration::from_secs(1);
/// How long one call on the server (a put, a read of the bucket) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the link could not be set up, or `sentryctl fleet init` failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A credentials file could not be read.
    #[error("[fleet] cannot read {what} {path}: {error}")]
    Credentials {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The system's host name cannot name this host in the fleet.
    #[error("[fleet] host is not set and the system's host name will not do: {0}")]
    HostName(String),
    /// The thread could not be started.
    #[error("cannot start the fleet link's thread: {0}")]
    Thread(std::io::Error),
    /// No NATS server answered.
    #[error("cannot connect to NATS at {servers}: {why}")]
    Connect {
        /// The servers tried.
        servers: String,
        /// Why.
        why: String,
    },
    /// A JetStream call failed.
    #[error("cannot {what}: {why}")]
    Stream {
        /// What was being done.
        what: String,
        /// Why.
        why: String,
    },
    /// The bucket's stream exists, made otherwise than the fleet needs.
    #[error(
        "the stream {stream} exists but is unsafe: {why}; delete it (`nats stream rm {stream}`) \
         and run `sentryctl fleet init` again"
    )]
    Unsafe {
        /// The stream's name.
        stream: String,
        /// What is wrong with it.
        why: String,
    },
}

/// This host's name in the fleet: `[fleet] host`, or the system's host name up to its first dot.
///
/// # Errors
///
/// When neither names it.
pub fn host_name(config: &FleetConfig) -> Result<HostName, LinkError> {
    if let Some(host) = &config.host {
        return Ok(host.clone());
    }
    let name = nix::unistd::gethostname().map_err(|e| LinkError::HostName(e.to_string()))?;
    let name = name.to_string_lossy();
    let short = name.split('.').next().unwrap_or_default();
    HostName::new(short).map_err(LinkError::HostName)
}

/// Names this host in `config`'s `[fleet]` (when on) if the configuration does not.
///
/// # Errors
///
/// When the system's host name cannot name it.
pub fn name_host(config: &mut crate::config::Config) -> Result<(), LinkError> {
    if let Some(fleet) = &mut config.fleet {
        fleet.host = Some(host_name(fleet)?);
    }
    Ok(())
}

/// What `sentryctl fleet init` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Made {
    /// The stream was made now.
    Made(String),
    /// It was there already, made as the fleet needs.
    AlreadyThere(String),
}

/// `sentryctl fleet init`: connects with `config`'s `[fleet]` settings and makes the bucket's
/// stream ([`bucket::stream_config`]), or finds it made as the fleet needs; never changes an
/// existing one.
///
/// # Errors
///
/// When no server answers, JetStream refuses, or the stream exists and [`bucket::refusal`] finds
/// it unsafe.
pub fn init(config: &FleetConfig) -> Result<Made, LinkError> {
    let host = config
        .host
        .clone()
        .or_else(|| HostName::new("fleet-init").ok())
        .expect("fleet-init is a host name");
    let options = connect_options(config, &host)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LinkError::Thread)?;
    runtime.block_on(async {
        let servers = config.servers.join(",");
        // Once, without retrying: a refusal (TLS, permissions) is said as the server said it.
        let connect = options.connect(config.servers.as_slice());
        let client = match tokio::time::timeout(Duration::from_secs(5), connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                return Err(LinkError::Connect {
                    servers,
                    why: e.to_string(),
                });
            }
            Err(_) => {
                return Err(LinkError::Connect {
                    servers,
                    why: "no answer within 5s".into(),
                });
            }
        };
        let jetstream = async_nats::jetstream::new(client.clone());
        let wanted = bucket::stream_config(&config.prefix);
        let stream = wanted.name.clone();
        let call = |what: String| move |why: String| LinkError::Stream { what, why };
        let found = tokio::time::timeout(CALL_TIMEOUT, jetstream.get_stream(&stream)).await;
        let made = match found {
            Ok(Ok(existing)) => {
                match bucket::refusal(&config.prefix, &existing.cached_info().config) {
                    Some(why) => return Err(LinkError::Unsafe { stream, why }),
                    None => Made::AlreadyThere(stream),
                }
            }
            Ok(Err(e)) if not_found(&e) => {
                tokio::time::timeout(CALL_TIMEOUT, jetstream.create_stream(wanted))
                    .await
                    .map_err(|_| "timed out".to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
                    .map_err(call(format!("make the stream {stream}")))?;
                Made::Made(stream)
            }
            Ok(Err(e)) => return Err(call(format!("read the stream {stream}"))(e.to_string())),
            Err(_) => {
                return Err(call(format!("read the stream {stream}"))(
                    "timed out".to_string(),
                ));
            }
        };
        let _ = tokio::time::timeout(CLOSE_WITHIN, client.flush()).await;
        Ok(made)
    })
}

/// Whether the server said there is no such stream.
fn not_found(e: &async_nats::jetstream::context::GetStreamError) -> bool {
    use async_nats::jetstream::context::GetStreamErrorKind;
    matches!(e.kind(), GetStreamErrorKind::JetStream(j)
        if j.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// One message on its way out.
struct Outgoing {
    subject: String,
    payload: Vec<u8>,
    /// Its key in the bucket, for blocks and unblocks.
    key: Option<String>,
}

/// What waits for the main loop: blocks and unblocks apart from the rest.
#[derive(Default)]
struct Inbox {
    blocks: VecDeque<Message>,
    others: VecDeque<Message>,
}

/// Why the link dropped a message it received, for `status` and the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum InDrop {
    /// Larger than [`MAX_MESSAGE`].
    TooLarge,
    /// Its origin over its cap.
    OverCap,
    /// Not a valid message, or not the kind its subject says.
    Invalid,
    /// Its queue was full.
    QueueFull,
    /// An entry of the bucket whose key does not name its origin and network.
    BadEntry,
}

impl InDrop {
    const ALL: [InDrop; 5] = [
        InDrop::TooLarge,
        InDrop::OverCap,
        InDrop::Invalid,
        InDrop::QueueFull,
        InDrop::BadEntry,
    ];

    fn name(self) -> &'static str {
        match self {
            InDrop::TooLarge => "too large",
            InDrop::OverCap => "over its origin's cap",
            InDrop::Invalid => "invalid",
            InDrop::QueueFull => "queue full",
            InDrop::BadEntry => "bad bucket entry",
        }
    }
}

/// What the main loop and the link's thread share.
struct Shared {
    outbox: Mutex<VecDeque<Outgoing>>,
    inbox: Mutex<Inbox>,
    /// Wakes the thread: something to send, or time to close.
    wake: tokio::sync::Notify,
    closing: AtomicBool,
    dropped: AtomicU64,
    sent: AtomicU64,
    /// Received messages dropped, by [`InDrop`] (its index in [`InDrop::ALL`]).
    dropped_in: [AtomicU64; 5],
    connected: AtomicBool,
    server: Mutex<String>,
    /// Why the bucket is not used, when it is not.
    bucket_refused: Mutex<Option<String>>,
    /// Microseconds; `u64::MAX` when not measured yet.
    round_trip_us: AtomicU64,
    /// This host's own addresses, which its heartbeats claim ([`Link::set_addresses`]).
    addresses: Mutex<Vec<ipnet::IpNet>>,
}

impl Shared {
    /// Nothing sent, received or known yet.
    fn new() -> Shared {
        Shared {
            outbox: Mutex::new(VecDeque::new()),
            inbox: Mutex::new(Inbox::default()),
            wake: tokio::sync::Notify::new(),
            closing: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            dropped_in: Default::default(),
            connected: AtomicBool::new(false),
            server: Mutex::new(String::new()),
            bucket_refused: Mutex::new(None),
            round_trip_us: AtomicU64::new(u64::MAX),
            addresses: Mutex::new(Vec::new()),
        }
    }

    fn count(&self, why: InDrop) {
        let i = InDrop::ALL.iter().position(|d| *d == why).unwrap_or(0);
        self.dropped_in[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Wakes the main loop (and says whether it still runs).
type WakeMain = Arc<dyn Fn() -> bool + Send + Sync>;

/// The link: the main loop's handle on the thread.
pub struct Link {
    host: HostName,
    prefix: String,
    shared: Arc<Shared>,
    done: std::sync::mpsc::Receiver<()>,
}

impl Link {
    /// Starts the link for `config` as `host`; `wake` wakes the main loop when received
    /// messages wait for [`Link::take`] (and says whether the main loop still runs).
    ///
    /// # Errors
    ///
    /// When a credentials file cannot be read, or the thread cannot start. A server that
    /// cannot be reached is not an error: the link keeps trying, and local blocking goes on.
    pub fn start(
        config: &FleetConfig,
        host: HostName,
        wake: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Result<Link, LinkError> {
        let options = connect_options(config, &host)?;
        let plain = config.plain_servers();
        if !plain.is_empty() {
            tracing::warn!(
                "fleet: insecure: {} without TLS ([fleet] insecure = true): messages go in clear \
                 and anyone who reaches the server can publish",
                plain.join(", ")
            );
        }
        let shared = Arc::new(Shared::new());
        let (done_tx, done) = std::sync::mpsc::channel();
        let thread = Thread {
            servers: config.servers.clone(),
            prefix: config.prefix.clone(),
            host: host.clone(),
            shared: Arc::clone(&shared),
            wake_main: Arc::new(wake),
        };
        std::thread::Builder::new()
            .name("fleet".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(thread.run(options)),
                    Err(e) => tracing::warn!("fleet: cannot start the NATS client's runtime: {e}"),
                }
                let _ = done_tx.send(());
            })
            .map_err(LinkError::Thread)?;
        Ok(Link {
            host,
            prefix: config.prefix.clone(),
            shared,
            done,
        })
    }

    /// Queues `body` as this host's message; never waits on the network. A full outbox drops
    /// its oldest message (counted).
    pub fn send(&self, body: Body, to: Option<&HostName>) {
        let key = match &body {
            Body::Block { net, .. } | Body::Unblock { net, .. } => {
                Some(bucket::key(&self.host, *net))
            }
            Body::Probes { .. } | Body::Heartbeat { .. } => None,
        };
        let subject = Subject::of(&self.prefix, &self.host, &body, to);
        let payload = match Message::new(self.host.clone(), body).encode() {
            Ok(payload) => payload,
            Err(e) => {
                tracing::warn!("fleet: not sending a message of this host's: {e}");
                return;
            }
        };
        {
            let mut outbox = self
                .shared
                .outbox
                .lock()
                .expect("the outbox lock is never poisoned");
            if outbox.len() >= OUTBOX {
                outbox.pop_front();
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            outbox.push_back(Outgoing {
                subject,
                payload,
                key,
            });
        }
        self.shared.wake.notify_one();
    }

    /// The addresses this host's heartbeats claim from now on
    /// ([`crate::engine::Engine::fleet_addresses`]).
    pub fn set_addresses(&self, addresses: Vec<ipnet::IpNet>) {
        *self.shared.addresses.lock().expect("never poisoned") = addresses;
    }

    /// The received messages waiting: up to `blocks` blocks and unblocks first, then up to
    /// `others` summaries and heartbeats; and whether more wait.
    pub fn take(&self, blocks: usize, others: usize) -> (Vec<Message>, bool) {
        let mut inbox = self.shared.inbox.lock().expect("never poisoned");
        let b = blocks.min(inbox.blocks.len());
        let o = others.min(inbox.others.len());
        let mut taken: Vec<Message> = inbox.blocks.drain(..b).collect();
        taken.extend(inbox.others.drain(..o));
        let more = !inbox.blocks.is_empty() || !inbox.others.is_empty();
        (taken, more)
    }

    /// The link's figures, for the engine's `status`.
    pub fn figures(&self) -> LinkFigures {
        let s = &self.shared;
        LinkFigures {
            connected: s.connected.load(Ordering::Relaxed),
            server: s.server.lock().expect("never poisoned").clone(),
            round_trip_us: Some(s.round_trip_us.load(Ordering::Relaxed))
                .filter(|&us| us != u64::MAX),
            queued: s.outbox.lock().expect("never poisoned").len(),
            dropped_out: s.dropped.load(Ordering::Relaxed),
            dropped_in: InDrop::ALL
                .iter()
                .zip(&s.dropped_in)
                .map(|(d, n)| (d.name().to_string(), n.load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            bucket_refused: s.bucket_refused.lock().expect("never poisoned").clone(),
            sent: s.sent.load(Ordering::Relaxed),
        }
    }

    /// Stops the link, giving it [`CLOSE_WITHIN`] to send what waits.
    pub fn close(self) {
        self.shared.closing.store(true, Ordering::Relaxed);
        self.shared.wake.notify_one();
        let _ = self.done.recv_timeout(CLOSE_WITHIN);
    }
}

fn connect_options(
    config: &FleetConfig,
    host: &HostName,
) -> Result<async_nats::ConnectOptions, LinkError> {
    let read = |what: &'static str, path: &std::path::Path| {
        std::fs::read_to_string(path).map_err(|error| LinkError::Credentials {
            what,
            path: path.display().to_string(),
            error,
        })
    };
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("scansentry {host}"))
        // Its own messages are not sent back to it: half the bus traffic of a small fleet.
        .no_echo()
        // Few unread messages per subscription: a flood (or a stalled reader) cannot make the
        // client queue 65,536 messages of a mebibyte each; past this the client drops them.
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .ping_interval(Duration::from_secs(5))
        // Quick to come back after a server restart, without hammering a server that is down.
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((100 * attempts as u64).min(1000))
        });
    options = match &config.credentials {
        Credentials::None => options,
        Credentials::Password { user, file } => {
            let password = read("the password file", file)?;
            options.user_and_password(user.clone(), password.trim_end().to_string())
        }
        Credentials::Creds(file) => {
            let creds = read("the creds file", file)?;
            options
                .credentials(&creds)
                .map_err(|error| LinkError::Credentials {
                    what: "the creds file",
                    path: file.display().to_string(),
                    error,
                })?
        }
        Credentials::Nkey(file) => {
            options.nkey(read("the nkey seed file", file)?.trim().to_string())
        }
    };
    if let Some(tls) = &config.tls {
        options = options
            .require_tls(true)
            .add_root_certificates(tls.ca.clone());
        if let Some((cert, key)) = &tls.client {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
    }
    Ok(options)
}

/// The link's thread.
struct Thread {
    servers: Vec<String>,
    prefix: String,
    host: HostName,
    shared: Arc<Shared>,
    wake_main: WakeMain,
}

/// The messages of two subscriptions, as one stream.
type Subscriptions = futures_util::stream::SelectAll<async_nats::Subscriber>;

/// What the link holds while connected: the bucket (when it is usable) and the catch-up task.
struct Session {
    jetstream: async_nats::jetstream::Context,
    bucket: Option<async_nats::jetstream::kv::Store>,
    catching_up: Option<tokio::task::JoinHandle<()>>,
}

impl Thread {
    async fn run(self, options: async_nats::ConnectOptions) {
        let (events_tx, mut events) = tokio::sync::mpsc::channel(64);
        let options = options
            .retry_on_initial_connect()
            .event_callback(move |event| {
                let events_tx = events_tx.clone();
                async move {
                    // Connection events only matter as the latest: a full channel loses nothing.
                    let _ = events_tx.try_send(event);
                }
            });
        let client = match options.connect(self.servers.as_slice()).await {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!("fleet: cannot connect to NATS: {e}; fleet mode is off");
                return;
            }
        };
        *self.shared.server.lock().expect("never poisoned") = self.servers.join(",");
        let (mut blocks_in, mut others_in) = match self.subscribe(&client).await {
            Ok(inboxes) => inboxes,
            Err(e) => {
                tracing::warn!("fleet: {e}; fleet mode is off");
                return;
            }
        };
        let mut session = Session {
            jetstream: async_nats::jetstream::new(client.clone()),
            bucket: None,
            catching_up: None,
        };
        let clock = SteadyClock::new();
        let mut caps = caps::Caps::new(caps::BLOCKS, caps::OTHERS, clock.now());
        let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
        let mut round_trip = tokio::time::interval(ROUND_TRIP_EVERY);
        loop {
            tokio::select! {
                () = self.shared.wake.notified() => {
                    if self.shared.closing.load(Ordering::Relaxed) {
                        return self.close_down(&client, &mut session).await;
                    }
                    self.flush(&client, session.bucket.as_ref()).await;
                }
                event = events.recv() => match event {
                    Some(event) => self.on_event(event, &client, &mut session).await,
                    None => return,
                },
                message = blocks_in.next() => {
                    let Some(message) = message else { return };
                    self.receive(&message, &mut caps, clock.now());
                }
                message = others_in.next() => {
                    let Some(message) = message else { return };
                    self.receive(&message, &mut caps, clock.now());
                }
                _ = heartbeat.tick() => self.heartbeat(&client).await,
                _ = round_trip.tick() => self.measure_round_trip(&client).await,
            }
        }
    }

    /// Blocks and unblocks apart from what every host says often (heartbeats) and the probe
    /// summaries sent to this host as an owner: a flood of the latter fills only their own
    /// subscriptions in the client.
    async fn subscribe(
        &self,
        client: &async_nats::Client,
    ) -> Result<(Subscriptions, Subscriptions), String> {
        let p = &self.prefix;
        let blocks = subscribe(client, [format!("{p}.block.*"), format!("{p}.unblock.*")]).await?;
        let others = [
            format!("{p}.heartbeat.*"),
            format!("{p}.probes.*.{}", self.host),
        ];
        Ok((blocks, subscribe(client, others).await?))
    }

    /// A connection event. On (re)connection: the bucket is opened, what waited is sent, and
    /// the catch-up begins anew.
    async fn on_event(
        &self,
        event: async_nats::Event,
        client: &async_nats::Client,
        session: &mut Session,
    ) {
        match event {
            async_nats::Event::Connected => {
                self.shared.connected.store(true, Ordering::Relaxed);
                let info = client.server_info();
                *self.shared.server.lock().expect("never poisoned") =
                    format!("{}:{}", info.host, info.port);
                tracing::info!(
                    "fleet: connected to NATS at {}:{} as {}",
                    info.host,
                    info.port,
                    self.host
                );
                session.bucket = self.open_bucket(&session.jetstream).await;
                // What waited goes first: the others learn of this host's blocks before it
                // reads the bucket, which takes a while when it is large.
                self.flush(client, session.bucket.as_ref()).await;
                if let Some(task) = session.catching_up.take() {
                    task.abort();
                }
                session.catching_up = session.bucket.as_ref().map(|store| {
                    tokio::spawn(catch_up(
                        store.clone(),
                        self.host.clone(),
                        Arc::clone(&self.shared),
                        Arc::clone(&self.wake_main),
                    ))
                });
            }
            async_nats::Event::Disconnected => {
                self.shared.connected.store(false, Ordering::Relaxed);
                tracing::warn!(
                    "fleet: lost the connection to NATS; local blocking goes on, this host's \
                     messages wait (at most {OUTBOX})"
                );
            }
            async_nats::Event::ServerError(e) => tracing::warn!("fleet: NATS server error: {e}"),
            _ => {}
        }
    }

    /// The link closes: the catch-up stops, and what waits is sent within [`CLOSE_WITHIN`].
    async fn close_down(&self, client: &async_nats::Client, session: &mut Session) {
        if let Some(task) = session.catching_up.take() {
            task.abort();
        }
        self.flush(client, session.bucket.as_ref()).await;
        let _ = tokio::time::timeout(CLOSE_WITHIN, client.flush()).await;
    }

    /// Says this host is here, with its addresses, while connected.
    async fn heartbeat(&self, client: &async_nats::Client) {
        if client.connection_state() != async_nats::connection::State::Connected {
            return;
        }
        let at = crate::time::Clock::now(&crate::time::SystemClock);
        let addresses = self
            .shared
            .addresses
            .lock()
            .expect("never poisoned")
            .clone();
        let body = Body::Heartbeat { at, addresses };
        let subject = Subject::of(&self.prefix, &self.host, &body, None);
        if let Ok(payload) = Message::new(self.host.clone(), body).encode() {
            let _ = client.publish(subject, payload.into()).await;
        }
    }

    /// Times a round trip to the server (a flush), while connected.
    async fn measure_round_trip(&self, client: &async_nats::Client) {
        if client.connection_state() != async_nats::connection::State::Connected {
            return;
        }
        let start = tokio::time::Instant::now();
        if let Ok(Ok(())) = tokio::time::timeout(CALL_TIMEOUT, client.flush()).await {
            let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX - 1);
            self.shared.round_trip_us.store(us, Ordering::Relaxed);
        }
    }

    /// Sends what waits in the outbox, while connected.
    async fn flush(
        &self,
        client: &async_nats::Client,
        bucket: Option<&async_nats::jetstream::kv::Store>,
    ) {
        while client.connection_state() == async_nats::connection::State::Connected {
            let next = self
                .shared
                .outbox
                .lock()
                .expect("never poisoned")
                .pop_front();
            let Some(out) = next else { return };
            let payload = bytes::Bytes::from(out.payload);
            if let Err(e) = client.publish(out.subject, payload.clone()).await {
                tracing::warn!("fleet: cannot publish: {e}");
                continue;
            }
            self.shared.sent.fetch_add(1, Ordering::Relaxed);
            if let (Some(key), Some(store)) = (out.key, bucket) {
                match tokio::time::timeout(CALL_TIMEOUT, store.put(&key, payload)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!("fleet: cannot keep {key} in the bucket: {e}"),
                    Err(_) => tracing::warn!("fleet: keeping {key} in the bucket timed out"),
                }
            }
        }
    }

    /// A message from a subscription: dropped when too large (before anything reads it), not
    /// for this host, over its origin's cap or invalid; otherwise queued for the main loop.
    fn receive(
        &self,
        message: &async_nats::Message,
        caps: &mut caps::Caps,
        now: crate::time::Timestamp,
    ) {
        if message.payload.len() > MAX_MESSAGE {
            return self.shared.count(InDrop::TooLarge);
        }
        let Some(subject) = Subject::parse(&self.prefix, message.subject.as_str()) else {
            return;
        };
        if subject.host == self.host.as_str()
            || subject
                .to
                .as_ref()
                .is_some_and(|to| to != self.host.as_str())
        {
            return;
        }
        let class = match subject.kind {
            "block" | "unblock" => caps::Class::Blocks,
            _ => caps::Class::Others,
        };
        if !caps.admit(&subject.host, class, now) {
            return self.shared.count(InDrop::OverCap);
        }
        match Message::decode(&message.payload, &subject.host) {
            Ok(decoded) if kind_of(&decoded.body) == subject.kind => {
                hand_over(&self.shared, decoded, &self.wake_main);
            }
            Ok(_) => {
                tracing::debug!(
                    "fleet: refused a message on {}: not the kind its subject says",
                    message.subject
                );
                self.shared.count(InDrop::Invalid);
            }
            Err(e) => {
                tracing::debug!("fleet: refused a message on {}: {e}", message.subject);
                self.shared.count(InDrop::Invalid);
            }
        }
    }

    /// The bucket of active blocks, when its stream is there and made as the fleet needs; when
    /// not, why is logged and kept for `status`.
    async fn open_bucket(
        &self,
        jetstream: &async_nats::jetstream::Context,
    ) -> Option<async_nats::jetstream::kv::Store> {
        let name = bucket_name(&self.prefix);
        let stream = format!("KV_{name}");
        let refused = match tokio::time::timeout(CALL_TIMEOUT, jetstream.get_stream(&stream)).await
        {
            Ok(Ok(found)) => bucket::refusal(&self.prefix, &found.cached_info().config)
                .map(|why| format!("the stream {stream} is unsafe: {why}")),
            Ok(Err(e)) => Some(format!(
                "cannot read the stream {stream} ({e}); make it with `sentryctl fleet init`"
            )),
            Err(_) => Some(format!("reading the stream {stream} timed out")),
        };
        let opened = match refused {
            Some(why) => Err(why),
            None => {
                match tokio::time::timeout(CALL_TIMEOUT, jetstream.get_key_value(&name)).await {
                    Ok(Ok(store)) => Ok(store),
                    Ok(Err(e)) => Err(format!("cannot open the bucket {name}: {e}")),
                    Err(_) => Err(format!("opening the bucket {name} timed out")),
                }
            }
        };
        match opened {
            Ok(store) => {
                *self.shared.bucket_refused.lock().expect("never poisoned") = None;
                Some(store)
            }
            Err(why) => {
                tracing::warn!(
                    "fleet: not using the bucket {name}: {why}; blocks still go to the fleet, \
                     catch-up is off"
                );
                *self.shared.bucket_refused.lock().expect("never poisoned") = Some(why);
                None
            }
        }
    }
}

/// Subscribes to both `subjects`, as one stream.
async fn subscribe(
    client: &async_nats::Client,
    subjects: [String; 2],
) -> Result<Subscriptions, String> {
    let mut subscriptions = Vec::new();
    for subject in subjects {
        match client.subscribe(subject.clone()).await {
            Ok(subscriber) => subscriptions.push(subscriber),
            Err(e) => return Err(format!("cannot subscribe to {subject}: {e}")),
        }
    }
    Ok(futures_util::stream::select_all(subscriptions))
}

/// The subject kind a body travels under.
fn kind_of(body: &Body) -> &'static str {
    match body {
        Body::Block { .. } => "block",
        Body::Unblock { .. } => "unblock",
        Body::Probes { .. } => "probes",
        Body::Heartbeat { .. } => "heartbeat",
    }
}

/// Queues a checked message for the main loop (dropped, counted, when its queue is full), and
/// wakes the main loop when the queues were empty.
fn hand_over(shared: &Shared, message: Message, wake_main: &WakeMain) {
    let was_empty = {
        let mut inbox = shared.inbox.lock().expect("never poisoned");
        let was_empty = inbox.blocks.is_empty() && inbox.others.is_empty();
        let (queue, bound) = match message.body {
            Body::Block { .. } | Body::Unblock { .. } => (&mut inbox.blocks, BLOCKS_WAITING),
            Body::Probes { .. } | Body::Heartbeat { .. } => (&mut inbox.others, OTHERS_WAITING),
        };
        if queue.len() >= bound {
            drop(inbox);
            shared.count(InDrop::QueueFull);
            return;
        }
        queue.push_back(message);
        was_empty
    };
    if was_empty {
        wake_main();
    }
}

/// Reads the last entry of every key of the bucket, in batches, and queues the others' blocks
/// and unblocks ([`CATCH_UP_PER_HOST`] per host, [`CATCH_UP_MAX`] in all) for the main loop,
/// waiting while the queue of blocks is half full. Runs as a task of its own: the link reads on.
async fn catch_up(
    store: async_nats::jetstream::kv::Store,
    me: HostName,
    shared: Arc<Shared>,
    wake_main: WakeMain,
) {
    let Some(consumer) = catch_up_consumer(&store).await else {
        return;
    };
    let mut tally = Tally::default();
    'batches: while tally.read < CATCH_UP_READ_MAX && tally.taken < CATCH_UP_MAX {
        let batch = consumer
            .fetch()
            .max_messages(CATCH_UP_BATCH)
            .expires(Duration::from_secs(1))
            .messages()
            .await;
        let mut batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!("fleet: reading the bucket to catch up failed: {e}");
                break;
            }
        };
        let (mut got, mut pending) = (0, 0);
        while let Some(Ok(entry)) = batch.next().await {
            got += 1;
            tally.read += 1;
            pending = entry.info().map_or(0, |i| i.pending);
            let Some(message) = tally.take(&entry, &store.prefix, &me, &shared) else {
                continue;
            };
            while shared.inbox.lock().expect("never poisoned").blocks.len() >= BLOCKS_WAITING / 2 {
                if !wake_main() {
                    break 'batches;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            hand_over(&shared, message, &wake_main);
        }
        if got == 0 || pending == 0 {
            break;
        }
    }
    tally.log();
}

/// A consumer of the last entry of every key of `store`'s bucket.
async fn catch_up_consumer(
    store: &async_nats::jetstream::kv::Store,
) -> Option<async_nats::jetstream::consumer::Consumer<async_nats::jetstream::consumer::pull::Config>>
{
    use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
    let config = pull::Config {
        deliver_policy: DeliverPolicy::LastPerSubject,
        ack_policy: AckPolicy::None,
        filter_subject: format!("{}>", store.prefix),
        inactive_threshold: Duration::from_secs(30),
        ..Default::default()
    };
    match tokio::time::timeout(CALL_TIMEOUT, store.stream.create_consumer(config)).await {
        Ok(Ok(consumer)) => Some(consumer),
        Ok(Err(e)) => {
            tracing::warn!("fleet: cannot read the bucket to catch up: {e}");
            None
        }
        Err(_) => {
            tracing::warn!("fleet: reading the bucket to catch up timed out");
            None
        }
    }
}

/// What a catch-up read and took, per host and in all.
#[derive(Default)]
struct Tally {
    per_host: HashMap<String, usize>,
    read: usize,
    taken: usize,
    over: usize,
}

impl Tally {
    /// The message of the bucket's `entry` (its subject under `prefix`), if it is another
    /// host's, its host within [`CATCH_UP_HOSTS`] and [`CATCH_UP_PER_HOST`], and it is valid.
    fn take(
        &mut self,
        entry: &async_nats::jetstream::Message,
        prefix: &str,
        me: &HostName,
        shared: &Shared,
    ) -> Option<Message> {
        let key = entry.subject.as_str().strip_prefix(prefix)?;
        // Deleted and purged keys (which the stream denies) carry a header and no value.
        if entry
            .headers
            .as_ref()
            .is_some_and(|h| h.get("KV-Operation").is_some())
        {
            return None;
        }
        let Some((host, _)) = key.split_once('.') else {
            shared.count(InDrop::BadEntry);
            return None;
        };
        if host == me.as_str() {
            return None;
        }
        let known = self.per_host.len();
        let count = match self.per_host.get_mut(host) {
            Some(count) => count,
            None if known < CATCH_UP_HOSTS => self.per_host.entry(host.to_string()).or_default(),
            None => {
                self.over += 1;
                return None;
            }
        };
        if *count >= CATCH_UP_PER_HOST {
            self.over += 1;
            return None;
        }
        match bucket::entry(key, &entry.payload) {
            Ok(message) => {
                *count += 1;
                self.taken += 1;
                Some(message)
            }
            Err(e) => {
                tracing::debug!("fleet: refused the bucket's entry {key}: {e}");
                shared.count(InDrop::BadEntry);
                None
            }
        }
    }

    fn log(&self) {
        let left = if self.over > 0 {
            format!(
                " ({} left unread: past {CATCH_UP_PER_HOST} from one host)",
                crate::report::count(self.over as u64, "entry", "entries")
            )
        } else {
            String::new()
        };
        tracing::info!(
            "fleet: caught up with {} from the bucket{left}",
            crate::report::count(self.taken as u64, "entry", "entries")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat(origin: &str) -> Message {
        Message::new(
            HostName::new(origin).unwrap(),
            Body::Heartbeat {
                at: crate::time::Timestamp::from_micros(1),
                addresses: Vec::new(),
            },
        )
    }

    fn block(origin: &str) -> Message {
        let at = crate::time::Timestamp::from_micros(1);
        Message::new(
            HostName::new(origin).unwrap(),
            Body::Block {
                net: "203.0.113.9/32".parse().unwrap(),
                kind: "syn".into(),
                ports: vec![],
                at,
                until: at,
            },
        )
    }

    fn shared() -> Shared {
        Shared::new()
    }

    #[test]
    fn a_flood_of_summaries_and_heartbeats_leaves_the_blocks_queue_its_room() {
        let shared = shared();
        let wakes = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&wakes);
        let wake: WakeMain = Arc::new(move || {
            counted.fetch_add(1, Ordering::Relaxed);
            true
        });
        for _ in 0..OTHERS_WAITING * 10 {
            hand_over(&shared, heartbeat("web-2"), &wake);
        }
        hand_over(&shared, block("web-3"), &wake);
        let inbox = shared.inbox.lock().unwrap();
        assert_eq!(inbox.others.len(), OTHERS_WAITING);
        assert_eq!(inbox.blocks.len(), 1);
        assert_eq!(
            shared.dropped_in[InDrop::ALL
                .iter()
                .position(|d| *d == InDrop::QueueFull)
                .unwrap()]
            .load(Ordering::Relaxed),
            (OTHERS_WAITING * 9) as u64
        );
        // The main loop is woken once, when the queues stop being empty.
        assert_eq!(wakes.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn the_main_loop_takes_blocks_first_and_a_bounded_number_a_turn() {
        let shared = Arc::new(shared());
        let wake: WakeMain = Arc::new(|| true);
        for _ in 0..100 {
            hand_over(&shared, heartbeat("web-2"), &wake);
        }
        for _ in 0..10 {
            hand_over(&shared, block("web-3"), &wake);
        }
        let (_done_tx, done) = std::sync::mpsc::channel();
        let link = Link {
            host: HostName::new("web-1").unwrap(),
            prefix: "scansentry".into(),
            shared,
            done,
        };
        let (taken, more) = link.take(4, 16);
        assert_eq!(taken.len(), 20);
        assert!(taken[..4].iter().all(|m| kind_of(&m.body) == "block"));
        assert!(taken[4..].iter().all(|m| kind_of(&m.body) == "heartbeat"));
        assert!(more);
        let (taken, _) = link.take(256, 1000);
        assert_eq!(taken.len(), 6 + 84);
        assert_eq!(link.take(256, 16), (Vec::new(), false));
    }
}
