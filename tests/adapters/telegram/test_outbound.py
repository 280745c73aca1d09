"""The outbound converters: engine documents and answers → Telegram HTML chunks and keyboards
(whose callback data the inbound side reads back)."""

from __future__ import annotations

from adapters.telegram.inbound import (
    ActionCallback,
    CategoryCallback,
    CommentCallback,
    RateCallback,
    parse_callback,
)
from adapters.telegram.outbound import (
    Chunk,
    answer_keyboard,
    category_keyboard,
    document_keyboard,
    escape,
    render_answer,
    render_document,
    utf16_len,
)
from doubles.telegram import telegram_html
from engine.present import evolution_document
from engine.types import Block, Decision, Document, FeedbackCategory

# --- keyboards ----------------------------------------------------------------------------------


def test_answer_keyboard_round_trips() -> None:
    keyboard = answer_keyboard(123456789)
    buttons = [b for row in keyboard.inline_keyboard for b in row]
    assert [b.text for b in buttons] == ["👍", "👎", "💬", "1", "2", "3", "4", "5"]
    parsed = [parse_callback(str(b.callback_data)) for b in buttons]
    assert parsed[:3] == [RateCallback(123456789, 4), RateCallback(123456789, 2),
                          CommentCallback(123456789)]
    assert parsed[3:] == [RateCallback(123456789, n) for n in range(1, 6)]
    assert all(len(str(b.callback_data).encode()) <= 64 for b in buttons)


def test_category_keyboard_round_trips_within_the_limit() -> None:
    execution_id, user_id = 9_223_372_036_854_775_807, 99_999_999_999_999  # the largest
    keyboard = category_keyboard(execution_id, user_id)
    rows = [[b.text for b in row] for row in keyboard.inline_keyboard]
    assert rows == [["Wrong", "Incomplete"], ["Too long", "Too short"], ["Format", "Tone"],
                    ["Language", "Other"], ["Skip"]]
    buttons = [b for row in keyboard.inline_keyboard for b in row]
    parsed = [parse_callback(str(b.callback_data)) for b in buttons]
    assert parsed == [CategoryCallback(execution_id, user_id, c)
                      for c in [*FeedbackCategory, None]]
    assert all(len(str(b.callback_data).encode()) <= 64 for b in buttons)


def test_category_garbage_is_not_a_choice() -> None:
    for garbage in ("fc:1:2:banana", "fc:1:2:", "fc:x:2:tone", "fc:1:tone", "fc:1:2:tone:3",
                    "fc:1:2:Too long", "fc:" + "9" * 30 + ":2:tone",
                    f"fc:{2**63}:2:tone", f"fb:{2**63}:3"):  # past the database's integer
        assert parse_callback(garbage) is None, garbage


def test_document_buttons_and_garbage() -> None:
    document = evolution_document(decision=Decision.PROMOTED, from_version=1, to_version=2,
                                  diff="-a\n+b", rationale="r", replay_summary="s",
                                  evolution_id=9)
    keyboard = document_keyboard(document.buttons)
    assert keyboard is not None
    [[button]] = keyboard.inline_keyboard
    assert button.text == "Roll back"
    assert parse_callback(str(button.callback_data)) == ActionCallback("rollback", "1")
    assert document_keyboard([]) is None
    for garbage in (None, "", "fb:x:1", "fb:1:9", "zz", "do:" + "x" * 80 + ":1"):
        assert parse_callback(garbage) is None


# --- rendering ------------------------------------------------------------------------------------


def _check(chunks: list[Chunk]) -> str:
    """Every chunk parses as Telegram HTML, fits, and its plain twin is the same text."""
    assert chunks
    for chunk in chunks:
        plain = telegram_html(chunk.html)
        assert utf16_len(plain) <= 4096 and utf16_len(chunk.html) <= 4096
        assert plain == chunk.plain
    return "\n\n".join(c.plain for c in chunks)


def test_escaping() -> None:
    nasty = 'if a < b && c > d: print("<b>not bold</b>") & <script>'
    chunks = render_answer(nasty, "v1 · 0 tools · 0.1 s")
    assert len(chunks) == 1
    assert telegram_html(chunks[0].html).startswith(nasty)
    assert escape("<&>") == "&lt;&amp;&gt;"
    assert chunks[0].html.endswith("<i>v1 · 0 tools · 0.1 s</i>")


def test_long_answers_split_under_the_limit() -> None:
    text = "\n".join(f"line {i}: a < b & c > d " + "x" * 80 for i in range(400))
    chunks = render_answer(text, "v1 · 0 tools · 1.0 s")
    assert len(chunks) > 1
    joined = _check(chunks)
    for i in (0, 199, 399):
        assert f"line {i}: a < b & c > d" in joined


def test_one_huge_line_and_wide_characters() -> None:
    chunks = render_answer("&" * 9000, "f")  # each escapes to 5 characters
    assert len(chunks) >= 3
    assert _check(chunks).count("&") == 9000
    emoji = render_answer("😀" * 5000, "f")  # 2 UTF-16 units each
    assert len(emoji) >= 3
    assert _check(emoji).count("😀") == 5000


def test_code_fences_become_pre() -> None:
    chunks = render_answer("Here:\n```python\nprint(1 < 2)\n```\nDone.", "v1")
    assert "<pre>print(1 &lt; 2)</pre>" in chunks[0].html
    _check(chunks)


def test_evolution_announcement_with_a_long_diff() -> None:
    diff = "--- v1\n+++ v2\n" + "\n".join(f"+{i}. Rule <{i}> & more " + "y" * 60
                                          for i in range(200))
    document = evolution_document(decision=Decision.PROMOTED, from_version=1, to_version=2,
                                  diff=diff, rationale="users asked: <French>",
                                  replay_summary="replayed 1: 1 better", evolution_id=3)
    chunks = render_document(document)
    assert len(chunks) > 1
    assert chunks[0].html.startswith("<b>Agent evolved: v1 → v2</b>")
    assert "users asked: &lt;French&gt;" in chunks[0].html
    diff_chunks = [c for c in chunks if '<pre><code class="language-diff">' in c.html]
    assert len(diff_chunks) == len(chunks)  # the diff spans every chunk, re-wrapped in each
    joined = _check(chunks)
    assert "+199. Rule <199> & more" in joined and "replayed 1: 1 better" in joined
    assert joined.count("+++ v2") == 1


def test_fields_and_empty_documents() -> None:
    document = Document(summary="s", blocks=[
        Block(kind="header", text="evobot status"),
        Block(kind="fields", fields=[("Active version", "v2"), ("Tools", "a<b")]),
        Block(kind="code", text="x = 1"),
        Block(kind="context", text=""),
    ])
    [chunk] = render_document(document)
    assert "<b>Active version</b>: v2" in chunk.html and "a&lt;b" in chunk.html
    assert "<pre>x = 1</pre>" in chunk.html and "<i></i>" not in chunk.html
    _check([chunk])
    [empty] = render_document(Document(summary="only a summary"))
    assert empty.plain == "only a summary"
