"""The official Anthropic Python SDK against CodexContinue's /v1/messages, unchanged: a reply,
a streamed reply, token counting, tool use, memory through X-Session-Id, and the SDK's own
error types.

    pip install anthropic
    python examples/clients/anthropic_sdk.py http://127.0.0.1:8080 [API_KEY]

With the offline echo provider (no vendor key on the server) every check below holds; `cargo
xtask test` runs it that way, with client API keys on (the SDK sends its key as x-api-key).
"""

import json
import sys
import urllib.request
import uuid

import anthropic
from anthropic import Anthropic


def main(base: str, key: str) -> None:
    client = Anthropic(base_url=base, api_key=key, max_retries=0, timeout=30)

    # One reply: a message with a text block, a stop reason and usage.
    message = client.messages.create(
        model="echo",
        max_tokens=200,
        system="You are terse.",
        messages=[{"role": "user", "content": "hello from the SDK"}],
    )
    text = message.content[0].text
    print("reply:", text)
    assert 'you said "hello from the SDK"' in text, text
    assert message.stop_reason == "end_turn", message.stop_reason
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0

    # Streaming, through the SDK's own event accumulator.
    with client.messages.stream(
        model="echo", max_tokens=200, messages=[{"role": "user", "content": "stream it"}]
    ) as stream:
        deltas = [t for t in stream.text_stream]
        final = stream.get_final_message()
    print("streamed:", len(deltas), "deltas")
    assert len(deltas) > 1 and "stream it" in "".join(deltas)
    assert final.content[0].text == "".join(deltas)
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0

    # Token counting.
    count = client.messages.count_tokens(model="echo", messages=[{"role": "user", "content": "count me"}])
    assert count.input_tokens > 0, count

    # A tool round trip: the assistant's tool_use and the user's tool_result are accepted.
    message = client.messages.create(
        model="echo",
        max_tokens=200,
        tools=[{"name": "weather", "description": "Weather", "input_schema": {"type": "object"}}],
        messages=[
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]},
        ],
    )
    assert message.content[0].type == "text"

    # Memory: a session header stores the turns; the native API shows them.
    session = f"sdk-{uuid.uuid4().hex[:12]}"
    client.messages.create(
        model="echo",
        max_tokens=100,
        messages=[{"role": "user", "content": "my favourite colour is teal"}],
        extra_headers={"X-Session-Id": session},
    )
    request = urllib.request.Request(f"{base}/memory/{session}", headers={"x-api-key": key})
    with urllib.request.urlopen(request, timeout=30) as response:
        history = json.load(response)
    assert history["messages"][0]["content"] == "my favourite colour is teal", history

    # Errors arrive as the SDK's own exception types.
    try:
        client.messages.create(
            model="echo", max_tokens=10, messages=[{"role": "user", "content": "hi"}], extra_headers={"X-Provider": "nope"}
        )
        raise AssertionError("an unknown provider must fail")
    except anthropic.NotFoundError as e:
        assert e.body["error"]["type"] == "not_found_error", e.body
    try:
        Anthropic(base_url=base, api_key="sk-wrong-key-000000", max_retries=0).messages.create(
            model="echo", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
        raise AssertionError("a wrong key must fail")
    except anthropic.AuthenticationError:
        pass
    print("anthropic sdk: all checks passed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "none")
