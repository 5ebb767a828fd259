//! The journal: an append-only JSON Lines file of configuration changes, health
//! transitions, ejections and alerts, plus the recent events in memory for attribution
//! and `/api/v1/journal`. Without `admin.state_dir` the journal lives in memory only.
//!
//! The file is rotated by size (`journal.jsonl` becomes `journal.1.jsonl`). A torn last
//! line (a crash mid-write) is skipped with a warning when the journal is read back.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tango_core::journal::{parse_lines, Event, EventKind};

const RECENT: usize = 10_000;
pub(crate) const FILE_NAME: &str = "journal.jsonl";

struct File {
    path: PathBuf,
    max_bytes: u64,
    size: u64,
}

struct Inner {
    file: Option<Mutex<File>>,
    recent: Mutex<VecDeque<Event>>,
    /// The configuration generation in force, stamped on every event.
    generation: AtomicU64,
}

/// A handle to the journal; cheap to clone.
#[derive(Clone)]
pub(crate) struct Sink(Arc<Inner>);

pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Sink {
    /// Open (or create) the journal in `state_dir`, loading its recent events.
    pub(crate) fn open(state_dir: Option<&Path>, max_bytes: u64) -> anyhow::Result<Sink> {
        let mut recent = VecDeque::new();
        let file = match state_dir {
            None => None,
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    anyhow::anyhow!("cannot create state_dir {}: {e}", dir.display())
                })?;
                let path = dir.join(FILE_NAME);
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let parsed = parse_lines(&text);
                for w in &parsed.warnings {
                    tracing::warn!(journal = %path.display(), "{w}");
                }
                recent.extend(parsed.events.into_iter().rev().take(RECENT).rev());
                let size = text.len() as u64;
                if !text.is_empty() && !text.ends_with('\n') {
                    // Start the next event on its own line after a torn write.
                    let mut f = std::fs::OpenOptions::new().append(true).open(&path)?;
                    f.write_all(b"\n")?;
                }
                Some(Mutex::new(File {
                    path,
                    max_bytes: max_bytes.max(4096),
                    size,
                }))
            }
        };
        Ok(Sink(Arc::new(Inner {
            file,
            recent: Mutex::new(recent),
            generation: AtomicU64::new(0),
        })))
    }

    pub(crate) fn set_generation(&self, g: u64) {
        self.0.generation.store(g, Relaxed);
    }

    pub(crate) fn record(&self, kind: EventKind) -> Event {
        let e = Event {
            ts_ms: unix_ms(),
            generation: self.0.generation.load(Relaxed),
            kind,
        };
        if let Some(f) = &self.0.file {
            let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(err) = append(&mut f, &e) {
                tracing::error!(journal = %f.path.display(), error = %err, "cannot write the journal");
            }
        }
        let mut r = self.0.recent.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() == RECENT {
            r.pop_front();
        }
        r.push_back(e.clone());
        e
    }

    pub(crate) fn health(&self, pool: &str, backend: &str, healthy: bool, reason: &str) {
        self.record(EventKind::HealthTransition {
            pool: pool.into(),
            backend: backend.into(),
            healthy,
            reason: reason.into(),
        });
    }

    /// The events kept in memory, oldest first.
    pub(crate) fn recent(&self) -> Vec<Event> {
        self.0
            .recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

fn append(f: &mut File, e: &Event) -> std::io::Result<()> {
    let mut line = e.to_line();
    line.push('\n');
    if f.size + line.len() as u64 > f.max_bytes && f.size > 0 {
        let rotated = f.path.with_file_name("journal.1.jsonl");
        std::fs::rename(&f.path, rotated)?;
        f.size = 0;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&f.path)?;
    file.write_all(line.as_bytes())?;
    f.size += line.len() as u64;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_a_restart_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sink::open(Some(dir.path()), 1 << 20).unwrap();
        s.health("p", "a", false, "3 failed probes");
        s.health("p", "a", true, "2 passed probes");
        drop(s);
        // A crash mid-write leaves half a line.
        let path = dir.path().join(FILE_NAME);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"ts_ms\":1,\"genera").unwrap();
        let s = Sink::open(Some(dir.path()), 1 << 20).unwrap();
        assert_eq!(s.recent().len(), 2);
        s.health("p", "a", false, "again");
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = parse_lines(&text);
        assert_eq!(parsed.events.len(), 3, "{text}");
        assert_eq!(
            parsed.warnings.len(),
            1,
            "the torn line is reported, not fatal"
        );
    }

    #[test]
    fn rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sink::open(Some(dir.path()), 4096).unwrap();
        for i in 0..100 {
            s.health("pool", &format!("backend-{i}"), i % 2 == 0, "probe");
        }
        let size = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().len();
        assert!(size <= 4096, "{size}");
        assert!(dir.path().join("journal.1.jsonl").exists());
    }
}
