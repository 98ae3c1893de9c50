//! Data-parallel training on MLX's own distributed layer (`ring` over TCP, `jaccl` over
//! Thunderbolt RDMA, `nccl` for NVIDIA GPUs, `mpi`), reached through mlx-c since mlx-rs
//! wraps none of it. The processes are started the way mlx-lm users know: `mlx.launch`
//! (or `lora-grpo launch`) sets `MLX_RANK` and the backend's variables, and every rank
//! runs the same `lora-grpo run`.

pub mod launch;
mod watchdog;

use std::ffi::CString;
use std::rc::Rc;
use std::time::Duration;

use mlx_rs::error::Exception;
use mlx_rs::module::FlattenedModuleParam;
use mlx_rs::ops::indexing::TryIndexOp;
use mlx_rs::{ops, Array, Dtype, Stream};
use serde::{Deserialize, Serialize};

use crate::error::DistributedError;
pub use watchdog::TIMEOUT_EXIT_CODE;
use watchdog::Watchdog;

/// The rank a launcher gives each process (`mlx.launch`, `lora-grpo launch`).
pub const RANK_ENV: &str = "MLX_RANK";
/// JSON list of each rank's `ip:port` addresses, read by the ring backend.
pub const HOSTFILE_ENV: &str = "MLX_HOSTFILE";
/// Number of ranks, read by the nccl backend (with `NCCL_HOST_IP` and `NCCL_PORT`).
pub const WORLD_SIZE_ENV: &str = "MLX_WORLD_SIZE";

/// Which MLX backend carries the collectives; `off` trains in one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// No distribution (the default).
    #[default]
    Off,
    /// Whichever backend MLX finds configured (its own order of preference).
    Any,
    /// TCP sockets in a ring; what `mlx.launch` uses between Macs or on one host.
    Ring,
    /// RDMA over Thunderbolt 5 between Macs.
    Jaccl,
    /// NVIDIA GPUs (CUDA build of MLX).
    Nccl,
    /// An MPI installation.
    Mpi,
}

impl Backend {
    /// The name MLX knows the backend by.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Off => "off",
            Backend::Any => "any",
            Backend::Ring => "ring",
            Backend::Jaccl => "jaccl",
            Backend::Nccl => "nccl",
            Backend::Mpi => "mpi",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        let all = [Backend::Off, Backend::Any, Backend::Ring, Backend::Jaccl, Backend::Nccl, Backend::Mpi];
        all.into_iter().find(|b| b.name() == name).ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|b| b.name()).collect();
            format!("unknown backend `{name}`, expected one of {}", names.join(", "))
        })
    }
}

/// Whether this MLX build includes `backend` (`any`: at least one).
pub fn is_available(backend: Backend) -> bool {
    let Ok(name) = CString::new(backend.name()) else { return false };
    // SAFETY: a NUL-terminated string that outlives the call; the function only reads it.
    unsafe { mlx_sys::mlx_distributed_is_available(name.as_ptr()) }
}

/// An MLX process group; freed on drop.
struct Group(mlx_sys::mlx_distributed_group);

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: the group came from a successful mlx_distributed_init and is freed once.
        unsafe { mlx_sys::mlx_distributed_group_free(self.0) };
    }
}

/// This process's place among the ranks of a run: a world of one when training is not
/// distributed. Collectives run under a watchdog, so a lost peer ends the process with
/// a message instead of a hang.
pub struct World {
    group: Option<Group>,
    rank: usize,
    size: usize,
    watchdog: Option<Watchdog>,
}

impl World {
    /// One process, no collectives.
    pub fn single() -> Self {
        World { group: None, rank: 0, size: 1, watchdog: None }
    }

