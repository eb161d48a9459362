//! Provider routing: picks the provider plugin for a request (the request's choice, the
//! configured default, or the first one with its keys set, falling back to the offline demo),
//! calls it through the runtime with retries and an ordered fallback list, and normalises the
//! reply (usage counted when the vendor omits it, output size checked, the plugin's secret values
//! masked in replies and stream events alike).

mod aliases;
mod context;
mod embed;
mod health;
mod masking;
mod model;
mod retry;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::Instrument;

pub use context::DEFAULT_CONTEXT;
pub use embed::Embedded;
pub use health::Health;
use health::HealthBook;
pub use model::ProviderModel;

use crate::capabilities::PluginLabel;
use crate::capabilities::mask::Masker;
use crate::config::ProvidersConfig;
use crate::plugins::{Plugin, Registry, Route, Slot};
use crate::runtime::types::{self, ChatRequest, FinishReason, ModelInfo, ProviderError, StreamEvent, ToolSpec};
use crate::tokens;

/// Providers tried, in order, when no default is configured: the first one loaded with every
/// secret and required setting it declares set wins. Others are used only when named: keyless
/// ones (ollama), and `github`, whose `GITHUB_TOKEN` is often set for unrelated reasons.
pub const PREFERENCE: &[&str] = &["openai", "azure-openai", "anthropic", "mistral", "cohere"];

/// Largest reply accepted from a plugin; a model reply is rarely a hundredth of this.
pub const MAX_REPLY_BYTES: usize = 4 << 20;

/// How long a provider's model list is reused before asking it again.
const MODELS_TTL: Duration = Duration::from_secs(300);

/// Whether a call's outcome judges the provider (health, rollout of a new version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Judged {
    Yes,
    No,
}

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
    #[error("no provider answered within the {ms} ms deadline")]
    Deadline { ms: u64 },
}

impl Error {
    /// A short, stable name for the failure (telemetry's `error.type`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unknown(_) => "unknown_provider",
            Self::NoneLoaded => "no_provider",
            Self::NotConfigured { .. } => "provider_not_configured",
            Self::Upstream { error, .. } => error_kind(error),
            Self::Runtime(_) => "plugin_failed",
            Self::Deadline { .. } => "deadline_exceeded",
        }
    }
}

/// The client span of one call to a provider: one per attempt, so each retry and fallback shows.
fn attempt_span(plugin: &Plugin, request: &ChatRequest, retry: u32, fallback_from: Option<&str>) -> tracing::Span {
    tracing::info_span!(
        "provider call",
        otel.name = format!("chat {}", request.model),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = crate::telemetry::gen_ai_provider(&plugin.manifest.id),
        gen_ai.request.model = request.model.as_str(),
        gen_ai.response.model = tracing::field::Empty,
        gen_ai.response.finish_reasons = tracing::field::Empty,
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty,
        error.type = tracing::field::Empty,
        codexcontinue.plugin = %plugin.label(),
        codexcontinue.retry = i64::from(retry),
        codexcontinue.fallback_from = fallback_from,
    )
}

/// Records a call's result on the current attempt span.
fn attempted(result: Result<Reply, Error>) -> Result<Reply, Error> {
    let span = tracing::Span::current();
    match &result {
        Ok(reply) => {
            span.record("gen_ai.response.model", reply.model.as_str());
            span.record("gen_ai.response.finish_reasons", reply.finish_reason);
            span.record("gen_ai.usage.input_tokens", i64::from(reply.usage.prompt_tokens));
            span.record("gen_ai.usage.output_tokens", i64::from(reply.usage.completion_tokens));
        }
        Err(error) => {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", error.kind());
        }
    }
    result
}

