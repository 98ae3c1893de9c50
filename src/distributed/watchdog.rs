//! A rank waiting on a peer that died or never came can block inside MLX forever (the ring
//! backend's accept and recv have no timeout). The watchdog thread ends the process with a
//! clear message when an armed wait outlasts the timeout.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Exit status of a rank the watchdog stopped.
pub const TIMEOUT_EXIT_CODE: i32 = 75;

type Deadline = Arc<Mutex<Option<(Instant, String)>>>;

/// Watches one wait at a time; see [`Watchdog::arm`].
pub struct Watchdog {
    deadline: Deadline,
    timeout: Duration,
}

/// Disarms the watchdog when dropped (the wait finished, or failed with an error).
pub struct Armed<'a>(&'a Watchdog);

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        if let Ok(mut d) = self.0.deadline.lock() {
            *d = None;
        }
    }
}

impl Watchdog {
    /// Starts the watching thread for `rank`.
    pub fn start(rank: usize, timeout: Duration) -> Self {
        let deadline: Deadline = Arc::new(Mutex::new(None));
        let watched = Arc::clone(&deadline);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(100));
            let expired = match watched.lock() {
                Ok(d) => d.as_ref().filter(|(at, _)| Instant::now() >= *at).map(|(_, what)| what.clone()),
                Err(_) => return,
            };
            if let Some(what) = expired {
                eprintln!(
                    "lora-grpo: rank {rank}: {what} did not finish within {}s (distributed.timeout_s): \
                     another rank died, hangs or cannot be reached; stopping this rank",
                    timeout.as_secs_f64()
                );
                // The main thread is blocked inside MLX: leave without running its destructors.
                // SAFETY: _exit ends the process at once; nothing runs after it.
                unsafe { libc::_exit(TIMEOUT_EXIT_CODE) };
            }
        });
        Watchdog { deadline, timeout }
    }

    /// Starts timing a wait named `what` until the returned guard drops.
    pub fn arm(&self, what: &str) -> Armed<'_> {
        if let Ok(mut d) = self.deadline.lock() {
            *d = Some((Instant::now() + self.timeout, what.to_string()));
        }
        Armed(self)
    }
}