    /// Joins the ranks a launcher started (see [`RANK_ENV`]) through `backend`; waits at
    /// most `timeout` for the peers, and for each later collective.
    ///
    /// With `backend` off the process must not have been launched as a rank (N copies of
    /// one run would overwrite each other's output); with a backend but no launcher, the
    /// run is a world of one.
    pub fn join(backend: Backend, timeout: Duration) -> Result<Self, DistributedError> {
        let launched = launcher_rank();
        if backend == Backend::Off {
            if let Some((name, rank)) = launched {
                return Err(DistributedError::Config(format!(
                    "this process was started as rank {rank} ({name} is set) but the recipe's \
                     distributed.backend is off: set `distributed: {{backend: ring}}` (or the \
                     launcher's backend), or run without a launcher"
                )));
            }
            return Ok(World::single());
        }
        let Some((rank_name, rank_text)) = launched else {
            return Ok(World::single());
        };
        let rank: usize = rank_text.trim().parse().map_err(|_| DistributedError::Env {
            name: rank_name,
            detail: format!("expected a rank number, found `{rank_text}`"),
        })?;
        if backend == Backend::Ring && ring_world_size()? <= 1 {
            return Ok(World::single());
        }
        if backend == Backend::Nccl {
            for name in ["NCCL_HOST_IP", "NCCL_PORT", WORLD_SIZE_ENV] {
                if std::env::var_os(name).is_none() {
                    return Err(DistributedError::Env {
                        name,
                        detail: "not set, but the nccl backend needs it (start the ranks with \
                                 `mlx.launch --backend nccl` or `lora-grpo launch --backend nccl`)"
                            .to_string(),
                    });
                }
            }
        }
        if !is_available(backend) {
            let hint = match backend {
                Backend::Nccl => " (it needs MLX built with CUDA)",
                Backend::Jaccl => " (it needs macOS 26.2+ with Thunderbolt 5 RDMA)",
                Backend::Mpi => " (it needs an MPI library MLX can load)",
                _ => "",
            };
            return Err(DistributedError::Unavailable { backend: backend.name(), hint });
        }
        let watchdog = Watchdog::start(rank, timeout);
        let group = {
            let _armed = watchdog.arm("connecting to the other ranks");
            init_group(backend, &rank_text)?
        };
        // SAFETY: `group` holds a valid group handle.
        let (mlx_rank, size) = unsafe {
            (mlx_sys::mlx_distributed_group_rank(group.0), mlx_sys::mlx_distributed_group_size(group.0))
        };
        if mlx_rank as usize != rank {
            return Err(DistributedError::Init {
                backend: backend.name(),
                rank: rank_text,
                detail: format!("MLX reports rank {mlx_rank}"),
            });
        }
        Ok(World { group: Some(group), rank, size: size.max(1) as usize, watchdog: Some(watchdog) })
    }

    /// This process's rank, 0-based.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of ranks.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Rank 0 writes checkpoints, metrics and progress.
    pub fn is_main(&self) -> bool {
        self.rank == 0
    }

    /// Whether collectives go anywhere (more than one rank).
    pub fn is_distributed(&self) -> bool {
        self.group.is_some() && self.size > 1
    }

    /// The element-wise sum of `x` over all ranks, evaluated (the same on every rank).
    pub fn all_sum(&self, x: &Array, what: &str) -> Result<Array, Exception> {
        self.collective(x, what, mlx_sys::mlx_distributed_all_sum)
    }

    /// Every rank's `x` concatenated along axis 0 in rank order, evaluated.
    pub fn all_gather(&self, x: &Array, what: &str) -> Result<Array, Exception> {
        self.collective(x, what, mlx_sys::mlx_distributed_all_gather)
    }

    /// Sums named arrays (gradients) and a few extra numbers over all ranks in ONE
    /// collective: each array flattened in name order into an f32 vector with `extra` at
    /// the end, summed, and split back to its shape and dtype.
    pub fn all_sum_named(
        &self,
        named: &FlattenedModuleParam,
        extra: &[f32],
        what: &str,
    ) -> Result<(FlattenedModuleParam, Vec<f32>), Exception> {
        let mut names: Vec<&Rc<str>> = named.keys().collect();
        names.sort();
        let mut parts = names
            .iter()
            .map(|&name| named[name].as_dtype(Dtype::Float32)?.reshape(&[-1]))
            .collect::<Result<Vec<_>, _>>()?;
        parts.push(Array::from_slice(extra, &[extra.len() as i32]));
        let summed = self.all_sum(&ops::concatenate(&parts, 0)?, what)?;
        let mut out = FlattenedModuleParam::with_capacity(names.len());
        let mut offset = 0i32;
        for name in names {
            let array = &named[name];
            let end = offset + array.size() as i32;
            let part = summed.try_index(offset..end)?.reshape(array.shape())?.as_dtype(array.dtype())?;
            out.insert(Rc::clone(name), part);
            offset = end;
        }
        let tail = summed.try_index(offset..)?;
        tail.eval()?;
        Ok((out, tail.as_slice::<f32>().to_vec()))
    }

