//! The main loop: frames and trap connections in, detections to the daemon, the other threads'
//! events, the periodic chores, and the wait for whichever comes first. **Shell.**

use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::start::Running;
use super::{FRAMES_PER_TURN, STATUS_EVERY};
use crate::capture::coalesce::Coalesce;
use crate::capture::connect::TrapSockets;
use crate::config::Method;
use crate::daemon::{notify, stages};
use crate::exit;
use crate::time::{Clock, Timestamp};

impl Running {
    /// Runs until SIGTERM or SIGINT (exit 0) or a capture or poll failure (exit 1).
    pub(super) fn serve(mut self) -> ExitCode {
        let clock = self.daemon.clock;
        let now = clock.now();
        let mut status_due = now;
        let mut ready_traps: Vec<usize> = Vec::new();
        // Captures that wake the loop for every frame (immediate pcap, the raw socket) pause
        // briefly between turns under a flood; batched pcap needs no help.
        let capture = &self.daemon.engine.config().capture;
        let per_frame = match capture.method {
            Method::Raw => true,
            Method::Pcap => capture.immediate,
            Method::Connect => false,
        };
        let mut coalesce = per_frame.then(|| Coalesce::new(now));
        // With the unit's WatchdogSec=, systemd restarts a daemon whose loop stops turning.
        let watchdog = notify::watchdog_every();
        let mut alive_due = now;
        loop {
            // The kernel's holds first: its first line acted before the capture's frames
            // reached the daemon, and a hold judged first is one a block can say it confirms
            // (its source's probes in the frames are then noted with it). Bounded a turn.
            let holds_wait = self.daemon.take_holds();
            stages::mark("holds");
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
            // The fleet's messages after the captures' frames, a bounded number a turn; when
            // more wait, the loop turns again at once.
            let fleet_waits = self.daemon.take_fleet();
            stages::mark("tick");
            let next = self.daemon.engine.tick();
            stages::mark("ticked");
            self.daemon.carry_out();
            self.tell_systemd(&mut status_due);
            let mut next = next.min(status_due);
            if fleet_waits || holds_wait {
                next = clock.now();
            }
            if let Some(every) = watchdog {
                let now = clock.now();
                if now >= alive_due {
                    notify::alive();
                    alive_due = now.saturating_add(every);
                }
                next = next.min(alive_due);
            }
            // Sleep until frames are waiting, another thread has something, or the next chore.
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
            self.daemon.engine.connection(a.src, a.dst, a.proto, a.port);
        }
        self.daemon.carry_out();
    }

    /// Up to [`FRAMES_PER_TURN`] frames of each capture, through the pipeline; how many.
    fn take_frames(&mut self) -> Result<u64, ExitCode> {
        // Capture timestamps come from the real-time clock, which may have been stepped.
        let offset = self.daemon.engine.wall_offset();
        let mut frames = 0;
        for capture in &mut self.captures {
            let link = capture.link();
            for _ in 0..FRAMES_PER_TURN {
                match capture.next_frame() {
                    Ok(Some(frame)) => {
                        frames += 1;
                        stages::frame(frame.at.as_micros());
                        let at = offset.from_wall(frame.at);
                        let seen = crate::wire::Metadata {
                            direction: frame.direction,
                            ifindex: frame.ifindex,
                            loopback: frame.loopback,
                            whole: frame.whole,
                        };
                        match crate::wire::read(link, frame.data, seen) {
                            Err(crate::wire::Skip::Fragment) => {
                                self.daemon.engine.fragment(at, link, frame.data, seen);
                            }
                            packet => self.daemon.engine.packet(at, packet),
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        self.daemon.carry_out();
                        tracing::error!("{}", exit::chain(&e));
                        self.daemon.save_now();
                        return Err(exit::code(exit::FAILURE));
                    }
                }
            }
        }
        self.daemon.carry_out();
        Ok(frames)
    }

    /// Every [`STATUS_EVERY`]: the captures' drop counters read, the counters to systemd.
    fn tell_systemd(&mut self, due: &mut Timestamp) {
        let now = self.daemon.clock.now();
        if now < *due {
            return;
        }
        *due = now.saturating_add(STATUS_EVERY);
        let drops = self
            .captures
            .iter_mut()
            .map(|c| {
                let (dropped, if_dropped) = c.drops();
                u64::from(dropped) + u64::from(if_dropped)
            })
            .sum();
        self.daemon.capture_drops = drops;
        let engine = &self.daemon.engine;
        let s = engine.figures(&self.daemon.readings());
        notify::status(&format!(
            "{} packets, {} probes, {} detections, {} blocks active, {} capture drops",
            s.packets, s.probes, s.detections, s.blocks_active, s.capture_drops
        ));
        tracing::debug!("counters: {:?}", engine.pipeline().counters());
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
        stages::polling();
        let polled = poll(&mut fds, timeout);
        stages::woke();
        match polled {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                exit::report("sentryd", &e);
                self.daemon.save_now();
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
        notify::stopping();
        self.daemon.save_now();
        if let Some(link) = self.daemon.link.take() {
            link.close();
        }
        let _ = std::fs::remove_file(&self.socket_path);
        tracing::info!(
            "stopping; {} in the kernel until {} expire",
            match self.daemon.engine.blocks_active() {
                1 => "1 block stays".to_string(),
                n => format!("{n} blocks stay"),
            },
            if self.daemon.engine.blocks_active() == 1 {
                "it"
            } else {
                "they"
            }
        );
        ExitCode::SUCCESS
    }
}
