//! The link to the fleet's NATS servers. **Shell.**
//!
//! A thread of its own runs the NATS client (async-nats, on a current-thread tokio runtime), so
//! that the main loop never waits on the network: it hands this host's messages to a bounded
//! outbox ([`Link::send`] takes a lock for a push, nothing more) and takes the others' as events.
//!
//! - **Out**: the outbox holds at most [`OUTBOX`] messages; when full, the oldest is dropped and
//!   counted. While no server is connected, messages wait there. Each is published on its core
//!   subject (`PREFIX.block.HOST`: fast), and a block or an unblock is also put in the JetStream
//!   key-value bucket of active blocks under `HOST.NET` (state, for catch-up).
//! - **In**: one subscription, `PREFIX.*.*`. A message is checked ([`Message::decode`]: size,
//!   schema, origin against subject) before it goes to the main loop; at most [`IN_FLIGHT`] wait
//!   there (past that they are dropped and counted, so a flood cannot grow the queue).
//! - **Catch-up**: at every connection (the first and each reconnection), every entry of the
//!   bucket is read and handed over like a live message; the engine takes what is still due.
//! - **Members**: a heartbeat every [`HEARTBEAT_EVERY`], handed over like any message: the
//!   engine keeps the members (those heard from within [`crate::fleet::MEMBER_FOR`]), whose
//!   list says which host owns which scanner prefix's sweep count.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;

use crate::config::fleet::{Credentials, FleetConfig};
use crate::control::protocol::FleetInfo;
use crate::fleet::HEARTBEAT_EVERY;
use crate::fleet::message::{Body, HostName, Message, Subject};
use crate::respond::MAX_BLOCK_FOR;

/// Messages waiting to be sent at most (the oldest is dropped past this).
pub const OUTBOX: usize = 4096;
/// Received messages waiting for the main loop at most (more are dropped).
pub const IN_FLIGHT: usize = 4096;
/// Entries of the bucket read at a catch-up at most.
const CATCH_UP_MAX: usize = 65_536;
/// How often the round trip to the server is measured.
const ROUND_TRIP_EVERY: Duration = Duration::from_secs(5);
/// How long a stopping daemon gives the link to send what waits.
const CLOSE_WITHIN: Duration = Duration::from_secs(1);
/// The bucket of active blocks holds this much at most (about 250,000 entries).
const BUCKET_BYTES: i64 = 256 << 20;
/// How long one call on the server (a put, a read of the bucket) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the link could not be set up.
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

/// Whether the link must be made anew for `new` (what it connects to, or as whom, changed).
pub fn relink(old: &FleetConfig, new: &FleetConfig) -> bool {
    old.servers != new.servers
        || old.host != new.host
        || old.prefix != new.prefix
        || old.credentials != new.credentials
        || old.tls != new.tls
}

/// One message on its way out.
struct Outgoing {
    subject: String,
    payload: Vec<u8>,
    /// Its key in the bucket, for blocks and unblocks.
    key: Option<String>,
}

/// What the main loop and the link's thread share.
struct Shared {
    outbox: Mutex<VecDeque<Outgoing>>,
    /// Wakes the thread: something to send, or time to close.
    wake: tokio::sync::Notify,
    closing: AtomicBool,
    dropped: AtomicU64,
    sent: AtomicU64,
    in_flight: AtomicUsize,
    dropped_in: AtomicU64,
    connected: AtomicBool,
    server: Mutex<String>,
    /// Microseconds; `u64::MAX` when not measured yet.
    round_trip_us: AtomicU64,
    /// This host's own addresses, which its heartbeats claim ([`Link::set_addresses`]).
    addresses: Mutex<Vec<ipnet::IpNet>>,
}

/// The link: the main loop's handle on the thread.
pub struct Link {
    host: HostName,
    prefix: String,
    shared: Arc<Shared>,
    done: std::sync::mpsc::Receiver<()>,
}