/// A vendor error's short name.
pub fn error_kind(error: &ProviderError) -> &'static str {
    match error {
        ProviderError::Unauthorized(_) => "unauthorized",
        ProviderError::RateLimited(_) => "rate_limited",
        ProviderError::BadRequest(_) => "bad_request",
        ProviderError::RequestTooLarge(_) => "request_too_large",
        ProviderError::ContextLengthExceeded(_) => "context_length_exceeded",
        ProviderError::NotFound(_) => "not_found",
        ProviderError::Unavailable(_) => "unavailable",
        ProviderError::Overloaded(_) => "overloaded",
        ProviderError::Timeout(_) => "timeout",
        ProviderError::Unsupported(_) => "unsupported",
        ProviderError::Other(_) => "other",
    }
}

/// A human-readable provider error (plugins promise their messages carry no secrets).
pub fn describe(error: &ProviderError) -> String {
    match error {
        ProviderError::Unauthorized(m) => format!("unauthorized: {m}"),
        ProviderError::RateLimited(r) => format!("rate limited: {}", r.message),
        ProviderError::BadRequest(m) => format!("bad request: {m}"),
        ProviderError::RequestTooLarge(m) => format!("request too large: {m}"),
        ProviderError::ContextLengthExceeded(m) => format!("context length exceeded: {m}"),
        ProviderError::NotFound(m) => format!("not found: {m}"),
        ProviderError::Unavailable(r) => format!("unavailable: {}", r.message),
        ProviderError::Overloaded(r) => format!("overloaded: {}", r.message),
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
    pub top_p: Option<f32>,
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
    pub tools: Vec<ToolSpec>,
    pub tool_choice: Option<String>,
    /// Vendor-specific fields, a JSON object.
    pub extra_json: Option<String>,
}

/// Token counts, always filled in; the details are 0 when the vendor did not report them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
    /// Prompt tokens read from the vendor's cache (part of `prompt_tokens`).
    #[serde(skip_serializing_if = "is_zero")]
    pub cached_read_tokens: u32,
    /// Prompt tokens written to the vendor's cache (part of `prompt_tokens`).
    #[serde(skip_serializing_if = "is_zero")]
    pub cached_write_tokens: u32,
    /// Completion tokens spent on reasoning (part of `completion_tokens`).
    #[serde(skip_serializing_if = "is_zero")]
    pub reasoning_tokens: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Usage {
    /// Counts with no cache or reasoning detail.
    pub fn counted(prompt_tokens: u32, completion_tokens: u32) -> Self {
        Usage { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens, ..Usage::default() }
    }
}

impl From<types::Usage> for Usage {
    fn from(u: types::Usage) -> Self {
        Usage {
            cached_read_tokens: u.cached_read_tokens,
            cached_write_tokens: u.cached_write_tokens,
            reasoning_tokens: u.reasoning_tokens,
            ..Usage::counted(u.prompt_tokens, u.completion_tokens)
        }
    }
}

/// A normalised reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub content: String,
    /// Reasoning blocks, with the vendor's signatures, to replay to the same vendor.
    pub reasoning: Vec<types::ReasoningBlock>,
    pub tool_calls: Vec<types::ToolCall>,
    pub finish_reason: &'static str,
    pub usage: Usage,
    pub model: String,
    /// The provider that answered, as shown to clients: its id, labelled when it is the demo.
    pub provider: String,
}

/// One provider's models, or why they could not be listed.
pub struct ProviderModels {
    pub plugin: Arc<Plugin>,
    pub models: Result<Vec<ModelInfo>, String>,
}

/// Finds and calls providers from the registry's current plugins.
pub struct Providers {
    registry: Arc<Registry>,
    config: ProvidersConfig,
    health: HealthBook,
    models: Mutex<HashMap<String, CachedModels>>,
    /// The union of every loaded plugin's secret values, and the registry state it was built
    /// from: rebuilt only when a plugin is installed, promoted or removed.
    secrets: Mutex<Option<(Slots, Arc<Masker>)>>,
    /// Providers that answered they have no embeddings, by id.
    no_embeddings: Mutex<HashMap<String, embed::NoEmbeddings>>,
}

