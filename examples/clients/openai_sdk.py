"""The official OpenAI Python SDK against CodexContinue's /v1, unchanged: models, a reply, a
streamed reply with usage, embeddings, memory through X-Session-Id, and the SDK's own error
types.

    pip install openai
    python examples/clients/openai_sdk.py http://127.0.0.1:8080 [API_KEY]

With the offline echo provider (no vendor key on the server) every check below holds; `cargo
xtask test` runs it that way, with client API keys on, so it doubles as a compatibility test.
"""

import sys
import uuid

import openai
from openai import OpenAI


def main(base: str, key: str) -> None:
    client = OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=30)

    # The models of every configured provider; the default provider's by their bare ids.
    models = [m.id for m in client.models.list()]
    print("models:", models)
    assert "echo" in models, models

    # One reply, with usage.
    reply = client.chat.completions.create(
        model="echo",
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "hello from the SDK"},
        ],
        temperature=0.2,
        max_tokens=200,
    )
    text = reply.choices[0].message.content
    print("reply:", text)
    assert 'you said "hello from the SDK"' in text, text
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens > 0

    # Streaming: deltas, then a final chunk with the usage (stream_options.include_usage).
    stream = client.chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": "stream it"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    parts, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
    streamed = "".join(parts)
    print(f"streamed in {len(parts)} chunks:", streamed)
    assert len(parts) > 1 and 'you said "stream it"' in streamed, parts
    assert usage is not None and usage.completion_tokens > 0, usage

    # Embeddings, as editor extensions index code: the SDK asks for base64 and decodes it.
    embedded = client.embeddings.create(model="echo-embed", input=["fn main() {}", "def main(): pass"])
    vectors = [d.embedding for d in embedded.data]
    print(f"embeddings: {len(vectors)} x {len(vectors[0])} from {embedded.model}")
    assert len(vectors) == 2 and len(vectors[0]) == len(vectors[1]) > 0 and vectors[0] != vectors[1]
    assert embedded.usage.prompt_tokens > 0

    # Memory: with X-Session-Id the client sends only its newest message and the server supplies
    # the history (echo reports how many earlier messages it was shown).
    session = {"X-Session-Id": f"sdk-{uuid.uuid4().hex[:12]}"}
    for turn, earlier in [("We picked Postgres.", 0), ("Which database?", 2)]:
        reply = client.chat.completions.create(
            model="echo", messages=[{"role": "user", "content": turn}], extra_headers=session
        )
        text = reply.choices[0].message.content
        print(f"session turn {turn!r}:", text)
        assert f"I can see {earlier} earlier messages" in text, text

    # Errors arrive as the SDK's own exception types. (A model written `x/y` whose `x` is no
    # provider is a model name, as vLLM's `meta-llama/...` are; X-Provider names one outright.)
    try:
        client.chat.completions.create(
            model="some-model", messages=[{"role": "user", "content": "hi"}], extra_headers={"X-Provider": "nope"}
        )
        raise AssertionError("an unknown provider was accepted")
    except openai.NotFoundError as e:
        print("unknown provider:", e.status_code, e.body)
        assert e.body["code"] == "provider_not_found", e.body
    if key != "none":  # the server has client API keys on
        try:
            OpenAI(base_url=f"{base}/v1", api_key="sk-not-a-key-0123456789", max_retries=0).models.list()
            raise AssertionError("a wrong key was accepted")
        except openai.AuthenticationError as e:
            print("wrong key:", e.status_code, e.body)
            assert e.body["code"] == "invalid_api_key", e.body
    print("ok: the OpenAI SDK works unchanged")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1].rstrip("/"), sys.argv[2] if len(sys.argv) > 2 else "none")
