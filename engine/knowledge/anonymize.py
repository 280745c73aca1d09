"""Strip what identifies a person, a workspace or a chat from a learning.

Only anonymized text may leave a tenant: shared learnings and
shared tool recipes are stored through `anonymize`. It is a best-effort
scrubber built from explicit patterns, each replaced by a placeholder:

    Slack mentions and ids, Telegram chat ids  -> <user>, <channel>, <id>
    e-mail addresses, URLs, domains, IPs       -> <email>, <url>, <ip>
    phone numbers, long digit runs             -> <phone>, <number>
    api keys, tokens, uuids, long hex          -> <secret>, <id>
    @usernames                                 -> @user
    person names (known list, or after cues like "my name is", "ask")  -> <name>

The order matters: structured forms go first so that, say, the digits of an
e-mail or a URL are not half-replaced as a number. Placeholders contain no
digit and no capitalised word, so a second pass changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# --- Slack's own markup: <@U123>, <#C123|general>, <!subteam^S123|@team>, <mailto:..|..>
_SLACK_USER_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_SLACK_CHANNEL_MENTION = re.compile(r"<#[CGD][A-Z0-9]+(?:\|[^>]*)?>")
_SLACK_GROUP_MENTION = re.compile(r"<!subteam\^[A-Z0-9]+(?:\|[^>]*)?>")
_SLACK_MAILTO = re.compile(r"<mailto:[^>|]+(?:\|[^>]*)?>")
_SLACK_LINK = re.compile(r"<(?:https?|ftp)://[^>|]+(?:\|[^>]*)?>")

_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>\"')\]]+|\bwww\.[^\s<>\"')\]]+", re.IGNORECASE)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
# Bare domains only for common TLDs: "config.json" or "main.py" must survive.
_DOMAIN = re.compile(
    r"\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+"
    r"(?:com|org|net|io|dev|ai|app|co|edu|gov|info|biz|me|xyz|cloud|tech|us|uk|de|fr|eu)"
    r"(?:/[^\s<>\"')\]]*)?\b",
    re.IGNORECASE,
)
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")

# Credentials with a known shape, then anything that looks randomly generated.
_KNOWN_SECRET = re.compile(
    r"\b(?:xox[abposre]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|sk-[A-Za-z0-9_-]{8,}"
    r"|gh[pousr]_[A-Za-z0-9]{8,}|github_pat_[A-Za-z0-9_]{8,}|glpat-[A-Za-z0-9_-]{8,}"
    r"|AKIA[A-Z0-9]{12,}|AIza[A-Za-z0-9_-]{20,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]+)?)"
    r"|\b\d{8,10}:[A-Za-z0-9_-]{30,}\b"  # Telegram bot token
)
_BEARER = re.compile(
    r"\b(Bearer|token|key|password|secret)(\s*[:=]\s*|\s+)([^\s,;'\"]{6,})", re.IGNORECASE
)
_UUID = re.compile(
    r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE
)
_LONG_HEX = re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{16,}\b", re.IGNORECASE)
# A long run of letters and digits mixed (api keys, session ids, hashes).
_MIXED_TOKEN = re.compile(
    r"\b(?=[A-Za-z0-9_-]*\d[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z][A-Za-z0-9_-]*[A-Za-z])"
    r"[A-Za-z0-9][A-Za-z0-9_-]{19,}\b"
)

# Slack object ids: U/W users, C/G/D conversations, T teams, E enterprises,
# B bots, S user groups, F files. They always carry a digit.
_SLACK_USER_ID = re.compile(r"\b[UW](?=[A-Z0-9]*\d)[A-Z0-9]{6,12}\b")
_SLACK_CHANNEL_ID = re.compile(r"\b[CGD](?=[A-Z0-9]*\d)[A-Z0-9]{6,12}\b")
_SLACK_OTHER_ID = re.compile(r"\b[TEBSF](?=[A-Z0-9]*\d)[A-Z0-9]{6,12}\b")

# Phones: "+44 20 7946 0958", "(415) 555-0123", "415-555-0123", "+14155550123".
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){1,4}(?!\w)"
    r"|(?<![\w+])\+\d{8,15}(?!\w)"
)
# Telegram chat ids (-1001234567890), user ids and other long numbers.
_LONG_NUMBER = re.compile(r"(?<![\w.,])-?\d{7,}(?!\w|[.,]\d)")

_USERNAME = re.compile(r"(?<![\w@<])@[A-Za-z0-9_][A-Za-z0-9_.-]{1,31}\b")

_NAME = r"[A-Z][a-z]+(?:[-'][A-Z][a-z]+)?"
_FULL_NAME = rf"{_NAME}(?:\s+{_NAME})?"
_TITLED_NAME = re.compile(rf"\b((?:Mr|Mrs|Ms|Mx|Dr|Prof)\.?\s+){_FULL_NAME}\b")
# A capitalised word right after one of these cues is taken for a name.
_NAME_CUES = re.compile(
    r"(?i:\b(?:i'm|i am|my name is|this is|name's|ask|tell|ping|email|message|call|"
    r"cc|thanks|thank you|hi|hello|hey|dear|contact)\s+)"
    rf"({_FULL_NAME})\b"
)
# Capitalised words after a cue that are not names.
_NOT_NAMES = frozenset(
    {
        "I", "The", "A", "An", "This", "That", "These", "Those", "It", "We", "You", "They",
        "He", "She", "Me", "Us", "Them", "All", "Everyone", "Team", "Python", "Slack",
        "Telegram", "Google", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
        "Saturday", "Sunday", "Today", "Tomorrow", "Yesterday", "English", "French",
        "German", "Spanish", "Italian", "Please", "Thanks", "Sorry", "Yes", "No", "Ok",
        "Okay", "Admin", "Support", "Sales", "There", "Here", "What", "When", "Why", "How",
        "Mr", "Mrs", "Ms", "Mx", "Dr", "Prof",
    }
)  # fmt: skip


def anonymize(text: str, *, names: Iterable[str] = ()) -> str:
    """`text` with identifiers replaced by placeholders (see the module doc).

    `names` are people's names known to the caller (display names, real
    names of the users who gave the feedback): each is removed wherever it
    appears as a whole word (any case), and so are its parts ("Alice" and
    "Smith" of "alice.smith") when written as given or capitalised.
    """
    text = _strip_slack_markup(text)
    text = _strip_contacts(text)
    text = _strip_secrets(text)
    text = _strip_platform_ids(text)
    text = _strip_numbers(text)
    text = _USERNAME.sub("@user", text)
    text = _strip_known_names(text, names)
    text = _strip_cued_names(text)
    return text


def _strip_slack_markup(text: str) -> str:
    text = _SLACK_USER_MENTION.sub("<user>", text)
    text = _SLACK_CHANNEL_MENTION.sub("<channel>", text)
    text = _SLACK_GROUP_MENTION.sub("<group>", text)
    text = _SLACK_MAILTO.sub("<email>", text)
    return _SLACK_LINK.sub("<url>", text)


def _strip_contacts(text: str) -> str:
    text = _URL.sub("<url>", text)
    text = _EMAIL.sub("<email>", text)
    text = _DOMAIN.sub("<url>", text)
    return _IPV4.sub("<ip>", text)


def _strip_secrets(text: str) -> str:
    text = _KNOWN_SECRET.sub("<secret>", text)
    text = _BEARER.sub(_keep_label, text)
    text = _UUID.sub("<id>", text)
    text = _LONG_HEX.sub("<id>", text)
    return _MIXED_TOKEN.sub("<id>", text)


def _keep_label(match: re.Match[str]) -> str:
    # "password: hunter2" -> "password: <secret>": the rule stays readable.
    label, separator, value = match.group(1), match.group(2), match.group(3)
    if value.startswith("<"):  # already a placeholder
        return match.group(0)
    plain_word = not any(char.isdigit() for char in value)
    if separator.strip() == "" and plain_word and label.lower() != "bearer":
        return match.group(0)  # "token limits", "password reset": ordinary words
    return f"{label}{separator}<secret>"


def _strip_platform_ids(text: str) -> str:
    text = _SLACK_USER_ID.sub("<user>", text)
    text = _SLACK_CHANNEL_ID.sub("<channel>", text)
    return _SLACK_OTHER_ID.sub("<id>", text)


def _strip_numbers(text: str) -> str:
    text = _PHONE.sub(_phone_or_keep, text)
    return _LONG_NUMBER.sub("<number>", text)


def _phone_or_keep(match: re.Match[str]) -> str:
    # The phone pattern also fits dates ("2024-01-15") and small groups of
    # figures ("4 8 15"); a phone number has at least 9 digits.
    candidate = match.group(0)
    digits = sum(char.isdigit() for char in candidate)
    return "<phone>" if digits >= 9 else candidate


def _strip_known_names(text: str, names: Iterable[str]) -> str:
    names = [name.strip() for name in names if name.strip()]
    # A whole multi-part name ("Alice Smith", "alice.smith") in any case.
    for name in sorted({n for n in names if re.search(r"[\s._-]", n)}, key=len, reverse=True):
        text = _replace_word(text, name, flags=re.IGNORECASE)
    # Parts ("Alice" of "alice.smith") only as written or capitalised: a name
    # like "Will" must not take the verb "will" with it.
    parts = {part for name in names for part in re.split(r"[\s._-]+", name) if len(part) > 1}
    for part in sorted(parts, key=len, reverse=True):
        for form in {part, part.capitalize()}:
            text = _replace_word(text, form, flags=0)
    return text


def _replace_word(text: str, word: str, *, flags: int) -> str:
    return re.sub(rf"(?<![\w<@]){re.escape(word)}(?![\w>])", "<name>", text, flags=flags)


def _strip_cued_names(text: str) -> str:
    text = _TITLED_NAME.sub(lambda match: match.group(1) + "<name>", text)

    def replace(match: re.Match[str]) -> str:
        words = match.group(1).split()
        if words[0] in _NOT_NAMES:
            return match.group(0)
        start = match.start(1) - match.start(0)
        return match.group(0)[:start] + "<name>"

    return _NAME_CUES.sub(replace, text)
