//! A throwaway PostgreSQL cluster on a free port of 127.0.0.1, for the
//! tests that need a real one (Debian's postgresql package; run as the
//! postgres user when the tests run as root). Shared by the store's and
//! the server's tests (`#[path]`).

// Each test crate uses its own part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A throwaway PostgreSQL cluster on a free port.
pub struct Postgres {
    child: Option<Child>,
    dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

fn pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    versions.sort();
    let bin = versions
        .last()
        .map(|v| v.join("bin").join(name))
        .filter(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("PostgreSQL's {name} not found under /usr/lib/postgresql: apt-get install postgresql")
        });
    bin
}

fn as_postgres_user(cmd: &Path) -> Command {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(cmd);
        c
    } else {
        Command::new(cmd)
    }
}

impl Postgres {
    /// initdb into a temp folder and start the server (user `voxline`, trust).
    pub fn start() -> Postgres {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("voxline-pg-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("pg dir");
        let _ = Command::new("chown").args(["postgres:postgres"]).arg(&dir).status();
        let status = as_postgres_user(&pg_bin("initdb"))
            .args(["-A", "trust", "-U", "voxline", "-D"])
            .arg(dir.join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("initdb");
        assert!(status.success(), "initdb failed");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let mut pg = Postgres { child: None, dir, port };
        pg.run();
        pg
    }

    /// Starts the server on the cluster and waits for its port.
    fn run(&mut self) {
        let child = as_postgres_user(&pg_bin("postgres"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1", "-k"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "postgres did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Stop the server itself (runuser does not pass signals on), then reap runuser.
            let _ = as_postgres_user(&pg_bin("pg_ctl"))
                .args(["stop", "-m", "immediate", "-D"])
                .arg(self.dir.join("data"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a stopped server again on the same port and data.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "postgres is running");
        self.run();
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://voxline@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
