"""CodexContinue in Streamlit: your chats in the sidebar (new, open, delete), history replayed
from the server, streamed replies, a provider and model picker, what memory added to each
reply, workspace files, and the API key when the server wants one. It talks only to the public
HTTP API at CODEXCONTINUE_URL (default http://127.0.0.1:8080); start it with
`cargo xtask streamlit`."""

from __future__ import annotations

import os
import sys

import streamlit as st

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from codexcontinue_client import ApiError, Client, Reply, meta_line, picked  # noqa: E402

DEFAULT_URL = "http://127.0.0.1:8080"
SERVER_DEFAULT = "Server default"

st.set_page_config(page_title="CodexContinue", page_icon="💬")
state = st.session_state
state.setdefault("session_id", None)
state.setdefault("api_key", "")
state.setdefault("notice", None)

client = Client(os.environ.get("CODEXCONTINUE_URL", DEFAULT_URL), state.api_key)


def open_chat(session_id: str | None) -> None:
    state.session_id = session_id


def delete_chat(session_id: str, title: str) -> None:
    try:
        client.delete(session_id)
        state.notice = f"Deleted “{title}”."
    except ApiError as e:
        state.notice = f"Could not delete “{title}”: {e.message}"
    if state.session_id == session_id:
        state.session_id = None


# ---- Sidebar: server, key, chats, model, workspace ------------------------------------------
sidebar = st.sidebar
sidebar.title("CodexContinue")
sidebar.caption(client.base_url)

try:
    sessions = client.sessions()
    needs_key = False
except ApiError as e:
    sessions = []
    needs_key = e.status == 401
    if not needs_key:
        st.error(e.message)
        st.stop()

# The key field appears once the server asks for keys (401), and stays while one is set.
if needs_key or state.api_key:
    sidebar.text_input("API key", type="password", key="api_key", help="Sent as Authorization: Bearer")
    if needs_key:
        st.warning("This server needs an API key: enter yours in the sidebar.")
        st.stop()

sidebar.button("➕ New chat", on_click=open_chat, args=(None,), width="stretch", key="new-chat")
sidebar.subheader("Chats")
if not sessions:
    sidebar.caption("No chats yet.")
for s in sessions:
    title = s.get("title") or "Untitled chat"
    left, right = sidebar.columns([5, 1])
    current = s["id"] == state.session_id
    left.button(
        ("▶ " if current else "") + title,
        key=f"open-{s['id']}",
        on_click=open_chat,
        args=(s["id"],),
        width="stretch",
        help=f"{s['message_count']} messages, last active {s['updated_at']}",
    )
    right.button("🗑", key=f"delete-{s['id']}", on_click=delete_chat, args=(s["id"], title), help="Delete this chat")

try:
    models = client.models()
    default_provider = client.status().get("default_provider")
except ApiError as e:
    models, default_provider = [], None
    sidebar.caption(f"Models unavailable: {e.message}")
owners = {m["id"]: m.get("owned_by", "") for m in models}
model = sidebar.selectbox(
    "Model",
    [SERVER_DEFAULT, *owners],
    key="model",
    format_func=lambda m: m if m == SERVER_DEFAULT else f"{m} ({owners[m]})" if owners[m] else m,
)
fields = {} if model == SERVER_DEFAULT else picked(model, owners[model], default_provider)

sidebar.subheader("Workspace")
workspace = sidebar.text_input("Workspace id", key="workspace", help="Its files are recalled into your chats").strip()
if workspace:
    uploads = sidebar.file_uploader("Attach text files", accept_multiple_files=True, key="uploads")
    if uploads and sidebar.button("Upload", key="upload"):
        for f in uploads:
            try:
                saved = client.upload(workspace, f.name, f.getvalue().decode("utf-8"))
                sidebar.success(f"{saved['name']}: {saved['chunks']} chunks indexed")
            except UnicodeDecodeError:
                sidebar.error(f"{f.name} is not UTF-8 text")
            except ApiError as e:
                sidebar.error(f"{f.name}: {e.message}")
    try:
        files = client.files(workspace)
        sidebar.caption(", ".join(f["name"] for f in files) if files else "No files yet.")
    except ApiError as e:
        sidebar.caption(e.message)

# ---- Main: the open chat's history, then the new turn --------------------------------------
if state.notice:
    st.info(state.notice)
    state.notice = None

if state.session_id:
    try:
        history = client.history(state.session_id)
    except ApiError as e:
        st.error(f"Cannot open this chat: {e.message}")
        state.session_id = None
        st.stop()
    st.header(history["session"].get("title") or "Untitled chat")
    if (history.get("summary") or {}).get("text"):
        with st.expander("Summary of earlier messages"):
            st.write(history["summary"]["text"])
    for m in history["messages"]:
        with st.chat_message(m["role"]):
            st.markdown(m["content"])
            if m["role"] == "assistant" and m.get("metadata"):
                st.caption(meta_line(m["metadata"]))
else:
    st.header("New chat")

if prompt := st.chat_input("Message"):
    with st.chat_message("user"):
        st.markdown(prompt)
    reply = Reply()
    with st.chat_message("assistant"):
        try:
            st.write_stream(
                client.chat(prompt, reply, session_id=state.session_id, workspace_id=workspace or None, **fields)
            )
        except ApiError as e:
            reply.error = e.message
        if reply.done:
            st.caption(meta_line(reply.done))
        if reply.error:
            st.error(reply.error)
    # The turn is stored (or, for a new chat whose first turn failed, nothing is): rerun to
    # show the chat in the sidebar.
    if reply.done and reply.session_id:
        state.session_id = reply.session_id
        st.rerun()
