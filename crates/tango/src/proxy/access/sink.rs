//! Where access log lines are written: a file opened for appending (reopened on
//! request, for logrotate) or stderr. Lines collect in a buffer that is written out
//! when it passes 64 KiB and on every flush, as nginx's `access_log ... buffer=` does:
//! a write per request would cost a system call each.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// Buffered bytes past which a request writes them out itself.
const FLUSH_AT: usize = 64 * 1024;

pub(crate) struct Sink {
    path: Option<PathBuf>,
    buf: Mutex<Vec<u8>>,
    /// `None` writes to stderr. Held while writing, so flushes keep lines in order.
    file: Mutex<Option<File>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn open(path: &PathBuf) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl Sink {
    pub(crate) fn open(path: Option<PathBuf>) -> std::io::Result<Sink> {
        let file = path.as_ref().map(open).transpose()?;
        Ok(Sink {
            path,
            buf: Mutex::new(Vec::with_capacity(FLUSH_AT)),
            file: Mutex::new(file),
        })
    }

    pub(crate) fn push(&self, line: &[u8]) {
        let full = {
            let mut b = lock(&self.buf);
            b.extend_from_slice(line);
            b.len() >= FLUSH_AT
        };
        if full {
            self.flush();
        }
    }

    pub(crate) fn flush(&self) {
        let mut file = lock(&self.file);
        let data = std::mem::take(&mut *lock(&self.buf));
        if data.is_empty() {
            return;
        }
        let r = match file.as_mut() {
            Some(f) => f.write_all(&data),
            None => std::io::stderr().lock().write_all(&data),
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, bytes = data.len(), "access log write failed; lines lost");
        }
    }

    /// Write out what is buffered to the old file, then open the path again: after
    /// logrotate renamed the file, a new one is created. `Ok(None)`: stderr, nothing
    /// to reopen.
    pub(crate) fn reopen(&self) -> std::io::Result<Option<&PathBuf>> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        self.flush();
        let new = open(path)?;
        *lock(&self.file) = Some(new);
        Ok(Some(path))
    }
}

#[cfg(test)]
mod tests {
    use super::Sink;

    #[test]
    fn lines_reach_the_file_on_flush_and_the_new_file_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let s = Sink::open(Some(path.clone())).unwrap();
        s.push(b"one\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        s.flush();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\n");
        s.push(b"two\n");
        let rotated = dir.path().join("access.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        s.reopen().unwrap();
        s.push(b"three\n");
        s.flush();
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "one\ntwo\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
    }
}
