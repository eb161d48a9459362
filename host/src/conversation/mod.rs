//! One turn of a conversation, whatever the dialect it arrived in: check it, resolve provider
//! and model, build the prompt with memory, call (with retries and fallbacks), stream, record.
//! Each HTTP dialect is a thin adapter that decodes its request into a [`TurnRequest`] and
//! encodes the [`Outcome`] or the [`Event`]s back into its wire format.

pub mod content;
mod error;
mod prompt;
mod reasoning;
mod span;

use std::sync::Arc;

use futures::{Stream, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::{Instrument, Span};

pub use error::Error;
pub use prompt::replay;
pub use reasoning::first as reasoning_first;

use crate::capabilities::mask::Masker;
use crate::config::RequestLimits;
use crate::memory::{History, Input, Memory, Model, PromptRequest};
use crate::plugins::Route;
use crate::providers::{self, ChatOptions, Providers, Reply};
use crate::runtime::types::{self, StreamEvent};
use crate::store::{Role, Scope};

/// Which session a turn belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Session {
    /// No memory: nothing is read or stored.
    None,
    /// A new session with a fresh id.
    New,
    /// A session that must exist already (404 otherwise).
    Existing(String),
    /// A session the client names: continued when it exists, created when it does not.
    Named(String),
}

/// A turn as every dialect describes it.
#[derive(Debug, Clone)]
pub struct TurnRequest {
    pub user: String,
    pub session: Session,
    /// A workspace whose files are recalled into the prompt.
    pub workspace: Option<String>,
    /// A provider plugin id; else the model may say `provider/model`; else the default.
    pub provider: Option<String>,
    /// The conversation so far, system messages included. Ending with the client's new input
    /// (a user message or tool results); when it holds only that, memory supplies the history.
    pub messages: Vec<types::Message>,
    /// Sampling, limits, tools; `options.model` as the client wrote it.
    pub options: ChatOptions,
    /// Kept with the stored reply beside what the pipeline records (a dialect's own ids).
    pub metadata: serde_json::Map<String, Value>,
}

/// How memory shaped a prompt.
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct MemoryUse {
    /// Earlier messages (and workspace chunks) recalled into the long-term section.
    pub recalled: usize,
    /// Whether the session's rolling summary was included.
    pub summary: bool,
}

/// A finished turn.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The session the turn was stored in, when memory is on.
    pub session: Option<String>,
    /// The reply's id in the session's history.
    pub message_id: Option<u64>,
    /// When the reply was stored (or finished, without memory), in ms since the epoch.
    pub created_at_ms: u64,
    pub reply: Reply,
    pub memory: MemoryUse,
}

/// What a streamed turn yields: provider events as they arrive, then exactly one of `Done`
/// or `Failed`.
#[derive(Debug)]
pub enum Event {
    Stream(StreamEvent),
    /// The reply's complete reasoning blocks, with signatures: only from [`reasoning_first`],
    /// after the streamed reasoning and before the text and tool calls.
    Reasoned(Vec<types::ReasoningBlock>),
    Done(Box<Outcome>),
    Failed(Error),
}

/// The pipeline, over the server's memory and providers.
#[derive(Clone)]
pub struct Conversation {
    memory: Arc<Memory>,
    providers: Arc<Providers>,
    limits: RequestLimits,
    /// Whether message contents go into traces (the operator's opt-in).
    capture_content: bool,
}

/// A checked turn with its prompt built, ready to call.
pub struct Turn {
    memory: Arc<Memory>,
    providers: Arc<Providers>,
    route: Route,
    scope: Option<Scope>,
    model: Arc<dyn Model>,
    messages: Vec<types::Message>,
    options: ChatOptions,
    input: Vec<Input>,
    metadata: serde_json::Map<String, Value>,
    used: MemoryUse,
    /// The turn's trace span, from checks to the stored reply.
    span: Span,
    capture_content: bool,
    /// The token estimate this turn was admitted with, settled with the real usage.
    ticket: Option<crate::limits::Ticket>,
}

impl Conversation {
    pub fn new(memory: Arc<Memory>, providers: Arc<Providers>, limits: RequestLimits) -> Self {
        Self { memory, providers, limits, capture_content: false }
    }

    /// Records message contents in traces (`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`).
    pub fn capturing_content(self, capture_content: bool) -> Self {
        Self { capture_content, ..self }
    }