/// The registry's plugins at one moment (compared by pointer to tell whether anything changed).
type Slots = Arc<BTreeMap<String, Arc<Slot>>>;

/// A provider's model list, when it was fetched, and from which build of the plugin.
struct CachedModels {
    at: Instant,
    digest: String,
    models: Vec<ModelInfo>,
}

impl Providers {
    pub fn new(registry: Arc<Registry>, config: ProvidersConfig) -> Self {
        Self {
            registry,
            config,
            health: HealthBook::default(),
            models: Mutex::default(),
            secrets: Mutex::default(),
            no_embeddings: Mutex::default(),
        }
    }

    /// A masker for every secret value any loaded plugin (stable or candidate, provider or
    /// memory) may send: for what clients write, which is no single plugin's, so a key a user
    /// pastes is neither stored nor sent to a vendor.
    pub fn secrets_masker(&self) -> Arc<Masker> {
        let slots = self.registry.slots();
        let mut cached = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((built_from, masker)) = cached.as_ref()
            && Arc::ptr_eq(built_from, &slots)
        {
            return masker.clone();
        }
        let plugins =
            slots.values().flat_map(|s| std::iter::once(&s.stable).chain(s.candidate.as_ref().map(|c| &c.plugin)));
        let masker = Arc::new(Masker::union(plugins.map(|p| p.capabilities().http.secrets().masker().as_ref())));
        *cached = Some((slots, masker.clone()));
        masker
    }

    /// The provider used when a request names none, chosen afresh from what is loaded now.
    pub fn default_provider(&self) -> Result<Arc<Plugin>, Error> {
        if let Some(id) = &self.config.default {
            return self.get(id);
        }
        let plugins = self.registry.snapshot();
        let ready = |p: &&Arc<Plugin>| {
            p.provider().is_some_and(|pr| {
                pr.missing.is_empty() && pr.plugin.capabilities().http.secrets().names().next().is_some()
            })
        };
        PREFERENCE
            .iter()
            .filter_map(|id| plugins.get(*id))
            .find(ready)
            .or_else(|| plugins.values().find(|p| p.manifest.demo && p.provider().is_some()))
            .cloned()
            .ok_or(Error::NoneLoaded)
    }

    /// The provider a request asked for, or the default, with the version that will serve.
    pub fn select(&self, requested: Option<&str>) -> Result<Route, Error> {
        match requested {
            Some(id) => self.route_of(id),
            None => self.route_of(&self.default_provider()?.manifest.id),
        }
    }

    fn route_of(&self, id: &str) -> Result<Route, Error> {
        self.get(id)?;
        self.registry.route(id).ok_or_else(|| Error::Unknown(id.to_string()))
    }

    /// What a model name a client sent stands for (`[providers.aliases]`), if anything.
    pub fn alias(&self, model: &str) -> Option<&str> {
        aliases::resolve(&self.config.aliases, model)
    }

    /// The configured aliases, for `/status` and `/v1/models`.
    pub fn aliases(&self) -> &std::collections::BTreeMap<String, String> {
        &self.config.aliases
    }

    /// Whether `id` names a loaded provider (configured or not).
    pub fn is_provider(&self, id: &str) -> bool {
        self.registry.get(id).is_some_and(|p| p.provider().is_some())
    }

    fn get(&self, id: &str) -> Result<Arc<Plugin>, Error> {
        let plugin =
            self.registry.get(id).filter(|p| p.provider().is_some()).ok_or_else(|| Error::Unknown(id.to_string()))?;
        let missing = &plugin.provider().expect("checked above").missing;
        if !missing.is_empty() {
            return Err(Error::NotConfigured { id: id.to_string(), missing: missing.clone() });
        }
        Ok(plugin)
    }

