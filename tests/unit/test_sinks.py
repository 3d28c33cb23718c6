"""The renderers against a recording display: what a reader is sent and what a saved notebook
keeps, in milliseconds (the kernel and browser tiers show the same in the real thing).

A run is driven by hand, as the runner drives it: each event folded into its column's reply
and kept until the renderer's next refresh, which gets the events since the last one; here
refreshed as often as the test likes (the counts below hold however often a renderer draws).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

import pytest

from chatmagic.core.events import (Finish, ReasoningDelta, RefusalDelta, Restart, StreamError,
                                   StreamEvent, TextDelta, ToolCallDelta, Usage)
from chatmagic.engine.reply import Reply
from chatmagic.shell.sinks.calls import CallBlocks, TextCalls
from chatmagic.shell.sinks.cell import CellRenderer
from chatmagic.shell.sinks.columns import ColumnsRenderer
from chatmagic.shell.sinks.text import TextRenderer
from chatmagic.testing import XSS_REPLY
from chatmagic.testing.display import DisplayRecorder
from inert import live_html
from kernel import visible

WORDS = [f"w{i} " + ("\n\n" if i % 40 == 39 else "") for i in range(4000)]


@dataclass
class Run:
    """What a renderer reads of a run: its replies, the events since it last drew, a way to
    stop it."""

    replies: list[Reply]
    stopped: list[bool] = field(default_factory=list)
    fresh: list[tuple[int, StreamEvent]] = field(default_factory=list)

    def stop(self) -> None:
        self.stopped.append(True)

    def feed(self, event: StreamEvent, column: int = 0) -> None:
        """One event of a column, folded into its reply as the runner folds it."""
        self.fresh.append((column, event))
        if isinstance(event, Restart):
            self.replies[column] = self.replies[column].restarted(event)
        else:
            self.replies[column].feed(event)

    def taken(self) -> list[tuple[int, StreamEvent]]:
        events, self.fresh = self.fresh, []
        return events

    def refresh(self, renderer: Any) -> Any:
        return renderer.refresh(self, self.taken())

    def end(self, renderer: Any) -> None:
        for reply in self.replies:
            if reply.ended is None:
                reply.close()
        renderer.end(self, self.taken())


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> Iterator[DisplayRecorder]:
    """The recorder; widgets made meanwhile send their state through its comms."""
    import comm

    recorder = DisplayRecorder()
    monkeypatch.setattr(comm, "create_comm", recorder.create_comm)
    yield recorder


def _reply(model: str = "echo") -> Reply:
    return Reply(model, "local", "http://127.0.0.1:1/v1")


def _stream(renderer: Any, run: Run, pieces: list[str], *, every: int = 1,
            choice: int = 0) -> None:
    """Feed text pieces to the run's first reply, refreshing after every ``every`` pieces."""
    for i, piece in enumerate(pieces):
        run.feed(TextDelta(piece, choice))
        if i % every == 0:
            run.refresh(renderer)


def _finish(run: Run, column: int = 0, reason: str = "stop",
            usage: Usage | None = Usage(5, 10, 15)) -> None:
    run.feed(Finish(reason), column)
    if usage is not None:
        run.feed(usage, column)
    run.replies[column].close()


def _seen(recorder: DisplayRecorder) -> str:
    """The text a reader of the saved notebook sees, tags dropped (an output a line)."""
    return "\n".join(visible(shown.get("text/html", "")) for shown in recorder.final()
                     if isinstance(shown, dict))


# -- one reply in the cell -------------------------------------------------------------

def test_a_reply_is_a_header_then_its_text_and_a_footer(shown: DisplayRecorder) -> None:
    run = Run([_reply()])
    renderer = CellRenderer("echo", widgets=False, display=shown)
    renderer.begin(run)
    _stream(renderer, run, ["Hello ", "*there*"])
    _finish(run)
    run.end(renderer)
    header, body = shown.final()
    assert "<style" in header["text/html"] and "echo · local (127.0.0.1:1/v1)" in \
        visible(header["text/html"])
    assert "<em>there</em>" in body["text/html"] and "finished" in visible(body["text/html"])
    assert "5 → 10 tokens" in _seen(shown)
    assert shown.displays == 2 and not shown.widgets_left()


