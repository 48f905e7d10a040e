//! Thread priorities: a few threads (SQLite's connection threads) run ahead of the rest of
//! herald when the process may raise them.
//!
//! A new thread inherits the priority of the thread that starts it, so work run on a raised
//! thread starts raised threads. On Linux each thread has a priority of its own; elsewhere a
//! priority belongs to the whole process, which herald leaves alone.

use std::future::Future;
use std::sync::OnceLock;

/// The `nice` that [`on_raised_thread`] reached, once it could raise a thread.
static RAISED: OnceLock<i32> = OnceLock::new();

/// Runs `work` to completion on a new thread named `name`, raised by `steps` steps of `nice`
/// when the process may raise its priority (as root, with `CAP_SYS_NICE`, or within an
/// `RLIMIT_NICE` such as systemd's `LimitNICE=`); otherwise at the priority it has, which
/// changes nothing else. Threads that `work` starts inherit the raised priority.
pub async fn on_raised_thread<T, F>(name: &str, steps: i32, work: F) -> std::io::Result<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let runtime = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread = name.to_string();
    std::thread::Builder::new().name(thread.clone()).spawn(move || {
        match raise(steps) {
            Ok(nice) => {
                // Every caller raises by the same steps from the same base.
                let _ = RAISED.set(nice);
                tracing::info!(nice, thread, "threads started from here run raised")
            }
            Err(e) => tracing::info!(
                error = %e,
                thread,
                "threads started from here keep herald's priority (raising it needs CAP_SYS_NICE or RLIMIT_NICE)"
            ),
        }
        // The receiver is gone only if the caller was, and then nobody wants the outcome.
        let _ = tx.send(runtime.block_on(work));
    })?;
    rx.await
        .map_err(|_| std::io::Error::other("the raised thread ended before its work"))
}

/// Lowers the calling thread's `nice` by `steps` (on Linux, where each thread has its own) and
/// returns the new value.
#[cfg(target_os = "linux")]
pub fn raise(steps: i32) -> std::io::Result<i32> {
    use rustix::process::{getpriority_process, setpriority_process};
    // With no pid, Linux's `setpriority(PRIO_PROCESS, 0, …)` acts on the calling thread alone.
    let nice = getpriority_process(None)? - steps;
    setpriority_process(None, nice)?;
    Ok(nice)
}

/// Elsewhere a priority belongs to the whole process, which herald leaves alone.
#[cfg(not(target_os = "linux"))]
pub fn raise(_steps: i32) -> std::io::Result<i32> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Raises this process's threads whose name starts with `prefix` and that run at a lower
/// priority than [`on_raised_thread`] reached (if it reached one): for a thread started later
/// from elsewhere, such as a connection's opened again after it broke.
pub fn raise_late_threads(prefix: &str) {
    if let Some(&nice) = RAISED.get() {
        match raise_threads(prefix, nice) {
            Ok(0) => {}
            Ok(raised) => tracing::info!(raised, nice, prefix, "threads started later run raised"),
            Err(e) => {
                tracing::warn!(error = %e, prefix, "threads started later keep herald's priority")
            }
        }
    }
}

/// Sets every thread of this process whose name starts with `prefix` and whose `nice` is higher
/// (its priority lower) than `nice` to `nice`; returns how many it set.
#[cfg(target_os = "linux")]
fn raise_threads(prefix: &str, nice: i32) -> std::io::Result<usize> {
    use rustix::process::{getpriority_process, setpriority_process, Pid};
    // `setpriority` stops at -20; asking for less would find the thread "below" every time.
    let nice = nice.max(-20);
    let mut raised = 0;
    for task in std::fs::read_dir("/proc/self/task")? {
        let task = task?;
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse().ok())
            .and_then(Pid::from_raw)
        else {
            continue;
        };
        // A thread may end between the listing and the reading.
        let Ok(name) = std::fs::read_to_string(task.path().join("comm")) else {
            continue;
        };
        if !name.starts_with(prefix) {
            continue;
        }
        // On Linux a thread id is a `PRIO_PROCESS` target of its own.
        if getpriority_process(Some(tid)).is_ok_and(|current| current > nice) {
            setpriority_process(Some(tid), nice)?;
            raised += 1;
        }
    }
    Ok(raised)
}

#[cfg(not(target_os = "linux"))]
fn raise_threads(_prefix: &str, _nice: i32) -> std::io::Result<usize> {
    Ok(0)
}

/// The `nice` of each of this process's threads whose name starts with `prefix`.
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn nice_of_threads(prefix: &str) -> Vec<(String, i32)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("tasks") {
        let path = task.expect("task").path();
        // A thread may end between the listing and the reading.
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            panic!("unreadable stat: {stat}");
        };
        let name = &stat[open + 1..close];
        if !name.starts_with(prefix) {
            continue;
        }
        // After the name come fields 3 (state) onwards; `nice` is field 19.
        let nice = stat[close + 1..]
            .split_whitespace()
            .nth(19 - 3)
            .and_then(|n| n.parse().ok())
            .expect("nice");
        found.push((name.to_string(), nice));
    }
    found
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    const STEPS: i32 = 10;

    /// A connection opened again after it broke starts its thread from wherever the pool needs
    /// it, at herald's own priority; `raise_threads` finds such a thread by its name.
    #[test]
    fn a_thread_started_later_is_raised_by_name() {
        let base = rustix::process::getpriority_process(None).expect("nice");
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let late = std::thread::Builder::new()
            .name("latecomer-test".into())
            .spawn(move || {
                let _ = started.send(());
                let _ = wait.recv();
            })
            .expect("thread");
        // A new thread names itself as it starts (as sqlx's connection threads have before the
        // connection they open is handed over).
        running.recv().expect("the thread started");
        let may = std::thread::spawn(|| raise(STEPS).is_ok())
            .join()
            .expect("probe");
        let outcome = raise_threads("latecomer-", base - STEPS);
        let nice: Vec<i32> = nice_of_threads("latecomer-")
            .into_iter()
            .map(|(_, nice)| nice)
            .collect();
        let _ = done.send(());
        late.join().expect("latecomer");
        if may {
            assert_eq!(outcome.expect("raised"), 1);
            assert_eq!(nice, vec![(base - STEPS).max(-20)]);
            assert_eq!(
                raise_threads("latecomer-", base - STEPS).expect("nothing left"),
                0,
                "a thread that has ended is not looked for"
            );
        } else {
            assert!(outcome.is_err(), "raising without permission must fail");
            assert_eq!(nice, vec![base]);
        }
    }
}
