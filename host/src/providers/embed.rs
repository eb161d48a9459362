//! Embeddings for clients (`POST /v1/embeddings`): one provider's embedding model, retried like
//! a chat but never handed to a fallback, whose vectors would live in another space.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tracing::Instrument;

use super::{Error, Providers, label, redacted};
use crate::plugins::{Plugin, Route};
use crate::runtime::types::EmbedRequest;
use crate::tokens;

/// Vectors, one per input in input order, and what made them.
#[derive(Debug, Clone)]
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    pub model: String,
    /// The vendor's count, or the tokenizer's when it gives none.
    pub prompt_tokens: u32,
    /// As replies name providers.
    pub provider: String,
}

impl Providers {
    /// Embeds `inputs` with the route's provider; `model` None means its embedding model.
    pub async fn embed(&self, route: Route, model: Option<String>, inputs: Vec<String>) -> Result<Embedded, Error> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.config.deadline_ms);
        let plugin = route.primary;
        let request = EmbedRequest { model, inputs, input_type: None, dimensions: None };
        let once = |retry: u32| {
            let model = request.model.as_deref().unwrap_or_default();
            let span = tracing::info_span!(
                "provider call",
                otel.name = format!("embeddings {model}").trim_end(),
                otel.kind = "client",
                gen_ai.operation.name = "embeddings",
                gen_ai.provider.name = crate::telemetry::gen_ai_provider(&plugin.manifest.id),
                gen_ai.request.model = model,
                codexcontinue.plugin = %plugin.label(),
                codexcontinue.retry = i64::from(retry),
            );
            self.embed_once(&plugin, &request).instrument(span)
        };
        let never_streams = AtomicBool::new(false);
        tokio::time::timeout_at(deadline, self.attempts(&plugin, &never_streams, deadline, once))
            .await
            .map_err(|_| Error::Deadline { ms: self.config.deadline_ms })?
    }

    async fn embed_once(&self, plugin: &Arc<Plugin>, request: &EmbedRequest) -> Result<Embedded, Error> {
        let provider = plugin.provider().expect("callers pass providers");
        let out = provider
            .plugin
            .embed(request)
            .await?
            .map_err(|error| Error::Upstream { plugin: plugin.label(), error: redacted(plugin, error) })?;
        if out.vectors.len() != request.inputs.len() {
            return Err(crate::runtime::Error::InvalidOutput {
                plugin: plugin.label(),
                reason: format!("{} vectors for {} inputs", out.vectors.len(), request.inputs.len()),
            }
            .into());
        }
        let prompt_tokens = match out.usage {
            Some(usage) => usage.prompt_tokens,
            None => request.inputs.iter().map(|i| tokens::count(i) as u32).sum(),
        };
        Ok(Embedded { vectors: out.vectors, model: out.model, prompt_tokens, provider: label(plugin) })
    }
}
