//! The state file: swarms and completed counts saved on shutdown and every
//! `state_interval`, restored at start, so an upgrade does not empty every
//! swarm. The format is [`crate::swarm::state`]'s; this is the file side:
//! reading it at start, asking the workers for their records, and writing it
//! atomically (a temporary file, fsync, rename).

use super::worker::Control;
use super::{log, LogLevel};
use crate::config::ServerConfig;
use crate::swarm::state::{read_header, records, write_header};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A worker's records, as it sends them to be saved.
pub(crate) type Blob = (usize, Vec<u8>);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The records of a state file read at start.
#[derive(Default)]
pub(crate) struct Restored {
    body: Vec<u8>,
    /// Seconds since the file was written.
    age: u32,
}

/// The records of each worker's shard.
pub(crate) struct Split {
    pub blobs: Vec<Vec<u8>>,
    pub age: u32,
}

impl Restored {
    /// Hands each record to the worker that owns its hash now.
    pub fn split(self, workers: usize) -> Split {
        let mut blobs = vec![Vec::new(); workers];
        for r in records(&self.body).map_while(Result::ok) {
            blobs[r.info_hash.owner(workers)].extend_from_slice(r.bytes);
        }
        Split {
            blobs,
            age: self.age,
        }
    }
}

/// Reads the state file, if the configuration names one and it exists. A
/// damaged file is kept aside (renamed) and what could be read of it is
/// used; a file of another format is an error, since writing over it could
/// destroy something that is not ours.
pub(crate) fn load(cfg: &ServerConfig) -> Result<Restored, String> {
    let Some(path) = &cfg.state else {
        return Ok(Restored::default());
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log(
                cfg,
                LogLevel::Info,
                format_args!(
                    "state: {} does not exist yet; starting empty",
                    path.display()
                ),
            );
            return Ok(Restored::default());
        }
        Err(e) => {
            return Err(format!(
                "cannot read the state file {}: {e}",
                path.display()
            ))
        }
    };
    let (saved_at, body) = read_header(&bytes).map_err(|e| {
        format!(
            "{}: {e}; move it away or name another --state file",
            path.display()
        )
    })?;
    let mut good = 0;
    let (mut torrents, mut peers) = (0usize, 0usize);
    for r in records(body) {
        match r {
            Ok(r) => {
                good += r.bytes.len();
                torrents += 1;
                peers += r.peers();
            }
            Err(e) => {
                let aside = aside_name(path);
                let moved = std::fs::rename(path, &aside).is_ok();
                log(
                    cfg,
                    LogLevel::Errors,
                    format_args!(
                        "state: {}: {e}; restoring the {torrents} torrents before it{}",
                        path.display(),
                        if moved {
                            format!(", the file is kept as {}", aside.display())
                        } else {
                            String::new()
                        }
                    ),
                );
                break;
            }
        }
    }
    let age = unix_now().saturating_sub(saved_at).min(u32::MAX as u64) as u32;
    log(
        cfg,
        LogLevel::Info,
        format_args!(
            "state: read {torrents} torrents and {peers} peers from {}, saved {age} s ago",
            path.display()
        ),
    );
    let mut body = body.to_vec();
    body.truncate(good);
    Ok(Restored { body, age })
}

fn aside_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".damaged-{}", unix_now()));
    PathBuf::from(name)
}

/// Writes `parts` (one per worker) as the state file, atomically.
fn write(path: &Path, parts: &[Vec<u8>]) -> std::io::Result<usize> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut header = Vec::new();
    write_header(&mut header, unix_now());
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&header)?;
    for p in parts {
        f.write_all(p)?;
    }
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename is durable once the directory is.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(header.len() + parts.iter().map(Vec::len).sum::<usize>())
}

fn save(cfg: &ServerConfig, path: &Path, mut blobs: Vec<Blob>, started: Instant) {
    blobs.sort_by_key(|b| b.0);
    let parts: Vec<Vec<u8>> = blobs.into_iter().map(|b| b.1).collect();
    let torrents: usize = parts.iter().map(|p| records(p).count()).sum();
    match write(path, &parts) {
        Ok(bytes) => log(
            cfg,
            LogLevel::Info,
            format_args!(
                "state: saved {torrents} torrents ({bytes} bytes) to {} in {} ms",
                path.display(),
                started.elapsed().as_millis()
            ),
        ),
        Err(e) => log(
            cfg,
            LogLevel::Errors,
            format_args!("state: cannot write {}: {e}", path.display()),
        ),
    }
}

/// Saves every `state_interval` on its own thread, and once more at the end.
pub(crate) struct Saver {
    stop: crossbeam_channel::Sender<()>,
    thread: Option<JoinHandle<()>>,
    finals: crossbeam_channel::Receiver<Blob>,
    cfg: Arc<ServerConfig>,
    workers: usize,
}

impl Saver {
    /// Starts the periodic saves; `finals` brings each worker's last records
    /// as it stops.
    pub fn start(
        cfg: Arc<ServerConfig>,
        control: Vec<crossbeam_channel::Sender<Control>>,
        finals: crossbeam_channel::Receiver<Blob>,
    ) -> Saver {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let workers = control.len();
        let c = cfg.clone();
        let thread = std::thread::Builder::new()
            .name("tracker-state".into())
            .spawn(move || {
                let path = c.state.clone().expect("a state file");
                let every = Duration::from_secs(c.state_interval.max(1) as u64);
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(every)
                {
                    let started = Instant::now();
                    let (tx, rx) = crossbeam_channel::unbounded();
                    if control
                        .iter()
                        .any(|w| w.send(Control::Save(tx.clone())).is_err())
                    {
                        return;
                    }
                    drop(tx);
                    let blobs: Vec<Blob> = rx.iter().take(workers).collect();
                    if blobs.len() == workers {
                        save(&c, &path, blobs, started);
                    }
                }
            })
            .ok();
        Saver {
            stop,
            thread,
            finals,
            cfg,
            workers,
        }
    }

    /// Stops the periodic saves and writes the workers' last records (they
    /// have all stopped). A worker that never sent its records leaves the
    /// previous file in place.
    pub fn finish(mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let started = Instant::now();
        let blobs: Vec<Blob> = self.finals.try_iter().collect();
        let path = self.cfg.state.clone().expect("a state file");
        if blobs.len() == self.workers {
            save(&self.cfg, &path, blobs, started);
        } else {
            log(
                &self.cfg,
                LogLevel::Errors,
                format_args!(
                    "state: only {} of {} workers handed in their swarms; {} keeps the last save",
                    blobs.len(),
                    self.workers,
                    path.display()
                ),
            );
        }
    }
}
