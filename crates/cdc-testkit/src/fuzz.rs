//! Seeded random inputs for fuzz-style tests that run in plain `cargo test` (no nightly,
//! no corpus): the same inputs on every run and machine, so a failure names its seed and
//! reproduces.

/// A small seeded generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        usize::try_from(self.next_u64() % n as u64).unwrap_or(0)
    }

    /// One of `items` (which must not be empty).
    ///
    /// # Panics
    /// When `items` is empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Up to `max` random bytes.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next_u64().to_le_bytes()[0]).collect()
    }

    /// `input` changed one to five times: a bit flipped, a slice cut out, one of
    /// `inserts` inserted, a truncation, or random bytes inserted.
    pub fn mutate(&mut self, input: &[u8], inserts: &[&str]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(out.len() + 1);
            match self.below(5) {
                0 if !out.is_empty() => {
                    let i = self.below(out.len());
                    out[i] ^= 1 << self.below(8);
                }
                1 if !out.is_empty() => {
                    let end = (at + self.below(16)).min(out.len());
                    out.drain(at..end);
                }
                2 if !inserts.is_empty() => {
                    let text = self.pick(inserts).as_bytes().to_vec();
                    out.splice(at..at, text);
                }
                3 => out.truncate(at),
                _ => {
                    let noise = self.bytes(8);
                    out.splice(at..at, noise);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn the_same_seed_gives_the_same_inputs() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            assert_eq!(a.mutate(b"hello", &["x"]), b.mutate(b"hello", &["x"]));
        }
        assert_eq!(Rng::new(1).below(0), 0);
    }
}