impl Link {
    /// Starts the link for `config` as `host`; `deliver` hands a received message to the main
    /// loop (and says whether it still runs).
    ///
    /// # Errors
    ///
    /// When a credentials file cannot be read, or the thread cannot start. A server that
    /// cannot be reached is not an error: the link keeps trying, and local blocking goes on.
    pub fn start(
        config: &FleetConfig,
        host: HostName,
        deliver: impl Fn(Message) -> bool + Send + 'static,
    ) -> Result<Link, LinkError> {
        let options = connect_options(config, &host)?;
        let shared = Arc::new(Shared {
            outbox: Mutex::new(VecDeque::new()),
            wake: tokio::sync::Notify::new(),
            closing: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            dropped_in: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            server: Mutex::new(String::new()),
            round_trip_us: AtomicU64::new(u64::MAX),
            addresses: Mutex::new(Vec::new()),
        });
        let (done_tx, done) = std::sync::mpsc::channel();
        let thread = Thread {
            servers: config.servers.clone(),
            prefix: config.prefix.clone(),
            host: host.clone(),
            shared: Arc::clone(&shared),
        };
        std::thread::Builder::new()
            .name("fleet".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(thread.run(options, deliver)),
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
                Some(bucket_key(&self.host, *net))
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

    /// The main loop took a message [`Link::start`]'s `deliver` handed it.
    pub fn taken(&self) {
        self.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// The link's figures, into the engine's side of `status`.
    pub fn fill(&self, info: &mut FleetInfo) {
        let s = &self.shared;
        info.connected = s.connected.load(Ordering::Relaxed);
        info.server = s.server.lock().expect("never poisoned").clone();
        info.round_trip_us =
            Some(s.round_trip_us.load(Ordering::Relaxed)).filter(|&us| us != u64::MAX);
        info.queued = s.outbox.lock().expect("never poisoned").len();
        info.dropped = s.dropped.load(Ordering::Relaxed) + s.dropped_in.load(Ordering::Relaxed);
        info.sent = s.sent.load(Ordering::Relaxed);
    }

    /// Stops the link, giving it [`CLOSE_WITHIN`] to send what waits.
    pub fn close(self) {
        self.shared.closing.store(true, Ordering::Relaxed);
        self.shared.wake.notify_one();
        let _ = self.done.recv_timeout(CLOSE_WITHIN);
    }
}

/// `HOST.NET` as a key of the bucket: a key is subject tokens, so an IPv6 address's `:` is
/// written `_` (`web-1.2001_db8__1/128`).
fn bucket_key(host: &HostName, net: ipnet::IpNet) -> String {
    format!("{host}.{}", net.to_string().replace(':', "_"))
}

/// The bucket of active blocks: `PREFIX` with its dots as dashes, then `-blocks`.
fn bucket_name(prefix: &str) -> String {
    format!("{}-blocks", prefix.replace('.', "-"))
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
        .retry_on_initial_connect()
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
}

impl Thread {
    async fn run(self, options: async_nats::ConnectOptions, deliver: impl Fn(Message) -> bool) {
        let (events_tx, mut events) = tokio::sync::mpsc::channel(64);
        let options = options.event_callback(move |event| {
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
        // What every host says, and the probe summaries sent to this host as an owner.
        let mut subscriptions = Vec::new();
        for subject in [
            format!("{}.*.*", self.prefix),
            format!("{}.probes.*.{}", self.prefix, self.host),
        ] {
            match client.subscribe(subject.clone()).await {
                Ok(subscriber) => subscriptions.push(subscriber),
                Err(e) => {
                    tracing::warn!("fleet: cannot subscribe to {subject}: {e}; fleet mode is off");
                    return;
                }
            }
        }
        let mut inbox = futures_util::stream::select_all(subscriptions);
        let jetstream = async_nats::jetstream::new(client.clone());
        let mut bucket: Option<async_nats::jetstream::kv::Store> = None;
        let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
        let mut round_trip = tokio::time::interval(ROUND_TRIP_EVERY);
        loop {
            tokio::select! {
                () = self.shared.wake.notified() => {
                    if self.shared.closing.load(Ordering::Relaxed) {
                        self.flush(&client, bucket.as_ref()).await;
                        let _ = tokio::time::timeout(CLOSE_WITHIN, client.flush()).await;
                        return;
                    }
                    self.flush(&client, bucket.as_ref()).await;
                }
                event = events.recv() => match event {
                    Some(async_nats::Event::Connected) => {
                        self.shared.connected.store(true, Ordering::Relaxed);
                        let info = client.server_info();
                        *self.shared.server.lock().expect("never poisoned") =
                            format!("{}:{}", info.host, info.port);
                        tracing::info!("fleet: connected to NATS at {}:{} as {}", info.host, info.port, self.host);
                        bucket = self.open_bucket(&jetstream).await;
                        // What waited goes first: the others learn of this host's blocks
                        // before it reads the bucket, which takes a while when it is large.
                        self.flush(&client, bucket.as_ref()).await;
                        if let Some(store) = &bucket {
                            self.catch_up(store, &deliver).await;
                        }
                    }
                    Some(async_nats::Event::Disconnected) => {
                        self.shared.connected.store(false, Ordering::Relaxed);
                        tracing::warn!("fleet: lost the connection to NATS; local blocking goes on, this host's messages wait (at most {OUTBOX})");
                    }
                    Some(async_nats::Event::ServerError(e)) => tracing::warn!("fleet: NATS server error: {e}"),
                    Some(_) => {}
                    None => return,
                },
                message = inbox.next() => {
                    let Some(message) = message else { return };
                    self.receive(&message, &deliver);
                }
                _ = heartbeat.tick() => {
                    if client.connection_state() == async_nats::connection::State::Connected {
                        let at = crate::time::Clock::now(&crate::time::SystemClock);
                        let addresses = self.shared.addresses.lock().expect("never poisoned").clone();
                        let body = Body::Heartbeat { at, addresses };
                        let subject = Subject::of(&self.prefix, &self.host, &body, None);
                        if let Ok(payload) = Message::new(self.host.clone(), body).encode() {
                            let _ = client.publish(subject, payload.into()).await;
                        }
                    }
                }
                _ = round_trip.tick() => {
                    if client.connection_state() == async_nats::connection::State::Connected {
                        let start = tokio::time::Instant::now();
                        if let Ok(Ok(())) = tokio::time::timeout(CALL_TIMEOUT, client.flush()).await {
                            let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX - 1);
                            self.shared.round_trip_us.store(us, Ordering::Relaxed);
                        }
                    }
                }
            }
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

    /// A message from the subscription: checked, and handed over (heartbeats too: the engine
    /// keeps the members).
    fn receive(&self, message: &async_nats::Message, deliver: &impl Fn(Message) -> bool) {
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
        match Message::decode(&message.payload, &subject.host) {
            Ok(message) => self.hand_over(message, deliver),
            Err(e) => tracing::debug!("fleet: refused a message on {}: {e}", message.subject),
        }
    }

    fn hand_over(&self, message: Message, deliver: &impl Fn(Message) -> bool) {
        if self.shared.in_flight.load(Ordering::Relaxed) >= IN_FLIGHT {
            self.shared.dropped_in.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.shared.in_flight.fetch_add(1, Ordering::Relaxed);
        if !deliver(message) {
            self.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The bucket of active blocks, made if it is not there yet.
    async fn open_bucket(
        &self,
        jetstream: &async_nats::jetstream::Context,
    ) -> Option<async_nats::jetstream::kv::Store> {
        let name = bucket_name(&self.prefix);
        if let Ok(Ok(store)) =
            tokio::time::timeout(CALL_TIMEOUT, jetstream.get_key_value(&name)).await
        {
            return Some(store);
        }
        // The bucket's stream, as a key-value bucket of one value per key is made (the
        // client's own call first asks for account figures a 2.9 server, Debian's, does not
        // give).
        use async_nats::jetstream::stream;
        let config = stream::Config {
            name: format!("KV_{name}"),
            description: Some("scansentry: the fleet's active blocks".into()),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: 1,
            // An entry lasts as long as a block can; the bucket holds at most BUCKET_BYTES,
            // the oldest entries (the least likely still due) going first.
            max_age: MAX_BLOCK_FOR,
            max_bytes: BUCKET_BYTES,
            max_message_size: i32::try_from(crate::fleet::message::MAX_MESSAGE).unwrap_or(i32::MAX),
            storage: stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            num_replicas: 1,
            discard: stream::DiscardPolicy::Old,
            ..Default::default()
        };
        let created = match tokio::time::timeout(
            CALL_TIMEOUT,
            jetstream.get_or_create_stream(config),
        )
        .await
        {
            Ok(Ok(_)) => String::new(),
            Ok(Err(e)) => format!(" ({e})"),
            Err(_) => " (timed out)".to_string(),
        };
        // Made now, or before by another host: opened as a bucket.
        if let Ok(Ok(store)) =
            tokio::time::timeout(CALL_TIMEOUT, jetstream.get_key_value(&name)).await
        {
            return Some(store);
        }
        tracing::warn!(
            "fleet: cannot make the key-value bucket {name}{created}; blocks are shared, not \
             kept for catch-up"
        );
        None
    }

    /// Hands over every entry of the bucket but this host's own.
    async fn catch_up(
        &self,
        store: &async_nats::jetstream::kv::Store,
        deliver: &impl Fn(Message) -> bool,
    ) {
        let keys = match tokio::time::timeout(CALL_TIMEOUT, store.keys()).await {
            Ok(Ok(keys)) => keys,
            Ok(Err(e)) => return tracing::warn!("fleet: cannot read the bucket to catch up: {e}"),
            Err(_) => return tracing::warn!("fleet: reading the bucket to catch up timed out"),
        };
        let mut keys = keys.take(CATCH_UP_MAX);
        let mut taken = 0_usize;
        while let Some(Ok(key)) = keys.next().await {
            let Some((host, _)) = key.split_once('.') else {
                continue;
            };
            if host == self.host.as_str() {
                continue;
            }
            let Ok(Ok(Some(value))) =
                tokio::time::timeout(CALL_TIMEOUT, store.get(key.clone())).await
            else {
                continue;
            };
            match Message::decode(&value, host) {
                Ok(message) => {
                    taken += 1;
                    self.hand_over(message, deliver);
                }
                Err(e) => tracing::debug!("fleet: refused the bucket's entry {key}: {e}"),
            }
        }
        tracing::info!(
            "fleet: caught up with {} from the bucket",
            crate::report::count(taken as u64, "entry", "entries")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_keys_are_subject_tokens_naming_host_and_network() {
        let host = HostName::new("web-1").unwrap();
        assert_eq!(
            bucket_key(&host, "203.0.113.9/32".parse().unwrap()),
            "web-1.203.0.113.9/32"
        );
        assert_eq!(
            bucket_key(&host, "2001:db8::/64".parse().unwrap()),
            "web-1.2001_db8__/64"
        );
        assert_eq!(bucket_name("corp.scansentry"), "corp-scansentry-blocks");
    }
}
