//! Binlog positions and their order.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// A place in the binlog: file name and byte offset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct BinlogPosition {
    pub(crate) file: String,
    pub(crate) pos: u64,
}

impl BinlogPosition {
    pub(crate) fn new(file: impl Into<String>, pos: u64) -> Self {
        Self {
            file: file.into(),
            pos,
        }
    }

    /// The numeric suffix of the file name (`binlog.000042` -> 42), which orders files.
    fn sequence(&self) -> u64 {
        self.file
            .rsplit('.')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

impl PartialOrd for BinlogPosition {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BinlogPosition {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sequence()
            .cmp(&other.sequence())
            .then_with(|| self.file.cmp(&other.file))
            .then_with(|| self.pos.cmp(&other.pos))
    }
}

impl std::fmt::Display for BinlogPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_by_file_sequence_then_offset() {
        let a = BinlogPosition::new("binlog.000009", 900);
        let b = BinlogPosition::new("binlog.000010", 4);
        let c = BinlogPosition::new("binlog.000010", 5);
        assert!(a < b && b < c);
    }
}