    /// `text` from a client with server secrets masked, as [`prepare`](Self::prepare) masks a
    /// turn's input: for what a dialect echoes back of the request (Responses' `instructions`).
    pub fn masked(&self, text: &str) -> String {
        self.providers.secrets_masker().mask(text).into_owned()
    }

    /// Checks the request, resolves provider, model and session, and builds the prompt.
    pub async fn prepare(&self, request: TurnRequest) -> Result<Turn, Error> {
        let span = span::turn(&request);
        let turn = self.build(request, span.clone()).instrument(span.clone()).await;
        if let Err(error) = &turn {
            span::failed(&span, error);
        }
        turn
    }

    async fn build(&self, request: TurnRequest, span: Span) -> Result<Turn, Error> {
        self.check(&request)?;
        let ticket = crate::limits::take_ticket();
        let TurnRequest { user, session, workspace, provider, mut messages, mut options, metadata } = request;
        // A server secret a client pastes is masked before anything stores or sends it: no
        // vendor needs our key in message text, and the store never holds one.
        mask_input(&self.providers.secrets_masker(), &mut messages, &mut options);
        let (route, model) = self.route(provider.as_deref(), options.model.take())?;
        options.model = model;
        let model_name = self.providers.resolve_model(&route.primary, options.model.as_deref());
        let session_id = match &session {
            Session::Existing(id) | Session::Named(id) => Some(id.clone()),
            Session::New => Some(uuid::Uuid::now_v7().to_string()),
            Session::None => None,
        };
        span::routed(&span, &route.primary, &model_name, session_id.as_deref());
        let input = prompt::new_input(&messages);
        let capture_content = self.capture_content;
        let query = prompt::query(&messages);
        // Without a session nothing is stored, but the user's facts still apply: what they ask
        // to keep or forget is, and their current facts join the prompt.
        let mut facts = false;
        if session == Session::None && query.is_some() {
            let said: Vec<&str> = input.iter().filter(|m| m.role == Role::User).map(|m| m.content.as_str()).collect();
            let model = self.providers.model(&route.primary.manifest.id);
            self.memory.note(&user, &said, Some(model)).await;
            facts = self.memory.has_facts(&user).await?;
        }
        if session == Session::None && workspace.is_none() && !facts {
            let model = self.providers.model(&route.primary.manifest.id);
            let (memory, providers) = (self.memory.clone(), self.providers.clone());
            span::prompt(&span, &messages, capture_content);
            return Ok(Turn {
                memory,
                providers,
                route,
                scope: None,
                model,
                messages,
                options,
                input,
                metadata,
                used: MemoryUse::default(),
                span,
                capture_content,
                ticket,
            });
        }
        let Some(query) = query else {
            return Err(Error::InvalidParameter("memory needs a user message".into()));
        };
        let (scope, existing, stored) = match (&session, session_id) {
            // A session that exists is written only while it does: a turn still running when
            // the session is deleted stores nothing (see `Scope::incarnation`).
            (Session::Existing(id), _) => (Scope::of(&self.memory.session(&user, id).await?), true, true),
            (Session::Named(id), _) => match self.memory.claim(&user, id).await? {
                Some(session) => (Scope::of(&session), true, true),
                None => (Scope::new(&user, id), false, true),
            },
            (_, Some(new)) => (Scope::new(&user, new), false, true),
            (_, None) => (Scope::new(&user, "-"), false, false),
        };
        let conversation = messages.iter().filter(|m| m.role != types::Role::System).count();
        // A request that is not stored keeps its messages as sent, the section added.
        let history = match conversation > input.len() || !stored {
            true => History::Client { messages: conversation - input.len(), tokens: prompt::tokens(&messages) },
            false => History::Stored,
        };
        let system = prompt::system(&messages);
        let plugin = &route.primary;
        let budget = self.memory.budget(self.providers.context_window(plugin, &model_name), options.max_tokens);
        let model = self.providers.model(&plugin.manifest.id);
        let request = PromptRequest {
            scope: &scope,
            existing,
            system: system.as_deref(),
            message: &query,
            budget,
            workspace: workspace.as_deref(),
            history,
            stored,
        };
        let built = self.memory.prompt(request, model.as_ref()).await?;
        let used = MemoryUse { recalled: built.recalled, summary: built.summarized };
        match history {
            History::Stored => {
                // Memory's prompt holds system, long-term section and window; the client's
                // input (its message, or tool results with their calls) follows as sent.
                // Stored reasoning goes back only to the provider that produced it.
                let label = providers::label(plugin);
                let mut prompt: Vec<_> = built.messages.iter().map(|m| prompt::from_memory(m, &label)).collect();
                let start = prompt::input_start(&messages);
                prompt.extend(messages.drain(start..).filter(|m| m.role != types::Role::System));
                messages = prompt;
            }
            History::Client { .. } => {
                if let Some(section) = built.section {
                    let at = messages.iter().take_while(|m| m.role == types::Role::System).count();
                    messages.insert(at, types::Message::text(types::Role::System, &section));
                }
            }
        }
        let scope = stored.then_some(scope);
        let (memory, providers) = (self.memory.clone(), self.providers.clone());
        span::prompt(&span, &messages, capture_content);
        Ok(Turn {
            memory,
            providers,
            route,
            scope,
            model,
            messages,
            options,
            input,
            metadata,
            used,
            span,
            capture_content,
            ticket,
        })
    }

