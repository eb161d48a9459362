//! Provider routing: picks the provider plugin for a request (the request's choice, the
//! configured default, or the first one with its keys set, falling back to the offline demo),
//! calls it through the runtime, and normalises the reply (usage counted when the vendor omits
//! it, output size checked).

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::capabilities::PluginLabel;
use crate::memory::PromptMessage;
use crate::plugins::{Plugin, Registry};
use crate::runtime::types::{self, ChatRequest, FinishReason, ProviderError, StreamEvent};
use crate::store::Role;
use crate::tokens;

/// Providers tried, in order, when no default is configured: the first one loaded with every
/// secret it declares set wins. Keyless providers (ollama) are only used when named.
pub const PREFERENCE: &[&str] = &["openai", "azure-openai", "anthropic", "mistral", "cohere", "github"];

/// Largest reply accepted from a plugin; a model reply is rarely a hundredth of this.
pub const MAX_REPLY_BYTES: usize = 4 << 20;

/// Why a chat could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown provider {0:?}")]
    Unknown(String),
    #[error("no provider plugin is loaded")]
    NoneLoaded,
    #[error("provider {id} is not configured: set {}", missing.join(", "))]
    NotConfigured { id: String, missing: Vec<String> },
    #[error("provider {plugin} failed: {}", describe(error))]
    Upstream { plugin: PluginLabel, error: ProviderError },
    #[error(transparent)]
    Runtime(#[from] crate::runtime::Error),
}

/// A human-readable provider error (plugins promise their messages carry no secrets).
pub fn describe(error: &ProviderError) -> String {
    match error {
        ProviderError::Unauthorized(m) => format!("unauthorized: {m}"),
        ProviderError::RateLimited(r) => format!("rate limited: {}", r.message),
        ProviderError::BadRequest(m) => format!("bad request: {m}"),
        ProviderError::NotFound(m) => format!("not found: {m}"),
        ProviderError::Unavailable(m) => format!("unavailable: {m}"),
        ProviderError::Timeout(m) => format!("timeout: {m}"),
        ProviderError::Unsupported(m) => format!("unsupported: {m}"),
        ProviderError::Other(m) => m.clone(),
    }
}

/// Per-request choices.
#[derive(Debug, Clone, Default)]
pub struct ChatOptions {
    pub model: Option<String>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
}

/// Token counts, always filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
}

/// A normalised reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub content: String,
    pub finish_reason: &'static str,
    pub usage: Usage,
    pub model: String,
    /// The provider as shown to clients: its id, labelled when it is the offline demo.
    pub provider: String,
}

/// Finds and calls providers from the registry's current plugins.
pub struct Providers {
    registry: Arc<Registry>,
    default: Option<String>,
    default_model: Option<String>,
}

impl Providers {
    pub fn new(registry: Arc<Registry>, default: Option<String>, default_model: Option<String>) -> Self {
        Self { registry, default, default_model }
    }

    /// The provider used when a request names none, chosen afresh from what is loaded now.
    pub fn default_provider(&self) -> Result<Arc<Plugin>, Error> {
        if let Some(id) = &self.default {
            return self.get(id);
        }
        let plugins = self.registry.snapshot();
        let ready = |p: &&Arc<Plugin>| {
            p.provider().is_some_and(|pr| {
                pr.missing_secrets.is_empty() && pr.plugin.capabilities().http.secrets().names().next().is_some()
            })
        };
        PREFERENCE
            .iter()
            .filter_map(|id| plugins.get(*id))
            .find(ready)
            .or_else(|| plugins.values().filter(|p| !p.manifest.demo).find(ready))
            .or_else(|| plugins.values().find(|p| p.manifest.demo && p.provider().is_some()))
            .cloned()
            .ok_or(Error::NoneLoaded)
    }

    /// The provider a request asked for, or the default.
    pub fn select(&self, requested: Option<&str>) -> Result<Arc<Plugin>, Error> {
        match requested {
            Some(id) => self.get(id),
            None => self.default_provider(),
        }
    }

    fn get(&self, id: &str) -> Result<Arc<Plugin>, Error> {
        let plugin =
            self.registry.get(id).filter(|p| p.provider().is_some()).ok_or_else(|| Error::Unknown(id.to_string()))?;
        let missing = &plugin.provider().expect("checked above").missing_secrets;
        if !missing.is_empty() {
            return Err(Error::NotConfigured { id: id.to_string(), missing: missing.clone() });
        }
        Ok(plugin)
    }

