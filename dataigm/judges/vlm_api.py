"""``vlm-api:MODEL@URL``: a vision-language model behind an OpenAI-compatible chat-completions endpoint (GPT-4o, or
an open model served by vLLM or TGI) as a judge.

CURE judges erasure with GPT-4o through its API. Per image dataigm sends one ``POST URL/chat/completions`` with the
question (``settings["question"]``, default :data:`~dataigm.judges.vlm.GENERIC_QUESTION` with ``{concept}`` filled
in) and the image as a base64 PNG data URL (lossless: the server sees the decoded pixels), ``temperature=0`` and
``seed`` (``settings["seed"]``, default 0; servers that ignore it stay non-deterministic, and the response's
``system_fingerprint`` is recorded to show it), ``max_tokens`` (default 16). The answer is parsed as ``vlm:``'s
generic protocol: positive when its first word is "yes".

* The key comes from the environment: ``DATAIGM_API_KEY``, else ``OPENAI_API_KEY`` (``settings["api_key_env"]``
  names another variable). It is sent only in the ``Authorization`` header and is never logged, recorded or
  printed; descriptions record the variable's name only.
* Rate limits: a 429 or 5xx answer, or a dropped connection, is retried up to ``settings["max_retries"]`` times
  (default 5) after ``Retry-After`` when the server sends it (at most 60 s), else ``backoff * 2**attempt`` seconds
  (``settings["backoff"]``, default 1 s). Any other HTTP error stops the run with the server's message.
* Every verdict records the model the server says answered (the response's ``model``, e.g. a dated GPT-4o
  version) and its ``system_fingerprint``, beside the model name asked for.

Only the standard library is used (``urllib``), so the kind adds no dependency.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dataigm.core.errors import DataigmError
from dataigm.judges.registry import JudgeKind, JudgeOptions, JudgeSpec, JudgeSpecError, register_judge
from dataigm.judges.types import Verdict
from dataigm.judges.vlm import GENERIC_QUESTION, generic_answer

log = logging.getLogger(__name__)
API_KEY_ENVS = ("DATAIGM_API_KEY", "OPENAI_API_KEY")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0
VLM_API_REFERENCE = "OpenAI chat-completions API (image_url content, temperature, seed); CURE's GPT-4o judging; vlm: generic protocol"


class ApiError(DataigmError):
    """The endpoint refused a request, or kept failing after every retry."""


def png_data_url(image: Any) -> str:
    """DataLoader-side preprocessing: the RGB image as a ``data:image/png;base64,...`` URL (picklable, lossless)."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def completions_url(base: str) -> str:
    """``URL/chat/completions`` (a URL that already ends there is kept)."""
    base = base.rstrip("/")
    return base if base.endswith("/chat/completions") else f"{base}/chat/completions"


def api_key(env: str | None = None) -> tuple[str | None, str]:
    """(key, the variable it came from): ``env`` when given, else the first of :data:`API_KEY_ENVS` that is set."""
    for name in ([env] if env else API_KEY_ENVS):
        if os.environ.get(name):
            return os.environ[name], name
    return None, env or API_KEY_ENVS[0]