    /// What every dialect promises its clients, checked once.
    fn check(&self, request: &TurnRequest) -> Result<(), Error> {
        if request.messages.is_empty() {
            return Err(Error::InvalidParameter("messages must not be empty".into()));
        }
        let limit = self.limits.max_message_chars;
        for message in &request.messages {
            for part in &message.content {
                if let types::ContentPart::Image(image) = part {
                    content::check(image)?;
                }
            }
            let chars: usize = message
                .content
                .iter()
                .map(|part| match part {
                    types::ContentPart::Text(text) => text.chars().count(),
                    types::ContentPart::Image(_) => 0,
                })
                .sum();
            if chars > limit {
                return Err(Error::MessageTooLong { chars, limit });
            }
        }
        let options = &request.options;
        if let Some(t) = options.temperature.filter(|t| !(0.0..=2.0).contains(t)) {
            return Err(Error::InvalidParameter(format!("temperature {t} is outside 0..=2")));
        }
        if let Some(p) = options.top_p.filter(|p| !(0.0..=1.0).contains(p)) {
            return Err(Error::InvalidParameter(format!("top_p {p} is outside 0..=1")));
        }
        if options.max_tokens == Some(0) {
            return Err(Error::InvalidParameter("max_tokens must be at least 1".into()));
        }
        if options.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
            return Err(Error::InvalidParameter("model must not be empty".into()));
        }
        if let Session::Existing(id) | Session::Named(id) = &request.session {
            crate::ids::check_session_id("session id", id)?;
        }
        if let Some(id) = &request.workspace {
            crate::ids::check_id("workspace id", id)?;
        }
        Ok(())
    }

    /// The provider and the model name it should see: an explicit provider, else the model's
    /// alias (`[providers.aliases]`) or the model itself, written `provider/model` when it
    /// names a loaded provider, else the provider that lists the model when the default does
    /// not, else the default provider.
    pub fn route(
        &self,
        provider: Option<&str>,
        model: Option<String>,
    ) -> Result<(Route, Option<String>), providers::Error> {
        if provider.is_some() {
            return Ok((self.providers.select(provider)?, model));
        }
        let model = model.map(|m| self.providers.alias(&m).map_or(m, str::to_string));
        if let Some((id, rest)) = model.as_deref().and_then(|m| m.split_once('/'))
            && self.providers.is_provider(id)
        {
            return Ok((self.providers.select(Some(id))?, Some(rest.to_string())));
        }
        if let Some(id) = model.as_deref().and_then(|m| self.providers.lister(m)) {
            return Ok((self.providers.select(Some(&id))?, model));
        }
        Ok((self.providers.select(None)?, model))
    }
}

/// Masks `masker`'s values in everything a client wrote: contents, names, tool calls and
/// stop sequences and the extra fields passed on to the vendor.
fn mask_input(masker: &Masker, messages: &mut [types::Message], options: &mut ChatOptions) {
    if masker.is_empty() {
        return;
    }
    for message in messages {
        for part in &mut message.content {
            if let types::ContentPart::Text(text) = part {
                masker.mask_in_place(text);
            }
        }
        message.reasoning.iter_mut().for_each(|block| masker.mask_in_place(&mut block.text));
        message.name.iter_mut().for_each(|name| masker.mask_in_place(name));
        message.tool_call_id.iter_mut().for_each(|id| masker.mask_in_place(id));
        for call in &mut message.tool_calls {
            masker.mask_in_place(&mut call.id);
            masker.mask_in_place(&mut call.name);
            masker.mask_in_place(&mut call.arguments);
        }
    }
    options.stop.iter_mut().for_each(|stop| masker.mask_in_place(stop));
    options.extra_json.iter_mut().for_each(|extra| masker.mask_in_place(extra));
}