    /// The model to use with `plugin` when the request names none.
    fn model_for(&self, plugin: &Plugin, requested: Option<String>) -> String {
        let provider = plugin.provider().expect("callers pass providers");
        let configured = self
            .default
            .as_deref()
            .is_none_or(|d| d == plugin.manifest.id)
            .then(|| self.default_model.clone())
            .flatten();
        requested.or(configured).unwrap_or_else(|| provider.info.default_model.clone())
    }

    /// Builds the WIT request for `prompt`.
    fn request(&self, plugin: &Plugin, prompt: &[PromptMessage], options: ChatOptions) -> ChatRequest {
        ChatRequest {
            model: self.model_for(plugin, options.model),
            messages: prompt.iter().map(message).collect(),
            temperature: options.temperature,
            top_p: None,
            max_tokens: options.max_tokens,
            stop: Vec::new(),
            tools: Vec::new(),
            tool_choice: None,
            extra_json: None,
        }
    }

    /// One complete reply from `plugin`.
    pub async fn chat(&self, plugin: &Plugin, prompt: &[PromptMessage], options: ChatOptions) -> Result<Reply, Error> {
        let request = self.request(plugin, prompt, options);
        let provider = plugin.provider().expect("callers pass providers");
        let response = provider.plugin.chat(&request).await;
        self.reply(plugin, &request, response)
    }

    /// The same, streamed: text deltas go to `deltas` as they arrive.
    pub async fn chat_stream(
        &self,
        plugin: &Plugin,
        prompt: &[PromptMessage],
        options: ChatOptions,
        deltas: mpsc::Sender<String>,
    ) -> Result<Reply, Error> {
        let request = self.request(plugin, prompt, options);
        let provider = plugin.provider().expect("callers pass providers");
        let (tx, mut rx) = mpsc::channel(crate::runtime::STREAM_BUFFER);
        let forward = async move {
            while let Some(event) = rx.recv().await {
                if let StreamEvent::Delta(text) = event
                    && deltas.send(text).await.is_err()
                {
                    break;
                }
            }
        };
        let (response, ()) = tokio::join!(provider.plugin.chat_stream(&request, tx), forward);
        self.reply(plugin, &request, response)
    }

    fn reply(
        &self,
        plugin: &Plugin,
        request: &ChatRequest,
        response: crate::runtime::CallResult<types::ChatResponse>,
    ) -> Result<Reply, Error> {
        let response = response?.map_err(|error| Error::Upstream { plugin: plugin.label(), error })?;
        if response.content.len() > MAX_REPLY_BYTES {
            return Err(crate::runtime::Error::InvalidOutput {
                plugin: plugin.label(),
                reason: format!("a reply of {} bytes exceeds the {MAX_REPLY_BYTES}-byte limit", response.content.len()),
            }
            .into());
        }
        let usage = match response.usage {
            Some(u) => Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                total_tokens: u.prompt_tokens + u.completion_tokens,
            },
            None => {
                let prompt_tokens = tokens::count_prompt(request.messages.iter().map(|m| m.content.as_str())) as u32;
                let completion_tokens = tokens::count(&response.content) as u32;
                Usage { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens }
            }
        };
        let provider = if plugin.manifest.demo {
            format!("{} (offline demo)", plugin.manifest.id)
        } else {
            plugin.manifest.id.clone()
        };
        Ok(Reply {
            content: response.content,
            finish_reason: finish_reason(response.finish_reason),
            usage,
            model: if response.model.is_empty() { request.model.clone() } else { response.model },
            provider,
        })
    }
}

fn message(m: &PromptMessage) -> types::Message {
    types::Message {
        role: match m.role {
            Role::System => types::Role::System,
            Role::User => types::Role::User,
            Role::Assistant => types::Role::Assistant,
            Role::Tool => types::Role::Tool,
        },
        content: m.content.clone(),
        name: None,
        tool_calls: Vec::new(),
        tool_call_id: None,
    }
}

/// OpenAI's spelling of a finish reason.
pub fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::Other => "other",
    }
}