    fn collective(
        &self,
        x: &Array,
        what: &str,
        op: unsafe extern "C" fn(
            *mut mlx_sys::mlx_array,
            mlx_sys::mlx_array,
            mlx_sys::mlx_distributed_group,
            mlx_sys::mlx_stream,
        ) -> std::os::raw::c_int,
    ) -> Result<Array, Exception> {
        let (Some(group), Some(watchdog)) = (&self.group, &self.watchdog) else {
            return Ok(x.clone());
        };
        x.eval()?;
        let stream = Stream::thread_local_or_default();
        // SAFETY: `res` starts empty and is owned by the returned Array on success (freed
        // on failure); input, group and stream handles stay alive for the call.
        let out = unsafe {
            let mut res = mlx_sys::mlx_array_new();
            if op(&mut res, x.as_ptr(), group.0, stream.as_ptr()) != 0 {
                mlx_sys::mlx_array_free(res);
                return Err(Exception::custom(format!("MLX could not build the collective for {what}")));
            }
            Array::from_ptr(res)
        };
        let _armed = watchdog.arm(what);
        out.eval()?;
        Ok(out)
    }
}

/// The variable naming this process's rank, and its value, when a launcher started it:
/// `MLX_RANK` (mlx.launch, lora-grpo launch), or the MPI launcher's own.
fn launcher_rank() -> Option<(&'static str, String)> {
    [RANK_ENV, "OMPI_COMM_WORLD_RANK", "PMI_RANK"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().map(|value| (name, value)))
}

/// Ranks listed in the ring hostfile; `mlx.launch -n 1` leaves the file empty.
fn ring_world_size() -> Result<usize, DistributedError> {
    let path = std::env::var(HOSTFILE_ENV).map_err(|_| DistributedError::Env {
        name: HOSTFILE_ENV,
        detail: format!("not set, but the ring backend needs it next to {RANK_ENV} (start the ranks with `mlx.launch` or `lora-grpo launch`)"),
    })?;
    let text = std::fs::read_to_string(&path)
        .map_err(|source| DistributedError::Io { path: path.clone().into(), source })?;
    if text.trim().is_empty() {
        return Ok(1);
    }
    let hosts: Vec<Vec<String>> = serde_json::from_str(&text).map_err(|e| DistributedError::Env {
        name: HOSTFILE_ENV,
        detail: format!("{path}: expected a JSON list of address lists like [[\"10.0.0.1:5000\"], [\"10.0.0.2:5000\"]]: {e}"),
    })?;
    Ok(hosts.len())
}

fn init_group(backend: Backend, rank: &str) -> Result<Group, DistributedError> {
    let init_error = |detail: String| DistributedError::Init { backend: backend.name(), rank: rank.to_string(), detail };
    let name = CString::new(backend.name()).map_err(|e| init_error(e.to_string()))?;
    // SAFETY: `raw` starts as an empty handle that init fills in; `name` outlives the call.
    let (status, raw) = unsafe {
        let mut raw = mlx_sys::mlx_distributed_group_new();
        let status = mlx_sys::mlx_distributed_init(&mut raw, true, name.as_ptr());
        (status, raw)
    };
    if status != 0 || raw.ctx.is_null() {
        // mlx-rs keeps MLX's message to itself; say what the usual causes are.
        return Err(init_error(format!(
            "check that every rank runs, that the addresses in {HOSTFILE_ENV} (ring) or \
             NCCL_HOST_IP/NCCL_PORT (nccl) are reachable and free, and that {RANK_ENV} is below \
             the number of ranks"
        )));
    }
    Ok(Group(raw))
}
