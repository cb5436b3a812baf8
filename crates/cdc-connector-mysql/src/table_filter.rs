//! Which tables a pipeline captures: Flink CDC's `tables` / `tables.exclude` syntax.
//!
//! Each comma-separated item is a regex over `db.table` in which an unescaped `.` is the
//! separator between database and table and `\.` stands for the regex "any character":
//! `app_db.\.*` matches every table of `app_db`; `db[1-2].user_[0-9]+` matches
//! `db1.user_7`. Matching is anchored at both ends.

use regex::Regex;

/// Compiled `tables` / `tables.exclude` patterns.
#[derive(Debug, Clone)]
pub(crate) struct TableFilter {
    include: Vec<Regex>,
    exclude: Vec<Regex>,
}

/// Turns one Flink CDC table pattern into an anchored regex.
pub(crate) fn table_regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(&cdc_api::table_selector_regex(pattern))
        .map_err(|e| format!("'{pattern}' is not a valid table pattern: {e}"))
}

impl TableFilter {
    pub(crate) fn new(include: &str, exclude: Option<&str>) -> Result<Self, String> {
        let compile = |text: &str| -> Result<Vec<Regex>, String> {
            text.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(table_regex)
                .collect()
        };
        let include = compile(include)?;
        if include.is_empty() {
            return Err("no table pattern given".into());
        }
        Ok(Self {
            include,
            exclude: exclude.map(compile).transpose()?.unwrap_or_default(),
        })
    }

    /// Leaves out exactly `db.table`, whatever the patterns say.
    pub(crate) fn exclude_exact(&mut self, db: &str, table: &str) {
        let full = format!("^{}$", regex::escape(&format!("{db}.{table}")));
        if let Ok(re) = Regex::new(&full) {
            self.exclude.push(re);
        }
    }

    /// Whether `db.table` is captured.
    pub(crate) fn matches(&self, db: &str, table: &str) -> bool {
        let full = format!("{db}.{table}");
        self.include.iter().any(|r| r.is_match(&full))
            && !self.exclude.iter().any(|r| r.is_match(&full))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_cdc_patterns() {
        let f = TableFilter::new(
            r"db0.\.*, db1.user_table_[0-9]+, db[1-2].[app|web]_order_\.*",
            Some(r"db0.tmp_\.*"),
        )
        .unwrap();
        assert!(f.matches("db0", "anything"));
        assert!(!f.matches("db0", "tmp_x"));
        assert!(f.matches("db1", "user_table_12"));
        assert!(!f.matches("db1", "user_table_x"));
        // `[app|web]` is a regex character class: one of a, p, |, w, e, b.
        assert!(f.matches("db2", "w_order_2024"));
        assert!(!f.matches("db3", "w_order_2024"));
        assert!(!f.matches("xdb0", "t"), "anchored");
        assert!(
            !f.matches("db0x", "t"),
            "the dot separates database and table"
        );
        assert!(TableFilter::new("db.(", None).is_err());
    }
}