def test_a_long_reply_is_sent_about_once_however_often_it_is_drawn(
        shown: DisplayRecorder) -> None:
    run = Run([_reply("long")])
    renderer = CellRenderer("long", widgets=False, display=shown)
    renderer.begin(run)
    _stream(renderer, run, WORDS)  # a refresh for every one of 4,000 chunks
    _finish(run)
    run.end(renderer)
    text = "".join(WORDS)
    kept = len(json.dumps(shown.final()))
    # Each piece is drawn as it doubles (at most twice its size in all), then sent once
    # frozen: at most about three times what the notebook keeps, not a copy per chunk.
    assert shown.sent_bytes() <= 3 * kept, (shown.sent_bytes(), kept)
    assert shown.displays + shown.updates < 100, (shown.displays, shown.updates)  # 4,000 chunks
    assert max(len(b["text/html"]) for b in shown.sent) < len(text) / 2
    assert re.findall(r"\bw\d+\b", _seen(shown)) == text.split()  # every word, once, in order


def test_the_saved_notebook_keeps_every_word_and_no_widget(shown: DisplayRecorder) -> None:
    run = Run([_reply()])
    renderer = CellRenderer("echo", widgets=True, display=shown, bar_after=0.0)
    renderer.begin(run)
    _stream(renderer, run, WORDS[:300], every=7)
    assert any(not isinstance(s, dict) for s in shown.outputs[0].states)  # the Stop bar
    _finish(run)
    run.end(renderer)
    assert not shown.widgets_left()  # the bar went back to the header's HTML
    assert ("close", None) in shown.widget_messages
    assert " ".join(w.strip() for w in WORDS[:300]) in " ".join(_seen(shown).split())


def test_a_stop_bar_stops_the_run(shown: DisplayRecorder) -> None:
    run = Run([_reply()])
    renderer = CellRenderer("echo", widgets=True, display=shown, bar_after=0.0)
    renderer.begin(run)
    _stream(renderer, run, ["one "])
    bar = shown.outputs[0].last
    stop = bar.children[1]
    assert stop.description == "Stop"
    stop.click()
    assert run.stopped == [True]


def test_model_html_is_text_in_every_output(shown: DisplayRecorder) -> None:
    run = Run([_reply("xss")])
    renderer = CellRenderer("xss", widgets=False, display=shown)
    renderer.begin(run)
    pieces = [XSS_REPLY[i:i + 7] for i in range(0, len(XSS_REPLY), 7)]
    run.feed(ReasoningDelta('<img src=x onerror="alert(1)">'))
    _stream(renderer, run, pieces)
    run.feed(RefusalDelta("<script>alert(2)</script>"))
    _finish(run)
    run.end(renderer)
    for bundle in shown.sent:  # every state ever shown, not only the last
        assert live_html(bundle["text/html"]) == [], bundle["text/html"][:200]
    assert "<script>alert(2)</script>" in _seen(shown)  # shown as text


def test_thinking_is_open_while_it_streams_and_folded_with_all_of_it_at_the_end(
        shown: DisplayRecorder) -> None:
    run = Run([_reply("reasoning")])
    renderer = CellRenderer("reasoning", widgets=False, display=shown)
    renderer.begin(run)
    thoughts = [f"thought{i} " for i in range(1000)]
    for thought in thoughts:
        run.feed(ReasoningDelta(thought))
        run.refresh(renderer)
    _stream(renderer, run, ["The ", "answer."])
    _finish(run)
    run.end(renderer)
    thinking = shown.outputs[1]
    assert "<details open>" in thinking.states[0]["text/html"]
    assert "<details>" in thinking.last["text/html"] and "thought999" in thinking.last["text/html"]
    assert "thought0 " in visible(thinking.last["text/html"])  # all of it, at the end
    # Redrawn once a quarter of what it shows (800 characters) is new: by the characters that
    # came, not by the 1,000 pieces they came in.
    assert len(thinking.states) <= len("".join(thoughts)) / 200 + 2, len(thinking.states)


def test_a_refusal_and_a_failure_are_said_and_the_text_kept(shown: DisplayRecorder) -> None:
    run = Run([_reply()])
    renderer = CellRenderer("echo", widgets=False, display=shown)
    renderer.begin(run)
    _stream(renderer, run, ["half ", "a reply"])
    run.feed(RefusalDelta("I can't help with that."))
    run.feed(StreamError("the stream ended before the reply finished", "incomplete"))
    run.replies[0].close()
    run.end(renderer)
    seen = _seen(shown)
    assert "half a reply" in seen and "Refused:" in seen and "I can't help with that." in seen
    assert "⚠ incomplete: see the error below" in seen  # the cell's error output says the rest


