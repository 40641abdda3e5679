//! The main loop: frames and trap connections in, detections to the daemon, the other threads'
//! events, the periodic chores, and the wait for whichever comes first. **Shell.**

use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::start::Running;
use super::{FRAMES_PER_TURN, LISTENERS_EVERY, SAVE_EVERY, STATUS_EVERY};
use crate::capture::coalesce::Coalesce;
use crate::capture::connect::TrapSockets;
use crate::config::Method;
use crate::daemon::notify::notify;
use crate::exit;
use crate::host;
use crate::time::{Clock, Timestamp};

/// When each periodic chore is next due.
struct Chores {
    listeners: Timestamp,
    save: Timestamp,
    status: Timestamp,
}

impl Running {
    /// Runs until SIGTERM or SIGINT (exit 0) or a capture or poll failure (exit 1).
    pub(super) fn serve(mut self) -> ExitCode {
        let clock = self.daemon.clock;
        let now = clock.now();
        let mut chores = Chores {
            listeners: now.saturating_add(LISTENERS_EVERY),
            save: now.saturating_add(SAVE_EVERY),
            status: now,
        };
        let mut ready_traps: Vec<usize> = Vec::new();
        // Captures that wake the loop for every frame (immediate pcap, the raw socket) pause
        // briefly between turns under a flood; batched pcap needs no help.
        let capture = &self.daemon.config().capture;
        let per_frame = match capture.method {
            Method::Raw => true,
            Method::Pcap => capture.immediate,
            Method::Connect => false,
        };
        let mut coalesce = per_frame.then(|| Coalesce::new(now));
        loop {
            self.take_connections(&mut ready_traps);
            let frames = match self.take_frames() {
                Ok(frames) => frames,
                Err(code) => return code,
            };
            let pause = coalesce.as_mut().and_then(|c| c.turn(clock.now(), frames));
            let mut drained = [0u8; 64];
            while nix::unistd::read(self.wake_read.as_fd(), &mut drained).is_ok_and(|n| n > 0) {}
            if self.daemon.on_events(&self.events) {
                return self.stop();
            }
            let next_heal = self.daemon.heal_if_due();
            self.chores(&mut chores);
            // Sleep until frames are waiting, another thread has something, or the next chore.
            let next = chores
                .listeners
                .min(chores.save)
                .min(chores.status)
                .min(next_heal.unwrap_or(chores.status));
            if let Some(pause) = pause {
                std::thread::sleep(pause);
            }
            if let Err(code) = self.wait(next, &mut ready_traps) {
                return code;
            }
        }
    }

    /// Connect mode: the connections and datagrams waiting on the trap sockets `ready` says.
    fn take_connections(&mut self, ready: &mut Vec<usize>) {
        let Some(sockets) = &self.traps_bound else {
            return;
        };
        let mut arrivals = Vec::new();
        sockets.take(ready.drain(..), &mut arrivals);
        for a in &arrivals {
            let at = self.daemon.clock.now();
            if let Some(d) = self
                .daemon
                .pipeline
                .connection(at, a.src, a.dst, a.proto, a.port)
            {
                // The trap ports are the daemon's own sockets: no second look at the socket
                // table, which lists them as listening.
                self.daemon.on_detection(&d);
            }
        }
    }

    /// Up to [`FRAMES_PER_TURN`] frames of each capture, through the pipeline; how many.
    fn take_frames(&mut self) -> Result<u64, ExitCode> {
        // Capture timestamps come from the real-time clock, which may have been stepped.
        let offset = self.daemon.wall_offset();
        let mut frames = 0;
        for capture in &mut self.captures {
            let link = capture.link();
            for _ in 0..FRAMES_PER_TURN {
                match capture.next_frame() {
                    Ok(Some(frame)) => {
                        frames += 1;
                        let at = offset.from_wall(frame.at);
                        let packet = crate::wire::parse(link, frame.data)
                            .map(|p| p.seen(frame.direction, frame.ifindex));
                        if let Some(d) = self.daemon.pipeline.process(at, packet) {
                            if let Some(d) = self.daemon.confirm(d) {
                                self.daemon.on_detection(&d);
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!("{}", exit::chain(&e));
                        self.daemon.save();
                        return Err(exit::code(exit::FAILURE));
                    }
                }
            }
        }
        Ok(frames)
    }

    /// The chores that are due: folded log summaries, the route backend's sync, the socket
    /// table, the state file, the counters for systemd.
    fn chores(&mut self, due: &mut Chores) {
        let daemon = &mut self.daemon;
        let now = daemon.clock.now();
        if now >= due.listeners {
            due.listeners = now.saturating_add(LISTENERS_EVERY);
            for line in daemon.fold.summaries(now) {
                daemon.log(&line);
            }
            if !daemon.firewall.expires_by_itself() {
                daemon.sync_blocks();
            }
            match host::read_listeners() {
                Ok(listeners) => {
                    daemon.pipeline.set_listeners(listeners);
                    daemon.listeners_read = now;
                }
                Err(e) => daemon.warn(&format!("cannot refresh listening sockets: {e}")),
            }
            daemon.read_peers();
        }
        if now >= due.save {
            due.save = now.saturating_add(SAVE_EVERY);
            if daemon.dirty {
                daemon.save();
            }
        }
        if now >= due.status {
            due.status = now.saturating_add(STATUS_EVERY);
            daemon.capture_drops = self
                .captures
                .iter_mut()
                .map(|c| {
                    let (dropped, if_dropped) = c.drops();
                    u64::from(dropped) + u64::from(if_dropped)
                })
                .sum();
            let s = daemon.status();
            notify(&format!(
                "STATUS={} packets, {} probes, {} detections, {} blocks active, {} capture drops",
                s.packets, s.probes, s.detections, s.blocks_active, s.capture_drops
            ));
            tracing::debug!("counters: {:?}", daemon.pipeline.counters());
        }
    }

    /// Waits, at most until `next` and a second, for a frame, a wake-up or a trap connection;
    /// the trap sockets that have one go into `ready`.
    fn wait(&mut self, next: Timestamp, ready: &mut Vec<usize>) -> Result<(), ExitCode> {
        let wait = next
            .saturating_since(self.daemon.clock.now())
            .min(Duration::from_secs(1));
        let first_trap = self.captures.len() + 1;
        let mut fds: Vec<PollFd<'_>> = self
            .captures
            .iter()
            .map(|c| PollFd::new(c.fd(), PollFlags::POLLIN))
            .chain([PollFd::new(self.wake_read.as_fd(), PollFlags::POLLIN)])
            .chain(
                self.traps_bound
                    .iter()
                    .flat_map(TrapSockets::fds)
                    .map(|fd| PollFd::new(fd, PollFlags::POLLIN)),
            )
            .collect();
        let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                exit::report("sentryd", &e);
                self.daemon.save();
                return Err(exit::code(exit::FAILURE));
            }
        }
        ready.extend(
            fds[first_trap..]
                .iter()
                .enumerate()
                .filter(|(_, fd)| fd.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)))
                .map(|(i, _)| i),
        );
        Ok(())
    }

    /// SIGTERM or SIGINT: the state saved, the control socket removed; the blocks stay.
    fn stop(mut self) -> ExitCode {
        notify("STOPPING=1");
        self.daemon.save();
        let _ = std::fs::remove_file(&self.socket_path);
        tracing::info!(
            "stopping; {} blocks stay in the kernel until they expire",
            self.daemon.responder.active_count()
        );
        ExitCode::SUCCESS
    }
}
