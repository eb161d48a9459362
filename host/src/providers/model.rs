//! A provider seen as the memory manager's [`Model`]: completions for summaries and
//! embeddings for recall, through the same routing, limits and retries as chats.

use std::sync::Arc;

use async_trait::async_trait;

use super::{ChatOptions, Error, Judged, Providers};
use crate::memory::{Model, Purpose};
use crate::runtime::types::{self, EmbedRequest, InputType, ProviderError};

/// Replies to the manager's own prompts stay short and sober.
const COMPLETION_TOKENS: u32 = 400;

/// One provider, by id.
pub struct ProviderModel {
    pub(super) providers: Arc<Providers>,
    pub(super) id: String,
}

#[async_trait]
impl Model for ProviderModel {
    async fn complete(&self, system: &str, user: &str) -> Result<String, String> {
        let route = self.providers.select(Some(&self.id)).map_err(|e| e.to_string())?;
        let messages =
            [types::Message::text(types::Role::System, system), types::Message::text(types::Role::User, user)];
        let options =
            ChatOptions { max_tokens: Some(COMPLETION_TOKENS), temperature: Some(0.2), ..ChatOptions::default() };
        let reply = self.providers.chat(route, &messages, options).await.map_err(|e| e.to_string())?;
        Ok(reply.content)
    }

    async fn embed(&self, texts: Vec<String>, purpose: Purpose) -> Result<Option<(String, Vec<Vec<f32>>)>, String> {
        let plugin =
            self.providers.registry.get(&self.id).ok_or_else(|| format!("provider {} is not loaded", self.id))?;
        let provider = plugin.provider().ok_or_else(|| format!("{} is not a provider", self.id))?;
        if provider.info.embedding_model.is_none() || !provider.missing.is_empty() {
            return Ok(None);
        }
        let input_type = Some(match purpose {
            Purpose::Query => InputType::Query,
            Purpose::Document => InputType::Document,
        });
        let route = self.providers.select(Some(&self.id)).map_err(|e| e.to_string())?;
        let request = EmbedRequest { model: None, inputs: texts, input_type, dimensions: None };
        match self.providers.embed_judged(route, request, Judged::No).await {
            Ok(out) => Ok(Some((out.model, out.vectors))),
            Err(Error::Upstream { error: ProviderError::Unsupported(_), .. }) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}