    /// The provider `id` as a model the memory manager can summarise and embed with.
    pub fn model(self: &Arc<Self>, id: &str) -> Arc<dyn crate::memory::Model> {
        Arc::new(ProviderModel { providers: self.clone(), id: id.to_string() })
    }

    /// The context window of `model` on `plugin`: from the provider's model list when it has
    /// been fetched and says, else from the well-known models, else a safe default.
    pub fn context_window(&self, plugin: &Plugin, model: &str) -> usize {
        let listed =
            self.models.lock().unwrap_or_else(|e| e.into_inner()).get(&plugin.manifest.id).and_then(|cached| {
                cached.models.iter().find(|m| m.id == model).and_then(|m| m.context_window).map(|t| t as usize)
            });
        listed.or_else(|| context::known(model)).unwrap_or(DEFAULT_CONTEXT)
    }

    /// The model a request will use on `plugin` (its own, or the configured or provider default).
    pub fn resolve_model(&self, plugin: &Plugin, requested: Option<&str>) -> String {
        self.model_for(plugin, requested.map(str::to_string))
    }

    /// The recent record of provider `id`.
    pub fn health(&self, id: &str) -> Health {
        self.health.get(id)
    }

    /// One complete reply: from the route's version, retried, then from its backup and the
    /// provider's fallbacks.
    pub async fn chat(&self, route: Route, messages: &[types::Message], options: ChatOptions) -> Result<Reply, Error> {
        self.serve(route, messages, options, None).await
    }

    /// The same, streamed: events go to `events` as they arrive. Once one has gone out, the
    /// call is neither retried nor handed to a fallback: the client already has part of a reply.
    pub async fn chat_stream(
        &self,
        route: Route,
        messages: &[types::Message],
        options: ChatOptions,
        events: mpsc::Sender<StreamEvent>,
    ) -> Result<Reply, Error> {
        self.serve(route, messages, options, Some(events)).await
    }

