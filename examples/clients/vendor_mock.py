"""A stand-in for three LLM vendors (OpenAI Chat Completions, Anthropic Messages, Ollama's chat
API), each in its current wire format, JSON and streamed, for tool_loops.py. It plays one tool
loop: offered tools and no tool result yet, it calls `get_weather` for Paris; given the result, it
answers with it. A tool result that does not answer the call it made (wrong or missing id, or
Ollama's tool_name) is refused with the vendor's 400, so a gateway that loses ids fails loudly.

    python examples/clients/vendor_mock.py      # prints the port it listens on, then serves

Point the server's plugins at it with OPENAI_BASE_URL=http://127.0.0.1:PORT/v1,
ANTHROPIC_BASE_URL=http://127.0.0.1:PORT and OLLAMA_HOST=http://127.0.0.1:PORT.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOOL = "get_weather"
ARGS = {"city": "Paris"}
OPENAI_CALL = "call_q8Zt3Xk2vN1m"
ANTHROPIC_CALL = "toolu_01A09q90qw90lq917835lq9"
ANSWER = "It is 18°C and sunny in Paris."
USAGE = (42, 12)


def wants_tool(messages, is_result):
    """Whether this request starts the loop: the newest message is not a tool result."""
    return not (messages and is_result(messages[-1]))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def do_GET(self):
        self.reply(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        if self.path == "/v1/chat/completions":
            self.openai(body)
        elif self.path == "/v1/messages":
            self.anthropic(body)
        elif self.path == "/api/chat":
            self.ollama(body)
        else:
            self.reply(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})

    # --- OpenAI Chat Completions -------------------------------------------------------------

    def openai(self, body):
        messages, model, stream = body["messages"], body["model"], body.get("stream", False)
        call = wants_tool(messages, lambda m: m.get("role") == "tool") and body.get("tools")
        if not call:
            result = messages[-1]
            asked = [m for m in messages if m.get("role") == "assistant" and m.get("tool_calls")]
            if result.get("tool_call_id") != OPENAI_CALL or not asked or asked[-1]["tool_calls"][0]["id"] != OPENAI_CALL:
                return self.reply(400, {"error": {"message": "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.", "type": "invalid_request_error", "param": "messages", "code": None}})
        usage = {"prompt_tokens": USAGE[0], "completion_tokens": USAGE[1], "total_tokens": sum(USAGE),
                 "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                 "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
        head = {"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "created": 1764633600, "model": model + "-2025-04-14",
                "system_fingerprint": "fp_6b68a8204b", "service_tier": "default"}
        tool_call = {"id": OPENAI_CALL, "type": "function", "function": {"name": TOOL, "arguments": json.dumps(ARGS)}}
        if not stream:
            message = {"role": "assistant", "content": None if call else ANSWER, "refusal": None, "annotations": []}
            if call:
                message["tool_calls"] = [tool_call]
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls" if call else "stop"}
            return self.reply(200, {**head, "object": "chat.completion", "choices": [choice], "usage": usage})
        chunk = lambda delta, finish=None: {**head, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        events = [chunk({"role": "assistant", "content": None if call else "", "refusal": None})]
        if call:
            arguments = json.dumps(ARGS)
            events.append(chunk({"tool_calls": [{"index": 0, "id": OPENAI_CALL, "type": "function", "function": {"name": TOOL, "arguments": ""}}]}))
            events += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[i:i + 6]}}]}) for i in range(0, len(arguments), 6)]
            events.append(chunk({}, "tool_calls"))
        else:
            events += [chunk({"content": piece}) for piece in ANSWER.split(" ")[:1] + [" " + w for w in ANSWER.split(" ")[1:]]]
            events.append(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        self.sse([f"data: {json.dumps(e)}\n\n" for e in events] + ["data: [DONE]\n\n"])

    # --- Anthropic Messages --------------------------------------------------------------------

    def anthropic(self, body):
        messages, model, stream = body["messages"], body["model"], body.get("stream", False)

        def is_result(m):
            return isinstance(m.get("content"), list) and any(b.get("type") == "tool_result" for b in m["content"])

        call = wants_tool(messages, is_result) and body.get("tools")
        if not call:
            results = [b for b in messages[-1]["content"] if b.get("type") == "tool_result"]
            asked = [b for m in messages if m["role"] == "assistant" and isinstance(m["content"], list) for b in m["content"] if b.get("type") == "tool_use"]
            if not results or results[0].get("tool_use_id") != ANTHROPIC_CALL or not asked or asked[-1]["id"] != ANTHROPIC_CALL:
                return self.reply(400, {"type": "error", "error": {"type": "invalid_request_error", "message": "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."}, "request_id": "req_011CV"})
        usage = {"input_tokens": USAGE[0], "output_tokens": USAGE[1], "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                 "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}, "service_tier": "standard"}
        block = {"type": "tool_use", "id": ANTHROPIC_CALL, "name": TOOL, "input": ARGS} if call else {"type": "text", "text": ANSWER}
        stop = "tool_use" if call else "end_turn"
        message = {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": model,
                   "content": [block], "stop_reason": stop, "stop_sequence": None, "usage": usage}
        if not stream:
            return self.reply(200, message)
        start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
        events = [("message_start", {"type": "message_start", "message": start})]
        if call:
            events.append(("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {**block, "input": {}}}))
            arguments = json.dumps(ARGS)
            events += [("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": arguments[i:i + 5]}}) for i in range(0, len(arguments), 5)]
        else:
            events.append(("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}))
            events.append(("ping", {"type": "ping"}))
            events += [("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}}) for w in [ANSWER[:10], ANSWER[10:]]]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
        events.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": USAGE[1]}}))
        events.append(("message_stop", {"type": "message_stop"}))
        self.sse([f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events])

    # --- Ollama --------------------------------------------------------------------------------

    def ollama(self, body):
        messages, model, stream = body["messages"], body["model"], body.get("stream", True)
        call = wants_tool(messages, lambda m: m.get("role") == "tool") and body.get("tools")
        if not call:
            result = messages[-1]
            asked = [m for m in messages if m.get("role") == "assistant" and m.get("tool_calls")]
            if not asked or asked[-1]["tool_calls"][0]["function"]["name"] != TOOL or result.get("tool_name", TOOL) != TOOL:
                return self.reply(400, {"error": "invalid message: a tool result must follow the assistant's tool call"})
        head = {"model": model, "created_at": "2026-12-02T10:00:00.000000Z"}
        done = {"done": True, "done_reason": "stop", "total_duration": 912000000, "load_duration": 41000000,
                "prompt_eval_count": USAGE[0], "prompt_eval_duration": 120000000, "eval_count": USAGE[1], "eval_duration": 700000000}
        if call:
            message = {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": TOOL, "arguments": ARGS}}]}
        else:
            message = {"role": "assistant", "content": ANSWER}
        if not stream:
            return self.reply(200, {**head, "message": message, **done})
        if call:
            lines = [{**head, "message": message, "done": False}]
        else:
            lines = [{**head, "message": {"role": "assistant", "content": w}, "done": False} for w in [ANSWER[:10], ANSWER[10:]]]
        lines.append({**head, "message": {"role": "assistant", "content": ""}, **done})
        self.send_response(200)
        self.send_header("content-type", "application/x-ndjson")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for line in lines:
            self.chunk(json.dumps(line) + "\n")
        self.chunk("")

    # --- wire helpers -----------------------------------------------------------------------

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def sse(self, events):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for event in events:
            self.chunk(event)
        self.chunk("")

    def chunk(self, text):
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
