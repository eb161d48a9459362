//! `GET /openapi.json`: the native and OpenAI-compatible API as OpenAPI 3.1, generated from the
//! handlers' own types, so it cannot drift from what the server accepts.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use super::extract::Json;
use super::{admin, anthropic, chat, embeddings, memory, openai, responses, status, workspaces};

/// Every error: `{"error": {"message", "type", "code"}}`.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only; errors are built by `ApiError`
pub struct ErrorResponse {
    error: ErrorObject,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorObject {
    /// What went wrong, for people.
    message: String,
    /// OpenAI's error type, e.g. `invalid_request_error`.
    #[schema(rename = "type")]
    kind: String,
    /// A stable code for programs, e.g. `session_not_found`.
    code: String,
}

/// The headers every dialect understands beside its own body (`api/headers.rs`).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct DialectHeaders {
    /// Store the turns in this session and fill in its history.
    #[param(rename = "x-session-id", value_type = Option<Id>)]
    session: Option<String>,
    /// Recall this workspace's files.
    #[param(rename = "x-workspace-id", value_type = Option<Id>)]
    workspace: Option<String>,
    /// The provider, when `model` does not say `provider/model`.
    #[param(rename = "x-provider")]
    provider: Option<String>,
}

/// The `X-User-Id` header: whose memory, when neither keys nor `user_id` say.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct UserHeader {
    #[param(rename = "x-user-id", value_type = Option<UserId>)]
    user: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "CodexContinue", description = "A self-hosted, memory-augmented LLM backend: chat with memory, and an OpenAI-compatible API."),
    paths(
        chat::chat, memory::history, memory::delete, memory::sessions,
        memory::facts, memory::add_fact, memory::delete_fact,
        workspaces::add_file, workspaces::files, workspaces::delete_file, workspaces::delete,
        openai::completions, openai::models, embeddings::embeddings,
        anthropic::messages, anthropic::count_tokens,
        responses::create, responses::get, responses::delete, responses::input_items,
        status::status, status::healthz, admin::reload,
    ),
    components(schemas(ErrorResponse)),
    modifiers(&Security),
    // Keys are optional: the server asks for one only when `CODEXCONTINUE_API_KEYS` is set.
    security(("api_key" = []), ()),
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(description)).build(),
            )
        };
        components.add_security_scheme("api_key", bearer("A client API key from CODEXCONTINUE_API_KEYS"));
        components.add_security_scheme("admin_token", bearer("CODEXCONTINUE_ADMIN_TOKEN"));
    }
}

/// The document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

pub async fn openapi() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(document())
}

/// A session or workspace id, as `check_id` accepts it.
#[derive(ToSchema)]
#[schema(pattern = r"^[A-Za-z0-9._-]{1,128}$")]
#[allow(dead_code)] // a schema only
pub struct Id(String);

/// A user id, as `valid_user_id` accepts it.
#[derive(ToSchema)]
#[schema(pattern = r"^[A-Za-z0-9._@:-]{1,128}$")]
#[allow(dead_code)]
pub struct UserId(String);
