//! `lora-grpo launch`: N ranks on this host without Python, as `mlx.launch -n N` starts
//! them: a localhost ring hostfile with free ports (or nccl's address and world size), the
//! rank in `MLX_RANK`, every line of output prefixed with its rank; when one rank fails,
//! the others are stopped and the launch fails naming it.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Backend, HOSTFILE_ENV, RANK_ENV, WORLD_SIZE_ENV};
use crate::error::DistributedError;

/// What to start.
pub struct LaunchOptions {
    /// Number of ranks (processes), at least 1.
    pub ranks: usize,
    /// `ring` (CPU or Metal, TCP over loopback) or `nccl` (one GPU per rank).
    pub backend: Backend,
    /// The program every rank runs, and its arguments.
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Counts interrupts (Ctrl-C) seen by the launcher; each new one is passed on to
    /// every rank as SIGINT (the ranks run in their own process groups, so the terminal's
    /// signal reaches them only through here).
    pub interrupts: Option<Arc<AtomicUsize>>,
}

/// Starts the ranks and waits for them. Fails, after stopping the others, as soon as one
/// rank exits unsuccessfully, naming it.
pub fn launch(options: &LaunchOptions) -> Result<(), DistributedError> {
    if options.ranks == 0 {
        return Err(DistributedError::Launch("-n must be at least 1".into()));
    }
    let rendezvous = Rendezvous::new(options.backend, options.ranks)?;
    let mut children = Vec::with_capacity(options.ranks);
    let mut forwarders = Vec::new();
    for rank in 0..options.ranks {
        let mut command = Command::new(&options.program);
        command
            .args(&options.args)
            .env(RANK_ENV, rank.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (name, value) in &rendezvous.env {
            command.env(name, value);
        }
        if options.backend == Backend::Nccl {
            // One GPU per rank: MLX's CUDA backend works on the first visible device, and a
            // rank whose arrays sit on another GPU than its NCCL communicator fails.
            if let Some(gpu) = gpu_for_rank(rank, std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref(), nvidia_devices()) {
                command.env("CUDA_VISIBLE_DEVICES", gpu);
            }
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                stop(&mut children);
                return Err(DistributedError::Launch(format!("cannot start {}: {e}", options.program.display())));
            }
        };
        eprintln!("launch: rank {rank} is process {}", child.id());
        if let Some(out) = child.stdout.take() {
            forwarders.push(forward(out, rank, false));
        }
        if let Some(err) = child.stderr.take() {
            forwarders.push(forward(err, rank, true));
        }
        children.push(child);
    }
    let outcome = supervise(&mut children, options.interrupts.as_deref());
    for forwarder in forwarders {
        let _ = forwarder.join();
    }
    outcome
}

/// The GPU rank `rank` gets: round robin over `CUDA_VISIBLE_DEVICES` when it is set, else
/// over the host's `count` GPUs; `None` (leave the choice to MLX) when neither is known.
fn gpu_for_rank(rank: usize, visible: Option<&str>, count: usize) -> Option<String> {
    let listed: Vec<&str> = visible.map(|v| v.split(',').map(str::trim).filter(|d| !d.is_empty()).collect()).unwrap_or_default();
    match (listed.is_empty(), count) {
        (false, _) => Some(listed[rank % listed.len()].to_string()),
        (true, 0) => None,
        (true, n) => Some((rank % n).to_string()),
    }
}

/// NVIDIA GPUs on this host, counted by their `/dev/nvidiaN` device files.
fn nvidia_devices() -> usize {
    let is_gpu = |name: &str| name.strip_prefix("nvidia").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    std::fs::read_dir("/dev")
        .map(|entries| entries.filter_map(Result::ok).filter(|e| is_gpu(&e.file_name().to_string_lossy())).count())
        .unwrap_or(0)
}

