//! Progress on stderr: a bar redrawn in place on a terminal, one line per
//! batch otherwise (logs of pipeline runs stay readable).

use std::io::{IsTerminal, Write};

pub struct Progress {
    enabled: bool,
    tty: bool,
    total: usize,
    bar_shown: bool,
}

/// Counts shown with the bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub rejected: usize,
}

impl Counts {
    pub fn done(&self) -> usize {
        self.created + self.updated + self.unchanged + self.rejected
    }

    pub fn minus(&self, before: &Counts) -> Counts {
        Counts {
            created: self.created - before.created,
            updated: self.updated - before.updated,
            unchanged: self.unchanged - before.unchanged,
            rejected: self.rejected - before.rejected,
        }
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "created {}, updated {}, unchanged {}, rejected {}",
            self.created, self.updated, self.unchanged, self.rejected
        )
    }
}

impl Progress {
    pub fn new(enabled: bool, total: usize) -> Self {
        Self {
            enabled,
            tty: std::io::stderr().is_terminal(),
            total,
            bar_shown: false,
        }
    }

    /// A line of its own (project, observation and beam steps).
    pub fn note(&mut self, line: &str) {
        if !self.enabled {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.bar_shown {
            let _ = write!(err, "\r\x1b[K");
            self.bar_shown = false;
        }
        let _ = writeln!(err, "{line}");
    }

    /// After a batch: `what` says which one; `delta` what it did.
    pub fn batch(&mut self, what: &str, delta: Counts, total: Counts) {
        if !self.enabled {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[K{}", bar(total, self.total, 24));
            let _ = err.flush();
            self.bar_shown = true;
        } else {
            let _ = writeln!(err, "{what}: {delta} [{}/{}]", total.done(), self.total);
        }
    }

    pub fn finish(&mut self) {
        if self.enabled && self.bar_shown {
            let _ = writeln!(std::io::stderr());
            self.bar_shown = false;
        }
    }
}

/// `[#########...............] 150/400  created 100, ...`
pub fn bar(c: Counts, total: usize, width: usize) -> String {
    let done = c.done().min(total);
    let filled = (done * width).checked_div(total).unwrap_or(width);
    format!(
        "[{}{}] {done}/{total}  {c}",
        "#".repeat(filled),
        ".".repeat(width - filled)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_candidates_done() {
        let c = Counts {
            created: 3,
            updated: 0,
            unchanged: 2,
            rejected: 1,
        };
        assert_eq!(
            bar(c, 12, 12),
            "[######......] 6/12  created 3, updated 0, unchanged 2, rejected 1"
        );
        assert_eq!(
            bar(Counts::default(), 0, 4),
            "[####] 0/0  created 0, updated 0, unchanged 0, rejected 0"
        );
    }
}
