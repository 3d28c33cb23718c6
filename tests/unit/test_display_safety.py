"""Display safety: what an endpoint or a model sends is shown, never obeyed or hidden.

One function (`chatmagic.core.visible`) writes every control, bidirectional control and
invisible format character as its escape; each surface that shows such text is checked here
with a hostile value: the consent prompt and the call blocks, headers and footers, the
endpoint's error words, ``%models``, tab completion, the terminal, math in a reply.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import pytest

from chatmagic.core.events import Finish, StreamError, TextDelta, ToolCallDelta
from chatmagic.core.failures import server_text
from chatmagic.core.visible import is_visible, visible
from chatmagic.engine.reply import Reply
from chatmagic.render.html import markdown_html, table_html, tool_call_html, tool_call_text
from chatmagic.render.mathml import latex_mathml
from chatmagic.shell.sinks.calls import CallBlocks
from chatmagic.shell.sinks.cell import CellRenderer
from chatmagic.shell.sinks.figures import footer_text, header_text
from chatmagic.shell.sinks.text import TextRenderer
from chatmagic.testing import FakeEndpoint, RawReply
from chatmagic.testing.display import DisplayRecorder
from inert import live_html
from kernel import visible as seen

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "cp a b" shown, "cp b a" run
#: Unicode's bidirectional controls (its Bidi_Control property), from its own data: the
#: embeddings, overrides and isolates by their bidirectional class, and the three marks.
BIDI_CONTROLS = [*(chr(c) for c in range(0x110000) if unicodedata.bidirectional(chr(c))
                   in ("LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI", "FSI", "PDI")),
                 *map(unicodedata.lookup, ("ARABIC LETTER MARK", "LEFT-TO-RIGHT MARK",
                                           "RIGHT-TO-LEFT MARK"))]
HIDING = ["\x00", "\x1b", "\r", "\x7f", "\x9b", "\u2028", "\u2029", "\ud800", "\U000e0041",
          *BIDI_CONTROLS]


def _hidden(text: str) -> list[str]:
    """The characters in ``text`` that a reader would not see as themselves."""
    return [c for c in text if c in HIDING or unicodedata.category(c) in ("Cf", "Cs")
            or (unicodedata.category(c) == "Cc" and c not in "\n\t")]


# -- the function -----------------------------------------------------------------------

def test_every_control_and_bidi_character_shows_as_its_escape() -> None:
    assert visible(f"cp a{RLO}b c\x1b[2J\x9b\u2066x\u2069\u200e\u061c") == \
        "cp a\\u202eb c\\x1b[2J\\x9b\\u2066x\\u2069\\u200e\\u061c"
    assert visible("a\rb\x08\x00\ud800\U000e0041\u2028") == \
        "a\\rb\\x08\\x00\\ud800\\U000e0041\\u2028"
    for char in HIDING:
        assert _hidden(visible(f"x{char}y")) == []
        assert _hidden(visible(char, prose=True)) == [] or char in "\u2028\u2029"


def test_every_format_character_is_escaped_in_names_and_kept_only_where_prose_needs_it() -> None:
    formats = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"]
    assert all(visible(c) == ascii(c)[1:-1] for c in formats)
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # an emoji sequence joined by ZWJ
    assert visible(family, prose=True) == family
    assert visible(family) == "\U0001f468\\u200d\U0001f469\\u200d\U0001f467"
    assert visible("line\r\nnext\rover", prose=True) == "line\r\nnext\\rover"
    assert visible("a\u2028b", prose=True) == "a\u2028b"  # a reply's separator is text


def test_ordinary_text_is_left_as_it_is_and_escaping_twice_changes_nothing() -> None:
    text = "Grüße, שלום, مرحبا, 你好 — $x$ \\n {a}\n\tindented"
    assert visible(text) == text and visible(text, prose=True) == text
    hostile = "".join(HIDING) + "\n\t"
    once = visible(hostile, lines=False)
    assert visible(once, lines=False) == once and visible(once, prose=True) == once


def test_mending_lone_surrogates_and_escaping_for_display_are_two_functions() -> None:
    """`core.failures.no_lone_surrogates` only mends what the kernel cannot send (kept in
    the reply); `render.html.clean_text` is what is shown, keys masked and controls escaped."""
    from chatmagic.core.failures import no_lone_surrogates
    from chatmagic.render.html import clean_text

    text = f"a\ud800b\U0001f600 {RLO}\x1b[2J"
    assert no_lone_surrogates(text) == f"a\ufffdb\U0001f600 {RLO}\x1b[2J"
    assert clean_text(text) == "a\\ud800b\U0001f600 \\u202e\\x1b[2J"


def test_one_line_values_escape_their_line_ends() -> None:
    assert visible("gpt\n!touch x\tz", lines=False) == "gpt\\n!touch x\\tz"
    assert is_visible("meta-llama/Llama-3.1-8B") and not is_visible("a\nb")
    assert not is_visible(f"gpt{RLO}4") and not is_visible("x\u200by")


# -- the consent block, the call blocks and the stdin prompt -------------------------------

def _reply(model: str = "tools") -> Reply:
    return Reply(model, "local", "http://127.0.0.1:1/v1")


def test_the_consent_block_shows_a_bidi_control_in_a_calls_name_and_arguments() -> None:
    reply = _reply()
    arguments = json.dumps({"src": f"a{RLO}b", "dst": "c\x1b[8m"})  # JSON escapes: decoded
    reply.feed(ToolCallDelta(0, "c1", f"cp{RLO}\u200b", arguments))
    reply.feed(ToolCallDelta(1, "c2", "cp", f'{{"src": "raw{RLO}\u2066"}}'))  # raw characters
    blocks = CallBlocks(display=DisplayRecorder())
    blocks.draw(reply, final=True)
    for index in (0, 1):
        blocks.state(index, "waiting: Run or Skip", show=False)
        shown = seen(blocks.html(index))  # what stands above the Run and Skip buttons
        assert _hidden(shown) == [], shown
        assert "\\u202e" in shown and "waiting: Run or Skip" in shown
    first = seen(blocks.html(0))
    assert "cp\\u202e\\u200b" in first and '"src": "a\\u202eb"' in first
    assert '"src": "raw\\u202e\\u2066"' in seen(blocks.html(1))
    text = tool_call_text(f"cp{RLO}", f'{{"src": "a{RLO}\u2028b"}}', "ok\x1b[2J", "ran")
    assert _hidden(text) == [] and '"a\\u202e\\u2028b"' in text and "ok\\x1b[2J" in text


def test_a_call_block_is_text_with_no_hidden_character_in_any_output() -> None:
    recorder = DisplayRecorder()
    reply = _reply()
    reply.feed(ToolCallDelta(0, "c1", "write", ""))
    blocks = CallBlocks(display=recorder)
    for piece in ['{"path": "a', RLO, 'b.txt", "mode": "', "\u2067w", '"}']:
        reply.feed(ToolCallDelta(0, arguments=piece))
        blocks.draw(reply)
    blocks.draw(reply, final=True)
    blocks.state(0, "ran", f"wrote {RLO}")
    for bundle in recorder.sent:
        assert _hidden(seen(bundle["text/html"])) == [] and live_html(bundle["text/html"]) == []
    assert '"path": "a\\u202eb.txt"' in seen(recorder.final_html())


# -- headers, footers and the endpoint's words -------------------------------------------

def test_headers_and_footers_show_model_ids_finish_reasons_and_errors_escaped() -> None:
    reply = Reply(f"gpt{RLO}4\n[fake", f"lo{RLO}cal", f"http://end{RLO}point/v1")
    reply.feed(TextDelta("hi"))
    reply.feed(Finish(f"stop{RLO}\u200b"))
    reply.close()
    header, footer = header_text(f"gpt{RLO}4\n[fake", reply), footer_text(reply)
    assert _hidden(header) == [] and "\n" not in header and "gpt\\u202e4\\n[fake" in header
    assert _hidden(footer) == [] and "finish_reason=stop\\u202e\\u200b" in footer
    failed = _reply()
    failed.feed(StreamError(f"The server said: drop {RLO}elbat", "status", 400))
    failed.close()
    assert "drop \\u202eelbat" in footer_text(failed)


def test_the_endpoints_error_words_are_escaped_where_they_are_read() -> None:
    said = server_text({"error": {"message": f"model {RLO}lave\u2066 not found\x1b[2J"}})
    assert said is not None and _hidden(said) == [] and "\\u202elave\\u2066" in said
    page = server_text(f"<html><title>Bad {RLO}gateway</title></html>")
    assert page is not None and "\\u202e" in page and RLO not in page


def test_a_cell_shows_a_hostile_endpoints_error_and_names_escaped(
        shell: Any, endpoint: FakeEndpoint, capsys: pytest.CaptureFixture[str]) -> None:
    body = json.dumps({"error": {"message": f"quota {RLO}dedeecxe"}}).encode()
    endpoint.raw["evil"] = RawReply([body], status=400, content_type="application/json")
    result = shell.run_cell("%%chat -m evil --no-history\nhello")
    out = capsys.readouterr().out
    assert not result.success and "quota \\u202ededeecxe" in out and RLO not in out


def test_the_cells_header_and_footer_outputs_hold_no_hidden_character() -> None:
    recorder = DisplayRecorder()

    class Run:
        replies = [Reply(f"m{RLO}", "local", "http://127.0.0.1:1/v1")]

    renderer = CellRenderer(f"m{RLO}\u2066", widgets=False, display=recorder)
    renderer.begin(Run)  # type: ignore[arg-type]
    Run.replies[0].feed(Finish(f"odd{RLO}"))
    Run.replies[0].close()
    renderer.end(Run, [])  # type: ignore[arg-type]
    html = recorder.final_html()
    assert _hidden(seen(html)) == [] and "m\\u202e\\u2066" in seen(html)
    assert "finish_reason=odd\\u202e" in seen(html)


# -- the terminal -----------------------------------------------------------------------

def test_a_terminal_shows_escape_sequences_and_bidi_controls_as_escapes(
        capsys: pytest.CaptureFixture[str]) -> None:
    class Run:
        replies = [_reply("echo")]

    renderer = TextRenderer([f"echo{RLO}"])
    renderer.begin(Run)  # type: ignore[arg-type]
    text = f"clear\x1b[2J\x1b]52;c;cm0gLXJm\x07 then {RLO}txet\r\nok\x9b"
    Run.replies[0].feed(TextDelta(text))
    Run.replies[0].feed(ToolCallDelta(0, "c", f"rm{RLO}", '{"p": "\\u202e"}'))
    Run.replies[0].feed(Finish("tool_calls"))
    Run.replies[0].close()
    renderer.end(Run, [(0, TextDelta(text))])  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert _hidden(out.replace("\r\n", "\n")) == []  # a line end stays one
    assert "clear\\x1b[2J\\x1b]52;c;cm0gLXJm\\x07 then \\u202etxet\r\nok\\x9b" in out
    assert "[echo\\u202e" in out and "[tool] rm\\u202e(" in out


# -- %models and completion ---------------------------------------------------------------

HOSTILE_MODELS = [
    {"id": "big-date", "created": 1e20, "owned_by": "x"},
    {"id": "inf-date", "created": float("inf")},
    {"id": "nan-date", "created": float("nan")},
    {"id": "negative-date", "created": -5},
    {"id": "word-date", "created": "soon"},
    {"id": "iso-date", "created": 1700000000, "owned_by": f"o{RLO}wner"},
    {"id": "gpt\n!touch pwned", "created": 1700000000},
    {"id": f"gpt{RLO}4", "created": 1700000000},
    {"id": "two words", "created": 1700000000},
    {"id": "brace{x}", "created": 1700000000},
    {"id": "meta-llama/Llama-3.1-8B:q4", "created": 1700000000},
]


def test_models_shows_every_row_and_blanks_a_date_it_cannot_read(
        shell: Any, endpoint: FakeEndpoint, capsys: pytest.CaptureFixture[str]) -> None:
    endpoint.listed = HOSTILE_MODELS
    shell.run_line_magic("models", "-o rows")
    out = capsys.readouterr().out
    rows = {r["id"]: r for r in shell.user_ns["rows"]}
    assert len(rows) == len(HOSTILE_MODELS)
    for blank in ("big-date", "inf-date", "nan-date", "negative-date", "word-date"):
        assert rows[blank]["created"] == "" and blank in out
    assert rows["iso-date"]["created"] == "2023-11-14"
    assert "gpt\\n!touch pwned" in out and "gpt\\u202e4" in out and "o\\u202ewner" in out
    assert _hidden(out) == [] and "\n!touch" not in out


def test_a_tables_cells_are_one_line_with_every_control_escaped() -> None:
    html = table_html(["id"], [[f"a\nb{RLO}\u2028c\x1b"]])
    assert seen(html) == "ida b\\u202e\\u2028c\\x1b"


def test_completion_offers_only_ids_safe_to_insert(shell: Any, endpoint: FakeEndpoint) -> None:
    endpoint.listed = [{"id": m["id"], "created": 1700000000} for m in HOSTILE_MODELS]
    shell.run_line_magic("models", "")

    def complete(line: str) -> list[str]:
        return list(shell.Completer.complete(line_buffer=line, cursor_pos=len(line))[1])

    offered = complete("%%chat -m ")
    assert "meta-llama/Llama-3.1-8B:q4" in offered and "big-date" in offered
    assert not [m for m in offered if not is_visible(m) or " " in m or "{" in m], offered
    assert complete("%%chat -m gpt") == [] and complete("%%chat -m env:gpt") == []
    assert complete("%%chat --compare big-date,gp") == []


# -- math in a reply ----------------------------------------------------------------------

STYLE_IN_TEXT = r"\text{<style>.chatmagic{display:none}</style>}"


def test_text_in_math_is_escaped_in_the_mathml() -> None:
    mathml = latex_mathml(STYLE_IN_TEXT, display=False)
    assert mathml is not None and "<style" not in mathml and "&lt;style&gt;" in mathml
    assert "<b>" not in (latex_mathml(r"\mbox{<b>x</b>} < y", display=False) or "<b>")
    assert "<mo>&lt;</mo>" in (latex_mathml("x < y", display=False) or "")
    assert "≤" in (latex_mathml(r"a \le b", display=False) or "")  # symbols as characters


@pytest.mark.parametrize("math", [f"${STYLE_IN_TEXT}$", f"\\({STYLE_IN_TEXT}\\)",
                                  f"$$\n{STYLE_IN_TEXT}\n$$"])
def test_markup_in_math_does_not_hide_the_rest_of_a_reply(math: str) -> None:
    html = markdown_html(f"Before {math} and the rest of the reply.\n\nA second paragraph.")
    text = seen(html)
    assert "the rest of the reply" in text and "A second paragraph" in text, html
    assert "<style>.chatmagic{display:none" in text  # shown as text
    assert "<style" not in html and live_html(html) == []


def test_a_cell_shows_markup_in_math_as_text() -> None:
    recorder = DisplayRecorder()

    class Run:
        replies = [_reply("echo")]

    renderer = CellRenderer("echo", widgets=False, display=recorder)
    renderer.begin(Run)  # type: ignore[arg-type]
    text = f"Math: ${STYLE_IN_TEXT}$ and after it, everything else."
    Run.replies[0].feed(TextDelta(text))
    Run.replies[0].feed(Finish("stop"))
    Run.replies[0].close()
    renderer.end(Run, [(0, TextDelta(text))])  # type: ignore[arg-type]
    html = recorder.final_html()
    assert "everything else" in seen(html) and html.count("<style>") == 1  # the stylesheet only


# -- a huge argument --------------------------------------------------------------------

def test_a_2_mb_argument_in_200_pieces_is_sent_at_most_5_times_its_block() -> None:
    """Drawn after every piece (the most a run draws), then decided, run and answered: the
    block is sent at most 5 times its final size (its redraws while it arrives add up to
    less than twice it, then it is drawn whole, running, and with its result)."""
    recorder = DisplayRecorder()
    reply = _reply()
    content = ('a line of the file, "quoted" and plain\n' * 60_000)[:2_000_000]
    arguments = json.dumps({"path": "big.txt", "content": content})
    reply.feed(ToolCallDelta(0, "c1", "write", ""))
    blocks = CallBlocks(display=recorder)
    step = len(arguments) // 200 + 1
    for start in range(0, len(arguments), step):
        reply.feed(ToolCallDelta(0, arguments=arguments[start:start + step]))
        blocks.draw(reply)
    blocks.draw(reply, final=True)
    blocks.state(0, "waiting: Run or Skip", show=False)
    assert '"path": "big.txt"' in seen(blocks.html(0))  # what the buttons stand under
    blocks.state(0, "running…")
    blocks.state(0, "ran", "wrote 2,000,000 characters")
    block = len(json.dumps(recorder.final()[0]))
    assert block > len(content) and json.dumps(content)[-500:] in seen(recorder.final_html())
    assert recorder.sent_bytes() <= 5 * block, (recorder.sent_bytes(), block, recorder.updates)
