# Routine tasks. `cargo xtask` does the heavy lifting so that a fresh machine needs only cargo;
# these recipes are the short names.

# Build the plugins and serve on 127.0.0.1:8080 (extra args go to `codexcontinue serve`).
run *ARGS:
    cargo xtask run {{ARGS}}

# Every test: host, SDK, plugins, examples and the plugin walkthrough (docs/plugins.md).
test *ARGS:
    cargo xtask test {{ARGS}}

# Build the wasm plugins into plugins/<id>/<id>.wasm.
build-plugins:
    cargo xtask build-plugins

# The container image localhost/codexcontinue:latest (static musl build, FROM scratch; buildah).
image:
    cargo xtask image

# The Streamlit front end against CODEXCONTINUE_URL (default http://127.0.0.1:8080).
streamlit *ARGS:
    cargo xtask streamlit {{ARGS}}

# Format everything.
fmt:
    cargo fmt --all
    cd plugins && cargo fmt --all
    cd examples && cargo fmt --all

# Lint everything; warnings are errors.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    cd plugins && cargo clippy --workspace -- -D warnings
    cd examples && cargo clippy --workspace -- -D warnings
    cd examples && cargo clippy --workspace --all-targets --target host-tuple -- -D warnings

# Benchmarks (figures are written down in BENCHMARKS.md).
bench *ARGS:
    cargo xtask bench {{ARGS}}
