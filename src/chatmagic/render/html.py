"""Model text as HTML that is safe by construction, for every surface that shows it.

One path for every piece of model or server text: Markdown is parsed by
markdown-it-py with raw HTML off, code is highlighted here (Pygments), math is
typeset here (MathML), and the resulting HTML goes through nh3, an allowlist
sanitizer, before it is shown. Nothing depends on how a frontend would parse
Markdown, because no frontend parses it: outputs are ``text/html``.

Why each frontend cannot be made to run or fetch anything:

- *Script and HTML*: nh3 keeps only the tags and attributes listed here (no
  event handlers, no ``style`` but colours and alignment, no ``src`` but inline
  raster ``data:`` images), whatever markdown-it produced.
- *Fetches*: a remote image becomes a link showing its alt text unless the
  user opted in (``remote_images``); links go nowhere until clicked and only
  to ``http(s)``/``mailto`` or an in-page ``#`` fragment.
- *MathJax* (JupyterLab and Notebook typeset ``text/html`` outputs, nbconvert
  pages too): the root carries MathJax's ignore classes, and every ``$`` and
  ``\\`` of model text stands alone in its own element, which MathJax never
  pairs across. The math the model meant is already MathML (see `mathml`).
- *Diagrams*: a ``mermaid`` block (or any other language) is only code here.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from itertools import groupby
from typing import Any, Sequence

from ..core.scrub import known, scrub
from ..core.visible import visible
from .mathml import MATHML_ATTRIBUTES, MATHML_TAGS, latex_mathml, mathml_attribute

__all__ = ["markdown_html", "code_html", "text_html", "escape_html", "clean_text", "shown_text",
           "sanitize", "STYLE", "ROOT_CLASS", "document", "tool_call_html", "tool_call_text",
           "TOOL_RESULT_SHOWN", "HIGHLIGHT_ARGUMENTS", "table_html", "view"]

ROOT_CLASS = "chatmagic tex2jax_ignore mathjax_ignore"

# Code tokens as one-letter elements that HTML does not define (so they have no default
# look of their own): three to seven bytes of markup per token keeps code near its size.
_TOKEN_TAGS = {"k": "keyword", "t": "string", "c": "comment", "n": "number", "f": "def",
               "e": "builtin", "d": "meta"}
_FALLBACK = {"keyword": "#8250df", "string": "#0a3069", "comment": "#6e7781",
             "number": "#0550ae", "def": "#8250df", "builtin": "#953800", "meta": "#116329"}

#: The stylesheet, once per reply: JupyterLab's own editor colours (so code looks as in a
#: code cell, in light and dark themes), with GitHub's colours where those are undefined.
STYLE = "<style>" + "".join(
    f".chatmagic {tag}{{color:var(--jp-mirror-editor-{name}-color,{_FALLBACK[name]})"
    f"{';font-style:italic' if tag == 'c' else ''}}}"
    for tag, name in _TOKEN_TAGS.items()) + (
    # A code block on the colour of a code cell's editor (JupyterLab paints pre and code in
    # the page's colour, with stronger rules than a class selector, hence !important).
    ".chatmagic pre{margin:0 0 .6em!important;padding:.4em .6em!important;overflow-x:auto;"
    "background:var(--jp-cell-editor-background,#f6f8fa)!important}"
    ".chatmagic pre code{background:none!important}"
    # Pieces of one block cut in two meet with no gap (JupyterLab's own rules are stronger
    # than a class selector, hence !important).
    ".chatmagic.cm-cont>:first-child{margin-top:0!important;padding-top:0!important}"
    ".chatmagic.cm-open>:last-child{margin-bottom:0!important;padding-bottom:0!important}"
    # ... and so do the outputs holding them (JupyterLab gives an output's last element a
    # bottom margin, here the root's).
    ".chatmagic.cm-open{margin-bottom:0!important}"
    ".chatmagic .cm-refusal{border-left:3px solid #cf222e;padding-left:8px}"
    ".chatmagic .cm-note{color:var(--jp-ui-font-color2,#57606a);font-size:85%}"
    ".chatmagic .cm-tool{border-left:3px solid var(--jp-brand-color1,#0969da);"
    "padding:2px 8px;margin:4px 0}"
    ".chatmagic table{border-collapse:collapse}"
    ".chatmagic th,.chatmagic td{border:1px solid var(--jp-border-color2,#d0d7de);"
    "padding:2px 8px}"
    "</style>")

_HTML_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "em", "strong", "del", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td",
    "span", "div", "details", "summary", "sub", "sup",
}
_TAGS = _HTML_TAGS | set(_TOKEN_TAGS) | MATHML_TAGS
_ATTRIBUTES = {
    "a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"},
    "div": {"class"}, "span": {"class"},
    **{tag: set(MATHML_ATTRIBUTES) for tag in MATHML_TAGS},
}
_CLASSES = {"cm-refusal", "cm-note", "cm-math", "cm-tool"}
# After sanitizing, every "<" in the HTML starts a tag nh3 wrote (model text is escaped), so
# these end tags, which HTML lets a parser imply, and the line ends between block tags can
# go: a list or table then costs about what its Markdown did.
_IMPLIED = re.compile(r"</(?:li|td|th|tr)>|\n(?=</?(?:li|tr|td|th|thead|tbody|ul|ol|table)\b)")
_RASTER = re.compile(r"data:image/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*\Z", re.I)
_WEB = re.compile(r"(?:https?:|mailto:)", re.I)
_MATH_CHARS = re.compile(r"[$\\]")


def clean_text(text: str) -> str:
    """Prose fit to show (a reply, its reasoning, a view's text): every known key masked (a
    key the model spread over many deltas never crossed the HTTP edge in one piece), and
    what could hide or reorder text shown as its escape (`core.visible`, prose)."""
    return visible(scrub(text), prose=True)


def shown_text(text: str, lines: bool = True) -> str:
    """A name, an id, an argument, a header or a footer fit to show: keys masked, and every
    control and invisible format character shown as its escape (`core.visible`)."""
    return visible(scrub(text), lines=lines)


def escape_html(text: str) -> str:
    return html.escape(text, quote=True)


def _inert(escaped: str) -> str:
    """Escaped text with each ``$`` and ``\\`` alone in an element: MathJax finds no
    delimiter in it, in any configuration."""
    return _MATH_CHARS.sub(lambda m: f"<span>{m.group()}</span>", escaped)


def text_html(text: str) -> str:
    """Plain text (a header, a footer, a server's error) as inert HTML."""
    return _inert(escape_html(shown_text(text)))


# -- code ----------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _token_classes() -> list[tuple[Any, str]]:
    from pygments.token import (  # type: ignore[import-untyped]
        Comment, Keyword, Name, Number, Operator, String)

    return [(Comment, "c"), (Keyword, "k"), (Operator.Word, "k"), (String, "t"),
            (Number, "n"), (Name.Function, "f"), (Name.Class, "f"), (Name.Builtin, "e"),
            (Name.Decorator, "d")]


# Fences that some frontend would draw rather than show (GitHub maps geojson, topojson and
# stl, and renders math and mermaid): never given to a lexer by that name.
_DRAWN = {"mermaid", "geojson", "topojson", "stl", "math", "latex-diagram"}


@lru_cache(maxsize=64)
def _lexer(lang: str) -> Any:
    from pygments.lexers import get_lexer_by_name  # type: ignore[import-untyped]
    from pygments.util import ClassNotFound  # type: ignore[import-untyped]

    if not lang or lang.lower() in _DRAWN:
        return None
    try:
        return get_lexer_by_name(lang.lower(), stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


def _highlight(code: str, lang: str) -> str:
    lexer = _lexer(lang)
    if lexer is None:
        return escape_html(code)
    classes = _token_classes()

    def tag_of(token: tuple[Any, str]) -> str:
        return next((tag for base, tag in classes if token[0] in base), "")

    out = []
    for tag, tokens in groupby(lexer.get_tokens(code), key=tag_of):  # one element per run
        text = escape_html("".join(value for _, value in tokens))
        out.append(f"<{tag}>{text}</{tag}>" if tag else text)
    return "".join(out)


def code_html(code: str, lang: str = "") -> str:
    """A code block, highlighted."""
    return f"<pre><code>{_highlight(clean_text(code), lang)}</code></pre>"


# -- Markdown ------------------------------------------------------------------------------

def _render_text(_self: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any) -> str:
    return _inert(escape_html(tokens[idx].content))


def _render_code_inline(_self: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any) -> str:
    return f"<code>{escape_html(tokens[idx].content)}</code>"


def _render_fence(_self: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    lang = token.info.strip().split(" ")[0] if token.type == "fence" else ""
    return code_html(token.content, lang)


def _render_math(display: bool) -> Any:
    def render(_self: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any) -> str:
        source = tokens[idx].content
        mathml = latex_mathml(source.strip(), display)
        if mathml is None:
            shown = _inert(escape_html(source))
            return f"<pre><code>{shown}</code></pre>" if display else f"<code>{shown}</code>"
        return f'<div class="cm-math">{mathml}</div>' if display else mathml
    return render


def _render_cell(_self: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any) -> str:
    # A column's alignment as the short align attribute (markdown-it writes a style per cell).
    token = tokens[idx]
    align = re.search(r"text-align:(left|right|center)", str(token.attrGet("style") or ""))
    tag = token.tag
    return f'<{tag} align="{align.group(1)}">' if align else f"<{tag}>"


def _render_image(_self: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = escape_html("".join(child.content for child in token.children or ()))
    title = token.attrGet("title")
    title_attr = f' title="{escape_html(str(title))}"' if title else ""
    if _RASTER.match(src) or (env.get("remote_images") and re.match(r"https?:", src, re.I)):
        return f'<img src="{escape_html(src)}" alt="{alt}"{title_attr}>'
    label = _inert(alt or "image")
    if _WEB.match(src):
        # Shown as a link: the browser fetches nothing until the reader clicks.
        return f'<a href="{escape_html(src)}"{title_attr}>🖼 {label}</a>'
    return f"🖼 {label}"


@lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin
    from mdit_py_plugins.texmath import texmath_plugin

    # html=False: raw HTML in model text is text. maxNesting (20) bounds deep lists/quotes.
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    # $$...$$ and \( \) \[ \] are math; a single $ only when it hugs its content on both
    # sides and no digit follows the closing one, so "$5 and $6" stays money.
    md.use(dollarmath_plugin, allow_space=False, allow_digits=False, double_inline=True,
           allow_labels=False)
    md.use(texmath_plugin, delimiters="brackets")
    rules = md.add_render_rule
    rules("text", _render_text)
    rules("code_inline", _render_code_inline)
    rules("fence", _render_fence)
    rules("code_block", _render_fence)
    rules("image", _render_image)
    rules("th_open", _render_cell)
    rules("td_open", _render_cell)
    for name in ("math_inline", "math_inline_double"):
        rules(name, _render_math(display=name.endswith("double")))
    for name in ("math_block", "math_block_eqno", "math_block_label"):
        rules(name, _render_math(display=True))
    return md


def markdown_html(text: str, *, remote_images: bool = False, drop_head: bool = False) -> str:
    """Model Markdown as sanitized HTML (without the root element: see `document`).

    ``drop_head`` leaves out a table's header row: the continuation of a long table
    streamed in pieces carries its header only so that it parses as a table.
    """
    rendered = str(_parser().render(clean_text(text), {"remote_images": remote_images}))
    if drop_head:
        rendered = re.sub(r"<thead>.*?</thead>\s*", "", rendered, count=1, flags=re.S)
    return sanitize(rendered, remote_images=remote_images)


# -- the sanitizer -------------------------------------------------------------------------

def _attribute(remote_images: bool) -> Any:
    def keep(tag: str, name: str, value: str) -> str | None:
        if tag in MATHML_TAGS:
            return mathml_attribute(name, value)
        if name == "src":
            ok = _RASTER.match(value) or (remote_images and re.match(r"https?:", value, re.I))
            return value if ok else None
        if name == "href":
            return value if _WEB.match(value) or value.startswith("#") else None
        if name == "class":
            kept = [c for c in value.split() if c in _CLASSES]
            return " ".join(kept) or None
        if name == "start":
            return value if value.isdigit() and len(value) < 10 else None
        return value
    return keep


def sanitize(fragment: str, *, remote_images: bool = False) -> str:
    """An HTML fragment with everything but the allowlist removed."""
    import nh3

    return _IMPLIED.sub("", nh3.clean(
        fragment, tags=_TAGS, attributes=_ATTRIBUTES, clean_content_tags={"script", "style"},
        tag_attribute_values={cell: {"align": {"left", "right", "center"}} for cell in ("th", "td")},
        url_schemes={"http", "https", "mailto", "data"}, strip_comments=True,
        link_rel="noopener noreferrer nofollow", attribute_filter=_attribute(remote_images)))


def document(body: str, *, style: bool = False, classes: str = "") -> str:
    """The root element every output's HTML stands in (MathJax's ignore classes on it)."""
    names = f"{ROOT_CLASS} {classes}".strip()
    return f'{STYLE if style else ""}<div class="{names}">{body}</div>'


# -- tool calls ----------------------------------------------------------------------------

#: Characters of a tool's result shown in a call's block (the model gets all of it).
TOOL_RESULT_SHOWN = 600


#: Characters of arguments highlighted as JSON; longer ones are shown plain (highlighting
#: 2 MB of numbers takes seconds and makes its HTML twice the size).
HIGHLIGHT_ARGUMENTS = 50_000


def _pretty_arguments(arguments: str) -> str:
    """A call's arguments as the model wrote them: pretty JSON when they parse."""
    import json

    try:
        return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return arguments


@lru_cache(maxsize=1)
def _arguments_html(arguments: str, keys: int) -> str:
    """The arguments' block, made once however often its call's state is drawn again in a
    row (and again once a key is added: ``keys`` is how many are known). One entry: the
    cache keeps its arguments and their HTML for the kernel's life, so one call's, not
    several (drawing another call's block costs one highlight of at most
    `HIGHLIGHT_ARGUMENTS` characters)."""
    pretty = shown_text(_pretty_arguments(arguments))
    return code_html(pretty, "json" if len(pretty) <= HIGHLIGHT_ARGUMENTS else "")


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters, not shown)"


def tool_call_html(name: str, arguments: str, result: str | None = None,
                   state: str = "") -> str:
    """One tool call as a compact block: its name, its arguments (pretty JSON), then its
    result (cut when long) or its state ("waiting for approval", "skipped"). Everything in
    it is the model's or the tool's text, so all of it is escaped, and every control or
    invisible character in the name and arguments shows as its escape (`shown_text`)."""
    # Words, not an icon: a tool emoji is a blank box where no font has it (Debian's chromium).
    head = (f'<span class="cm-note">tool call</span> <b>{text_html(name)}</b>'
            + (f' <span class="cm-note">· {text_html(state)}</span>' if state else ""))
    body = _arguments_html(arguments, len(known())) if arguments.strip() else ""
    if result is not None:
        body += (f'<div class="cm-note">→ result</div>'
                 f"{code_html(_cut(result, TOOL_RESULT_SHOWN))}")
    return f'<div class="cm-tool">{head}{body}</div>'


def tool_call_text(name: str, arguments: str, result: str | None = None,
                   state: str = "") -> str:
    """The same block as plain text (a terminal, a text/plain reader)."""
    lines = [f"[tool] {shown_text(name)}({' '.join(shown_text(arguments).split())})"
             + (f" · {state}" if state else "")]
    if result is not None:
        lines.append(f"  → {_cut(result, TOOL_RESULT_SHOWN)}")
    return clean_text("\n".join(lines))


# -- views: %models, %chat_usage, %chat_config, %chat_history -------------------------------

def table_html(header: list[str], rows: list[list[Any]]) -> str:
    """A table of plain values (a server's model ids, a profile's URL) as inert HTML, each
    cell on one line (escaped first: a separator or a control is no space)."""
    head = "".join(f"<th>{text_html(str(h))}" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{text_html(' '.join(shown_text(str(v)).split()))}"
                                    for v in row)
                   for row in rows)
    return f"<table><thead><tr>{head}</thead><tbody>{body}</tbody></table>"


def view(body_html: str, plain: str) -> dict[str, str]:
    """The display bundle of a view: its HTML in the root element (with the stylesheet) and
    its plain text (what a terminal shows)."""
    return {"text/html": document(body_html, style=True), "text/plain": clean_text(plain)}