    /// Tries the route's version, then the stable version if that was a candidate, then each
    /// configured fallback that is loaded and configured.
    async fn serve(
        &self,
        route: Route,
        messages: &[types::Message],
        options: ChatOptions,
        events: Option<mpsc::Sender<StreamEvent>>,
    ) -> Result<Reply, Error> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.config.deadline_ms);
        let first = route.primary.manifest.id.clone();
        let fallbacks = self.config.fallbacks.get(&first).cloned().unwrap_or_default();
        let streamed = AtomicBool::new(false);
        let mut candidates = vec![route.primary];
        candidates.extend(route.backup);
        candidates.extend(fallbacks.iter().filter_map(|id| self.route_of(id).ok().map(|r| r.primary)));
        let mut last_error = None;
        for (i, plugin) in candidates.iter().enumerate() {
            // Model names are vendor-specific: a fallback answers with its own default model.
            let own = plugin.manifest.id == first;
            let mut request = self.request(
                plugin,
                messages,
                if own { options.clone() } else { ChatOptions { model: None, ..options.clone() } },
            );
            // Reasoning signatures and encrypted content belong to the vendor that made them:
            // another vendor cannot read them and must not be handed them.
            if !own {
                request.messages.iter_mut().for_each(|m| m.reasoning.clear());
            }
            let once = |attempt| {
                let span = attempt_span(plugin, &request, attempt, (i > 0).then_some(first.as_str()));
                self.once(plugin, &request, events.as_ref(), &streamed).instrument(span)
            };
            let outcome =
                tokio::time::timeout_at(deadline, self.attempts(plugin, (&streamed, Judged::Yes), deadline, once))
                    .await;
            let error = match outcome {
                Ok(Ok(reply)) => return Ok(reply),
                Ok(Err(error)) => error,
                Err(_) => return Err(Error::Deadline { ms: self.config.deadline_ms }),
            };
            if streamed.load(Ordering::SeqCst) || !retry::worth_falling_back(&error) {
                return Err(error);
            }
            if let Some(next) = candidates.get(i + 1) {
                tracing::warn!(from = %plugin.label(), to = %next.label(), "falling back: {error}");
                metrics::counter!("codexcontinue_provider_fallbacks_total", "provider" => plugin.manifest.id.clone())
                    .increment(1);
            }
            last_error = Some(error);
        }
        Err(last_error.expect("there is always a first candidate"))
    }

    /// Calls one provider (`call`), retrying retryable failures while the deadline allows and
    /// nothing has been `streamed` to the client yet. What `Judged` calls do counts toward the
    /// provider's health and toward judging a newly rolled-out version.
    async fn attempts<T, F, Fut>(
        &self,
        plugin: &Arc<Plugin>,
        (streamed, judged): (&AtomicBool, Judged),
        deadline: tokio::time::Instant,
        mut call: F,
    ) -> Result<T, Error>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut attempt = 0;
        loop {
            let result = call(attempt).await;
            if judged == Judged::Yes {
                self.registry.outcome(plugin, !result.as_ref().is_err_and(retry::plugin_at_fault));
                match &result {
                    Ok(_) => self.health.success(&plugin.manifest.id),
                    Err(e) if retry::worth_falling_back(e) => self.health.failure(&plugin.manifest.id, e.to_string()),
                    Err(_) => {}
                }
            }
            let error = match result {
                Ok(reply) => return Ok(reply),
                Err(error) => error,
            };
            if attempt >= self.config.retries || streamed.load(Ordering::SeqCst) || !retry::retryable(&error) {
                return Err(error);
            }
            let wait = retry::delay(&self.config, attempt, &error);
            if tokio::time::Instant::now() + wait >= deadline {
                return Err(error);
            }
            metrics::counter!("codexcontinue_provider_retries_total", "provider" => plugin.manifest.id.clone())
                .increment(1);
            tracing::info!(plugin = %plugin.label(), retry = attempt + 1, wait_ms = wait.as_millis() as u64, "retrying: {error}");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One call, plain or streamed.
    async fn once(
        &self,
        plugin: &Plugin,
        request: &ChatRequest,
        events: Option<&mpsc::Sender<StreamEvent>>,
        streamed: &AtomicBool,
    ) -> Result<Reply, Error> {
        let provider = plugin.provider().expect("callers pass providers");
        let Some(events) = events else {
            return attempted(self.reply(plugin, request, provider.plugin.chat(request).await));
        };
        let (tx, mut rx) = mpsc::channel(crate::runtime::STREAM_BUFFER);
        let mut mask = masking::StreamMask::new(provider.plugin.capabilities().http.secrets().masker().clone());
        let forward = async {
            'events: while let Some(event) = rx.recv().await {
                streamed.store(true, Ordering::SeqCst);
                for event in mask.event(event) {
                    if events.send(event).await.is_err() {
                        break 'events;
                    }
                }
            }
            // The stream has ended (or the client left): what was held back goes out now.
            if let Some(rest) = mask.flush() {
                let _ = events.send(rest).await;
            }
        };
        let (response, ()) = tokio::join!(provider.plugin.chat_stream(request, tx), forward);
        attempted(self.reply(plugin, request, response))
    }

    /// Builds the WIT request.
    fn request(&self, plugin: &Plugin, messages: &[types::Message], options: ChatOptions) -> ChatRequest {
        ChatRequest {
            model: self.model_for(plugin, options.model),
            messages: messages.to_vec(),
            temperature: options.temperature,
            top_p: options.top_p,
            max_tokens: options.max_tokens,
            stop: options.stop,
            tools: options.tools,
            tool_choice: options.tool_choice,
            extra_json: options.extra_json,
        }
    }

    /// The model to use with `plugin` when the request names none.
    fn model_for(&self, plugin: &Plugin, requested: Option<String>) -> String {
        let provider = plugin.provider().expect("callers pass providers");
        let configured = self
            .config
            .default
            .as_deref()
            .is_none_or(|d| d == plugin.manifest.id)
            .then(|| self.config.model.clone())
            .flatten();
        requested.or(configured).unwrap_or_else(|| provider.info.default_model.clone())
    }

    fn reply(
        &self,
        plugin: &Plugin,
        request: &ChatRequest,
        response: crate::runtime::CallResult<types::ChatResponse>,
    ) -> Result<Reply, Error> {
        let response =
            response?.map_err(|error| Error::Upstream { plugin: plugin.label(), error: redacted(plugin, error) })?;
        let masker = plugin.provider().expect("callers pass providers").plugin.capabilities().http.secrets().masker();
        let response = masking::response(masker, response);
        if response.content.len() > MAX_REPLY_BYTES {
            return Err(crate::runtime::Error::InvalidOutput {
                plugin: plugin.label(),
                reason: format!("a reply of {} bytes exceeds the {MAX_REPLY_BYTES}-byte limit", response.content.len()),
            }
            .into());
        }
        let usage = match response.usage {
            Some(u) => u.into(),
            None => {
                let texts: Vec<String> = request.messages.iter().map(types::Message::plain_text).collect();
                let prompt_tokens = tokens::count_prompt(texts.iter().map(String::as_str)) as u32;
                let completion_tokens = tokens::count(&response.content) as u32;
                Usage::counted(prompt_tokens, completion_tokens)
            }
        };
        let provider = label(plugin);
        Ok(Reply {
            content: response.content,
            reasoning: response.reasoning,
            tool_calls: response.tool_calls,
            finish_reason: finish_reason(response.finish_reason),
            usage,
            model: if response.model.is_empty() { request.model.clone() } else { response.model },
            provider,
        })
    }

    /// The configured provider, other than the default, that lists `model` (by the model lists
    /// already fetched: routing never waits for a vendor). `None` when the default lists it too,
    /// or nobody does.
    pub fn lister(&self, model: &str) -> Option<String> {
        let default = self.default_provider().ok()?;
        let cache = self.models.lock().unwrap_or_else(|e| e.into_inner());
        let lists = |plugin: &Plugin| {
            cache
                .get(&plugin.manifest.id)
                .is_some_and(|c| c.digest == plugin.digest && c.models.iter().any(|m| m.id == model))
        };
        if lists(&default) {
            return None;
        }
        let plugins = self.registry.snapshot();
        let configured = plugins.values().filter(|p| p.provider().is_some_and(|pr| pr.missing.is_empty()));
        let mut listing: Vec<_> = configured.filter(|p| lists(p)).map(|p| p.manifest.id.clone()).collect();
        // The preferred vendors first, then by id, so the choice does not depend on load order.
        listing.sort_by_key(|id| (PREFERENCE.iter().position(|p| p == id).unwrap_or(PREFERENCE.len()), id.clone()));
        listing.into_iter().next()
    }

    /// Keeps the model lists fresh for [`lister`](Self::lister): now, then every few minutes,
    /// for as long as the server holds the providers.
    pub fn discover_models(self: &Arc<Self>) {
        let providers = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(providers) = providers.upgrade() {
                providers.models().await;
                drop(providers);
                tokio::time::sleep(MODELS_TTL).await;
            }
        });
    }

    /// Every configured provider's models, from a cache refreshed every few minutes; providers
    /// are asked concurrently and a failing one is reported, not fatal.
    pub async fn models(&self) -> Vec<ProviderModels> {
        let plugins: Vec<_> = self.registry.snapshot().values().filter(|p| p.provider().is_some()).cloned().collect();
        let lists = plugins.iter().map(|plugin| self.models_of(plugin));
        let lists = futures::future::join_all(lists).await;
        plugins.into_iter().zip(lists).map(|(plugin, models)| ProviderModels { plugin, models }).collect()
    }

    async fn models_of(&self, plugin: &Arc<Plugin>) -> Result<Vec<ModelInfo>, String> {
        let provider = plugin.provider().expect("filtered to providers");
        if !provider.missing.is_empty() {
            return Err(format!("not configured: set {}", provider.missing.join(", ")));
        }
        let id = &plugin.manifest.id;
        if let Some(cached) = self.models.lock().unwrap_or_else(|e| e.into_inner()).get(id)
            && cached.at.elapsed() < MODELS_TTL
            && cached.digest == plugin.digest
        {
            return Ok(cached.models.clone());
        }
        // Retried like a chat: a list that failed once would leave routing blind for minutes.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.config.deadline_ms);
        let once = |_retry| async {
            match provider.plugin.list_models().await {
                Ok(Ok(models)) => Ok(models),
                Ok(Err(error)) => Err(Error::Upstream { plugin: plugin.label(), error: redacted(plugin, error) }),
                Err(error) => Err(Error::Runtime(error)),
            }
        };
        // A model list says little about a new version (it may crash on every chat): not judged.
        let listing = (&AtomicBool::new(false), Judged::No);
        let listed = tokio::time::timeout_at(deadline, self.attempts(plugin, listing, deadline, once)).await;
        let mut models = match listed {
            Ok(Ok(models)) => models,
            Ok(Err(Error::Upstream { error, .. })) => return Err(describe(&error)),
            Ok(Err(error)) => return Err(error.to_string()),
            Err(_) => return Err(Error::Deadline { ms: self.config.deadline_ms }.to_string()),
        };
        let masker = provider.plugin.capabilities().http.secrets().masker();
        models.iter_mut().for_each(|m| masker.mask_in_place(&mut m.id));
        self.models.lock().unwrap_or_else(|e| e.into_inner()).insert(
            id.clone(),
            CachedModels { at: Instant::now(), digest: plugin.digest.clone(), models: models.clone() },
        );
        Ok(models)
    }
}

