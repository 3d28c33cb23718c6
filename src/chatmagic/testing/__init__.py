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
requests of each prompt answer HTTP 429 with ``Retry-After: wait`` / HTTP 503), ``faults``
(this share of requests fails, at random but the same sequence every run, in turn: HTTP 429
with ``Retry-After: wait``, HTTP 500, a stream cut before its last word with no finish reason
and no ``[DONE]``; ``echo/faults=0.05``), ``wait``,
``to`` (for ``redirect``), ``via`` (for ``one-at-a-time`` and ``context-overflow``:
``via=litellm`` answers as LiteLLM's proxy in front of it does; ``via=litellm-error``: as
it does when the cut came before a word; for any model asked ``n`` > 1, ``via=litellm``
streams no finish chunk for the choices after the first, as LiteLLM's proxy does),
``refuse`` (any model: ``refuse=json_schema``
answers a json_schema response_format with llama-cpp-python's HTTP 500;
``refuse=json_object`` refuses json_object too, HTTP 400), ``reject`` (any model:
``reject=image`` answers a message with an image with llama-server's HTTP 500 "image input
is not supported"; ``reject=FIELD``, a body holding FIELD with llama-cpp-python's HTTP 500
validation error), ``shape`` (for ``schema``),
``choices`` (send at most
this many choices whatever ``n`` asks, as servers that ignore ``n`` do). An id with an
unknown base gets a 404 "model does not exist", as OpenAI does.

Capabilities: the endpoint answers ``GET /model_group/info`` (at its root, as LiteLLM's
proxy does) from ``model_info`` (default `MODEL_INFO`: ``text-only``, ``small-context``,
and ``echo``, which takes images; ``model_info={}``: no such route); ``FakeEndpoint(props={...})`` makes it a llama.cpp ``llama-server`` instead,
which answers ``GET /props`` with that and has no ``/model_group/info``.

Connections: a stream that ends as it should is sent chunked on a connection kept open for
the next request, as real servers do (one that breaks off closes it); ``connections`` counts
the connections accepted.

Raw bytes: ``FakeEndpoint(raw={"name": RawReply([b"data: ...\r", 0.5, ...])})``
answers the model id ``name`` with exactly those writes (a float is a pause),
then closes the connection (``unstreamed=RawReply(...)``: another answer for a
request without ``stream``); for byte streams no script above makes. ``endpoint.listed =
[{...}]`` makes ``GET /models`` list exactly those entries (odd ids, dates).

The Batch API: OpenAI's ``/files`` and ``/batches`` (see `batch_server`), each JSONL line
answered by the scripts above, never streamed; ``batch_seconds`` keeps a batch in progress
that long, ``batch_failures`` fails those lines (from 0), ``batch_api=False`` answers 404,
``batch_api="unset"`` answers HTTP 500 as LiteLLM's proxy does without ``files_settings``.

Without a socket: ``InProcessTransport(endpoint)`` (in `chatmagic.testing.in_process`) is an
``httpx2`` transport that answers with the same scripts in this process, the bytes of a stream
in the same pieces, its pauses skipped unless ``pace=True``; pass it to
``chatmagic.transport.client.ClientPool(transport=...)``.

From the command line: ``python -m chatmagic.testing --port 8765`` (or ``chatmagic serve``).

The modules: `catalog` (model ids, gateways' figures, canned replies), `script` (what a model
id asks for), `records` (what is recorded, raw replies), `state` (what an endpoint keeps),
`base`, `gateways`, `chat_replies`, `tool_replies` and `handler` (the HTTP answers),
`endpoint` (`FakeEndpoint`), `in_process` (no socket), `batch_server` (the Batch API),
`schema` (the ``schema`` model), `serve` (the command line).
"""

from __future__ import annotations

from .catalog import GATEWAYS, MODEL_INFO, MODELS
from .endpoint import FakeEndpoint
from .records import RawReply, RecordedRequest
from .serve import main

# Importable from here as before, though not in __all__: the canned texts tests compare with.
from .catalog import CONTEXT_ERROR as CONTEXT_ERROR, GATEWAY_PAGE as GATEWAY_PAGE
from .catalog import HTML_502 as HTML_502, MARKDOWN_REPLY as MARKDOWN_REPLY
from .catalog import MISLABELLED_REPLY as MISLABELLED_REPLY, SEPARATORS_REPLY as SEPARATORS_REPLY
from .catalog import SURROGATE_REPLY as SURROGATE_REPLY, XSS_REFUSAL as XSS_REFUSAL
from .catalog import XSS_REPLY as XSS_REPLY, XSS_THOUGHTS as XSS_THOUGHTS
from .script import sentiment as sentiment

__all__ = ["FakeEndpoint", "RecordedRequest", "RawReply", "MODELS", "GATEWAYS", "MODEL_INFO",
           "main"]

