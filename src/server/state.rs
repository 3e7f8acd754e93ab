//! The state file: swarms and completed counts saved on shutdown and every
//! `state_interval`, restored at start, so an upgrade does not empty every
//! swarm. The format is [`crate::swarm::state`]'s; this is the file side:
//! reading it at start, asking the workers for their records, and writing it
//! atomically (a temporary file, fsync, rename).

use super::logging::log;
use super::mesh::{Blob, Control};
use crate::config::LogLevel;
use crate::config::ServerConfig;
use crate::swarm::state::{records, write_header, Reader};
use crate::swarm::Shard;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where swarms are restored from: the state file, or the stream a running
/// tracker hands its successor (see `upgrade`), held in memory.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    File(PathBuf),
    Handed(Arc<Vec<u8>>),
}

impl Source {
    fn open(&self) -> std::io::Result<(Reader<Box<dyn std::io::Read + Send>>, u64)> {
        let (inner, len): (Box<dyn std::io::Read + Send>, u64) = match self {
            Source::File(path) => {
                let f = std::fs::File::open(path)?;
                let len = f.metadata()?.len();
                (Box::new(std::io::BufReader::with_capacity(1 << 20, f)), len)
            }
            Source::Handed(bytes) => (
                Box::new(std::io::Cursor::new(ArcBytes(bytes.clone()))),
                bytes.len() as u64,
            ),
        };
        Reader::new(inner, len)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
    }

    /// What the log calls it.
    fn name(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Handed(_) => "the previous process".into(),
        }
    }
}

/// Shared bytes a `Cursor` can read.
struct ArcBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// What a look through the state file at start found.
#[derive(Default)]
pub(crate) struct Restored {
    /// Where to restore from; each worker reads the records it owns.
    pub source: Option<Source>,
    /// Seconds since the file was written.
    pub age: u32,
    /// Torrents per worker.
    pub torrents: Vec<usize>,
    /// The file is damaged: it is kept aside once the workers have read it.
    pub damaged: bool,
}

/// Looks through the state file, if the configuration names one and it
/// exists: the torrents each worker will restore. A file of another format
/// is an error, since writing over it could destroy something that is not
/// ours; a damaged one is restored up to the damage.
pub(crate) fn load(cfg: &ServerConfig, workers: usize) -> Result<Restored, String> {
    match &cfg.state {
        Some(path) => look_through(cfg, Source::File(path.clone()), workers),
        None => Ok(Restored {
            torrents: vec![0; workers],
            ..Restored::default()
        }),
    }
}

/// Looks through the swarms a running tracker handed over, as [`load`]
/// does through the state file.
pub(crate) fn load_handed(
    cfg: &ServerConfig,
    bytes: Arc<Vec<u8>>,
    workers: usize,
) -> Result<Restored, String> {
    look_through(cfg, Source::Handed(bytes), workers)
}

fn look_through(cfg: &ServerConfig, source: Source, workers: usize) -> Result<Restored, String> {
    let mut out = Restored {
        torrents: vec![0; workers],
        ..Restored::default()
    };
    let path = source.name();
    let (mut reader, saved_at) = match source.open() {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log(
                cfg,
                LogLevel::Info,
                format_args!("state: {} does not exist yet; starting empty", path),
            );
            return Ok(out);
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(format!(
                "{}: {e}; move it away or name another --state file",
                path
            ))
        }
        Err(e) => return Err(format!("cannot read the state file {}: {e}", path)),
    };
    let (mut torrents, mut peers) = (0usize, 0usize);
    while let Some(r) = reader.next_record() {
        match r {
            Ok(r) => {
                out.torrents[r.info_hash.owner(workers)] += 1;
                torrents += 1;
                peers += r.peers();
            }
            Err(e) => {
                log(
                    cfg,
                    LogLevel::Errors,
                    format_args!(
                        "state: {}: {e}; restoring the {torrents} torrents before it",
                        path
                    ),
                );
                out.damaged = true;
                break;
            }
        }
    }
    out.age = unix_now().saturating_sub(saved_at).min(u32::MAX as u64) as u32;
    log(
        cfg,
        LogLevel::Info,
        format_args!(
            "state: restoring {torrents} torrents and {peers} peers from {}, saved {} s ago",
            path, out.age
        ),
    );
    out.source = Some(source);
    Ok(out)
}