impl Turn {
    /// The session the turn will be stored in, when memory is on.
    pub fn session(&self) -> Option<&str> {
        self.scope.as_ref().map(|s| s.session.as_str())
    }

    /// The provider first asked, as clients see it (the answer may come from a fallback).
    pub fn provider(&self) -> String {
        providers::label(&self.route.primary)
    }

    /// The model as the client asked for it (or the provider's default, when it did not).
    pub fn model(&self) -> String {
        self.options.model.clone().unwrap_or_else(|| self.providers.resolve_model(&self.route.primary, None))
    }

    /// The whole reply at once.
    pub async fn reply(self) -> Result<Outcome, Error> {
        self.call(None).await
    }

    /// The reply as events. The call runs inside the stream, so a client that disconnects
    /// drops the stream, and with it the call and its upstream request.
    pub fn stream(self) -> impl Stream<Item = Event> + Send + 'static {
        let (out, events) = mpsc::channel::<Event>(1);
        let producer = async move {
            let (tx, mut rx) = mpsc::channel::<StreamEvent>(crate::runtime::STREAM_BUFFER);
            let call = self.call(Some(tx));
            tokio::pin!(call);
            let mut outcome = None;
            loop {
                tokio::select! {
                    Some(event) = rx.recv() => { let _ = out.send(Event::Stream(event)).await; }
                    result = &mut call, if outcome.is_none() => outcome = Some(result),
                    else => break,
                }
            }
            let last = match outcome.expect("the loop ends only after the call") {
                Ok(outcome) => Event::Done(Box::new(outcome)),
                Err(error) => Event::Failed(error),
            };
            let _ = out.send(last).await;
        };
        let events = tokio_stream::wrappers::ReceiverStream::new(events);
        futures::stream::select(events, futures::stream::once(producer).filter_map(|()| async { None }))
    }

    async fn call(self, events: Option<mpsc::Sender<StreamEvent>>) -> Result<Outcome, Error> {
        let (span, capture) = (self.span.clone(), self.capture_content);
        let outcome = self.call_and_record(events).instrument(span.clone()).await;
        match &outcome {
            Ok(outcome) => span::finished(&span, outcome, capture),
            Err(error) => span::failed(&span, error),
        }
        outcome
    }

    async fn call_and_record(mut self, events: Option<mpsc::Sender<StreamEvent>>) -> Result<Outcome, Error> {
        let route = self.route.clone();
        let reply = match events {
            Some(events) => self.providers.chat_stream(route, &self.messages, self.options.clone(), events).await?,
            None => self.providers.chat(route, &self.messages, self.options.clone()).await?,
        };
        if let Some(ticket) = self.ticket.take() {
            ticket.settle(reply.usage.total_tokens as u64).await;
        }
        self.record(reply).await
    }

    /// Stores the client's input and the reply as one append, with how the reply was made.
    async fn record(self, reply: Reply) -> Result<Outcome, Error> {
        let Some(scope) = &self.scope else {
            let created_at_ms = crate::store::now_ms();
            return Ok(Outcome { session: None, message_id: None, created_at_ms, reply, memory: self.used });
        };
        let mut metadata = json!({
            "provider": reply.provider, "model": reply.model, "usage": reply.usage,
            "finish_reason": reply.finish_reason, "memory": self.used,
        });
        if !reply.tool_calls.is_empty() {
            let calls: Vec<Value> = reply
                .tool_calls
                .iter()
                .map(|c| json!({ "id": c.id, "name": c.name, "arguments": c.arguments }))
                .collect();
            metadata["tool_calls"] = Value::Array(calls);
        }
        reasoning::store(&mut metadata, &reply.reasoning);
        for (key, value) in self.metadata {
            metadata[key] = value;
        }
        let turn = crate::memory::Turn { input: self.input, reply: reply.content.clone(), metadata };
        let stored = self.memory.record(scope, turn, Some(self.model.clone())).await?;
        let answer = stored.last().filter(|m| m.role == Role::Assistant).ok_or(Error::NotRecorded)?;
        Ok(Outcome {
            session: Some(scope.session.clone()),
            message_id: Some(answer.seq),
            created_at_ms: answer.created_at_ms,
            reply,
            memory: self.used,
        })
    }
}
