//! The journal: an append-only JSON Lines file of configuration changes, health
//! transitions, ejections, alerts, incidents and traffic summaries, plus the recent
//! events in memory for attribution and `/api/v1/journal` (the summaries in a ring of
//! their own, so they never push a change out of attribution's reach). Without
//! `admin.state_dir` the journal lives in memory only.
//!
//! The file is rotated by size (`journal.jsonl` becomes `journal.1.jsonl`). Reading it
//! back (`read_history`, for `tango run` and `tango timeline` alike) tolerates damage: a
//! line torn by a crash, even inside a multi-byte character, or otherwise not an event is
//! skipped and counted, never the whole file; and the next event never lands on a torn
//! tail. The configuration generation continues from the last one journaled, so a
//! generation names one configuration across restarts.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tango_core::journal::{parse_lines, Event, EventKind};

const RECENT: usize = 10_000;
/// Traffic summaries kept in memory apart from the events (at one per pool per 10 s,
/// 55 hours of one pool), so `/api/v1/journal` serves what a recent incident's
/// post-mortem needs without pushing changes out of attribution's reach.
const TRAFFIC: usize = 20_000;
pub(crate) const FILE_NAME: &str = "journal.jsonl";
/// The previous file, once `FILE_NAME` passed `journal_max_bytes`.
const ROTATED_NAME: &str = "journal.1.jsonl";

struct File {
    path: PathBuf,
    max_bytes: u64,
    size: u64,
    /// The last rotation failed (and was logged): events go on into the current file,
    /// past `max_bytes`, until one succeeds.
    rotation_failed: bool,
}