/// Restores the records of `source` that worker `id` of `workers` owns.
pub(crate) fn restore(
    source: &Source,
    id: usize,
    workers: usize,
    age: u32,
    shard: &mut Shard,
    now: u32,
) {
    let Ok((mut reader, _)) = source.open() else {
        return;
    };
    while let Some(Ok(r)) = reader.next_record() {
        if r.info_hash.owner(workers) == id {
            shard.restore(&r, now, age);
        }
    }
}

/// The workers' records as one stream in the state file's format, for a
/// successor to restore (see `upgrade`).
pub(crate) fn assemble(mut blobs: Vec<Blob>) -> Vec<u8> {
    blobs.sort_by_key(|b| b.0);
    let mut out = Vec::with_capacity(64 + blobs.iter().map(|b| b.1.len()).sum::<usize>());
    write_header(&mut out, unix_now());
    for (_, part) in blobs {
        out.extend_from_slice(&part);
    }
    out
}

/// Keeps a damaged state file aside, so the next save does not destroy it.
pub(crate) fn keep_aside(cfg: &ServerConfig, path: &Path) {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".damaged-{}", unix_now()));
    let aside = PathBuf::from(name);
    if std::fs::rename(path, &aside).is_ok() {
        log(
            cfg,
            LogLevel::Errors,
            format_args!("state: the damaged file is kept as {}", aside.display()),
        );
    }
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

fn save(
    cfg: &ServerConfig,
    path: &Path,
    mut blobs: Vec<Blob>,
    started: Instant,
) -> Result<(), String> {
    blobs.sort_by_key(|b| b.0);
    let parts: Vec<Vec<u8>> = blobs.into_iter().map(|b| b.1).collect();
    let torrents: usize = parts.iter().map(|p| records(p).count()).sum();
    match write(path, &parts) {
        Ok(bytes) => {
            log(
                cfg,
                LogLevel::Info,
                format_args!(
                    "state: saved {torrents} torrents ({bytes} bytes) to {} in {} ms",
                    path.display(),
                    started.elapsed().as_millis()
                ),
            );
            Ok(())
        }
        Err(e) => {
            let e = format!("state: cannot write {}: {e}", path.display());
            log(cfg, LogLevel::Errors, format_args!("{e}"));
            Err(e)
        }
    }
}

/// Checks, as the user the tracker runs as, that the state file can be
/// written where it is named, as every save writes it: a temporary file
/// beside it is created and removed, and renaming it over an existing file
/// must be allowed (in a sticky directory such as /tmp, only the file's or
/// the directory's owner may). A tracker that could not save would lose
/// every swarm at its next restart, so it refuses to start instead.
pub(crate) fn check_writable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // SAFETY: geteuid takes no arguments and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let refuse = |what: &Path, e: &dyn std::fmt::Display| {
        format!(
            "state file {}: cannot write {} as user id {uid}: {e}; the swarms could not be saved. \
             Name a --state file in a directory that user can write, or give it access",
            path.display(),
            what.display()
        )
    };
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| refuse(&tmp, &e))?;
    let _ = std::fs::remove_file(&tmp);
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    if let (Ok(file), Ok(d)) = (std::fs::metadata(path), std::fs::metadata(&dir)) {
        let sticky = d.mode() & libc::S_ISVTX != 0;
        if sticky && uid != 0 && file.uid() != uid && d.uid() != uid {
            return Err(refuse(
                path,
                &format!(
                    "it belongs to user id {} in a sticky directory, so it cannot be replaced",
                    file.uid()
                ),
            ));
        }
    }
    Ok(())
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
                        // A failure is logged; the next save tries again.
                        let _ = save(&c, &path, blobs, started);
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

    /// Stops the periodic saves without a last one.
    pub fn abandon(mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Stops the periodic saves and writes the workers' last records (they
    /// have all stopped). A worker that never sent its records leaves the
    /// previous file in place. An error says why the swarms were not saved.
    pub fn finish(mut self) -> Result<(), String> {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let started = Instant::now();
        let blobs: Vec<Blob> = self.finals.try_iter().collect();
        let path = self.cfg.state.clone().expect("a state file");
        if blobs.len() == self.workers {
            save(&self.cfg, &path, blobs, started)
        } else {
            let e = format!(
                "state: only {} of {} workers handed in their swarms; {} keeps the last save",
                blobs.len(),
                self.workers,
                path.display()
            );
            log(&self.cfg, LogLevel::Errors, format_args!("{e}"));
            Err(e)
        }
    }
}
