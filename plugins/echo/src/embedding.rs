//! Echo's embeddings: the SDK's deterministic hashed bag-of-words vectors. Offline, yet texts
//! sharing words score a higher cosine similarity than unrelated ones, so recall works in the
//! demo.

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

/// The embedding of one text.
fn vector(text: &str) -> Vec<f32> {
    codexcontinue_sdk::embedding::hashed(text, DIMENSIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(model: Option<&str>, inputs: &[&str]) -> EmbedRequest {
        EmbedRequest::new(model.map(Into::into), inputs.iter().map(|s| s.to_string()).collect())
    }

    /// One unit vector per input under echo's model name; other model names are not found.
    #[test]
    fn embed_requests() {
        let out = embed(&request(None, &["we picked postgres", "sunny"])).unwrap();
        assert_eq!(out.model, MODEL);
        assert_eq!(out.vectors.len(), 2);
        assert!(out.vectors.iter().all(|v| v.len() == DIMENSIONS));
        assert_eq!(embed(&request(Some(MODEL), &[])).unwrap().vectors.len(), 0);
        assert!(matches!(embed(&request(Some("ada-002"), &["x"])), Err(ProviderError::NotFound(_))));
    }
}
