//! What the memory manager needs from a model, so it can summarise and embed without knowing
//! about providers or plugins (the `providers` layer implements it).

use async_trait::async_trait;

/// The model behind a session.
#[async_trait]
pub trait Model: Send + Sync {
    /// One completion, for the manager's own use (summaries); it sees only `system` and `user`.
    async fn complete(&self, system: &str, user: &str) -> Result<String, String>;

    /// Embeddings of `texts` with the provider's embedding model, with that model's name;
    /// `None` when the provider has no embeddings.
    async fn embed(&self, texts: Vec<String>, purpose: Purpose) -> Result<Option<(String, Vec<Vec<f32>>)>, String>;
}

/// What texts are embedded for: models such as Cohere's and Voyage's embed a search query
/// differently from the documents it should find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A question to search with.
    Query,
    /// Something stored, to be found later.
    Document,
}
