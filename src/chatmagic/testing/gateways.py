"""The endpoint's non-chat GET routes: gateways' account routes under their path prefixes
(see `GATEWAYS`), LiteLLM's ``/model_group/info`` and llama.cpp's ``/props``."""

from __future__ import annotations

from .base import HandlerBase
from .catalog import GATEWAY_PAGE, GATEWAYS
from .records import RawReply

__all__ = ["GatewayRoutes"]


class GatewayRoutes(HandlerBase):
    """Account and capability routes, answered as the gateway or server named would."""

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

