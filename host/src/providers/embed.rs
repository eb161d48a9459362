//! Embeddings, for clients (`POST /v1/embeddings`) and for the memory manager: one provider's
//! embedding model, retried like a chat (deadline, `Retry-After`, redaction) but never handed to
//! a fallback, whose vectors would live in another space. A provider that answers that it has
//! no embeddings is remembered and not asked again until its plugin changes.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tracing::Instrument;

use super::{Error, Judged, Providers, label, redacted};
use crate::plugins::{Plugin, Route};
use crate::runtime::types::{EmbedRequest, ProviderError};
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
    /// Embeds `request.inputs` with the route's provider; `request.model` None means its
    /// embedding model.
    pub async fn embed(&self, route: Route, request: EmbedRequest) -> Result<Embedded, Error> {
        self.embed_judged(route, request, Judged::Yes).await
    }

    /// The same; the memory manager's background calls (`Judged::No`) say nothing about the
    /// provider's health or a new version, which its clients' calls judge.
    pub(super) async fn embed_judged(
        &self,
        route: Route,
        request: EmbedRequest,
        judged: Judged,
    ) -> Result<Embedded, Error> {
        let plugin = route.primary;
        if let Some(reason) = self.no_embeddings(&plugin, request.model.is_none()) {
            return Err(Error::Upstream { plugin: plugin.label(), error: ProviderError::Unsupported(reason) });
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.config.deadline_ms);
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
        let out = tokio::time::timeout_at(deadline, self.attempts(&plugin, (&never_streams, judged), deadline, once))
            .await
            .map_err(|_| Error::Deadline { ms: self.config.deadline_ms })?;
        if let Err(Error::Upstream { error, .. }) = &out {
            match error {
                ProviderError::Unsupported(_) => self.remember_no_embeddings(&plugin, error, true),
                // A vendor without the endpoint answers 404 for the provider's own model; a
                // client's unknown model name says nothing about the others.
                ProviderError::NotFound(_) if request.model.is_none() => {
                    self.remember_no_embeddings(&plugin, error, false)
                }
                _ => {}
            }
        }
        out
    }

    /// Why `plugin`, as loaded now, is known to have no embeddings (for its own model, or for
    /// any), if it is.
    fn no_embeddings(&self, plugin: &Plugin, own_model: bool) -> Option<String> {
        let known = self.no_embeddings.lock().unwrap_or_else(|e| e.into_inner());
        let lacking = known.get(&plugin.manifest.id).filter(|l| l.digest == plugin.digest)?;
        (own_model || lacking.any_model).then(|| lacking.why.clone())
    }

    fn remember_no_embeddings(&self, plugin: &Plugin, error: &ProviderError, any_model: bool) {
        let why = format!("{} (not asked again until the plugin changes)", super::describe(error));
        tracing::info!(plugin = %plugin.label(), "no embeddings from this provider: {why}");
        let lacking = NoEmbeddings { digest: plugin.digest.clone(), why, any_model };
        self.no_embeddings.lock().unwrap_or_else(|e| e.into_inner()).insert(plugin.manifest.id.clone(), lacking);
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

/// A provider found to have no embeddings, as of one build of its plugin.
pub(super) struct NoEmbeddings {
    digest: String,
    why: String,
    /// "Unsupported" covers every model; "not found" only the provider's own.
    any_model: bool,
}
