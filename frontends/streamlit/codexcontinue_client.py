"""The CodexContinue public HTTP API, as the Streamlit app uses it: sessions, history, streamed
chat (server-sent events), models, workspaces. Nothing here knows about Streamlit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import requests

# Connecting fails fast when the server is down; a streamed reply may take minutes between
# its first and last token, which the server itself bounds (its chat deadline).
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 300


class ApiError(Exception):
    """The server refused a call ({"error": {...}}) or could not be reached (status 0)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Reply:
    """What a streamed turn ended with: the `done` event's reply, or the `error` event's."""

    session_id: str | None = None
    provider: str | None = None
    done: dict[str, Any] | None = None
    error: str | None = None
    deltas: int = 0
    content: list[str] = field(default_factory=list)


class Client:
    def __init__(self, base_url: str, api_key: str = ""):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key.strip()

    def _call(self, method: str, path: str, *, body: Any = None, stream: bool = False) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            response = requests.request(
                method,
                self.base_url + path,
                json=body,
                headers=headers,
                stream=stream,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            )
        except requests.ConnectionError:
            raise ApiError(0, "network", f"Cannot reach the server at {self.base_url}. Is it running?") from None
        except requests.Timeout:
            raise ApiError(0, "timeout", f"The server at {self.base_url} did not answer in time.") from None
        if response.ok:
            return response
        message, code = f"The server answered {response.status_code} {response.reason}", ""
        try:
            error = response.json()["error"]
            message, code = error["message"], str(error.get("code") or "")
        except (ValueError, KeyError, TypeError):
            pass
        raise ApiError(response.status_code, code, message)

    def sessions(self) -> list[dict[str, Any]]:
        """The user's chats, most recently active first."""
        return self._call("GET", "/sessions").json()["sessions"]

    def history(self, session_id: str) -> dict[str, Any]:
        """The session, its messages oldest first (the newest 1000) and its summary."""
        return self._call("GET", f"/memory/{session_id}?limit=1000").json()

    def delete(self, session_id: str) -> None:
        self._call("DELETE", f"/memory/{session_id}")

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/status").json()

    def models(self) -> list[dict[str, Any]]:
        """Chat models (OpenAI's list format; `owned_by` is the provider)."""
        return [m for m in self._call("GET", "/v1/models").json()["data"] if not m.get("supports_embeddings")]

    def upload(self, workspace: str, name: str, content: str) -> dict[str, Any]:
        return self._call("POST", f"/workspaces/{workspace}/files", body={"name": name, "content": content}).json()

    def files(self, workspace: str) -> list[dict[str, Any]]:
        """The workspace's files; none for a workspace that has none yet (the server knows a
        workspace only once it holds a file)."""
        try:
            return self._call("GET", f"/workspaces/{workspace}/files").json()["files"]
        except ApiError as e:
            if e.code == "workspace_not_found":
                return []
            raise

    def chat(self, message: str, reply: Reply, **fields: Any) -> Iterator[str]:
        """Sends one turn with `stream: true` and yields the reply's text as it arrives; `reply`
        holds the session, then the final reply or the error when the stream ends. Fields set to
        None are left out."""
        body = {"message": message, "stream": True, **{k: v for k, v in fields.items() if v is not None}}
        response = self._call("POST", "/chat", body=body, stream=True)
        with response:
            for event, data in events(response):
                if event == "start":
                    reply.session_id = data.get("session_id")
                    reply.provider = data.get("provider")
                elif event == "delta":
                    reply.deltas += 1
                    reply.content.append(data.get("content", ""))
                    yield data.get("content", "")
                elif event == "done":
                    reply.done = data
                    reply.session_id = data.get("session_id", reply.session_id)
                elif event == "error":
                    reply.error = (data.get("error") or {}).get("message", "The reply failed.")
        if reply.done is None and reply.error is None:
            reply.error = "The reply ended early (the connection closed)."


def events(response: requests.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """Server-sent events as (event, JSON data); comments and non-JSON data are skipped."""
    event, data = "message", []
    for line in response.iter_lines(decode_unicode=True):
        if line == "":
            if data:
                try:
                    yield event, json.loads("\n".join(data))
                except ValueError:
                    pass
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


def picked(model_id: str, owner: str, default_provider: str | None) -> dict[str, str]:
    """A model from /v1/models as /chat fields: its provider (`owned_by`) and the model id
    without the `provider/` prefix that models of non-default providers carry there."""
    if not owner:
        return {"model": model_id}
    if owner != default_provider and model_id.startswith(owner + "/"):
        model_id = model_id[len(owner) + 1 :]
    return {"provider": owner, "model": model_id}


def memory_note(memory: dict[str, Any] | None) -> str:
    """What memory added to a reply's prompt, in words."""
    if not memory:
        return "memory: nothing recorded"
    parts = []
    recalled = memory.get("recalled") or 0
    if recalled:
        parts.append(f"{recalled} earlier message{'s' if recalled != 1 else ''} recalled")
    if memory.get("summary"):
        parts.append("the chat's summary")
    return "memory: " + (", ".join(parts) if parts else "nothing added (recent turns only)")


def meta_line(reply: dict[str, Any]) -> str:
    """Provider, model, tokens and memory of a reply (a `done` event or a stored message's
    metadata)."""
    parts = [p for p in (reply.get("provider"), reply.get("model")) if p]
    usage = reply.get("usage") or {}
    if usage.get("total_tokens") is not None:
        parts.append(f"{usage['total_tokens']} tokens")
    if reply.get("finish_reason") not in (None, "stop"):
        parts.append(f"finish: {reply['finish_reason']}")
    parts.append(memory_note(reply.get("memory")))
    return " · ".join(parts)
