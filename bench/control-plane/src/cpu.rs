//! CPU time and CPU pinning, so rates can be stated per CPU-second as well as per wall second.
//!
//! On a machine shared with other builds, wall-clock rates move with the load; the CPU time a
//! thread or process actually got does not (much), so both are printed.

use std::time::Duration;

use rustix::thread::{CpuSet, sched_setaffinity};
use rustix::time::{ClockId, clock_gettime};

/// CPU time this thread has used so far.
pub fn thread_cpu() -> Duration {
    to_duration(clock_gettime(ClockId::ThreadCPUTime))
}

/// CPU time this process (all its threads) has used so far.
pub fn process_cpu() -> Duration {
    to_duration(clock_gettime(ClockId::ProcessCPUTime))
}

/// Restricts the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> Result<(), String> {
    let mut set = CpuSet::new();
    set.set(cpu);
    sched_setaffinity(None, &set).map_err(|e| format!("pinning to CPU {cpu}: {e}"))
}

fn to_duration(t: rustix::time::Timespec) -> Duration {
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(t.tv_nsec).unwrap_or(0);
    Duration::new(secs, nanos)
}
