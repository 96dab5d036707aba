"""vlm-api: against a small OpenAI-compatible server on 127.0.0.1 that serves the tiny LLaVA of test_judge_vlm through
its chat template (the fake is the remote server only; the model behind it is real transformers code).

The judge's answers must equal the tiny model's own greedy answers to the same question and images (the PNG data
URL is lossless), the first request is answered 429 and retried, and the key never leaves the Authorization header."""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch
from PIL import Image

from dataigm.core.errors import DataigmError
from dataigm.judges.registry import check_judge_spec, create_judge
from dataigm.judges.vlm import generic_answer
from real_weights import skimage_photo
from test_judge_vlm import tiny_llava  # noqa: F401  (the fixture)

KEY = "sk-test-not-a-real-key-1234"
SERVED = "tiny-llava-2026-01-01"


class Server:
    """Serves POST /v1/chat/completions with a transformers VLM; ``fail`` answers the next requests with these statuses."""

    def __init__(self, folder: Path) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.model = AutoModelForImageTextToText.from_pretrained(folder).eval()
        self.processor = AutoProcessor.from_pretrained(folder)
        self.fail: list[int] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()

    def answer(self, body: dict[str, Any]) -> str:
        content, images = [], []
        for item in body["messages"][0]["content"]:
            if item["type"] == "image_url":
                data = item["image_url"]["url"].split(",", 1)[1]
                images.append(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
                content.append({"type": "image"})
            else:
                content.append(item)
        prompt = self.processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False)
        inputs = self.processor(text=[prompt], images=[images], return_tensors="pt")
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=body["max_tokens"], do_sample=body["temperature"] > 0)
        return self.processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                    status = server.fail.pop(0) if server.fail else 200
                if self.path != "/v1/chat/completions" or self.headers.get("Authorization") != f"Bearer {KEY}":
                    status = 401
                if status != 200:
                    self.send_response(status)
                    self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(json.dumps({"error": {"message": f"status {status}"}}).encode())
                    return
                with server.lock:
                    text = server.answer(body)
                reply = {"id": "x", "object": "chat.completion", "model": SERVED, "system_fingerprint": "fp_tiny",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture(scope="module")
def server(tiny_llava: Path) -> Iterator[tuple[Server, str]]:  # noqa: F811
    state = Server(tiny_llava)
    httpd = HTTPServer(("127.0.0.1", 0), state.handler())
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("DATAIGM_API_KEY", KEY)


QUESTION = "Is there {concept} here? Answer yes or no."


def test_answers_equal_the_models_own_with_a_429_retried(server: tuple[Server, str], tiny_llava: Path, key: None,  # noqa: F811
                                                         caplog: pytest.LogCaptureFixture) -> None:
    state, url = server
    photos = [skimage_photo(n).resize((48, 40)) for n in ("astronaut", "chelsea", "coffee")]
    judge_ = create_judge(f"vlm-api:my-model@{url}", concept="a cat",
                          settings={"question": QUESTION, "backoff": 0.01, "concurrency": 1})
    local = create_judge(f"vlm:{tiny_llava}", concept="a cat", settings={"question": QUESTION})
    expected = [local.generate([local.preprocess(im)])[0] for im in photos]
    state.fail, state.requests = [429], []
    with caplog.at_level(logging.DEBUG):
        verdicts = judge_.predict(judge_.collate([judge_.preprocess(im) for im in photos]))
    assert [v.extra["response"] for v in verdicts] == expected
    assert [v.extra["answer"] for v in verdicts] == [generic_answer(r) for r in expected]
    assert [v.positive for v in verdicts] == [generic_answer(r) == "yes" for r in expected]
    assert len(state.requests) == 4 and judge_.retries == 1  # one 429, retried
    body = state.requests[-1]
    assert body["model"] == "my-model" and body["temperature"] == 0 and body["seed"] == 0
    assert body["messages"][0]["content"][0] == {"type": "text", "text": "Is there a cat here? Answer yes or no."}
    assert all(v.extra["served_model"] == SERVED and v.extra["model"] == "my-model" and v.extra["system_fingerprint"] == "fp_tiny"
               for v in verdicts)
    d = judge_.describe()
    assert d["api_key_env"] == "DATAIGM_API_KEY" and d["api_key_set"] is True and d["retries"] == 1
    recorded = json.dumps(d) + json.dumps([v.extra for v in verdicts]) + caplog.text
    assert KEY not in recorded  # the key is sent, never recorded or logged
    assert state.headers[-1]["Authorization"] == f"Bearer {KEY}"


def test_retries_are_bounded_and_other_errors_stop(server: tuple[Server, str], key: None) -> None:
    state, url = server
    judge_ = create_judge(f"vlm-api:m@{url}", concept="a cat", settings={"backoff": 0.0, "max_retries": 2})
    judge_input = judge_.preprocess(skimage_photo("coffee").resize((32, 32)))
    state.fail = [503, 503, 503]
    with pytest.raises(DataigmError, match="HTTP 503 after 2 retries"):
        judge_.predict([judge_input])
    state.fail = [400]
    with pytest.raises(DataigmError, match="HTTP 400"):
        judge_.predict([judge_input])
    state.fail = []
    bad = create_judge(f"vlm-api:m@{url.replace('/v1', '/v2')}", concept="a cat")
    with pytest.raises(DataigmError, match="HTTP 401"):
        bad.predict([judge_input])


def test_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_judge_spec("vlm-api:gpt-4o@https://api.openai.com/v1") == "vlm-api"
    for spec in ("vlm-api", "vlm-api:gpt-4o", "vlm-api:gpt-4o@api.openai.com"):
        with pytest.raises(DataigmError, match="vlm-api:MODEL@URL"):
            check_judge_spec(spec)
    with pytest.raises(DataigmError, match="needs concept=NAME"):
        create_judge("vlm-api:gpt-4o@https://api.openai.com/v1")
    monkeypatch.delenv("DATAIGM_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    assert create_judge("vlm-api:gpt-4o@https://api.openai.com/v1/", concept="x").describe()["api_key_env"] == "OPENAI_API_KEY"
    assert create_judge("vlm-api:gpt-4o@https://h/v1/chat/completions", concept="x").url == "https://h/v1/chat/completions"
