"""What the local endpoint knows by heart: its model ids, the gateways' account figures,
the capabilities it reports, and the canned replies of its scripted models."""

from __future__ import annotations

from typing import Any

__all__ = ["MODELS", "GATEWAYS", "GATEWAY_PAGE", "MODEL_INFO", "SEPARATORS_REPLY",
           "MISLABELLED_REPLY", "SURROGATE_REPLY", "HTML_502", "CONTEXT_ERROR", "MARKDOWN_REPLY",
           "XSS_REPLY", "XSS_THOUGHTS", "XSS_REFUSAL"]

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
