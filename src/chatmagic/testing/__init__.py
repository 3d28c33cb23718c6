"""A local OpenAI-compatible endpoint for tests, benchmarks and the offline demo.

`FakeEndpoint` is a real HTTP server on loopback that serves ``GET /v1/models``
and ``POST /v1/chat/completions`` (streamed as real server-sent events, or as
one JSON body), records every request it received, and misbehaves on demand.

Replies are scripted by model id: ``BASE`` or ``BASE/key=value,key=value``,
for instance ``echo``, ``long/tokens=20000``, ``echo/delay=0.02``; inside
``--compare``, which splits on commas, write ``long/tokens=100&delay=0.02``. Bases:

=================  ==========================================================
``echo``           the last user message, word by word
``markdown``       a canned Markdown reply (heading, table, code, list)
``long``           ``tokens`` words in paragraphs of 40 (default 2000)
``xss``            Markdown laced with HTML/script probes (none may run), in its
                   thoughts, its answer and a refusal
``reasoning``      ``delta.reasoning_content`` first, then the answer
``reasoning-vllm`` the same through ``delta.reasoning`` (vLLM >= 0.11)
``refusal``        ``delta.refusal`` instead of content
``length``         a reply cut with ``finish_reason="length"``
``no-usage``       like echo, never sends usage (llama.cpp)
``error-midstream`` some text, then a ``data: {"error": ...}`` frame
``error-200``      HTTP 200 whose JSON body is ``{"error": ...}`` (one-api)
``json-as-sse``    a JSON error body labelled ``text/event-stream``
``drop``           some text, then the connection closes: no finish, no [DONE]
``error-list``     HTTP 400 with a JSON *list* body (Gemini)
``unauthorized``   HTTP 401
``server-error``   HTTP 500
``rate-limited``   HTTP 429 with ``Retry-After: 0`` once, then like echo
``hang``           headers, then nothing until the client goes away
``keepalive``      like echo, with ``: keep-alive`` comments between chunks
``separators``     raw U+2028, U+2029 and U+0085 inside the JSON strings (as
                   pydantic and Node write them); they are text, not line ends
``mislabelled``    UTF-8 labelled ``charset=iso-8859-1``, a character split
                   across two writes
``content-parts``  ``content`` (and ``reasoning``) as lists of text parts, and
                   ``content: null``, ``refusal: false`` between them
``whole-json``     a whole ``chat.completion`` JSON body to a streamed request
``surrogate``      a lone surrogate (``\\ud800`` escape) in the text
``empty-data``     empty ``data:`` events (and one named ``ping``) among chunks
``bom``            the stream starts with a UTF-8 byte order mark
``event-error``    some text, then ``event: error`` whose data has no ``error``
                   key, only the server's ``message``
``html-502``       HTTP 502 with a proxy's HTML page
``redirect``       HTTP 308 to the same path under ``/v1`` (to ``https`` when
                   already under ``/v1``; ``to=URL`` elsewhere)
``context-overflow`` llama-cpp-python past its context: streamed, an empty stream;
                   without streaming, HTTP 400 saying why
``text-only``      like echo; ``GET /model_group/info`` (LiteLLM's route) says it takes
                   no images (``supports_vision: false``), 4,096 tokens, and its prices
``small-context``  like echo; ``/model_group/info`` says it takes 600 prompt tokens
``sentiment``      one word, positive, negative or neutral, from word lists in the
                   last user message (``not``/``never`` before a word turn it
                   round; ``naive=1`` does not: two models that disagree)
``one-at-a-time``  llama-cpp-python's ``interrupt_requests``: like echo, but a
                   stream ends with ``[DONE]`` and no finish_reason when another
                   chat request reaches the server while it streams (``via=litellm``:
                   with ``finish_reason="stop"`` first, as LiteLLM's proxy adds)
``schema``         JSON valid and typed for the schema the request carries
                   (``response_format`` json_schema, or json_object with ``schema``,
                   else the one chatmagic writes in the prompt), its strings and
                   numbers taken from the prompt; ``shape=wrong`` (the first field
                   of the wrong type), ``shape=prose`` (no JSON), ``shape=cut`` (cut
                   in half, ``finish_reason="length"``)
``priced``         like echo, and its usage says what it cost (``usage.cost``, as
                   OpenRouter and LiteLLM send it): ``cost`` (default 0.0042 USD)
``tools``          a tool-calling model: calls the first tool the request offers
                   (``call=NAME``: that one, offered or not; ``args=broken``: with
                   arguments that are not JSON; ``args=key``: its strings are the
                   request's bearer key, a model leaking a key), arguments made from its schema
                   (integers 2, 3, ...; strings "Paris"; the first of an enum);
                   once it has tool results, answers with them ("The tools said: ...")
``tools-parallel`` the same, with two calls in one message, their pieces interleaved
                   (the first two tools offered, or the first one twice)
``tools-endless``  calls a tool in every round, whatever it receives
=================  ==========================================================

Money options, for any model: ``cost`` (``usage.cost``), ``cached`` (prompt tokens
reported as cached, ``prompt_tokens_details.cached_tokens``), ``cost_header`` (LiteLLM's
``x-litellm-response-cost`` header on the response).

Gateways' account routes: under a path prefix the endpoint answers as that gateway
does (chat and models work there too), with the figures in `GATEWAYS`. Base URLs:
``endpoint.gateway_url("one-api")`` and so on. ``one-api``: OpenAI-style billing at
``/dashboard/billing/...`` and ``/v1/dashboard/billing/...`` (usage in cents, dates
ignored), its web page for other paths; ``new-api``: ``/api/usage/token`` (quota
units) and the billing routes; ``litellm``: ``/key/info``; ``litellm-nodb``: that
route answering HTTP 500 "No connected db"; ``openrouter``: ``/api/v1/key``;
``deepseek``: ``/user/balance``; ``error-200``: billing answering HTTP 200 with an
error; ``web``: an HTML page with HTTP 200 for every account route.

Options: ``delay`` (seconds per token), ``first`` (seconds before the first
token), ``tokens`` (for ``long``), ``after`` (tokens before a failure),
``eol`` (``lf``, ``cr`` or ``crlf``: how a streamed line ends), ``pause``
(seconds to wait after the first text chunk, to see it dispatched on time),
``fail`` (answer HTTP 400 to a prompt holding this word), ``busy`` / ``flaky`` (the first N
requests of each prompt answer HTTP 429 with ``Retry-After: wait`` / HTTP 503), ``wait``,
``to`` (for ``redirect``), ``via`` (for ``one-at-a-time`` and ``context-overflow``:
``via=litellm`` answers as LiteLLM's proxy in front of it does; ``via=litellm-error``: as
it does when the cut came before a word), ``refuse`` (any model: ``refuse=json_schema``
answers a json_schema response_format with llama-cpp-python's HTTP 500;
``refuse=json_object`` refuses json_object too, HTTP 400), ``shape`` (for ``schema``),
``choices`` (send at most
this many choices whatever ``n`` asks, as servers that ignore ``n`` do). An id with an
unknown base gets a 404 "model does not exist", as OpenAI does.

Capabilities: the endpoint answers ``GET /model_group/info`` (at its root, as LiteLLM's
proxy does) from ``model_info`` (default `MODEL_INFO`: ``text-only``, ``small-context``,
and ``echo``, which takes images; ``model_info={}``: no such route); ``FakeEndpoint(props={...})`` makes it a llama.cpp ``llama-server`` instead,
which answers ``GET /props`` with that and has no ``/model_group/info``.

Raw bytes: ``FakeEndpoint(raw={"name": RawReply([b"data: ...\r", 0.5, ...])})``
answers the model id ``name`` with exactly those writes (a float is a pause),
then closes the connection (``unstreamed=RawReply(...)``: another answer for a
request without ``stream``); for byte streams no script above makes.

The Batch API: OpenAI's ``/files`` and ``/batches`` (see `_batch_server`), each JSONL line
answered by the scripts above, never streamed; ``batch_seconds`` keeps a batch in progress
that long, ``batch_failures`` fails those lines (from 0), ``batch_api=False`` answers 404,
``batch_api="unset"`` answers HTTP 500 as LiteLLM's proxy does without ``files_settings``.

From the command line: ``python -m chatmagic.testing --port 8765`` (or ``chatmagic serve``).
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Collection

from .batch_server import BatchService, answer_offline

__all__ = ["FakeEndpoint", "RecordedRequest", "RawReply", "MODELS", "GATEWAYS", "MODEL_INFO",
           "main"]

MODELS: tuple[str, ...] = (
    "echo", "markdown", "long", "xss", "reasoning", "reasoning-vllm", "refusal",
    "length", "no-usage", "error-midstream", "error-200", "json-as-sse", "drop",
    "error-list", "unauthorized", "server-error", "rate-limited", "hang", "keepalive",
    "separators", "mislabelled", "content-parts", "whole-json", "surrogate", "empty-data",
    "bom", "event-error", "html-502", "redirect", "context-overflow", "one-at-a-time",
    "sentiment",
    "schema",
    "priced",
    "text-only", "small-context",
    "tools", "tools-parallel", "tools-endless",
)

#: What each gateway prefix says about the account (see the module docstring).
GATEWAYS: dict[str, dict[str, Any]] = {
    "one-api": {"hard_limit_usd": 25.0, "total_usage": 1234},  # usage in cents
    "new-api": {"total_granted": 5_000_000, "total_used": 1_250_000,
                "total_available": 3_750_000, "hard_limit_usd": 10.0, "total_usage": 250},
    "litellm": {"spend": 1.75, "max_budget": 20.0},
    "litellm-nodb": {},
    "openrouter": {"usage": 3.5, "limit": 10.0, "limit_remaining": 6.5},
    "deepseek": {"balance_infos": [{"currency": "CNY", "total_balance": "110.00",
                                    "granted_balance": "10.00", "topped_up_balance": "100.00"}]},
    "error-200": {},
    "web": {},
}

GATEWAY_PAGE = "<!doctype html><html><head><title>One API</title></head><body></body></html>"

#: What ``GET /model_group/info`` says, per model name (LiteLLM's fields; prices per token).
MODEL_INFO: dict[str, dict[str, Any]] = {
    "text-only": {"supports_vision": False, "max_input_tokens": 4096,
                  "input_cost_per_token": 0.15e-6, "output_cost_per_token": 0.6e-6},
    "small-context": {"supports_vision": False, "max_input_tokens": 600},
    "echo": {"supports_vision": True, "max_input_tokens": 128000},
}

SEPARATORS_REPLY = "one\u2028two\u2029three\u0085four"
MISLABELLED_REPLY = "café ☕ naïve 日本語"
SURROGATE_REPLY = "lone \ud800 surrogate"
HTML_502 = ("<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title>"
            "<style>body { font: 14px sans-serif }</style></head>\n<body><center><h1>502 Bad "
            "Gateway</h1></center>\n<hr><center>nginx/1.25.3</center>\n" + "<!-- pad -->\n" * 40
            + "</body></html>\n")
CONTEXT_ERROR = "Requested tokens (4107) exceed context window of 2048"

MARKDOWN_REPLY = """\
## A small table