/// `error` with the plugin's secret values masked: a vendor may echo our headers back, and a
/// plugin may quote it.
fn redacted(plugin: &Plugin, error: ProviderError) -> ProviderError {
    let secrets = plugin.provider().expect("callers pass providers").plugin.capabilities().http.secrets();
    let clean = |m: String| secrets.redact(&m);
    match error {
        ProviderError::Unauthorized(m) => ProviderError::Unauthorized(clean(m)),
        ProviderError::RateLimited(r) => {
            ProviderError::RateLimited(types::RateLimit { message: clean(r.message), ..r })
        }
        ProviderError::BadRequest(m) => ProviderError::BadRequest(clean(m)),
        ProviderError::RequestTooLarge(m) => ProviderError::RequestTooLarge(clean(m)),
        ProviderError::ContextLengthExceeded(m) => ProviderError::ContextLengthExceeded(clean(m)),
        ProviderError::NotFound(m) => ProviderError::NotFound(clean(m)),
        ProviderError::Unavailable(r) => {
            ProviderError::Unavailable(types::RateLimit { message: clean(r.message), ..r })
        }
        ProviderError::Overloaded(r) => ProviderError::Overloaded(types::RateLimit { message: clean(r.message), ..r }),
        ProviderError::Timeout(m) => ProviderError::Timeout(clean(m)),
        ProviderError::Unsupported(m) => ProviderError::Unsupported(clean(m)),
        ProviderError::Other(m) => ProviderError::Other(clean(m)),
    }
}

/// OpenAI's spelling of a finish reason.
pub fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::Refusal => "refusal",
        FinishReason::ContextWindow => "context_window",
        FinishReason::Other => "other",
    }
}

/// How replies name a provider: its id, marked when it is the offline demo.
pub fn label(plugin: &Plugin) -> String {
    match plugin.manifest.demo {
        true => format!("{} (offline demo)", plugin.manifest.id),
        false => plugin.manifest.id.clone(),
    }
}