def test_a_terminal_shell_gets_plain_text_only(shown: DisplayRecorder) -> None:
    run = Run([_reply()])
    renderer = CellRenderer("echo", widgets=False, plain=True, display=shown)
    renderer.begin(run)
    _stream(renderer, run, ["<b>bold</b> ", "text"])
    _finish(run)
    run.end(renderer)
    assert all(list(bundle) == ["text/plain"] for bundle in shown.sent)
    assert shown.final()[1]["text/plain"].startswith("<b>bold</b> text")
    assert shown.final()[0]["text/plain"].startswith("[echo")


def test_leading_blank_lines_wait_for_text(shown: DisplayRecorder) -> None:
    run = Run([_reply()])
    renderer = CellRenderer("echo", widgets=False, display=shown)
    renderer.begin(run)
    _stream(renderer, run, ["\n", "\n\n"])
    assert shown.displays == 1  # only the header
    _stream(renderer, run, ["now"])
    assert shown.displays == 2


# -- side by side ------------------------------------------------------------------------

def _two(run: Run, renderer: Any, words: list[str]) -> None:
    for word in words:
        for column in range(len(run.replies)):
            run.feed(TextDelta(word), column)
        run.refresh(renderer)


def test_a_static_compare_grid_is_redrawn_as_it_grows_by_half(shown: DisplayRecorder) -> None:
    run = Run([_reply("a"), _reply("b")])
    renderer = ColumnsRenderer(["a", "b"], widgets=False, keep_hint=True, display=shown)
    renderer.begin(run)
    _two(run, renderer, WORDS[:2000])
    for column in range(len(run.replies)):
        _finish(run, column)
    run.end(renderer)
    assert shown.displays == 1 and shown.updates < 25, shown.updates  # not 2,000
    (grid,) = shown.final()
    assert "%chat_history keep N (1 to 2)" in visible(grid["text/html"])
    assert grid["text/plain"].startswith("== a ==\nw0 w1")
    assert "== b ==" in grid["text/plain"] and "w1999" in grid["text/plain"]


def test_live_columns_send_each_piece_once_and_end_as_a_static_grid(
        shown: DisplayRecorder) -> None:
    run = Run([_reply("a"), _reply("b")])
    renderer = ColumnsRenderer(["a", "b"], widgets=True, display=shown)
    renderer.begin(run)
    _two(run, renderer, WORDS)
    for column in range(len(run.replies)):
        _finish(run, column)
    run.end(renderer)
    kept = len(json.dumps(shown.final()))
    widget_bytes = sum(len(json.dumps(data, default=str)) for _, data in shown.widget_messages)
    # The live columns' traffic: each piece once, the live one as it doubles, and the
    # widgets' own state: about twice the final grid, not once per refresh.
    assert widget_bytes <= 3 * kept, (widget_bytes, kept)
    assert not shown.widgets_left() and shown.final()[0]["text/html"].count("w3999") == 2
    closed = sum(1 for kind, _ in shown.widget_messages if kind == "close")
    assert closed == len(shown.comms)  # every widget closed: none left live in the kernel


def test_a_redone_column_starts_over(shown: DisplayRecorder) -> None:
    run = Run([_reply("a"), _reply("b")])
    renderer = ColumnsRenderer(["a", "b"], widgets=True, display=shown)
    renderer.begin(run)
    _two(run, renderer, ["cut ", "off "])
    run.feed(Restart("asked again: another request cut it short"), 1)  # starts over
    run.feed(TextDelta("fresh"), 1)
    run.refresh(renderer)
    for column in range(len(run.replies)):
        _finish(run, column)
    run.end(renderer)
    grid = shown.final()[0]["text/plain"]
    assert "== a ==\ncut off" in grid and "== b ==\nfresh" in grid


def test_choices_show_the_ones_the_server_sent(shown: DisplayRecorder) -> None:
    run = Run([_reply()])
    renderer = ColumnsRenderer(["echo #1", "echo #2", "echo #3"], widgets=False, choices=True,
                               display=shown)
    renderer.begin(run)
    for choice in (0, 1):
        run.feed(TextDelta(f"choice {choice}", choice))  # one request: column 0
    run.refresh(renderer)
    run.end(renderer)
    grid = shown.final()[0]["text/plain"]
    assert "== echo #1 ==\nchoice 0" in grid and "== echo #2 ==\nchoice 1" in grid
    assert "echo #3" not in grid