| model | speed |
|-------|------:|
| echo  | fast  |
| long  | slow  |

```python
def greet(name: str) -> str:
    return f"Hello, {name}!"
```

- one
- two
"""

XSS_REPLY = """\
Probes follow.

<script>window.__xss = 'script'</script>

<img src=x onerror="window.__xss = 'img'">

<svg onload="window.__xss = 'svg'"></svg>

<iframe src="javascript:window.__xss = 'iframe'"></iframe>

<a href="#" onmouseover="window.__xss = 'hover'">hover me</a>

[click me](javascript:window.__xss='link') and [data](data:text/html,<script>alert(1)</script>)

Code stays literal: `<b>not bold</b>`

```html
<script>shown, not run</script>
```

JupyterLab's reading (math pass, then GFM) differs from CommonMark's here:

```
```~
<img src=x onerror="window.__xss = 'tilde-close'">
```

```
a
```\t
```
<img src=x onerror="window.__xss = 'tab-close'">
```

see http://a.b/`<img src=x onerror="window.__xss = 'url-tick'">`
and www.a.b`<img src=x onerror="window.__xss = 'www-tick'">`

$a
 ```
b$ <img src=x onerror="window.__xss = 'math-fence'">
 ```

JupyterLab pastes math back into the HTML with '"' raw, and an info string as it is:
![$x" onerror="window.__xss = 'math-alt'//$](y)
and [a]($x" onmouseover="window.__xss = 'math-href'//$)

```python" onmouseover="window.__xss = 'info-string-attr'" x="
print(1)
```

> [quoted](
> javascript:window.__xss='quote-link')

[bom](\ufeffjavascript:window.__xss='bom-link')

Tricks: a \\`<img src=x onerror="window.__xss = 'tick'">` b and
[a](`x) <img src=x onerror="window.__xss = 'link-tick'"> `y)

```a`b
<img src=x onerror="window.__xss = 'info-string'">

- a list

   ```
