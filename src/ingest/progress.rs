//! The progress line of a load on stderr: files, rows and bytes so far, redrawn in place at
//! most ten times a second. Off when stderr is not a terminal (logs, CI) or with `--quiet`.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Progress {
    enabled: bool,
    label: String,
    started: Instant,
    last: Mutex<Option<Instant>>,
}

impl Progress {
    pub fn new(label: impl Into<String>, quiet: bool) -> Self {
        Self { enabled: !quiet && std::io::stderr().is_terminal(), label: label.into(), started: Instant::now(), last: Mutex::new(None) }
    }

    pub fn update(&self, files_done: usize, files: usize, rows: u64, bytes: u64, total_bytes: u64) {
        if !self.enabled {
            return;
        }
        let mut last = self.last.lock().expect("progress lock");
        if last.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) {
            return;
        }
        *last = Some(Instant::now());
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{}: {files_done}/{files} files, {} rows, {} of {} read, {:.1}s",
            self.label,
            thousands(rows),
            human_bytes(bytes),
            human_bytes(total_bytes),
            self.started.elapsed().as_secs_f64()
        );
        let _ = err.flush();
    }

    /// Clears the line so the summary that follows starts on a clean one.
    pub fn finish(&self) {
        if self.enabled {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

/// `541909` -> `541,909`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` things, in the singular for one: `1 row`, `2 rows`, `1,204 files`.
pub fn count(n: u64, thing: &str) -> String {
    if n == 1 { format!("1 {thing}") } else { format!("{} {thing}s", thousands(n)) }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_read_easily() {
        assert_eq!(super::thousands(541_909), "541,909");
        assert_eq!(super::thousands(12), "12");
        assert_eq!(super::human_bytes(1536), "1.5 KiB");
        assert_eq!((super::count(1, "row"), super::count(0, "row"), super::count(2_000, "file")), ("1 row".into(), "0 rows".into(), "2,000 files".into()));
    }
}