def test_each_column_has_its_own_footer(shown: DisplayRecorder) -> None:
    run = Run([_reply()])
    renderer = ColumnsRenderer(["echo · choice 0", "echo · choice 1"], widgets=True,
                               choices=True, display=shown)
    renderer.begin(run)
    for choice in (0, 1):
        run.feed(TextDelta(f"text {choice}", choice))
    run.feed(Finish("stop", 0))  # choice 1's finish never came
    run.feed(Usage(5, 4, 9))
    run.refresh(renderer)
    run.replies[0].close()
    run.end(renderer)
    notes = re.findall(r'<div class="cm-note">([^<]*)</div>', shown.final()[0]["text/html"])
    footers = [n for n in notes if " → " in n]
    assert len(footers) == 2
    assert footers[0].startswith("finished · ") and "incomplete" not in footers[0]
    assert footers[1].startswith("incomplete: no finish reason · ")


def test_fewer_choices_are_a_fact_of_the_reply_only_once_it_ended_well() -> None:
    reply = Reply("m", "p", "http://h/v1", asked=3)
    reply.feed(TextDelta("a"))
    assert reply.missing_choices == 0  # no finish yet: it may still come
    reply.feed(Finish("stop"))
    assert reply.missing_choices == 2
    assert reply.restarted(Restart("again")).asked == 3  # asked again: the same n


def test_a_compare_grid_shows_model_html_as_text(shown: DisplayRecorder) -> None:
    run = Run([_reply("xss"), _reply("echo")])
    renderer = ColumnsRenderer(["xss", "echo"], widgets=True, display=shown)
    renderer.begin(run)
    run.feed(ReasoningDelta("<svg onload=alert(1)>"))
    _two(run, renderer, [XSS_REPLY[i:i + 50] for i in range(0, len(XSS_REPLY), 50)])
    for column in range(len(run.replies)):
        _finish(run, column)
    run.end(renderer)
    assert live_html(shown.final_html()) == []
    for kind, data in shown.widget_messages:  # nor in any widget state sent on the way
        state = (data or {}).get("state", {}) if isinstance(data, dict) else {}
        if isinstance(state.get("value"), str):
            assert live_html(state["value"]) == [], state["value"][:200]


# -- tool calls -----------------------------------------------------------------------

def test_a_call_is_one_block_grown_in_place_then_its_state(shown: DisplayRecorder) -> None:
    reply = _reply("tools")
    blocks = CallBlocks(display=shown)
    reply.feed(ToolCallDelta(0, "call_1", "get_weather", ""))
    blocks.draw(reply)
    for piece in ['{"ci', 'ty": ', '"Par', 'is"}']:
        reply.feed(ToolCallDelta(0, arguments=piece))
        blocks.draw(reply)
    blocks.draw(reply)  # nothing new: nothing sent
    # Redrawn once its arguments doubled: at 4 characters, then 9 (13 and 17 wait).
    assert shown.displays == 1 and shown.updates == 2
    blocks.draw(reply, final=True)
    blocks.state(0, "ran", "22 °C")
    blocks.draw(reply)  # decided: not redrawn as arriving
    (block,) = shown.final()
    seen = visible(block["text/html"])
    assert "get_weather" in seen and '"city": "Paris"' in seen and "22 °C" in seen
    assert "arriving" not in seen


def test_a_probe_named_call_is_text(shown: DisplayRecorder) -> None:
    reply = _reply("tools")
    reply.feed(ToolCallDelta(0, "c", "<img src=x onerror=alert(1)>",
                             '{"a": "<script>x</script>"}'))
    blocks = CallBlocks(display=shown)
    blocks.draw(reply, final=True)
    blocks.state(0, "ran", "</pre><iframe src=javascript:alert(1)>")
    assert all(live_html(b["text/html"]) == [] for b in shown.sent)
    assert "<iframe src=javascript:alert(1)>" in _seen(shown)


def test_a_terminal_prints_each_call_once_whole(capsys: pytest.CaptureFixture[str]) -> None:
    reply = _reply("tools")
    calls = TextCalls()
    reply.feed(ToolCallDelta(0, "c", "add", '{"a": 2,'))
    calls.draw(reply)
    assert capsys.readouterr().out == ""  # pieces are not printed
    reply.feed(ToolCallDelta(0, arguments=' "b": 3}'))
    calls.draw(reply, final=True)
    calls.state(0, "ran", "5")
    out = capsys.readouterr().out
    assert out.count("add") == 2 and '"b": 3' in out and "5" in out.splitlines()[-1]