<img src=x onerror="window.__xss = 'list-fence'">
"""

# The xss model thinks this first (a lone CR ends a line; math may take a fence's opener) ...
XSS_THOUGHTS = """\
hmm\n\n```\r<img src=x onerror="window.__xss = 'thinking-cr'">\n```\n\n\
$a\n```\nb$ <img src=x onerror="window.__xss = 'thinking-math'">\n"""

# ... and refuses this after its answer (a fence that a prefix on its line would undo).
XSS_REFUSAL = """```\n<img src=x onerror="window.__xss = 'refusal-fence'">\n```"""


@dataclass
class RecordedRequest:
    """One request as the endpoint received it."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any
    disconnected: bool = False
    peer: int = 0  # the client's port: the same on two requests, one connection reused


@dataclass(frozen=True)
class RawReply:
    """An answer given byte for byte: each write is sent and flushed; a float is a pause."""

    writes: tuple[bytes | float, ...] | list[bytes | float]
    status: int = 200
    content_type: str = "text/event-stream"
    headers: dict[str, str] = field(default_factory=dict)
    unstreamed: "RawReply | None" = None  # what a request without ``stream`` gets, if not this


@dataclass
class _Script:
    base: str
    delay: float = 0.0
    first: float = 0.0
    tokens: int = 2000
    after: int = 3
    eol: str = "lf"
    pause: float = 0.0
    to: str = ""
    via: str = ""
    choices: int = 0  # at most this many choices, whatever n asks (0: as many as asked)
    refuse: str = ""  # json_schema or json_object: a response_format refused (testing_schema)
    shape: str = "valid"  # for the schema model (testing_schema.SHAPES)
    fail: str = ""  # answer HTTP 400 when the last user message holds this word
    busy: int = 0  # the first N requests of each prompt: HTTP 429 with Retry-After: wait
    flaky: int = 0  # the first N requests of each prompt: HTTP 503
    wait: float = 0.1  # Retry-After of busy (seconds)
    cost: float | None = None  # usage.cost
    cached: int = 0  # prompt_tokens_details.cached_tokens
    cost_header: float | None = None  # x-litellm-response-cost
    call: str = ""  # tools: the name to call (default: the first tool offered)
    args: str = ""  # tools: "broken" sends arguments that are not JSON; "key": strings = the key
    naive: int = 0  # for sentiment: 1 reads "not good" as good

    @classmethod
    def parse(cls, model: str) -> "_Script":
        base, _, opts = model.partition("/")
        script = cls(base=base)
        if base == "priced":
            script.cost = 0.0042
        for item in filter(None, re.split(r"[,&]", opts)):
            key, _, value = item.partition("=")
            if key in ("delay", "first", "pause", "wait", "cost", "cost_header"):
                setattr(script, key, float(value))
            elif key in ("eol", "to", "via", "refuse", "shape", "fail", "call", "args"):
                setattr(script, key, value)
            elif key in ("tokens", "after", "choices", "busy", "flaky", "cached",
                         "naive"):
                setattr(script, key, int(value))
        return script

    def count(self, body: dict[str, Any]) -> int:
        """How many choices to send: ``n``, capped by ``choices`` (servers that ignore n)."""
        n = int(body.get("n") or 1)
        return min(n, self.choices) if self.choices else n


def _words(text: str) -> list[str]:
    # Tokens are words with their trailing whitespace, so joining them restores the text.
    return re.findall(r"\S+\s*|\s+", text)


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text", "") for p in content if p.get("type") == "text"]
        images = sum(1 for p in content if p.get("type") == "image_url")
        suffix = f" [{images} image{'s' if images != 1 else ''}]" if images else ""
        return " ".join(texts) + suffix
    return ""


def _count_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(len(_message_text(m).split()) + 3 for m in messages)


class FakeEndpoint:
    """An OpenAI-compatible HTTP server on loopback that records what it receives.

    Use it as a context manager, or call `start()` and `stop()`::

        with FakeEndpoint() as endpoint:
            client = openai.OpenAI(base_url=endpoint.base_url, api_key="x")
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 models: tuple[str, ...] = MODELS, api_key: str | None = None,
                 owned_by: str = "chatmagic", raw: dict[str, RawReply] | None = None,
                 model_info: dict[str, dict[str, Any]] | None = None,
                 props: dict[str, Any] | None = None,
                 batch_api: bool | str = True, batch_seconds: float = 0.0,
                 batch_failures: Collection[int] = ()) -> None:
        self.requests: list[RecordedRequest] = []
        self.model_info = MODEL_INFO if model_info is None else model_info
        self.props = props  # given: a llama.cpp server (GET /props, no /model_group/info)
        #: OpenAI's Files and Batches API over this endpoint's chat answers (None: not served,
        #: 404 as most local servers answer); ``batch_seconds`` before a batch completes,
        #: ``batch_failures`` the input lines (from 0) that fail with HTTP 500.
        self.batches = BatchService(answer_offline(_Handler, self), seconds=batch_seconds,
                                    failures=batch_failures) if batch_api is True else None
        #: batch_api="unset": the routes are there but no Batch API is set up (LiteLLM's
        #: proxy without files_settings answers HTTP 500 so).
        self.batch_unset = batch_api == "unset"
        self.raw = dict(raw or {})
        self.models = models + tuple(name for name in self.raw if name not in models)
        self._arrivals = 0  # chat requests received so far (one-at-a-time watches it)
        self.api_key = api_key
        self.owned_by = owned_by
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._rate_limited_once: set[str] = set()
        self._tries: dict[tuple[str, str], int] = {}  # (model, prompt) -> requests so far
        #: Chat requests being answered now, and the most at once (a scheduler's bound).
        self.in_flight = 0
        self.max_in_flight = 0

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> "FakeEndpoint":
        endpoint = self

        class Handler(_Handler):
            owner = endpoint

        self._server = _QuietServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="chatmagic-fake-endpoint", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeEndpoint":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the endpoint is not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}/v1"

    def gateway_url(self, gateway: str) -> str:
        """The base URL under which this endpoint answers as ``gateway`` (see `GATEWAYS`)."""
        if gateway not in GATEWAYS:
            raise ValueError(f"no gateway {gateway!r}; known: {', '.join(GATEWAYS)}")
        tail = "/api/v1" if gateway == "openrouter" else "/v1"
        return f"http://{self._host}:{self.port}/{gateway}{tail}"

    # -- what the tests read -------------------------------------------------
    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The chat completion requests received, oldest first."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def batch_lines(self) -> list[dict[str, Any]]:
        """The chat bodies the Batch API answered, in the order it answered them."""
        return list(self.batches.lines) if self.batches else []

    @property
    def last_body(self) -> dict[str, Any]:
        return self.chat_requests[-1].body  # type: ignore[no-any-return]

    def _record(self, request: RecordedRequest) -> int:
        """Keep a request; the number of chat requests received with it."""
        with self._lock:
            self.requests.append(request)
            if request.path.rstrip("/").endswith("/chat/completions"):
                self._arrivals += 1
            return self._arrivals

    def _arrived_since(self, arrival: int) -> bool:
        with self._lock:
            return self._arrivals > arrival

    def _try_number(self, model: str, prompt: str) -> int:
        """How many requests of this model and prompt arrived before this one."""
        with self._lock:
            seen = self._tries.get((model, prompt), 0)
            self._tries[(model, prompt)] = seen + 1
            return seen

    def _enter(self, delta: int) -> None:
        with self._lock:
            self.in_flight += delta
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _first_rate_limit(self, key: str) -> bool:
        with self._lock:
            if key in self._rate_limited_once:
                return False
            self._rate_limited_once.add(key)
            return True


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up (a retry, a Stop button) is normal here, not an error to print."""

    # The default backlog of 5 drops connections opened at once (a run at --concurrency 16),
    # and the client's SYN is resent a second later.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    owner: FakeEndpoint
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet server
        pass

    # -- plumbing --------------------------------------------------------------
    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None,
                   content_type: str = "application/json") -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str = "invalid_request_error",
               code: str | None = None, headers: dict[str, str] | None = None) -> None:
        self._send_json(status, {"error": {"message": message, "type": kind, "code": code}},
                        headers)

    def _authorized(self) -> bool:
        key = self.owner.api_key
        return key is None or self.headers.get("Authorization") == f"Bearer {key}"

    # -- routes --------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.owner._record(RecordedRequest("GET", self.path, _lower(self.headers), None,
                                            peer=self.client_address[1]))
        if not self._authorized():
            return self._error(401, "Incorrect API key provided.", code="invalid_api_key")
        if self._account_route():
            return
        if self._batch_route("GET", b""):
            return
        if self.path.rstrip("/").endswith("/models"):
            data = [{"id": m, "object": "model", "created": 1700000000 + i,
                     "owned_by": self.owner.owned_by} for i, m in enumerate(self.owner.models)]
            return self._send_json(200, {"object": "list", "data": data})
        if self._capabilities():
            return None
        self._error(404, f"No route for GET {self.path}")

    def _account_route(self) -> bool:
        """Answer a gateway's account route (under its prefix); False: not one."""
        path = self.path.split("?", 1)[0]
        gateway, _, rest = path.lstrip("/").partition("/")
        if gateway not in GATEWAYS or rest.rstrip("/").endswith("models"):
            return False
        rest = "/" + rest
        figures = GATEWAYS[gateway]
        billing = rest.removeprefix("/v1").startswith("/dashboard/billing/")
        if gateway == "web" or (gateway == "one-api" and not billing):
            page = GATEWAY_PAGE.encode()  # a web UI answers every path it does not know
            self._raw(RawReply([page], 200, "text/html; charset=utf-8",
                               {"Content-Length": str(len(page))}))
            return True
        if gateway == "error-200" and billing:
            self._send_json(200, {"error": {"message": "invalid token: quota query disabled",
                                            "type": "one_api_error"}})
            return True
        if gateway in ("one-api", "new-api") and billing:
            if rest.endswith("/subscription"):
                self._send_json(200, {"object": "billing_subscription", "has_payment_method": True,
                                      "soft_limit_usd": figures["hard_limit_usd"],
                                      "hard_limit_usd": figures["hard_limit_usd"],
                                      "system_hard_limit_usd": figures["hard_limit_usd"],
                                      "access_until": 0})
            else:
                self._send_json(200, {"object": "list", "total_usage": figures["total_usage"]})
            return True
        if gateway == "new-api" and rest == "/api/usage/token":
            self._send_json(200, {"code": True, "message": "ok", "data": {
                "object": "token_usage", "name": "default", "unlimited_quota": False,
                "total_granted": figures["total_granted"], "total_used": figures["total_used"],
                "total_available": figures["total_available"], "expires_at": 0}})
            return True
        if gateway.startswith("litellm") and rest == "/key/info":
            if gateway == "litellm-nodb":
                self._send_json(500, {"error": {"message": "No connected db.", "type": "None",
                                                "param": "None", "code": "500"}})
            else:
                self._send_json(200, {"key": "hashed", "info": {
                    "spend": figures["spend"], "max_budget": figures["max_budget"],
                    "models": [], "key_alias": None}})
            return True
        if gateway == "openrouter" and rest == "/api/v1/key":
            self._send_json(200, {"data": {"label": "sk-or-v1-…", "is_free_tier": False,
                                           **figures}})
            return True
        if gateway == "deepseek" and rest == "/user/balance":
            self._send_json(200, {"is_available": True, **figures})
            return True
        return False

    def _capabilities(self) -> bool:
        """LiteLLM's ``/model_group/info`` or llama.cpp's ``/props`` (at the root); answered?"""
        props = self.owner.props
        if self.path == "/props" and props is not None:
            self._send_json(200, props)
            return True
        groups = self.owner.model_info
        if self.path.partition("?")[0] == "/model_group/info" and props is None and groups:
            data = [{"model_group": name, "providers": ["openai"], "max_input_tokens": None,
                     "input_cost_per_token": None, "output_cost_per_token": None,
                     "supports_vision": False, **info}
                    for name, info in groups.items()]
            self._send_json(200, {"data": data})
            return True
        return False

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if len(raw) < length:
            # The client went away before its body arrived (a run stopped while sending):
            # no request reached this server, so none is recorded or answered.
            self.close_connection = True
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = raw.decode("utf-8", "replace")
        record = RecordedRequest("POST", self.path, _lower(self.headers), body,
                                 peer=self.client_address[1])
        self._arrival = self.owner._record(record)
        if self._batch_route("POST", raw):
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            return self._error(404, f"No route for POST {self.path}")
        if not isinstance(body, dict):
            return self._error(400, "The body is not a JSON object.")
        if not self._authorized():
            return self._error(401, "Incorrect API key provided.", code="invalid_api_key")
        self.owner._enter(1)
        try:
            self._chat(body, record)
        except (BrokenPipeError, ConnectionResetError):
            record.disconnected = True
        finally:
            self.owner._enter(-1)

    def _batch_route(self, method: str, raw: bytes) -> bool:
        """Answer a Files or Batches request (see _batch_server); False when it is none."""
        if self.owner.batch_unset and self.path.split("?")[0].rstrip("/").endswith(
                ("/files", "/batches")):
            self._error(500, "files_settings is not set, set it on your config.yaml file.",
                        kind="internal_server_error")
            return True
        service = self.owner.batches
        if service is None or not service.serves(method, self.path):
            return False
        if not self._authorized():
            self._error(401, "Incorrect API key provided.", code="invalid_api_key")
            return True
        status, payload = service.route(method, self.path, self.headers.get("Content-Type", ""),
                                        raw)
        if isinstance(payload, bytes):
            self._raw(RawReply([payload], status, "application/octet-stream",
                               {"Content-Length": str(len(payload))}))
        else:
            self._send_json(status, payload)
        return True

    def _chat(self, body: dict[str, Any], record: RecordedRequest) -> None:
        model = str(body.get("model", ""))
        if model in self.owner.raw:
            reply = self.owner.raw[model]
            return self._raw(reply if body.get("stream") else reply.unstreamed or reply)
        script = _Script.parse(model)
        known = {m.partition("/")[0] for m in self.owner.models}
        if script.base not in known:
            return self._error(404, f"The model `{model}` does not exist or you do not have "
                                    "access to it.", code="model_not_found")
        base = script.base
        if script.refuse:
            from .schema import refusal

            refused = refusal(body, script.refuse)
            if refused is not None:
                return self._error(refused[0], refused[1], "internal_server_error"
                                   if refused[0] == 500 else "invalid_request_error")
        if base == "unauthorized":
            return self._error(401, "Incorrect API key provided: sk-***.", "authentication_error",
                               "invalid_api_key")
        if base == "server-error":
            return self._error(500, "The server had an error while processing your request.",
                               "server_error")
        if base == "error-list":
            return self._send_json(400, [{"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                                    "message": "Request contains an invalid "
                                                               "argument."}}])
        if base == "error-200":
            return self._send_json(200, {"error": {"message": "upstream: quota exhausted",
                                                   "type": "new_api_error"}})
        if base == "json-as-sse":
            return self._send_json(200, {"error": {"message": "gateway: no channel available"}},
                                   content_type="text/event-stream")
        if base == "html-502":
            page = HTML_502.encode()
            return self._raw(RawReply([page], 502, "text/html",
                                      {"Content-Length": str(len(page))}))
        if base == "redirect":
            return self._redirect(script)
        if base == "context-overflow":
            if body.get("stream") and script.via == "litellm":
                # LiteLLM's proxy turns llama's empty stream into a silent "stop".
                silent = {"id": "c", "object": "chat.completion.chunk", "model": model,
                          "choices": [{"index": 0, "delta": {"role": "assistant"},
                                       "finish_reason": "stop"}]}
                return self._raw(RawReply([b"data: " + json.dumps(silent).encode() + b"\n\n",
                                           b"data: [DONE]\n\n"]))
            if body.get("stream"):  # headers, then an empty body: nothing says why
                return self._raw(RawReply([]))
            return self._error(400, CONTEXT_ERROR)
        if base in ("tools", "tools-parallel", "tools-endless"):
            return self._tools(body, script)
        if base == "whole-json" and body.get("stream"):
            return self._complete(body, script)
        if script.fail or script.busy or script.flaky:
            messages = body.get("messages") or [{}]
            prompt = _message_text(messages[-1]) if isinstance(messages[-1], dict) else ""
            if script.fail and script.fail in prompt:
                return self._error(400, f"The model `{model}` cannot answer this input "
                                        f"(it holds '{script.fail}').")
            tries = self.owner._try_number(model, prompt) if script.busy or script.flaky else 0
            if tries < script.busy:
                return self._error(429, "Rate limit reached for requests.", "rate_limit_error",
                                   headers={"Retry-After": f"{script.wait:g}"})
            if tries < script.busy + script.flaky:
                return self._error(503, "The server is overloaded.", "server_error")
        if base == "rate-limited" and self.owner._first_rate_limit(model):
            return self._error(429, "Rate limit reached. Please try again in 0s.",
                               "rate_limit_error", headers={"Retry-After": "0"})
        if body.get("stream"):
            self._stream(body, script, record)
        else:
            self._complete(body, script)

    def _raw(self, reply: RawReply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for write in reply.writes:
            if isinstance(write, bytes):
                self.wfile.write(write)
                self.wfile.flush()
            else:
                time.sleep(write)

    def _redirect(self, script: _Script) -> None:
        host = self.headers.get("Host") or f"127.0.0.1:{self.owner.port}"
        if script.to:
            target = script.to
        elif not self.path.startswith("/v1/"):
            target = f"http://{host}/v1{self.path}"
        else:
            target = f"https://{host}{self.path}"
        self._raw(RawReply([b""], 308, "text/plain", {"Location": target,
                                                     "Content-Length": "0"}))

    # -- reply content -------------------------------------------------------
    def _reply_text(self, body: dict[str, Any], script: _Script) -> str:
        base = script.base
        if base == "schema":
            from .schema import reply_for

            return reply_for(body, script.shape)[0]
        if base == "markdown":
            return MARKDOWN_REPLY
        if base == "separators":
            return SEPARATORS_REPLY
        if base == "mislabelled":
            return MISLABELLED_REPLY
        if base == "surrogate":
            return SURROGATE_REPLY
        if base == "xss":
            return XSS_REPLY
        if base == "long":
            words = [f"w{i}" for i in range(script.tokens)]
            return "".join(w + ("\n\n" if (i + 1) % 40 == 0 else " ") for i, w in enumerate(words))
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        text = _message_text(users[-1]) if users else ""
        if base in ("reasoning", "reasoning-vllm"):
            return f"The answer is: {text}"
        if base == "sentiment":
            return sentiment(text, naive=script.naive)
        return text or "(empty prompt)"

    def _usage(self, body: dict[str, Any], completion: int, reasoning: int = 0,
               script: "_Script | None" = None) -> dict[str, Any]:
        prompt = _count_tokens(body.get("messages", []))
        usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                                 "total_tokens": prompt + completion}
        if reasoning:
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
        if script is not None and script.cached:
            usage["prompt_tokens_details"] = {"cached_tokens": min(script.cached, prompt)}
        if script is not None and script.cost is not None:
            usage["cost"] = script.cost  # OpenRouter's and LiteLLM's own figure, in USD
        return usage

    def _money_headers(self, script: _Script) -> dict[str, str]:
        return ({} if script.cost_header is None
                else {"x-litellm-response-cost": repr(script.cost_header)})

    def _complete(self, body: dict[str, Any], script: _Script) -> None:
        text = self._reply_text(body, script)
        n = script.count(body)
        # A server answering without streaming takes as long to generate, then sends it all.
        _sleep(script.first + script.delay * len(_words(text)))
        finish = _finish_reason(body, script)
        choices = []
        for i in range(n):
            message: dict[str, Any] = {"role": "assistant", "content": text + _choice_suffix(i, n),
                                       "refusal": None}
            if script.base == "refusal":
                message = {"role": "assistant", "content": None,
                           "refusal": "I can't help with that."}
            if script.base == "reasoning":
                message["reasoning_content"] = "Let me think."
            choices.append({"index": i, "message": message, "finish_reason": finish,
                            "logprobs": None})
        payload: dict[str, Any] = {"id": "chatcmpl-local", "object": "chat.completion",
                                   "created": int(time.time()), "model": body.get("model"),
                                   "choices": choices}
        if script.base != "no-usage":
            payload["usage"] = self._usage(body, len(_words(text)) * n, script=script)
        self._send_json(200, payload, self._money_headers(script))

    def _stream(self, body: dict[str, Any], script: _Script, record: RecordedRequest) -> None:
        base = script.base
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=iso-8859-1"
                         if base == "mislabelled" else "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        for key, value in self._money_headers(script).items():
            self.send_header(key, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        created = int(time.time())
        frame_head = {"id": "chatcmpl-local", "object": "chat.completion.chunk",
                      "created": created, "model": body.get("model")}
        eol = {"cr": b"\r", "crlf": b"\r\n"}.get(script.eol, b"\n")
        # pydantic's model_dump_json and Node's JSON.stringify leave non-ASCII unescaped.
        raw_text = base in ("separators", "mislabelled")
        if base == "bom":
            self.wfile.write(b"\xef\xbb\xbf")
        text_sent = 0

        def send(payload: Any) -> None:
            data = b"data: " + json.dumps(payload, ensure_ascii=not raw_text).encode() + eol + eol
            if base == "mislabelled" and "é".encode() in data:  # split inside a character
                cut = data.index("é".encode()) + 1
                self.wfile.write(data[:cut])
                self.wfile.flush()
                time.sleep(0.01)
                data = data[cut:]
            self.wfile.write(data)
            self.wfile.flush()

        def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> None:
            nonlocal text_sent
            if base == "one-at-a-time" and self.owner._arrived_since(self._arrival):
                # llama-cpp-python stops this stream for the request that just came in;
                # LiteLLM's proxy in front of it adds a finish reason.
                if script.via == "litellm":
                    send({**frame_head, "choices": [{"index": 0, "delta": {},
                                                      "finish_reason": "stop"}]})
                elif script.via == "litellm-error":  # what it sends when no word came yet
                    send({"error": {"message": "litellm.APIConnectionError: "
                                               "OpenAIException - Connection error."}})
                self.wfile.write(b"data: [DONE]" + eol + eol)
                self.wfile.flush()
                raise _Cut
            if base == "content-parts" and isinstance(delta.get("content"), str) \
                    and delta["content"]:
                word = delta["content"]
                half = len(word) // 2
                delta = {"content": [{"type": "text", "text": word[:half]},
                                     {"type": "text", "text": word[half:]}]}
            send({**frame_head, "choices": [{"index": index, "delta": delta,
                                              "finish_reason": finish, "logprobs": None}]})
            if delta.get("content"):
                text_sent += 1
                if text_sent == 1 and base == "empty-data":
                    self.wfile.write(b"data:" + eol + eol + b"data: " + eol + eol
                                     + b"event: ping" + eol + b"data:" + eol + eol)
                    self.wfile.flush()
                if text_sent == 1 and script.pause:
                    time.sleep(script.pause)

        try:
            self._stream_chunks(body, script, send, chunk, eol)
        except _Cut:
            return

    def _stream_chunks(self, body: dict[str, Any], script: _Script, send: Any, chunk: Any,
                       eol: bytes) -> None:
        created = int(time.time())
        frame_head = {"id": "chatcmpl-local", "object": "chat.completion.chunk",
                      "created": created, "model": body.get("model")}

        if script.base == "hang":
            while True:  # until the client goes away: the write then fails
                time.sleep(0.05)
                self.wfile.write(b": waiting\n\n")
                self.wfile.flush()
        if script.first:
            time.sleep(script.first)
        n = script.count(body)
        text = self._reply_text(body, script)
        tokens = _words(text)
        reasoning_tokens = 0
        if script.base != "bom":  # after a BOM, the first event carries text
            for i in range(n):
                chunk(i, {"role": "assistant", "content": ""})
        if script.base in ("reasoning", "reasoning-vllm", "xss"):
            field_name = "reasoning" if script.base == "reasoning-vllm" else "reasoning_content"
            thoughts = _words(XSS_THOUGHTS if script.base == "xss" else
                              "Let me think about this step by step. The user asked a question.")
            reasoning_tokens = len(thoughts)
            for word in thoughts:
                chunk(0, {field_name: word})
                _sleep(script.delay)
        if script.base == "content-parts":
            chunk(0, {"reasoning": [{"type": "text", "text": "Thinking in parts."}],
                      "content": None, "refusal": False})
        if script.base == "refusal":
            for word in _words("I can't help with that."):
                chunk(0, {"refusal": word})
        else:
            for position, word in enumerate(tokens):
                if script.base in ("error-midstream", "drop") and position == script.after:
                    if script.base == "error-midstream":
                        send({"error": {"message": "upstream model crashed mid-stream",
                                        "type": "server_error", "code": 500}})
                    return  # close without finish_reason or [DONE]
                if script.base == "event-error" and position == script.after:
                    self.wfile.write(b"event: error" + eol + b'data: {"message": "the model '
                                     b'server ran out of memory"}' + eol + eol)
                    return
                for i in range(n):
                    chunk(i, {"content": word + (_choice_suffix(i, n) if position == len(tokens) - 1
                                                 else "")})
                if script.base == "keepalive":
                    self.wfile.write(b": keep-alive" + eol + eol)
                _sleep(script.delay)
        if script.base == "xss":  # and a refusal after the answer
            for word in _words(XSS_REFUSAL):
                chunk(0, {"refusal": word})
        finish = _finish_reason(body, script)
        for i in range(n):
            chunk(i, {}, finish)
        options = body.get("stream_options") or {}
        if options.get("include_usage") and script.base != "no-usage":
            completion = (len(tokens) * n) + reasoning_tokens
            send({**frame_head, "choices": [],
                  "usage": self._usage(body, completion, reasoning_tokens, script)})
        self.wfile.write(b"data: [DONE]" + eol + eol)
        self.wfile.flush()


    # -- tool-calling models ------------------------------------------------------
    def _tools(self, body: dict[str, Any], script: _Script) -> None:
        """Call tools, or answer with the results received (see the ``tools`` models)."""
        messages = body.get("messages") or []
        results: list[str] = []
        for message in reversed(messages):  # the results of the last round of calls
            if message.get("role") != "tool":
                break
            results.insert(0, _message_text(message))
        if results and script.base != "tools-endless":
            return self._say(body, f"The tools said: {'; '.join(results)}")
        offered = [t.get("function") or {} for t in body.get("tools") or []]
        if not offered and not script.call:
            return self._say(body, "No tools were offered.")
        picks = offered[:2] if script.base == "tools-parallel" else offered[:1]
        if script.base == "tools-parallel" and len(picks) == 1:
            picks = picks * 2
        if script.call:
            picks = [{"name": script.call, "parameters": {}}] * len(picks or [{}])
        round_ = 1 + sum(1 for m in messages if m.get("tool_calls"))
        bearer = str(self.headers.get("Authorization") or "").removeprefix("Bearer ")
        text = bearer if script.args == "key" else "Paris"
        calls = []
        for i, function in enumerate(picks):
            arguments = ('{"a": 2,' if script.args == "broken"
                         else json.dumps(_example_arguments(function.get("parameters") or {},
                                                            start=2 + i, text=text)))
            calls.append({"id": f"call_{round_}_{i}", "name": function.get("name", ""),
                          "arguments": arguments})
        if not body.get("stream"):
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": c["id"], "type": "function",
                 "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]}
            return self._send_json(200, {
                "id": "chatcmpl-local", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model"), "usage": self._usage(body, 10),
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls",
                             "logprobs": None}]})
        head = {"id": "chatcmpl-local", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model")}
        frames: list[dict[str, Any]] = [{"role": "assistant", "content": None}]
        frames += [{"tool_calls": [{"index": i, "id": c["id"], "type": "function",
                                    "function": {"name": c["name"], "arguments": ""}}]}
                   for i, c in enumerate(calls)]
        pieces = [[c["arguments"][j:j + 4] for j in range(0, len(c["arguments"]), 4)]
                  for c in calls]
        for j in range(max(map(len, pieces), default=0)):  # parallel calls interleave
            frames += [{"tool_calls": [{"index": i, "function": {"arguments": p[j]}}]}
                       for i, p in enumerate(pieces) if j < len(p)]
        self._start_stream()
        for delta in frames:
            self._frame({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None,
                                              "logprobs": None}]})
            _sleep(script.delay)
        self._frame({**head, "choices": [{"index": 0, "delta": {},
                                          "finish_reason": "tool_calls", "logprobs": None}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            self._frame({**head, "choices": [], "usage": self._usage(body, 10)})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _say(self, body: dict[str, Any], text: str) -> None:
        """Answer with ``text`` (streamed word by word when asked to stream)."""
        if not body.get("stream"):
            return self._send_json(200, {
                "id": "chatcmpl-local", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model"), "usage": self._usage(body, len(_words(text))),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop", "logprobs": None}]})
        head = {"id": "chatcmpl-local", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model")}
        self._start_stream()
        for word in _words(text):
            self._frame({**head, "choices": [{"index": 0, "delta": {"content": word},
                                              "finish_reason": None, "logprobs": None}]})
        self._frame({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop",
                                          "logprobs": None}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            self._frame({**head, "choices": [], "usage": self._usage(body, len(_words(text)))})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _frame(self, payload: Any) -> None:
        self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
        self.wfile.flush()


def _example_arguments(schema: dict[str, Any], start: int = 2,
                       text: str = "Paris") -> dict[str, Any]:
    """Arguments that fit a tool's parameters: integers from ``start`` up, a float, ``text``,
    true, an enum's first value (only the required ones, and every one if none is)."""
    properties = schema.get("properties") or {}
    names = schema.get("required") or list(properties)
    values: dict[str, Any] = {}
    number = start
    for name in names:
        prop = properties.get(name) or {}
        kind = prop.get("type")
        if "enum" in prop:
            values[name] = prop["enum"][0]
        elif kind == "integer":
            values[name], number = number, number + 1
        elif kind == "number":
            values[name] = number + 0.5
            number += 1
        elif kind == "boolean":
            values[name] = True
        elif kind == "array":
            values[name] = []
        elif kind == "object":
            values[name] = {}
        else:
            values[name] = text
    return values
_POSITIVE = {"good", "great", "love", "loved", "excellent", "fine", "happy", "works", "nice",
             "recommend", "perfect", "fast"}
_NEGATIVE = {"bad", "awful", "hate", "terrible", "broken", "slow", "poor", "worst", "refund",
             "disappointed", "useless"}


def sentiment(text: str, naive: int = 0) -> str:
    """The ``sentiment`` model's answer: a word count, negations honoured unless ``naive``."""
    score = 0
    flip = False
    for word in re.findall(r"[a-z']+", text.lower()):
        if word in ("not", "never", "isn't", "don't", "didn't", "wasn't", "no") and not naive:
            flip = True
            continue
        value = (word in _POSITIVE) - (word in _NEGATIVE)
        score += -value if flip else value
        if value:
            flip = False
    return "positive" if score > 0 else "negative" if score < 0 else "neutral"


class _Cut(Exception):
    """A one-at-a-time stream ended for a newer request."""


def _lower(headers: Any) -> dict[str, str]:
    """Header names in lower case, as HTTP treats them."""
    return {k.lower(): v for k, v in headers.items()}


def _finish_reason(body: dict[str, Any], script: _Script) -> str:
    if script.base == "schema":
        from .schema import reply_for

        return reply_for(body, script.shape)[1]
    return "length" if script.base == "length" else "stop"


def _choice_suffix(index: int, n: int) -> str:
    return f" (choice {index})" if n > 1 else ""


def _sleep(seconds: float) -> None:
    if seconds:
        time.sleep(seconds)


def main(argv: list[str] | None = None) -> None:
    """Run the endpoint in the foreground until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m chatmagic.testing",
                                     description="A local OpenAI-compatible endpoint.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    try:
        endpoint = FakeEndpoint(args.host, args.port).start()
    except OSError as exc:
        parser.exit(1, f"cannot listen on {args.host}:{args.port} ({exc.strerror}): is another "
                       "server there? Choose another with --port.\n")
    print(f"chatmagic local endpoint at {endpoint.base_url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        endpoint.stop()

