//! Echo's embeddings: lowercase word tokens hashed (FNV-1a) into a fixed number of signed
//! buckets, L2-normalised. Deterministic and offline, yet texts sharing words score a higher
//! cosine similarity than unrelated ones, so memory recall works in the demo.

use codexcontinue_sdk::{EmbedRequest, Embeddings, ProviderError};

/// The embedding model's id.
pub(crate) const MODEL: &str = "echo-embed";

/// Vector length: large enough that a chat message's words rarely collide, small enough to
/// store cheaply beside every message.
const DIMENSIONS: usize = 256;

/// One vector per input, in order; an empty input list gives an empty list.
///
/// Fails with `not-found` when the request names a model other than [`MODEL`].
pub(crate) fn embed(request: &EmbedRequest) -> Result<Embeddings, ProviderError> {
    if let Some(model) = request.model.as_deref().filter(|m| *m != MODEL) {
        return Err(ProviderError::NotFound(format!("echo has no embedding model `{model}`; use `{MODEL}`")));
    }
    Ok(Embeddings {
        model: MODEL.into(),
        vectors: request.inputs.iter().map(|text| vector(text)).collect(),
        usage: None,
    })
}

/// The embedding of one text; a text without words is the zero vector.
fn vector(text: &str) -> Vec<f32> {
    let mut buckets = vec![0f32; DIMENSIONS];
    for token in text.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()) {
        let hash = fnv1a(token.to_lowercase().as_bytes());
        // Low bits pick the bucket, the top bit the sign, so collisions cancel out on average
        // instead of always adding up.
        let bucket = (hash % DIMENSIONS as u64) as usize;
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

    fn request(model: Option<&str>, inputs: &[&str]) -> EmbedRequest {
        EmbedRequest { model: model.map(Into::into), inputs: inputs.iter().map(|s| s.to_string()).collect() }
    }

    /// Vectors are unit length, deterministic and case-insensitive.
    #[test]
    fn unit_length_and_deterministic() {
        let a = vector("The cat sat on the mat");
        assert_eq!(a.len(), DIMENSIONS);
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-5);
        assert_eq!(a, vector("the CAT sat, on the mat!"));
        assert!(vector("").iter().all(|x| *x == 0.0));
    }

    /// Texts sharing words are closer than unrelated ones.
    #[test]
    fn similar_texts_score_higher() {
        let query = vector("my favourite colour is blue");
        let related = vector("what is my favourite colour?");
        let unrelated = vector("deploy the kubernetes cluster tonight");
        assert!(cosine(&query, &related) > cosine(&query, &unrelated) + 0.3);
    }

    /// One vector per input, in order; no inputs give no vectors; other models are refused.
    #[test]
    fn embed_requests() {
        let response = embed(&request(None, &["a", "b"])).unwrap();
        assert_eq!(response.model, MODEL);
        assert_eq!(response.vectors, vec![vector("a"), vector("b")]);
        assert!(embed(&request(Some(MODEL), &[])).unwrap().vectors.is_empty());
        assert!(matches!(embed(&request(Some("text-embedding-3-small"), &["a"])), Err(ProviderError::NotFound(_))));
    }

    /// FNV-1a matches the published test vectors, so vectors stay stable across releases.
    #[test]
    fn fnv1a_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