struct Inner {
    file: Option<Mutex<File>>,
    recent: Mutex<VecDeque<Event>>,
    /// Traffic summaries, kept apart so they never crowd out what attribution reads.
    traffic: Mutex<VecDeque<Event>>,
    /// The configuration generation in force, stamped on every event.
    generation: AtomicU64,
    /// The highest generation in the journal when it was opened (0: none).
    last_generation: u64,
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
        let mut traffic = VecDeque::new();
        let mut last_generation = 0;
        let file = match state_dir {
            None => None,
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    anyhow::anyhow!("cannot create state_dir {}: {e}", dir.display())
                })?;
                let path = dir.join(FILE_NAME);
                let history = read_history(&path, |damage| {
                    tracing::warn!(
                        journal = %damage.path.display(),
                        skipped = damage.skipped,
                        "{}",
                        damage.describe()
                    );
                })
                .map_err(|e| anyhow::anyhow!("cannot read the journal {}: {e}", path.display()))?;
                last_generation = history
                    .events
                    .iter()
                    .map(|e| e.generation)
                    .max()
                    .unwrap_or(0);
                let (summaries, events): (Vec<Event>, Vec<Event>) = history
                    .events
                    .into_iter()
                    .partition(|e| matches!(e.kind, EventKind::Traffic { .. }));
                let n = events.len();
                recent.extend(events.into_iter().skip(n.saturating_sub(RECENT)));
                let n = summaries.len();
                traffic.extend(summaries.into_iter().skip(n.saturating_sub(TRAFFIC)));
                let mut size = history.current_bytes;
                if history.torn_tail {
                    // Start the next event on its own line after a torn write.
                    let mut f = std::fs::OpenOptions::new().append(true).open(&path)?;
                    f.write_all(b"\n")?;
                    size += 1;
                }
                Some(Mutex::new(File {
                    path,
                    max_bytes: max_bytes
                        .max(tango_core::config::defaults::admin::JOURNAL_MIN_BYTES),
                    size,
                    rotation_failed: false,
                }))
            }
        };
        Ok(Sink(Arc::new(Inner {
            file,
            recent: Mutex::new(recent),
            traffic: Mutex::new(traffic),
            generation: AtomicU64::new(0),
            last_generation,
        })))
    }

    /// The highest configuration generation the journal held when opened (0: none).
    pub(crate) fn last_generation(&self) -> u64 {
        self.0.last_generation
    }

    pub(crate) fn set_generation(&self, g: u64) {
        self.0.generation.store(g, Relaxed);
    }

    pub(crate) fn record(&self, kind: EventKind) -> Event {
        self.keep(kind, &self.0.recent, RECENT)
    }

    /// A traffic summary: to the file like any event, in memory beside the events.
    pub(crate) fn record_traffic(&self, kind: EventKind) -> Event {
        self.keep(kind, &self.0.traffic, TRAFFIC)
    }

    fn keep(&self, kind: EventKind, ring: &Mutex<VecDeque<Event>>, cap: usize) -> Event {
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
        let mut r = ring.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() == cap {
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

    /// Every event kept in memory, traffic summaries included, oldest first: what the
    /// journal file holds of the same period.
    pub(crate) fn all(&self) -> Vec<Event> {
        let mut all = self.recent();
        all.extend(
            self.0
                .traffic
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned(),
        );
        all.sort_by_key(|e| e.ts_ms);
        all
    }

    /// The events kept in memory, oldest first, without the traffic summaries.
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

/// Lines of one journal file that were skipped, for a single warning.
#[derive(Debug)]
pub(crate) struct Damage {
    pub(crate) path: PathBuf,
    pub(crate) skipped: usize,
    /// The skipped lines' numbers, from 1, so each can be looked at.
    pub(crate) lines: Vec<usize>,
    /// The first skipped line's problem, e.g. "line 3: skipped, not a journal event: ...".
    pub(crate) first: String,
}

/// Line numbers named in one warning; past these, only how many more.
const LINES_NAMED: usize = 10;

impl Damage {
    pub(crate) fn describe(&self) -> String {
        let named: Vec<String> = self
            .lines
            .iter()
            .take(LINES_NAMED)
            .map(usize::to_string)
            .collect();
        let more = match self.lines.len().saturating_sub(LINES_NAMED) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        format!(
            "skipped {} journal line(s) that are not events (a torn write or corruption), at line(s) {}{more}; the rest is read; first: {}",
            self.skipped,
            named.join(", "),
            self.first
        )
    }
}

/// A journal read back: both files' events, oldest first.
#[derive(Debug, Default)]
pub(crate) struct History {
    pub(crate) events: Vec<Event>,
    /// The current file's size in bytes.
    pub(crate) current_bytes: u64,
    /// The current file does not end with a newline: its last write was torn.
    pub(crate) torn_tail: bool,
}

/// Read the journal at `path` and, when it is a `journal.jsonl`, its rotated predecessor
/// (`journal.1.jsonl` beside it): the rotated file read on its own is not its own
/// predecessor (each event would be read twice), and a copy under another name has
/// none. Missing files read as empty. Bytes that are not UTF-8 are replaced rather than
/// failing the read; each line that is not an event is skipped, and each file with such
/// lines is reported once to `damaged`.
pub(crate) fn read_history(
    path: &Path,
    mut damaged: impl FnMut(&Damage),
) -> std::io::Result<History> {
    let rotated = path.with_file_name(ROTATED_NAME);
    let has_predecessor = path.file_name() == Some(std::ffi::OsStr::new(FILE_NAME));
    let mut history = History::default();
    let files = [(rotated.as_path(), false), (path, true)];
    for &(p, current) in &files[usize::from(!has_predecessor)..] {
        let bytes = match std::fs::read(p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        if current {
            history.current_bytes = bytes.len() as u64;
            history.torn_tail = bytes.last().is_some_and(|&b| b != b'\n');
        }
        // A line cut inside a multi-byte character becomes U+FFFD here and then fails
        // to parse as an event: one line lost, not the file.
        let parsed = parse_lines(&String::from_utf8_lossy(&bytes));
        if let Some(first) = parsed.warnings.first() {
            damaged(&Damage {
                path: p.to_path_buf(),
                skipped: parsed.warnings.len(),
                lines: parsed.skipped_lines.clone(),
                first: first.clone(),
            });
        }
        history.events.extend(parsed.events);
    }
    Ok(history)
}

fn append(f: &mut File, e: &Event) -> std::io::Result<()> {
    let mut line = e.to_line();
    line.push('\n');
    if f.size + line.len() as u64 > f.max_bytes && f.size > 0 {
        let rotated = f.path.with_file_name(ROTATED_NAME);
        // A rotation that fails (the rotated name taken by a directory, a read-only
        // directory that still lets the open file grow) must not lose the event: it
        // goes into the current file, over its size, and the failure is said once.
        match std::fs::rename(&f.path, &rotated) {
            Ok(()) => {
                f.size = 0;
                f.rotation_failed = false;
            }
            Err(err) if !f.rotation_failed => {
                f.rotation_failed = true;
                tracing::error!(journal = %f.path.display(), rotated = %rotated.display(), error = %err,
                    "cannot rotate the journal; events go on into the current file, over journal_max_bytes, until a rotation succeeds");
            }
            Err(_) => {}
        }
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
    fn a_line_torn_inside_a_character_costs_that_line_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sink::open(Some(dir.path()), 1 << 20).unwrap();
        s.set_generation(3);
        s.health("p", "bäckend-ü", false, "3 failed probes");
        drop(s);
        let path = dir.path().join(FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        let good = bytes.clone();
        // A copy of the line cut after the first byte of 'ä' (0xC3 0xA4), then a newline
        // and the whole line again.
        let cut = good.iter().position(|&b| b == 0xC3).unwrap() + 1;
        bytes.extend_from_slice(&good[..cut]);
        bytes.push(b'\n');
        bytes.extend_from_slice(&good);
        // And a torn tail.
        bytes.extend_from_slice(&good[..cut]);
        std::fs::write(&path, &bytes).unwrap();
        let mut reports = Vec::new();
        let h = read_history(&path, |d| reports.push((d.skipped, d.first.clone()))).unwrap();
        assert_eq!(h.events.len(), 2);
        assert!(h.torn_tail);
        assert_eq!(reports.len(), 1, "one report per file");
        assert_eq!(reports[0].0, 2);
        assert!(
            reports[0].1.starts_with("line 2: skipped"),
            "{:?}",
            reports[0]
        );
        let s = Sink::open(Some(dir.path()), 1 << 20).unwrap();
        assert_eq!(s.recent().len(), 2);
        assert_eq!(s.last_generation(), 3);
        s.health("p", "b", true, "2 passed probes");
        // The new event starts on its own line: three events now, the same two skipped.
        let h = read_history(&path, |_| {}).unwrap();
        assert_eq!(h.events.len(), 3);
        assert!(!h.torn_tail);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            h.current_bytes,
            "the size is tracked for rotation"
        );
    }

    #[test]
    fn history_spans_the_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sink::open(Some(dir.path()), 4096).unwrap();
        for i in 0..100 {
            s.set_generation(i + 1);
            s.health("pool", &format!("backend-{i}"), i % 2 == 0, "probe");
        }
        drop(s);
        let s = Sink::open(Some(dir.path()), 4096).unwrap();
        assert_eq!(s.last_generation(), 100);
        let recent = s.recent();
        assert!(recent.len() > 1);
        assert!(recent.windows(2).all(|w| w[0].generation < w[1].generation));
        let empty = tempfile::tempdir().unwrap();
        let h = read_history(&empty.path().join(FILE_NAME), |_| panic!("no damage")).unwrap();
        assert!(h.events.is_empty() && !h.torn_tail);
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

    #[test]
    fn a_rotation_that_fails_loses_no_event() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sink::open(Some(dir.path()), 4096).unwrap();
        // A non-empty directory under the rotated name: renaming the file onto it fails.
        std::fs::create_dir_all(dir.path().join(ROTATED_NAME).join("x")).unwrap();
        for i in 0..100 {
            s.health("pool", &format!("backend-{i}"), i % 2 == 0, "probe");
        }
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        for i in 0..100 {
            let name = format!("\"backend-{i}\"");
            assert!(text.contains(&name), "event {i} lost");
        }
        assert_eq!(text.lines().count(), 100);
    }
}
