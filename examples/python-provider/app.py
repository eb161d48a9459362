"""A provider plugin written in Python: answers "<greeting>, <last user message>!" with no network.

componentize-py (PyPI) generates the `wit_world` bindings from wit/v0.2.0, world
`provider-plugin`, and bundles this module with a CPython interpreter into one component.
A WIT error is raised as `Err(<variant>)`; a plain exception would trap the call, which the
host reports as a crashed plugin.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import config, log, streaming, types

MODEL = "hello-py"


def text(message: types.Message) -> str:
    """A message's text parts joined; image parts are skipped."""
    return "".join(part.value for part in message.content if isinstance(part, types.ContentPart_Text))


class Provider(exports.Provider):
    def info(self) -> types.ProviderInfo:
        return types.ProviderInfo(name="Hello (Python)", default_model=MODEL, embedding_model=None)

    def list_models(self) -> list[types.ModelInfo]:
        return [
            types.ModelInfo(
                id=MODEL,
                context_window=None,
                max_output_tokens=None,
                supports_embeddings=False,
                supports_tools=False,
                supports_vision=False,
                supports_reasoning=False,
            )
        ]

    def chat(self, request: types.ChatRequest) -> types.ChatResponse:
        users = [text(m) for m in request.messages if m.role == types.Role.USER]
        if not users:
            raise Err(types.ProviderError_BadRequest("the request has no user message"))
        # `greeting` comes from the manifest's [config], or PYTHON_PROVIDER_GREETING through its [env].
        greeting = config.get("greeting") or "Hello"
        log.log(log.Level.DEBUG, f"greeting {len(users)} user messages")
        return types.ChatResponse(
            content=f"{greeting}, {users[-1]}!",
            reasoning=[],
            tool_calls=[],
            finish_reason=types.FinishReason.STOP,
            usage=None,
            model=request.model or MODEL,
        )

    def chat_stream(self, request: types.ChatRequest, out: streaming.Sink) -> types.ChatResponse:
        reply = self.chat(request)
        # Word by word, to show the sink; a real vendor's stream would be forwarded as it arrives.
        words = reply.content.split(" ")
        for i, word in enumerate(words):
            out.emit(types.StreamEvent_Delta(word if i == len(words) - 1 else word + " "))
        return reply

    def embed(self, request: types.EmbedRequest) -> types.Embeddings:
        raise Err(types.ProviderError_Unsupported("Hello (Python) has no embeddings"))

    def count_tokens(self, request: types.ChatRequest) -> int:
        raise Err(types.ProviderError_Unsupported("Hello (Python) does not count tokens"))
