//! Deterministic, offline embeddings: lowercase word tokens hashed (FNV-1a) into signed buckets
//! and L2-normalised. Texts sharing words score a higher cosine similarity than unrelated ones,
//! which is enough for demos and for testing recall without a vendor.

/// The embedding of `text` in `dimensions` buckets; a text without words is the zero vector.
pub fn hashed(text: &str, dimensions: usize) -> Vec<f32> {
    let mut buckets = vec![0f32; dimensions];
    if dimensions == 0 {
        return buckets;
    }
    for token in text.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()) {
        let hash = fnv1a(token.to_lowercase().as_bytes());
        // Low bits pick the bucket, the top bit the sign, so collisions cancel out on average
        // instead of always adding up.
        let bucket = (hash % dimensions as u64) as usize;
        buckets[bucket] += if hash >> 63 == 0 { 1.0 } else { -1.0 };
    }
    let norm = buckets.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        buckets.iter_mut().for_each(|x| *x /= norm);
    }
    buckets
}

/// 64-bit FNV-1a: tiny, stable across platforms and releases, good enough spread for buckets.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    /// Vectors are unit length and the same text always gives the same vector.
    #[test]
    fn unit_length_and_deterministic() {
        let v = hashed("We decided to use Postgres", 256);
        assert!((v.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
        assert_eq!(v, hashed("we DECIDED to use postgres", 256));
        assert!(hashed("   ", 256).iter().all(|x| *x == 0.0));
    }

    /// Texts sharing words are closer than unrelated texts.
    #[test]
    fn similar_texts_score_higher() {
        let q = hashed("which database did we pick for the audit log", 256);
        let related = hashed("we decided to use postgres as the database for the audit log", 256);
        let unrelated = hashed("the weather is sunny and warm today", 256);
        assert!(cosine(&q, &related) > cosine(&q, &unrelated) + 0.2);
    }

    /// FNV-1a matches its published test vectors.
    #[test]
    fn fnv1a_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
