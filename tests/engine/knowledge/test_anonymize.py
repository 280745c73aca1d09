from __future__ import annotations

import pytest

from engine.knowledge.anonymize import anonymize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hey <@U123ABC> look", "hey <user> look"),
        ("cc <@U0123ABCD|alice>", "cc <user>"),
        ("post it in <#C0123ABCD|general>", "post it in <channel>"),
        ("tell <!subteam^S0123ABC|@oncall>", "tell <group>"),
        ("user U0123ABCD wrote", "user <user> wrote"),
        ("enterprise user W0123ABCD wrote", "enterprise user <user> wrote"),
        ("in channel C0123ABCD today", "in channel <channel> today"),
        ("private group G0123ABCD and dm D0123ABCD", "private group <channel> and dm <channel>"),
        ("team T01ABCDEF, bot B01ABCDEF", "team <id>, bot <id>"),
    ],
)
def test_slack_ids_and_mentions(text: str, expected: str) -> None:
    assert anonymize(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("chat -1001234567890 asked", "chat <number> asked"),
        ("chat_id=-1001234567890", "chat_id=<number>"),
        ("user 123456789 said", "user <number> said"),
        ("from @alice_bot and @bob.smith", "from @user and @user"),
    ],
)
def test_telegram_ids_and_usernames(text: str, expected: str) -> None:
    assert anonymize(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail john.doe+x@example.co.uk now", "mail <email> now"),
        ("<mailto:bob@corp.com|bob@corp.com>", "<email>"),
        ("see https://example.com/a?b=1 and www.foo.org/x", "see <url> and <url>"),
        ("see <https://internal.example.com/wiki|the wiki>", "see <url>"),
        ("docs at acme-corp.com/docs", "docs at <url>"),
        ("server 10.0.0.12 is down", "server <ip> is down"),
    ],
)
def test_contacts(text: str, expected: str) -> None:
    assert anonymize(text) == expected


@pytest.mark.parametrize(
    "phone",
    ["+1 415-555-0123", "(415) 555-0123", "415-555-0123", "+44 20 7946 0958", "+14155550123"],
)
def test_phone_numbers(phone: str) -> None:
    assert anonymize(f"call {phone} today") == "call <phone> today"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("token xoxb-1234-5678-abcdEFGH used", "token <secret> used"),
        ("app token xapp-1-A0123-4567-abc", "app token <secret>"),
        ("key sk-proj-abc123def456ghi", "key <secret>"),
        ("ghp_abcdefgh12345678 leaked", "<secret> leaked"),
        ("AKIAIOSFODNN7EXAMPLE", "<secret>"),
        ("bot 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "bot <secret>"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abc", "jwt <secret>"),
        ("password: hunter2", "password: <secret>"),
        ("Bearer abcdefghijk, then", "Bearer <secret>, then"),
        ("id 123e4567-e89b-12d3-a456-426614174000", "id <id>"),
        ("commit 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", "commit <id>"),
        ("session a1b2c3d4e5f6g7h8i9j0k1l2", "session <id>"),
    ],
)
def test_secrets_and_id_like_tokens(text: str, expected: str) -> None:
    assert anonymize(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I'm Alice and I need help", "I'm <name> and I need help"),
        ("my name is Bob Smith.", "my name is <name>."),
        ("ask Carol, then tell Dave Jones", "ask <name>, then tell <name>"),
        ("Thanks Zoe!", "Thanks <name>!"),
        ("Dear Dr. Watson,", "Dear Dr. <name>,"),
        ("reply to Mrs Hudson", "reply to Mrs <name>"),
    ],
)
def test_cued_person_names(text: str, expected: str) -> None:
    assert anonymize(text) == expected


def test_known_names_are_removed() -> None:
    text = "alice.smith said Alice prefers metric; ALICE SMITH agreed"
    assert anonymize(text, names=["alice.smith", "Alice Smith"]) == (
        "<name> said <name> prefers metric; <name> agreed"
    )


def test_a_known_name_that_is_a_word_keeps_the_word() -> None:
    assert anonymize("Will will review it", names=["Will"]) == "<name> will review it"


@pytest.mark.parametrize(
    "text",
    [
        "Ask a clarifying question when the request is ambiguous",
        "Always reply in French; I am French",
        "Use 24-hour time format, e.g. 18:00",
        "convert 5 miles to km and 100 USD to EUR",
        "dates like 2024-01-15, numbers 4 8 15, pi 3.14159, 1,000,000 people",
        "save it as config.json or main.py",
        "token limits apply; the key point is brevity",
        "use text-embedding-3-small for search",
        "Hi Python users, tell Monday standup about it",
        "ISO 8601 and HTTP 404 and port 8000",
    ],
)
def test_ordinary_text_survives(text: str) -> None:
    assert anonymize(text) == text


def test_a_learning_with_everything_in_it() -> None:
    text = (
        "User <@U0ABCD123> (bob.smith@corp.example.com, +1 415-555-0123) in C0LEARN42 "
        "asked via https://corp.example.com/t/123 to always answer in French; "
        "telegram chat -1001234567890, @bobby, key sk-live-abcdef123456"
    )
    cleaned = anonymize(text, names=["Bob Smith"])
    for secret in (
        "U0ABCD123",
        "bob.smith",
        "415",
        "C0LEARN42",
        "corp.example",
        "-100123",
        "@bobby",
        "sk-live",
    ):
        assert secret not in cleaned
    assert "always answer in French" in cleaned


def test_anonymize_is_idempotent() -> None:
    text = "I'm Alice <@U0ABCD123> mail a@b.io, call +44 20 7946 0958, token xoxb-1-2-abc"
    once = anonymize(text)
    assert anonymize(once) == once
