"""A tool loop (the model calls a tool, the client runs it, the model answers with the result)
through every dialect the server speaks, with the official SDKs, against every kind of provider:
OpenAI Chat Completions and Responses (the `openai` SDK) and Anthropic Messages (the `anthropic`
SDK), each answered by the openai, anthropic and ollama plugins, plain and streamed.

    python examples/clients/vendor_mock.py           # prints PORT
    OPENAI_API_KEY=sk-mock OPENAI_BASE_URL=http://127.0.0.1:PORT/v1 \
    ANTHROPIC_API_KEY=sk-ant-mock ANTHROPIC_BASE_URL=http://127.0.0.1:PORT \
    OLLAMA_HOST=http://127.0.0.1:PORT codexcontinue serve
    python examples/clients/tool_loops.py http://127.0.0.1:8080 [API_KEY]

The vendor mock refuses a tool result that does not answer its call (the ids must survive the
translation both ways), so every loop that completes here kept them.
"""

import json
import sys

import anthropic
from openai import OpenAI

MODELS = ["openai/gpt-4.1-mini", "anthropic/claude-haiku-4-5", "ollama/llama3.2"]
WEATHER = {"name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
QUESTION = "What is the weather in Paris?"
RESULT = "18°C, sunny"


def check_call(name: str, arguments: str | dict, where: str) -> None:
    args = json.loads(arguments) if isinstance(arguments, str) else arguments
    assert (name, args) == ("get_weather", {"city": "Paris"}), f"{where}: {name} {args}"


def check_answer(text: str, where: str) -> None:
    assert "18°C" in text, f"{where}: {text!r}"
    print(f"ok  {where}: {text}")


def chat_completions(client: OpenAI, model: str, stream: bool) -> None:
    where = f"chat.completions {model} stream={stream}"
    tools = [{"type": "function", "function": WEATHER}]
    messages = [{"role": "user", "content": QUESTION}]
    if stream:
        with client.chat.completions.stream(model=model, messages=messages, tools=tools) as s:
            first = s.get_final_completion()
    else:
        first = client.chat.completions.create(model=model, messages=messages, tools=tools)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls", f"{where}: {choice}"
    call = choice.message.tool_calls[0]
    check_call(call.function.name, call.function.arguments, where)
    assert call.id, f"{where}: the call has no id"
    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": RESULT})
    if stream:
        with client.chat.completions.stream(model=model, messages=messages, tools=tools) as s:
            second = s.get_final_completion()
    else:
        second = client.chat.completions.create(model=model, messages=messages, tools=tools)
    assert second.choices[0].finish_reason == "stop", f"{where}: {second.choices[0]}"
    check_answer(second.choices[0].message.content, where)


def responses(client: OpenAI, model: str, stream: bool) -> None:
    where = f"responses {model} stream={stream}"
    tools = [{"type": "function", **WEATHER}]

    def create(**kwargs):
        if not stream:
            return client.responses.create(model=model, tools=tools, **kwargs)
        with client.responses.stream(model=model, tools=tools, **kwargs) as s:
            return s.get_final_response()

    first = create(input=QUESTION)
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1, f"{where}: {first.output}"
    check_call(calls[0].name, calls[0].arguments, where)
    # Continued from the stored response: the server replays the call it made.
    output = {"type": "function_call_output", "call_id": calls[0].call_id, "output": RESULT}
    second = create(input=[output], previous_response_id=first.id)
    check_answer(second.output_text, where)


def messages(client: anthropic.Anthropic, model: str, stream: bool) -> None:
    where = f"messages {model} stream={stream}"
    tools = [{"name": WEATHER["name"], "description": WEATHER["description"], "input_schema": WEATHER["parameters"]}]
    history = [{"role": "user", "content": QUESTION}]

    def create():
        if not stream:
            return client.messages.create(model=model, max_tokens=512, tools=tools, messages=history)
        with client.messages.stream(model=model, max_tokens=512, tools=tools, messages=history) as s:
            return s.get_final_message()

    first = create()
    assert first.stop_reason == "tool_use", f"{where}: {first}"
    uses = [block for block in first.content if block.type == "tool_use"]
    assert len(uses) == 1, f"{where}: {first.content}"
    check_call(uses[0].name, uses[0].input, where)
    history.append({"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]})
    history.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": RESULT}]})
    second = create()
    assert second.stop_reason == "end_turn", f"{where}: {second}"
    check_answer("".join(block.text for block in second.content if block.type == "text"), where)


def main(base: str, key: str) -> None:
    openai_client = OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=30)
    anthropic_client = anthropic.Anthropic(base_url=base, api_key=key, max_retries=0, timeout=30)
    for model in MODELS:
        for stream in (False, True):
            chat_completions(openai_client, model, stream)
            responses(openai_client, model, stream)
            messages(anthropic_client, model, stream)
    print(f"tool loops: {len(MODELS) * 6} passed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "none")
