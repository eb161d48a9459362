//! Randomness for jitter and traffic splits, from the standard library's per-process random
//! hash keys: not cryptographic, and no extra dependency.

use std::hash::{BuildHasher, Hasher};

/// A random `u64`.
pub fn u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64
    );
    hasher.finish()
}

/// A random number in [0, 1).
pub fn unit() -> f64 {
    (u64() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    /// Values differ from call to call and stay in range.
    #[test]
    fn varies_and_stays_in_range() {
        let values: std::collections::BTreeSet<u64> = (0..100).map(|_| super::u64()).collect();
        assert!(values.len() > 95);
        assert!((0..1000).map(|_| super::unit()).all(|x| (0.0..1.0).contains(&x)));
    }
}
