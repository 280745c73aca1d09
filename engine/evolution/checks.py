"""Step 3a — structural checks on a candidate prompt: budget, secrets, safety, injection."""

from __future__ import annotations

import re

from engine.prompt import budget_problems
from engine.types import StructuredPrompt

INJECTION_PATTERNS = [
    r"\bignore\b.{0,40}\b(instructions?|rules?|prompts?|above|previous)\b",
    r"\bdisregard\b.{0,40}\b(instructions?|rules?|prompts?|above|previous)\b",
    r"\bforget\b.{0,40}\b(instructions?|rules?|everything)\b",
    r"\b(print|reveal|show|repeat|output|leak|tell|give)\b.{0,40}\b(system|hidden|initial)\s+"
    r"(prompt|instructions?|message)",
    r"\byour\s+(system\s+)?(prompt|instructions)\b.{0,20}\b(verbatim|exactly|in full)\b",
    r"\b(jailbreak|developer mode|dan mode|do anything now)\b",
    r"\byou (are|have) no (restrictions|rules|limits|filters)\b",
    r"\b(disable|bypass|turn off|remove)\b.{0,30}\b(safety|guardrails?|filters?|restrictions)\b",
    r"\bpretend (to be|you are)\b",
    r"\bnew instructions?\b",
    r"\b(obey|follow) (only )?(me|this user|the user named)\b",
    r"<\|im_start\|>|<\|system\|>|\[/?INST\]|###\s*(instruction|system)",
    r"^\s*(system|assistant)\s*:",
]
SECRET_PATTERNS = [
    r"xox[abposr]-[A-Za-z0-9-]{10,}",
    r"\bsk-[A-Za-z0-9_-]{16,}",
    r"\bAKIA[0-9A-Z]{16}\b",
    r"\bgh[pousr]_[A-Za-z0-9]{20,}",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r"\b\d{8,10}:[A-Za-z0-9_-]{35}\b",  # Telegram bot token
    r"\b(password|passwd|api[_ -]?key|secret)\s*[:=]\s*\S+",
]
_INJECTION = [re.compile(p, re.I | re.M) for p in INJECTION_PATTERNS]
_SECRETS = [re.compile(p, re.I) for p in SECRET_PATTERNS]


def looks_like_injection(text: str) -> bool:
    return any(p.search(text) for p in _INJECTION)


def contains_secret(text: str) -> bool:
    return any(p.search(text) for p in _SECRETS)


def text_problems(text: str) -> list[str]:
    problems = []
    if looks_like_injection(text):
        problems.append(f"injection pattern in {text[:80]!r}")
    if contains_secret(text):
        problems.append("looks like it contains a secret")
    return problems


def structural_problems(base: StructuredPrompt, candidate: StructuredPrompt) -> list[str]:
    """Problems that forbid the candidate, checking only what the evolution changed."""
    problems = budget_problems(candidate)
    old_texts = {r.text for r in base.rules}
    for rule in candidate.rules:
        if rule.text not in old_texts:
            problems += [f"rule {rule.id}: {p}" for p in text_problems(rule.text)]
            if not rule.text.strip():
                problems.append(f"rule {rule.id} is empty")
    if candidate.persona != base.persona:
        problems += [f"persona: {p}" for p in text_problems(candidate.persona)]
        if len(candidate.persona) > 600:
            problems.append("persona longer than 600 characters")
    return problems
