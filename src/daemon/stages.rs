//! Where the time goes between a captured frame and the kernel's acknowledgement of its block,
//! for `benches/block_latency.rs` only (cargo feature `stage-trace`; without it every function
//! here is empty and compiles away). **Shell.**
//!
//! The main loop marks its stages on its own thread (no lock): when `poll` was entered and
//! when it returned, when the kernel's holds were taken, the capture time and the reading time
//! of the first frame of the turn and of the latest one, the socket table's and the route's
//! readings, and each netlink batch sent and acknowledged. After each acknowledged batch
//! whose turn read frames, one line goes to standard error: `stage-trace` and `label=µs`
//! pairs, each time relative to the capture time of the latest frame (the one whose
//! detection the batch carries out), read with the real-time clock that stamps captures.
//! A turn that kept the loop from `poll` for more than half a millisecond is said too
//! (`stage-stall`, its marks relative to its start): what a frame arriving then waited for.

/// `poll` entered: the loop has nothing more to do.
pub(crate) fn polling() {
    imp::polling();
}

/// `poll` returned: a new turn.
pub(crate) fn woke() {
    imp::woke();
}

/// A stage of the turn reached, now.
pub(crate) fn mark(label: &'static str) {
    imp::mark(label);
}

/// A frame captured at `captured_us` (the real-time clock, microseconds) read now.
pub(crate) fn frame(captured_us: u64) {
    imp::frame(captured_us);
}

/// A netlink batch acknowledged: the line for the bench, when the turn read frames.
pub(crate) fn acknowledged() {
    imp::acknowledged();
}

#[cfg(not(feature = "stage-trace"))]
mod imp {
    pub(super) fn polling() {}
    pub(super) fn woke() {}
    pub(super) fn mark(_: &'static str) {}
    pub(super) fn frame(_: u64) {}
    pub(super) fn acknowledged() {}
}

#[cfg(feature = "stage-trace")]
mod imp {
    use std::cell::RefCell;
    use std::fmt::Write;

    /// Marks kept a turn at most (a turn with more keeps its first ones).
    const MARKS: usize = 64;

    #[derive(Default)]
    struct Turn {
        polled: u64,
        woke: u64,
        marks: Vec<(&'static str, u64)>,
        /// Capture and reading time of the turn's first frame and of its latest.
        first: Option<(u64, u64)>,
        latest: Option<(u64, u64)>,
        frames: u64,
    }

    thread_local! {
        static TURN: RefCell<Turn> = RefCell::new(Turn::default());
    }

    #[expect(
        clippy::disallowed_methods,
        reason = "bench-only: the real-time clock, as capture timestamps are"
    )]
    fn now_us() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    /// A turn busy for longer than this is said (`stage-stall`), with its marks.
    const STALL_US: u64 = 500;

    pub(super) fn polling() {
        let line = TURN.with_borrow_mut(|t| {
            t.polled = now_us();
            let busy = t.polled.saturating_sub(t.woke);
            (t.woke > 0 && busy > STALL_US).then(|| {
                let mut line = format!("stage-stall busy={busy} frames={}", t.frames);
                for (label, at) in &t.marks {
                    let _ = write!(line, " {label}={}", at.saturating_sub(t.woke));
                }
                line
            })
        });
        if let Some(line) = line {
            eprintln!("{line}");
        }
    }

    pub(super) fn woke() {
        TURN.with_borrow_mut(|t| {
            let polled = t.polled;
            *t = Turn {
                polled,
                woke: now_us(),
                ..Turn::default()
            };
        });
    }

    pub(super) fn mark(label: &'static str) {
        TURN.with_borrow_mut(|t| {
            if t.marks.len() < MARKS {
                t.marks.push((label, now_us()));
            }
        });
    }

    pub(super) fn frame(captured_us: u64) {
        TURN.with_borrow_mut(|t| {
            let read = (captured_us, now_us());
            t.first.get_or_insert(read);
            t.latest = Some(read);
            t.frames += 1;
        });
    }

    pub(super) fn acknowledged() {
        let line = TURN.with_borrow_mut(|t| {
            let (captured, read) = t.latest?;
            let first = t.first.unwrap_or((captured, read));
            let rel = |at: u64| i128::from(at) - i128::from(captured);
            let mut line = format!(
                "stage-trace frames={} first_captured={} polled={} woke={} first_read={} read={}",
                t.frames,
                rel(first.0),
                rel(t.polled),
                rel(t.woke),
                rel(first.1),
                rel(read)
            );
            for (label, at) in &t.marks {
                let _ = write!(line, " {label}={}", rel(*at));
            }
            let _ = write!(line, " acked={}", rel(now_us()));
            // The next batch of this turn is measured from its own frame.
            t.marks.clear();
            t.latest = None;
            Some(line)
        });
        if let Some(line) = line {
            eprintln!("{line}");
        }
    }
}
