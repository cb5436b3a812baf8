//! Transaction labels: deterministic, unique per pipeline, table, run and checkpoint part,
//! and valid for the target's label alphabet and length.

use cdc_api::{CheckpointId, OwnerEpoch};

/// The longest label Doris and StarRocks accept.
pub const MAX_LABEL: usize = 128;

/// How labels are spelt for one pipeline and target.
#[derive(Debug, Clone)]
pub struct LabelScheme {
    /// `sink.label-prefix` (may be empty).
    pub prefix: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// Characters besides ASCII letters and digits the target accepts in a label.
    pub extra_chars: &'static [char],
}

impl LabelScheme {
    fn head<'a>(&'a self, db: &'a str, table: &'a str) -> Vec<&'a str> {
        let mut parts = Vec::with_capacity(4);
        if !self.prefix.is_empty() {
            parts.push(self.prefix.as_str());
        }
        parts.push(self.pipeline.as_str());
        parts.push(db);
        parts.push(table);
        parts
    }

    /// The label of part `part` of checkpoint `checkpoint`, written by the run `epoch`:
    /// `{prefix}_{pipeline}_{db}_{table}_{epoch}_{checkpoint}_{part}` (epoch in base 36;
    /// without it for [`OwnerEpoch::LEGACY`], the form earlier versions wrote).
    pub fn checkpoint_label(
        &self,
        db: &str,
        table: &str,
        epoch: OwnerEpoch,
        checkpoint: CheckpointId,
        part: u32,
    ) -> String {
        let suffix = if epoch == OwnerEpoch::LEGACY {
            format!("{checkpoint}_{part}")
        } else {
            format!("{}_{checkpoint}_{part}", base36(epoch.0))
        };
        make_label(&self.head(db, table), &suffix, self.extra_chars)
    }

    /// The label of the `seq`th at-least-once load of this run.
    pub fn batch_label(&self, db: &str, table: &str, epoch: OwnerEpoch, seq: u64) -> String {
        make_label(
            &self.head(db, table),
            &format!("{}_b{seq}", base36(epoch.0)),
            self.extra_chars,
        )
    }
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// `head` joined with `_`, then `_suffix`, as a valid label (ASCII letters, digits and
/// `extra`, at most [`MAX_LABEL`] characters). Other characters become `_`; when that
/// changed anything or the label is too long, a hash of the original keeps different tables
/// apart.
pub fn make_label(head: &[&str], suffix: &str, extra: &[char]) -> String {
    let raw = head.join("_");
    let mut clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let room = MAX_LABEL.saturating_sub(suffix.len() + 1);
    if clean != raw || clean.len() > room {
        let hash = format!("{:016x}", fnv1a(raw.as_bytes()));
        clean.truncate(room.saturating_sub(hash.len() + 1));
        clean.push('_');
        clean.push_str(&hash);
    }
    format!("{clean}_{suffix}")
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DORIS: &[char] = &['-', ':'];

    #[test]
    fn labels_are_valid_and_deterministic() {
        let label = |h: &[&str], s: &str| make_label(h, s, DORIS);
        assert_eq!(
            label(&["pipe", "shop", "orders"], "3_0"),
            "pipe_shop_orders_3_0"
        );
        let odd = label(&["Flink CDC Pipeline Job", "shop", "orders"], "3_0");
        assert!(
            odd.starts_with("Flink_CDC_Pipeline_Job_shop_orders_"),
            "{odd}"
        );
        assert!(odd.ends_with("_3_0"));
        assert_eq!(
            odd,
            label(&["Flink CDC Pipeline Job", "shop", "orders"], "3_0")
        );
        // Names that clean to the same text still get different labels.
        assert_ne!(
            label(&["p", "db", "a.b"], "1_0"),
            label(&["p", "db", "a b"], "1_0")
        );
        let long_table = "x".repeat(300);
        let long = label(&["p", "db", &long_table], "12345_7");
        assert!(long.len() <= MAX_LABEL, "{}", long.len());
        assert!(long.ends_with("_12345_7"));
        for l in [odd, long, label(&["p", "数据", "表"], "1_0")] {
            assert!(
                l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || DORIS.contains(&c)),
                "{l}"
            );
        }
        // StarRocks has no ':'.
        assert_eq!(make_label(&["a:b"], "1", &['-'])[..3], *"a_b");
    }

    #[test]
    fn checkpoint_labels_carry_the_epoch_except_legacy_ones() {
        let s = LabelScheme {
            prefix: "pre".into(),
            pipeline: "p".into(),
            extra_chars: DORIS,
        };
        assert_eq!(
            s.checkpoint_label("shop", "orders", OwnerEpoch::LEGACY, CheckpointId(7), 2),
            "pre_p_shop_orders_7_2"
        );
        assert_eq!(
            s.checkpoint_label("shop", "orders", OwnerEpoch(36 * 36), CheckpointId(7), 2),
            "pre_p_shop_orders_100_7_2"
        );
        assert_ne!(
            s.checkpoint_label("shop", "orders", OwnerEpoch(1), CheckpointId(7), 2),
            s.checkpoint_label("shop", "orders", OwnerEpoch(2), CheckpointId(7), 2)
        );
        assert_eq!(
            s.batch_label("shop", "orders", OwnerEpoch(35), 4),
            "pre_p_shop_orders_z_b4"
        );
        assert_eq!(base36(1_765_000_000_000).len(), 8);
    }
}
