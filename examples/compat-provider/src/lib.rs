//! A provider for a vendor we do not ship first-party: a self-hosted OpenAI-compatible server
//! behind a gateway that takes the key in `X-Api-Key` rather than `Authorization`, and routes by
//! an optional `X-Tenant` header. The wire format, streaming and errors all come from
//! [`codexcontinue_sdk::openai`]; this crate only describes the API.

use codexcontinue_sdk::export_provider;
use codexcontinue_sdk::openai::{Api, Auth, Compatible, Vendor, config_headers};

/// The gateway's API: OpenAI's layout, its own key header.
struct Gateway;

impl Api for Gateway {
    const VENDOR: Vendor = Vendor {
        name: "Self-hosted (OpenAI-compatible)",
        // The manifest's `base_url` (or COMPAT_PROVIDER_BASE_URL) overrides this.
        base_url: "http://localhost:8000/v1",
        default_model: "local-model",
        embedding_model: None,
        // The host writes the key in at egress, and only towards origins bound to it.
        auth: Auth::Header("X-Api-Key", "COMPAT_PROVIDER_API_KEY"),
        stream_usage: true,
    };

    /// The tenant is an identifier, not a secret, so it is plain config; empty sends nothing.
    fn extra_headers() -> Vec<(String, String)> {
        config_headers(&[("X-Tenant", "tenant")])
    }
}

export_provider!(Compatible<Gateway>);
