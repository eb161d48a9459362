//! `POST /v1/embeddings`: OpenAI's Embeddings API over any provider that offers embeddings, so
//! editor extensions can index code through the same server (and keys) they chat through.

use axum::extract::State;
use axum::http::HeaderMap;
use base64::prelude::{BASE64_STANDARD, Engine as _};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::Json;
use super::headers::{PROVIDER_HEADER, header};
use crate::runtime::types::{EmbedRequest, InputType};

/// OpenAI's own limit on inputs per request.
const MAX_INPUTS: usize = 2048;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingsBody {
    /// An embedding model of the default provider, or `provider/model`; without one, the
    /// provider's own embedding model.
    model: Option<String>,
    #[schema(value_type = InputSchema)]
    input: Input,
    /// `float` (default) or `base64`: little-endian f32s, as OpenAI SDKs request by default.
    #[serde(default)]
    encoding_format: EncodingFormat,
    /// Shorter vectors, for models that can truncate them (OpenAI's text-embedding-3).
    #[schema(minimum = 1)]
    dimensions: Option<u32>,
    /// Not OpenAI's: `query` or `document` (default), for vendors whose models embed a search
    /// query differently from what it should find (Cohere).
    input_type: Option<EmbedPurpose>,
    /// Accepted for compatibility; embeddings touch no one's memory.
    #[allow(dead_code)]
    user: Option<String>,
}

/// Text to embed: one string or a list. Anything else (such as OpenAI's token arrays) is
/// refused with a message that says so.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Input {
    One(String),
    Many(Vec<String>),
    Other(serde::de::IgnoredAny),
}

/// Text to embed: one string or a list of strings.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // a schema only
pub enum InputSchema {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EmbedPurpose {
    Query,
    Document,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    #[default]
    Float,
    Base64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingList {
    /// Always `list`.
    #[schema(value_type = String)]
    object: &'static str,
    data: Vec<Embedding>,
    model: String,
    usage: EmbeddingUsage,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Embedding {
    /// Always `embedding`.
    #[schema(value_type = String)]
    object: &'static str,
    index: usize,
    #[schema(value_type = VectorSchema)]
    embedding: serde_json::Value,
}

/// The vector, or its little-endian f32 bytes in base64.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // a schema only
pub enum VectorSchema {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingUsage {
    prompt_tokens: u32,
    total_tokens: u32,
}

/// OpenAI's Embeddings.
#[utoipa::path(post, path = "/v1/embeddings", operation_id = "create_embedding", tag = "openai",
    request_body = EmbeddingsBody,
    params(("x-provider" = Option<String>, Header, description = "The provider, when `model` does not say `provider/model`")),
    responses(
        (status = 200, body = EmbeddingList),
        (status = 400, body = super::openapi::ErrorResponse), (status = 404, body = super::openapi::ErrorResponse),
        (status = 413, body = super::openapi::ErrorResponse), (status = 415, body = super::openapi::ErrorResponse),
        (status = 422, body = super::openapi::ErrorResponse), (status = 429, body = super::openapi::ErrorResponse),
        (status = 502, body = super::openapi::ErrorResponse), (status = 503, body = super::openapi::ErrorResponse),
        (status = 504, body = super::openapi::ErrorResponse),
    ))]
pub async fn embeddings(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<EmbeddingsBody>,
) -> Result<Json<EmbeddingList>, ApiError> {
    let inputs = match body.input {
        Input::One(text) => vec![text],
        Input::Many(texts) => texts,
        Input::Other(_) => {
            return Err(ApiError::invalid_parameter(
                "input must be a string or a list of strings (token arrays are not supported)",
            ));
        }
    };
    if inputs.is_empty() || inputs.len() > MAX_INPUTS {
        return Err(ApiError::invalid_parameter(format!("input must hold 1-{MAX_INPUTS} strings")));
    }
    if let Some(i) = inputs.iter().position(|text| text.is_empty()) {
        return Err(ApiError::invalid_parameter(format!("input {i} is empty")));
    }
    if body.dimensions == Some(0) {
        return Err(ApiError::invalid_parameter("dimensions must be at least 1"));
    }
    let provider = header(&headers, PROVIDER_HEADER);
    let (route, model) = state.conversation.route(provider, body.model)?;
    let input_type = body.input_type.map(|purpose| match purpose {
        EmbedPurpose::Query => InputType::Query,
        EmbedPurpose::Document => InputType::Document,
    });
    let request = EmbedRequest { model, inputs, input_type, dimensions: body.dimensions };
    let out = state.providers.embed(route, request).await?;
    let data = out
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| Embedding {
            object: "embedding",
            index,
            embedding: encode(vector, &body.encoding_format),
        })
        .collect();
    let usage = EmbeddingUsage { prompt_tokens: out.prompt_tokens, total_tokens: out.prompt_tokens };
    Ok(Json(EmbeddingList { object: "list", data, model: out.model, usage }))
}

fn encode(vector: Vec<f32>, format: &EncodingFormat) -> serde_json::Value {
    match format {
        EncodingFormat::Float => vector.into(),
        EncodingFormat::Base64 => {
            let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
            BASE64_STANDARD.encode(bytes).into()
        }
    }
}
