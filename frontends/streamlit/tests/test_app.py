"""The Streamlit app driven by Streamlit's AppTest against a real server: send, stream,
reopen a chat after a restart, delete, the model picker, workspaces, API keys, and what the
page says when the server is down."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from streamlit.testing.v1 import AppTest

from codexcontinue_client import Client, Reply, picked

APP = str(Path(__file__).resolve().parents[1] / "app.py")
# AppTest runs the script in this process; a turn streams from a debug server.
RUN_TIMEOUT = 60


def app(url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("CODEXCONTINUE_URL", url)
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    return at.run()


def texts(at: AppTest) -> list[str]:
    """Every markdown and caption in the chat messages, in order."""
    out = []
    for message in at.chat_message:
        out += [m.value for m in message.markdown] + [c.value for c in message.caption]
    return out


def chat_buttons(at: AppTest) -> list:
    return [b for b in at.sidebar.button if b.key and b.key.startswith("open-")]


def send(at: AppTest, text: str) -> AppTest:
    at.chat_input[0].set_value(text).run()
    assert not at.exception, at.exception
    return at


def test_send_streams_a_reply_and_lists_the_chat(server, monkeypatch):
    """A message gets the echo demo's streamed reply with provider, model and what memory added,
    and the new chat appears in the sidebar; a second turn continues the same chat."""
    at = app(server.url, monkeypatch)
    assert not at.exception and not at.error, at.error
    assert any(c.value == "No chats yet." for c in at.sidebar.caption)
    send(at, "hello streamlit")
    shown = texts(at)
    assert "hello streamlit" in shown
    assert any(t.startswith("Echo (offline demo)") and "hello streamlit" in t for t in shown), shown
    assert any("echo" in t and "memory: nothing added" in t for t in shown), shown
    buttons = chat_buttons(at)
    assert len(buttons) == 1 and buttons[0].label.startswith("▶ ")
    session = at.session_state.session_id

    send(at, "and again")
    assert at.session_state.session_id == session
    history = requests.get(f"{server.url}/memory/{session}", timeout=10).json()
    assert [m["content"] for m in history["messages"] if m["role"] == "user"] == ["hello streamlit", "and again"]
    assert len(chat_buttons(at)) == 1


def test_replies_arrive_as_a_stream(server):
    """The app's client reads /chat as server-sent events: several deltas that add up to the
    final reply, then `done` with the memory field."""
    reply = Reply()
    streamed = "".join(Client(server.url).chat("count the deltas, please", reply))
    assert reply.error is None
    assert reply.deltas > 1, reply.deltas
    assert streamed == reply.done["reply"]
    assert reply.done["memory"] == {"recalled": 0, "summary": False}
    assert reply.session_id == reply.done["session_id"]


def test_a_chat_reopens_after_a_server_restart(server, monkeypatch):
    """A chat sent before a restart is listed and replayed, with its reply's metadata, from
    the server's store by a fresh page."""
    at = app(server.url, monkeypatch)
    send(at, "remember the lighthouse")
    session = at.session_state.session_id
    server.stop()
    server.start()

    at = app(server.url, monkeypatch)
    assert at.session_state.session_id is None
    [button] = chat_buttons(at)
    button.click().run()
    assert at.session_state.session_id == session
    shown = texts(at)
    assert shown[0] == "remember the lighthouse"
    assert shown[1].startswith("Echo (offline demo)") and "lighthouse" in shown[1]
    assert "memory:" in shown[2]
    # The chat continues where it was.
    send(at, "what did I ask you to remember?")
    assert at.session_state.session_id == session


def test_delete_removes_the_chat(server, monkeypatch):
    """Deleting a chat removes it from the sidebar and from the server."""
    at = app(server.url, monkeypatch)
    send(at, "to be deleted")
    session = at.session_state.session_id
    at.sidebar.button(key=f"delete-{session}").click().run()
    assert chat_buttons(at) == []
    assert at.session_state.session_id is None
    assert any("Deleted" in i.value for i in at.info)
    assert requests.get(f"{server.url}/memory/{session}", timeout=10).status_code == 404