# -- a terminal ---------------------------------------------------------------------------

def test_a_terminal_streams_one_reply_and_prints_compares_at_the_end(
        capsys: pytest.CaptureFixture[str]) -> None:
    run = Run([_reply()])
    renderer = TextRenderer(["echo"])
    renderer.begin(run)
    _stream(renderer, run, ["one ", "two"])
    assert capsys.readouterr().out.endswith("one two")  # as it arrived
    _finish(run)
    run.end(renderer)
    assert "finished" in capsys.readouterr().out
    pair = Run([_reply("a"), _reply("b")])
    renderer = TextRenderer(["a", "b"])
    renderer.begin(pair)
    _two(pair, renderer, ["x ", "y"])
    assert capsys.readouterr().out == ""  # interleaved columns are not printed
    for column in range(len(pair.replies)):
        _finish(pair, column)
    pair.end(renderer)
    out = capsys.readouterr().out
    assert out.index("[a ·") < out.index("x y") < out.index("[b ·")
    assert "\x1b[" not in out and "<" not in html.unescape(out).replace("<", "", 0)


def test_a_terminal_line_end_split_over_two_refreshes_stays_a_line_end(
        capsys: pytest.CaptureFixture[str]) -> None:
    run = Run([_reply()])
    renderer = TextRenderer(["echo"])
    renderer.begin(run)
    _stream(renderer, run, ["one\r", "\ntwo\r", "\r\nthree\r"])
    _finish(run)
    run.end(renderer)
    out = capsys.readouterr().out
    # A CRLF cut between two pieces is one line end; a "\r" no "\n" follows (one before
    # another "\r", one at the very end) still shows as its escape.
    assert "one\r\ntwo\\r\r\nthree\\r\n[" in out


# -- the progress of --each ---------------------------------------------------------------

@dataclass
class Each:
    """What a progress view reads of an --each run."""

    progress: Any
    finished: list[Any] = field(default_factory=list)
    plan: Any = None
    stopped: list[bool] = field(default_factory=list)

    def stop(self) -> None:
        self.stopped.append(True)

    def answer(self, text: str) -> None:
        from chatmagic.core.table import Row

        row = Row(len(self.finished), "echo", text, "stop", 3, 4)
        self.finished.append(row)
        self.progress.count(row)


def _each(total: int) -> Each:
    from types import SimpleNamespace

    from chatmagic.engine.scheduler import Progress

    return Each(Progress(total), plan=SimpleNamespace(key_name="index", schema_fields=None))


