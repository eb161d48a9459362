//! The `wit_bindgen::generate!` output for both worlds of `codexcontinue:plugin@0.2.0`; plugin
//! authors use the re-exports in the crate root instead. Interfaces both worlds import (`types`,
//! `log`, `config`) are generated once, in `provider`, and reused by `memory` through `with:`.

/// Bindings for the `provider-plugin` world: shared types, `log`, `config`, `http-client`,
/// `streaming` and the `provider` export.
pub mod provider {
    wit_bindgen::generate!({
        world: "provider-plugin",
        path: "../../wit/v0.2.0",
        additional_derives: [PartialEq],
        // The export macro is expanded in the plugin crate (through `export_provider!`), which
        // is also where the custom section describing the export is emitted.
        pub_export_macro: true,
        default_bindings_module: "codexcontinue_sdk::bindings::provider",
        export_macro_name: "export_provider_world",
    });
}

/// Bindings for the `memory-plugin` world: `redis`, `postgres` and the `memory-store` export.
pub mod memory {
    wit_bindgen::generate!({
        world: "memory-plugin",
        path: "../../wit/v0.2.0",
        additional_derives: [PartialEq],
        with: {
            "codexcontinue:plugin/types@0.2.0": crate::bindings::provider::codexcontinue::plugin::types,
            "codexcontinue:plugin/log@0.2.0": crate::bindings::provider::codexcontinue::plugin::log,
            "codexcontinue:plugin/config@0.2.0": crate::bindings::provider::codexcontinue::plugin::config,
        },
        pub_export_macro: true,
        default_bindings_module: "codexcontinue_sdk::bindings::memory",
        export_macro_name: "export_memory_world",
    });
}