def test_model_picker_lists_chat_models_and_picks_one(server, monkeypatch):
    """The picker offers /v1/models' chat models (not embedding ones) with their provider; a
    picked one answers the next turn."""
    at = app(server.url, monkeypatch)
    picker = at.sidebar.selectbox(key="model")
    models = requests.get(f"{server.url}/v1/models", timeout=10).json()["data"]
    chat_models = [m["id"] for m in models if not m.get("supports_embeddings")]
    assert len(chat_models) < len(models), "echo also lists an embedding model"
    assert picker.options == ["Server default", *(f"{m} (echo)" for m in chat_models)], picker.options
    picker.set_value(chat_models[0]).run()
    send(at, "which model?")
    session = at.session_state.session_id
    stored = requests.get(f"{server.url}/memory/{session}", timeout=10).json()["messages"][1]["metadata"]
    assert stored["model"] == chat_models[0]


def test_picked_models_become_chat_fields():
    """Models of non-default providers carry a `provider/` prefix in /v1/models that /chat's
    `model` field does not take; the default provider's do not."""
    assert picked("gpt-4o", "openai", "openai") == {"provider": "openai", "model": "gpt-4o"}
    assert picked("anthropic/claude-3", "anthropic", "openai") == {"provider": "anthropic", "model": "claude-3"}
    assert picked("openai/gpt-4o-mini", "github", "openai") == {"provider": "github", "model": "openai/gpt-4o-mini"}
    assert picked("local", "", None) == {"model": "local"}


def test_workspace_files_are_uploaded_and_listed(server, monkeypatch):
    """Files attached in the sidebar reach the workspace on the server, are listed, and are
    recalled into a chat sent with the workspace set."""
    at = app(server.url, monkeypatch)
    at.sidebar.text_input(key="workspace").set_value("notes").run()
    assert any(c.value == "No files yet." for c in at.sidebar.caption)
    at.sidebar.get("file_uploader")[0].set_value(("plan.md", b"The launch is on Tuesday at noon.", "text/markdown")).run()
    at.sidebar.button(key="upload").click().run()
    assert not at.exception, at.exception
    assert any(s.value.startswith("plan.md: ") for s in at.sidebar.success), [e.value for e in at.sidebar.error]
    assert any(c.value == "plan.md" for c in at.sidebar.caption), [c.value for c in at.sidebar.caption]
    listed = requests.get(f"{server.url}/workspaces/notes/files", timeout=10).json()["files"]
    assert [f["name"] for f in listed] == ["plan.md"]
    send(at, "when is the launch on Tuesday?")
    assert "recalled" in texts(at)[-1], texts(at)


def test_api_key_is_asked_for_and_used(keyed_server, monkeypatch):
    """With keys on, the page asks for one, then lists that user's chats with it."""
    from conftest import KEY

    at = app(keyed_server.url, monkeypatch)
    assert any("needs an API key" in w.value for w in at.warning)
    at.sidebar.text_input(key="api_key").set_value("sk-wrong-key-000000000").run()
    assert any("needs an API key" in w.value for w in at.warning)
    at.sidebar.text_input(key="api_key").set_value(KEY).run()
    assert not at.warning and not at.exception
    send(at, "hello with a key")
    sessions = requests.get(f"{keyed_server.url}/sessions", headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    assert [s["id"] for s in sessions.json()["sessions"]] == [at.session_state.session_id]


def test_server_down_is_reported(server, monkeypatch, closed_port_url):
    """No server: the page says it cannot reach it; once it is back, a send fails visibly
    if the server goes away mid-session."""
    at = app(closed_port_url, monkeypatch)
    assert not at.exception
    assert any("Cannot reach the server" in e.value for e in at.error), [e.value for e in at.error]

    at = app(server.url, monkeypatch)
    server.stop()
    send(at, "anyone there?")
    assert any("Cannot reach the server" in e.value for e in at.error), [e.value for e in at.error]


def test_a_refused_turn_shows_the_servers_error(server, monkeypatch):
    """A turn the server refuses (a message over its default limit of 262144 characters: 413)
    shows the server's own message, and no chat is created."""
    at = app(server.url, monkeypatch)
    send(at, "x" * 262_145)
    assert any("message" in e.value and "262144" in e.value for e in at.error), [e.value for e in at.error]
    assert at.session_state.session_id is None
    assert chat_buttons(at) == []
