//! Shared helpers for the binary's integration tests: run `podid` in a fresh directory with a
//! clean environment, start servers on free loopback ports, and stop them at the end.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const PODID: &str = env!("CARGO_BIN_EXE_podid");

/// A loopback address nobody listens on right now.
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `podid` with no AWS_* / PODID_* variables from the developer's shell, run in `dir`.
pub fn podid(dir: &Path) -> Command {
    let mut c = Command::new(PODID);
    c.env_clear()
        .current_dir(dir)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    c
}

/// Runs a client command against `endpoint` with the admin key in `data_dir`, JSON output.
pub fn client(dir: &Path, endpoint: &str, data_dir: &Path, args: &[&str]) -> Output {
    podid(dir)
        .args(args)
        .args([
            "--endpoint",
            endpoint,
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--output",
            "json",
        ])
        .output()
        .unwrap()
}

/// Parses the stdout of a successful command as JSON.
pub fn ok_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A running `podid server` or `podid dev`; killed when dropped.
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: PathBuf,
    pub stdout: PathBuf,
}

impl Running {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (at most `limit`) for the exit status.
    pub fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit within {limit:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `podid <args>` in `dir` (logs to files there) and waits until `/healthz` answers.
pub fn start(dir: &Path, addr: SocketAddr, args: &[&str]) -> Running {
    let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let stderr = dir.join(format!("podid-{n}.stderr"));
    let stdout = dir.join(format!("podid-{n}.stdout"));
    let child = podid(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut running = Running {
        child,
        addr,
        stderr,
        stdout,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !healthy(addr) {
        if let Some(status) = running.child.try_wait().unwrap() {
            panic!("podid exited early ({status}): {}", running.stderr_text());
        }
        assert!(
            Instant::now() < deadline,
            "podid did not become healthy: {}",
            running.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    running
}

/// Whether `GET /healthz` answers 200 on `addr`.
pub fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

/// Polls `cond` for up to 10 s.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