/// Where the ranks find each other, as environment variables; removes its hostfile on drop.
struct Rendezvous {
    env: Vec<(&'static str, String)>,
    hostfile: Option<PathBuf>,
}

impl Rendezvous {
    fn new(backend: Backend, ranks: usize) -> Result<Self, DistributedError> {
        let size = (WORLD_SIZE_ENV, ranks.to_string());
        match backend {
            Backend::Ring => {
                let ports = free_ports(ranks)?;
                let hosts: Vec<Vec<String>> = ports.iter().map(|p| vec![format!("127.0.0.1:{p}")]).collect();
                let path = std::env::temp_dir().join(format!("lora-grpo-hostfile-{}.json", std::process::id()));
                let text = serde_json::to_string(&hosts).map_err(|e| DistributedError::Launch(e.to_string()))?;
                std::fs::write(&path, text).map_err(|source| DistributedError::Io { path: path.clone(), source })?;
                let env = vec![(HOSTFILE_ENV, path.display().to_string()), size];
                Ok(Rendezvous { env, hostfile: Some(path) })
            }
            Backend::Nccl => {
                let port = free_ports(1)?[0];
                let env = vec![("NCCL_HOST_IP", "127.0.0.1".to_string()), ("NCCL_PORT", port.to_string()), size];
                Ok(Rendezvous { env, hostfile: None })
            }
            other => Err(DistributedError::Launch(format!(
                "--backend {} is not started by `lora-grpo launch`: use ring or nccl here, or `mlx.launch` \
                 (its --backend {} sets up that backend's environment)",
                other.name(),
                other.name()
            ))),
        }
    }
}

impl Drop for Rendezvous {
    fn drop(&mut self) {
        if let Some(path) = &self.hostfile {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `n` distinct loopback ports nothing listens on right now (held together, then freed).
fn free_ports(n: usize) -> Result<Vec<u16>, DistributedError> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DistributedError::Launch(format!("cannot find a free port on 127.0.0.1: {e}")))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DistributedError::Launch(format!("cannot find a free port on 127.0.0.1: {e}")))
}

/// Copies a rank's output line by line, each prefixed with `[rank N]`.
fn forward(stream: impl Read + Send + 'static, rank: usize, to_stderr: bool) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line.last() != Some(&b'\n') {
                line.push(b'\n');
            }
            let prefix = format!("[rank {rank}] ");
            let _ = if to_stderr {
                let mut out = std::io::stderr().lock();
                out.write_all(prefix.as_bytes()).and_then(|_| out.write_all(&line))
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(prefix.as_bytes()).and_then(|_| out.write_all(&line)).and_then(|_| out.flush())
            };
        }
    })
}

/// Waits for every rank; on the first failure stops the rest and reports it.
fn supervise(children: &mut [Child], interrupts: Option<&AtomicUsize>) -> Result<(), DistributedError> {
    let mut done: Vec<Option<ExitStatus>> = vec![None; children.len()];
    let mut forwarded = 0;
    loop {
        let seen = interrupts.map_or(0, |i| i.load(Ordering::SeqCst));
        if seen > forwarded {
            forwarded = seen;
            for (child, status) in children.iter().zip(&done) {
                if status.is_none() {
                    // SAFETY: plain kill(2) on a child we started and have not reaped.
                    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
                }
            }
        }
        let mut failed = Vec::new();
        for (rank, child) in children.iter_mut().enumerate() {
            if done[rank].is_some() {
                continue;
            }
            let status = child
                .try_wait()
                .map_err(|e| DistributedError::Launch(format!("cannot wait for rank {rank}: {e}")))?;
            let Some(status) = status else { continue };
            done[rank] = Some(status);
            if !status.success() {
                failed.push((rank, status));
            }
        }
        if !failed.is_empty() {
            // A rank killed by a signal is the likelier cause when its peers failed with it.
            failed.sort_by_key(|(rank, status)| (status.signal().is_none(), *rank));
            stop(children);
            let mut message = format!("rank {} {}; stopped the other ranks", failed[0].0, describe(failed[0].1));
            for (rank, status) in &failed[1..] {
                message += &format!(" (rank {rank} {} too)", describe(*status));
            }
            return Err(DistributedError::Launch(message));
        }
        if done.iter().all(Option::is_some) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops every rank still running: SIGINT first, so that rank 0 finishes a checkpoint it
/// may be writing (a rank waiting on a dead peer fails on its own), then SIGKILL after
/// [`STOP_GRACE`]; reaps them all.
fn stop(children: &mut [Child]) {
    for child in children.iter_mut() {
        if let Ok(None) = child.try_wait() {
            // SAFETY: plain kill(2) on a child we started and have not reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        }
    }
    let deadline = std::time::Instant::now() + STOP_GRACE;
    while std::time::Instant::now() < deadline && children.iter_mut().any(|c| matches!(c.try_wait(), Ok(None))) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for child in children.iter_mut() {
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

/// How long stopped ranks get to finish a checkpoint before they are killed.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "ended abnormally".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::gpu_for_rank;

    #[test]
    fn ranks_get_gpus_round_robin() {
        assert_eq!(gpu_for_rank(1, None, 2).as_deref(), Some("1"));
        assert_eq!(gpu_for_rank(3, None, 2).as_deref(), Some("1"));
        assert_eq!(gpu_for_rank(0, None, 0), None);
        assert_eq!(gpu_for_rank(1, Some("4, 6"), 8).as_deref(), Some("6"));
        assert_eq!(gpu_for_rank(2, Some("4,6"), 8).as_deref(), Some("4"));
        assert_eq!(gpu_for_rank(1, Some(""), 2).as_deref(), Some("1"));
    }
}
