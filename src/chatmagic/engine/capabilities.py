"""What an endpoint says about its models, asked once per endpoint, and the warnings it earns.

Two servers say something: LiteLLM's proxy at ``GET /model_group/info`` (per model name:
``supports_vision``, ``max_input_tokens``, prices per token) and llama.cpp's ``llama-server``
at ``GET /props`` (the one model it serves: ``n_ctx``, ``modalities.vision``). Both live at
the server's root, beside ``/v1``. Others answer 404 (llama-cpp-python, OpenAI, vLLM): then
nothing is known and nothing is said. The answers are kept per endpoint for the session, so
each endpoint is asked at most once, and only when a request could need it (an image, or a
prompt long enough to matter): a cell of plain short prompts never costs an extra request.

`Capabilities.warnings` gives the sentences to show in the cell before the request goes:
an image for a model the endpoint calls text-only, a prompt estimated past a known context
size. The request is still sent (see `warnings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

from ..core.profiles import Profile
from ..core.tokens import prompt_tokens

if TYPE_CHECKING:
    from .request import Job

__all__ = ["ModelInfo", "Capabilities", "EndpointWarning", "Fetch", "client_fetch",
           "read_model_group_info", "read_props", "server_root", "has_image",
           "PROBE_FROM_TOKENS"]

#: Below this many (estimated) prompt tokens no context is too small to care: such a prompt
#: alone asks nothing of the endpoint. (512 was llama.cpp's old default n_ctx.)
PROBE_FROM_TOKENS = 512

_PROBE_TIMEOUT = 5.0  # seconds: a route that does not answer is no reason to hold the cell


class EndpointWarning(UserWarning):
    """What the Python API warns with (`warnings.warn`) where a cell prints a warning line."""


@dataclass(frozen=True)
class ModelInfo:
    """What an endpoint said about one model; None where it said nothing.

    Prices are per million tokens, in the endpoint's currency (LiteLLM's is USD).
    """

    source: str  # which route said it, in words ("LiteLLM's /model_group/info")
    vision: bool | None = None
    context: int | None = None  # tokens of prompt it takes (max_input_tokens, n_ctx)
    input_price: float | None = None
    output_price: float | None = None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return int(value)


def _price(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return float(value) * 1_000_000


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def read_model_group_info(payload: Any) -> dict[str, ModelInfo] | None:
    """LiteLLM's ``/model_group/info`` answer as model name → info; None if it is not one."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        return None
    models: dict[str, ModelInfo] = {}
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("model_group"), str):
            continue
        models[item["model_group"]] = ModelInfo(
            _LITELLM, vision=_bool(item.get("supports_vision")),
            context=_int(item.get("max_input_tokens")),
            input_price=_price(item.get("input_cost_per_token")),
            output_price=_price(item.get("output_cost_per_token")))
    return models


def read_props(payload: Any) -> ModelInfo | None:
    """llama.cpp's ``/props`` answer (its one model), or None if it is not one."""
    if not isinstance(payload, dict):
        return None
    settings = payload.get("default_generation_settings")
    modalities = payload.get("modalities")
    if not isinstance(settings, dict) and not isinstance(modalities, dict):
        return None  # some other server's /props: not llama.cpp's
    settings = settings if isinstance(settings, dict) else {}
    modalities = modalities if isinstance(modalities, dict) else {}
    return ModelInfo(_LLAMA_SERVER, vision=_bool(modalities.get("vision")),
                     context=_int(settings.get("n_ctx")) or _int(payload.get("n_ctx")))


def server_root(base_url: str) -> str:
    """The server's root: the base URL without its trailing ``/v1`` (both routes live there)."""
    root = base_url.rstrip("/")
    return root[:-3] if root.endswith("/v1") else root


def has_image(messages: Iterable[Any]) -> bool:
    """Whether any message holds an image part."""
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
                isinstance(p, dict) and p.get("type") == "image_url" for p in content):
            return True
    return False


#: GET url → the decoded JSON body; raises on any failure (404, refused, not JSON).
Fetch = Callable[[str], Any]


class _Known:
    """One endpoint's answers: per model name (LiteLLM), or one for every model (llama.cpp)."""

    def __init__(self, per_model: dict[str, ModelInfo] | None = None,
                 every: ModelInfo | None = None) -> None:
        self.per_model = per_model or {}
        self.every = every

    def get(self, model: str) -> ModelInfo | None:
        return self.per_model.get(model) or self.every


class Capabilities:
    """What each endpoint said, asked at most once per endpoint per session."""

    def __init__(self) -> None:
        self._known: dict[str, _Known] = {}

    def info(self, base_url: str, model: str, fetch: Fetch) -> ModelInfo | None:
        """What the endpoint at ``base_url`` says about ``model`` (asking it the first time)."""
        if base_url not in self._known:
            self._known[base_url] = _ask(server_root(base_url), fetch)
        return self._known[base_url].get(model)

    def warnings(self, jobs: Iterable[Job], fetcher: Callable[[Profile], Fetch]) -> list[str]:
        """What to tell the user before these requests go, one sentence each.

        A warning, not a refusal: LiteLLM answers ``supports_vision: false`` for every
        model it was told nothing about, and a prompt estimate is about four characters a
        token; the endpoint's own answer settles it. ``fetcher(profile)`` gives the GET to
        ask that profile's endpoint with (its own client, so its key goes nowhere else).
        """
        said: list[str] = []
        for job in jobs:
            messages = list(job.request.messages)
            image = has_image(messages)
            estimate = prompt_tokens(messages)  # the estimate the footer uses too
            if not image and estimate < PROBE_FROM_TOKENS:
                continue
            profile = job.profile
            model = job.request.model
            info = self.info(profile.base_url, model, fetcher(profile))
            if info is None:
                continue
            where = f"{info.source} at {profile.name} ({server_root(profile.base_url)})"
            vision_field, context_field = _FIELDS.get(info.source, ("vision", "context"))
            if image and info.vision is False:
                said.append(f"{model} may not see the image: {where} says it takes no images "
                            f"({vision_field} false). Sent anyway; the reply may ignore the "
                            "image or make it up.")
            if info.context is not None and estimate > info.context:
                said.append(f"The prompt for {model} is about {estimate:,} tokens (estimated), "
                            f"more than its context of {info.context:,} ({context_field} in "
                            f"{where}). Sent anyway; the endpoint may refuse it or cut it.")
        return list(dict.fromkeys(said))  # --compare of one model twice: said once


_LITELLM, _LLAMA_SERVER = "LiteLLM's /model_group/info", "llama.cpp's /props"
#: The fields a warning quotes, by the route that said them.
_FIELDS = {_LITELLM: ("supports_vision", "max_input_tokens"),
           _LLAMA_SERVER: ("modalities.vision", "n_ctx")}


def _ask(root: str, fetch: Fetch) -> _Known:
    """Ask LiteLLM's route, then llama.cpp's; whatever fails is nothing known."""
    try:
        models = read_model_group_info(fetch(f"{root}/model_group/info"))
    except Exception:  # noqa: BLE001 - a route the server lacks (404), a refusal, a timeout
        models = None
    if models is not None:
        return _Known(per_model=models)
    try:
        props = read_props(fetch(f"{root}/props"))
    except Exception:  # noqa: BLE001 - as above
        props = None
    return _Known(every=props)


def client_fetch(client: Any) -> Fetch:
    """A GET through an openai client (its key, headers, proxy and scrubbing), no retries."""
    quick = client.with_options(timeout=_PROBE_TIMEOUT, max_retries=0)

    def fetch(url: str) -> Any:
        return quick.get(url, cast_to=object)

    return fetch

