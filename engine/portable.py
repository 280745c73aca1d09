"""The portable agent format: one JSON file holding a whole agent, to move it between
workspaces (the `export` / `import` commands, `evobot agent export|import`, the API).

The format is versioned (`format_version`); its JSON Schema is committed as
docs/agent-export.schema.json (regenerate with `python -m engine.portable`; a test checks the
file matches these models). Reading a file is strict: a size cap before parsing, then a
clear error for anything that isn't a complete file of this format version.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from engine.types import StructuredPrompt

FORMAT = "evobot.agent"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 10 * 1024 * 1024
SCHEMA_PATH = "docs/agent-export.schema.json"


class ImportRefused(Exception):
    """The file can't become a version of an agent; the message says why (nothing changed)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PortableVersion(_Strict):
    """One version of the agent as it was: prompt, model, tools and why it was made."""

    version: int = Field(ge=1)
    prompt: StructuredPrompt
    model: str = Field(max_length=200)
    temperature: float = Field(ge=0, le=2)
    tools: list[str] = Field(default_factory=list, max_length=100)  # "name@version"
    parent_version: int | None = None
    created_by: str = Field(max_length=100)
    rationale: str = Field(default="", max_length=4000)
    created_at: datetime | None = None
    labels: list[Literal["active", "canary"]] = Field(default_factory=list)


class PortableTool(_Strict):
    """A tool with its code and tests (a sub-agent or workflow: its JSON spec and example)."""

    name: str = Field(max_length=100)
    version: int = Field(ge=1)
    kind: Literal["function", "subagent", "workflow"]
    description: str = Field(max_length=2000)
    parameters: dict[str, Any]
    source: str = Field(max_length=50_000)
    tests: str = Field(default="", max_length=50_000)
    status: str = Field(max_length=20)
    pinned: bool = False

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class PortableLearning(_Strict):
    """A validated learning of the agent's workspace (the knowledge store's entry)."""

    text: str = Field(max_length=4000)
    type: str = Field(default="prompt_rule", max_length=50)
    domain: str = Field(default="general", max_length=50)
    confidence: float = Field(default=0.5, ge=0, le=1)
    impact: float = Field(default=0.5, ge=0, le=1)


class PortableFeedback(_Strict):
    """A rating with its words (only in an export asked `with-feedback`); who gave it is
    never exported."""

    version: int
    rating: int | None = Field(default=None, ge=1, le=5)
    category: str | None = None
    comment: str | None = None
    suggestion: str | None = None


class AgentExport(_Strict):
    """An evobot agent: every version, its tools and its workspace's learnings."""

    model_config = ConfigDict(extra="forbid", title="evobot agent export")

    format: Literal["evobot.agent"] = "evobot.agent"  # FORMAT
    format_version: Literal[1] = 1  # FORMAT_VERSION
    exported_at: datetime
    source: str = Field(max_length=200)  # the tenant it was exported from
    active_version: int
    versions: list[PortableVersion] = Field(min_length=1, max_length=5000)
    tools: list[PortableTool] = Field(default_factory=list, max_length=500)
    learnings: list[PortableLearning] = Field(default_factory=list, max_length=5000)
    feedback: list[PortableFeedback] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AgentExport:
        """The active version is in the file, and so is every tool it uses."""
        active = self.active()
        refs = {t.ref for t in self.tools}
        missing = [r for r in active.tools if r not in refs]
        if missing:
            raise ValueError(f"the active version uses tools the file lacks: {missing}")
        return self

    def active(self) -> PortableVersion:
        for version in self.versions:
            if version.version == self.active_version:
                return version
        raise ValueError(f"active_version {self.active_version} is not among the versions")

    def active_tools(self) -> list[PortableTool]:
        refs = set(self.active().tools)
        return [t for t in self.tools if t.ref in refs]


def json_schema() -> dict[str, Any]:
    schema = AgentExport.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def schema_text() -> str:
    """The committed schema file's exact text."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def parse_export(data: bytes) -> AgentExport:
    """A file's bytes → the agent it holds, or ImportRefused with a reason a person can act on."""
    if len(data) > MAX_FILE_BYTES:
        raise ImportRefused(f"the file is {len(data) / 1e6:.1f} MB; an agent file is at most "
                            f"{MAX_FILE_BYTES / 1e6:.0f} MB")
    raw = _json(data)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ImportRefused(f'not an evobot agent file (it has no "format": "{FORMAT}")')
    if raw.get("format_version") != FORMAT_VERSION:
        raise ImportRefused(
            f"agent format version {raw.get('format_version')!r} can't be read here: this "
            f"evobot reads version {FORMAT_VERSION} (export it again from a matching evobot)"
        )
    try:
        return AgentExport.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}"
                    for e in exc.errors()[:5]]
        raise ImportRefused("the file does not match the agent format:\n"
                            + "\n".join(problems)) from exc


def _json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ImportRefused("the file is not UTF-8 text (is it an agent file?)") from exc
    except json.JSONDecodeError as exc:
        raise ImportRefused(f"the file is not complete JSON (truncated?): {exc.msg} at line "
                            f"{exc.lineno}, column {exc.colno}") from exc


if __name__ == "__main__":  # regenerate the committed schema
    print(schema_text(), end="")