class Clock:
    """perf_counter for the progress view: time moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from chatmagic.shell.sinks import progress

    fake = Clock()
    monkeypatch.setattr(progress, "time", fake)
    return fake


def test_the_progress_line_is_redrawn_by_time_not_by_rows(shown: DisplayRecorder,
                                                         clock: Clock) -> None:
    from chatmagic.shell.sinks.progress import SPACING, ProgressView

    run = _each(1000)
    view = ProgressView("widgets", stoppable=True, display=shown)
    view.begin(run)
    for _ in range(1000):  # a row every 10 ms: 10 s in all
        run.answer("ok")
        clock.now += 0.01
        view.refresh(run)
    # At most one redraw per SPACING of the 10 s (the label's value, sent alone): not 1,000.
    assert view.updates <= 10 / SPACING + 1 and shown.widget_updates <= 10 / SPACING + 2
    run.progress.ended = run.progress.started + 10  # its rate and time left hold still
    clock.now += 5
    view.refresh(run)
    before = shown.widget_updates
    clock.now += 5
    view.refresh(run)
    assert shown.widget_updates == before  # the same line: nothing sent
    stop = shown.outputs[0].last.children[1]
    stop.click()
    assert run.stopped == [True]
    view.end(run)
    assert not shown.widgets_left()  # the line became the static summary
    seen = _seen(shown)
    assert "1,000 of 1,000 rows answered" in seen and "… and 995 more rows" in seen


def test_a_headless_run_shows_only_its_summary_and_model_text_stays_text(
        shown: DisplayRecorder, clock: Clock) -> None:
    from chatmagic.shell.sinks.progress import ProgressView

    run = _each(3)
    view = ProgressView("static", display=shown)
    view.begin(run)
    for text in ['<img src=x onerror="alert(1)">', "x" * 500, "plain"]:
        run.answer(text)
        clock.now += 1
        view.refresh(run)
    assert shown.displays == 0  # nothing until the end
    view.end(run)
    (summary,) = shown.final()
    assert live_html(summary["text/html"]) == []
    assert '<img src=x onerror="alert(1)">' in visible(summary["text/html"])
    assert "x" * 79 + "…" in summary["text/plain"] and "x" * 81 not in summary["text/plain"]
    assert summary["text/plain"].startswith("3 of 3 rows answered")


def test_a_terminal_redraws_one_line_in_place(clock: Clock) -> None:
    import io

    from chatmagic.shell.sinks.progress import ProgressView

    out = io.StringIO()
    run = _each(4)
    view = ProgressView("text", out=out)
    view.begin(run)
    for _ in range(2):
        run.answer("ok")
        clock.now += 1
        view.refresh(run)
    run.stop()  # two rows left unsent
    view.end(run)
    lines = out.getvalue().split("\r\x1b[2K")
    assert [line.split(" · ")[0] for line in lines[1:4]] == ["0/4 rows", "1/4 rows", "2/4 rows"]
    assert "2 of 4 rows answered" in lines[-1] and "2 not sent (stopped" in lines[-1]
    assert "index | model | text" in lines[-1]


# -- the words around a reply -------------------------------------------------------------

def test_the_footer_says_why_it_ended_and_what_it_cost_in_words() -> None:
    from chatmagic.shell.sinks.figures import footer_text, header_text, status_text

    reply = _reply()
    reply.feed(TextDelta("a b"))
    reply.feed(Finish("length"))
    reply.feed(Usage(7, 2, 9, reasoning_tokens=1))
    reply.notes.append("asked again on its own")
    reply.close()
    footer = footer_text(reply)
    assert footer.startswith("cut at the token limit (finish_reason=length): raise --max-tokens")
    assert "7 → 2 tokens (1 reasoning)" in footer and footer.endswith("asked again on its own")
    assert header_text("echo", reply) == "echo · local (127.0.0.1:1/v1)"
    stopped = _reply()
    stopped.feed(TextDelta("half"))
    stopped.close(interrupted=True)
    assert status_text(stopped) == "stopped: the reply is incomplete"
    assert "~1 tokens (estimated)" in footer_text(stopped)  # counted here, and said so


@pytest.mark.parametrize("first", [None, TextDelta("half"), ReasoningDelta("hmm"),
                                   RefusalDelta("no")])
def test_incomplete_is_said_only_of_a_reply_of_which_something_arrived(
        first: Any) -> None:
    from chatmagic.shell.sinks.figures import footer_text, status_text

    failed, stopped = _reply(), _reply()
    for reply in (failed, stopped):
        if first is not None:
            reply.feed(first)
    failed.feed(StreamError("HTTP 500: down"))
    failed.close()
    stopped.close(interrupted=True)
    if first is None:
        assert status_text(failed) == "failed: HTTP 500: down"
        assert status_text(failed, with_error=False) == "⚠ failed: see the error below"
        assert status_text(stopped) == "stopped before anything arrived"
        assert "incomplete" not in footer_text(failed) + footer_text(stopped)
    else:
        assert status_text(failed) == "incomplete: HTTP 500: down"
        assert status_text(failed, with_error=False) == "⚠ incomplete: see the error below"
        assert status_text(stopped) == "stopped: the reply is incomplete"


def test_a_cell_and_a_column_where_nothing_arrived_say_failed(shown: DisplayRecorder) -> None:
    run = Run([_reply()])
    renderer = CellRenderer("echo", widgets=False, display=shown)
    renderer.begin(run)
    run.feed(StreamError("HTTP 500: down"))
    run.replies[0].close()
    run.end(renderer)
    seen = _seen(shown)
    assert "⚠ failed: see the error below" in seen and "incomplete" not in seen
    grid_shown = DisplayRecorder()
    run = Run([_reply("a"), _reply("b")])
    renderer = ColumnsRenderer(["a", "b"], widgets=False, display=grid_shown)
    renderer.begin(run)
    run.feed(TextDelta("hello"), 0)
    _finish(run, 0)
    run.feed(StreamError("HTTP 500: down"), 1)
    run.replies[1].close()
    run.end(renderer)
    seen = _seen(grid_shown)
    assert "failed: HTTP 500: down" in seen and "incomplete" not in seen