class VlmApiJudge:
    """One chat-completions request per image (see the module docstring)."""

    def __init__(self, model: str, url: str, *, concept: str | None = None, settings: dict[str, Any] | None = None) -> None:
        settings = dict(settings or {})
        if not concept:
            raise JudgeSpecError("vlm-api needs concept=NAME (the concept the question names)")
        self.model, self.url = model, completions_url(url)
        self.concept = concept
        self.question = str(settings.get("question") or GENERIC_QUESTION).format(concept=concept)
        self.seed = int(settings.get("seed", 0))
        self.max_tokens = int(settings.get("max_tokens", 16))
        self.max_retries = int(settings.get("max_retries", 5))
        self.backoff = float(settings.get("backoff", 1.0))
        self.timeout = float(settings.get("timeout", 120.0))
        self.concurrency = max(1, int(settings.get("concurrency", 4)))
        self._key, self.key_env = api_key(settings.get("api_key_env"))
        self.name, self.target, self.label_names, self.threshold = f"vlm-api:{model}", concept, ["other", concept], None
        self.device, self.autocast_dtype = "api", None
        self.preprocess = png_data_url
        self.retries = 0  # retried requests so far (rate limits, server errors)

    def collate(self, inputs: list[Any]) -> Any:
        return list(inputs)

    def payload(self, image_url: str) -> dict[str, Any]:
        """The request body for one image."""
        return {"model": self.model, "temperature": 0, "seed": self.seed, "max_tokens": self.max_tokens,
                "messages": [{"role": "user", "content": [{"type": "text", "text": self.question},
                                                          {"type": "image_url", "image_url": {"url": image_url}}]}]}

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {self._key}"} if self._key else {})}
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as e:
                detail = e.read()[:300].decode(errors="replace")
                if e.code not in RETRY_STATUSES:
                    raise ApiError(f"{self.url} answered HTTP {e.code}: {detail}") from None
                wait = _retry_after(e.headers.get("Retry-After")) if e.headers else None
                reason = f"HTTP {e.code}"
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                wait, reason = None, f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            if attempt == self.max_retries:
                raise ApiError(f"{self.url}: {reason} after {self.max_retries} retries")
            wait = self.backoff * 2 ** attempt if wait is None else wait
            self.retries += 1
            log.info("vlm-api: %s; retry %d/%d in %.1f s", reason, attempt + 1, self.max_retries, wait)
            time.sleep(wait)
        raise AssertionError("unreachable")

    def ask(self, image_url: str) -> dict[str, Any]:
        """The answer to one image: ``response`` (the text), ``served_model`` and ``system_fingerprint``."""
        out = self._post(self.payload(image_url))
        try:
            text = out["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise ApiError(f"{self.url}: not a chat-completions answer: {json.dumps(out)[:300]}") from None
        return {"response": text, "served_model": out.get("model"), "system_fingerprint": out.get("system_fingerprint")}

    def predict(self, batch: Any) -> list[Verdict]:
        with ThreadPoolExecutor(self.concurrency) as pool:
            answers = list(pool.map(self.ask, batch))
        verdicts = []
        for a in answers:
            answer = generic_answer(a["response"])
            positive = answer == "yes"
            verdicts.append(Verdict({"other": float(not positive), self.target: float(positive)}, self.target if positive else "other",
                                    positive, float(positive), {"answer": answer, **a, "model": self.model}))
        return verdicts

    def describe(self) -> dict[str, Any]:
        return VlmApiKind.description(
            self, spec=f"vlm-api:{self.model}@{self.url}", model=self.model, url=self.url, api_key_env=self.key_env,
            api_key_set=self._key is not None, question=self.question, temperature=0, seed=self.seed, max_tokens=self.max_tokens,
            max_retries=self.max_retries, retries=self.retries, rule="first word == yes", reference=VLM_API_REFERENCE)


def _retry_after(value: str | None) -> float | None:
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER) if value is not None else None
    except ValueError:  # an HTTP date: fall back to the backoff
        return None


@register_judge
class VlmApiKind(JudgeKind):
    kind = "vlm-api"
    syntax = "vlm-api:MODEL@URL"
    decides = ("a vision-language model behind an OpenAI-compatible chat-completions endpoint answers a question per image "
               "(temperature 0, seed); positive when the first word is yes; the served model version is in every verdict")
    reference = VLM_API_REFERENCE
    weights = "none here: the endpoint's (e.g. gpt-4o at https://api.openai.com/v1, or a vLLM/TGI server); key from DATAIGM_API_KEY or OPENAI_API_KEY"
    licence = "the API's terms of use / the served model's licence"
    options = frozenset({"concept"})
    settings = frozenset({"question", "seed", "max_tokens", "max_retries", "backoff", "timeout", "concurrency", "api_key_env"})

    @classmethod
    def check_spec(cls, spec: JudgeSpec) -> None:
        if not spec.name or not spec.location.startswith(("http://", "https://")):
            raise JudgeSpecError(f"vlm-api needs a model and an http(s) URL: vlm-api:MODEL@URL (e.g. vlm-api:gpt-4o@https://api.openai.com/v1), "
                                 f"got {spec.text!r}")

    @classmethod
    def from_spec(cls, spec: JudgeSpec, options: JudgeOptions) -> Any:
        return VlmApiJudge(spec.name, spec.location, concept=options.concept, settings=options.settings)

    @classmethod
    def offline(cls) -> str:
        return "no: needs the endpoint (and its key in DATAIGM_API_KEY or OPENAI_API_KEY)"
