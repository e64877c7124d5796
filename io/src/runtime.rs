//! Starts one glommio executor per worker, each pinned to its own core with
//! core_affinity (unless told not to). Every executor runs the same future
//! factory; what it binds and serves is the application's business.

use glommio::{LocalExecutorBuilder, Placement};
use std::fmt;
use std::future::Future;
use std::time::Duration;

const PREEMPT_SLICE: Duration = Duration::from_secs(1);

/// Where an executor stands among its siblings.
#[derive(Debug, Clone, Copy)]
pub struct CoreInfo {
    /// 0..workers, in spawn order.
    pub index: usize,
    pub workers: usize,
    /// The CPU this executor is pinned to, when pinning worked.
    pub cpu: Option<usize>,
}

#[derive(Debug)]
pub struct StartError(pub String);

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Spawns `workers` executors running `make(core)`, each pinned to its own
/// usable core when `pin` is set; returns their join handles.
pub fn start<G, F>(workers: usize, pin: bool, make: G) -> Result<Vec<glommio::ExecutorJoinHandle<()>>, StartError>
where
    G: Fn(CoreInfo) -> F + Send + Clone + 'static,
    F: Future<Output = ()> + 'static,
{
    let cpus = if pin { core_affinity::get_core_ids().unwrap_or_default() } else { Vec::new() };
    let mut handles = Vec::with_capacity(workers);
    for index in 0..workers {
        let make = make.clone();
        let cpu = if cpus.is_empty() { None } else { Some(cpus[index % cpus.len()]) };
        let h = LocalExecutorBuilder::new(Placement::Unbound)
            .name(&format!("core{index}"))
            // Sockets only: no file DMA, so keep the registered buffer small.
            .io_memory(1 << 20)
            .ring_depth(1024)
            // The slice ends a task queue's run so that the executor
            // polls I/O; here one queue runs tasks of microseconds each, so
            // no run lasts that long. Its timer stays armed (glommio patch
            // 1), which wakes an idle executor once per slice: 1 s, not the
            // default 100 ms.
            .preempt_timer(PREEMPT_SLICE)
            .spawn(move || async move {
                let pinned = cpu.filter(|c| core_affinity::set_for_current(*c)).map(|c| c.id);
                if pin && pinned.is_none() {
                    tracing::warn!(core = index, "could not pin executor to a core");
                }
                make(CoreInfo { index, workers, cpu: pinned }).await
            })
            .map_err(|e| StartError(format!("cannot start executor {index}: {e}")))?;
        handles.push(h);
    }
    Ok(handles)
}
