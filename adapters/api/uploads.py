"""Files over the REST API. In: `POST /v1/agents/{id}/execute` also takes
`multipart/form-data` — the JSON fields of `Execute` as form fields (`context` as a JSON
string) plus up to ten `files` parts — with a body limit of its own (the engine's per-message
file limit). Out: an execution's files are listed on its result as download links,
`GET /v1/executions/{id}/files/{file id}`, served only to the tenant's own keys."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.api.context import api_of, caller
from adapters.api.schemas import Execute, FileLink
from adapters.common.body_limit import BodyLimit
from engine.files.intake import check_attachments, refusal_text
from engine.files.limits import (
    MAX_FILE_BYTES,
    MAX_FILES_PER_MESSAGE,
    MAX_MESSAGE_BYTES,
    safe_name,
)
from engine.files.store import load
from engine.storage.api_keys import KeyInfo
from engine.storage.files import tenant_file
from engine.storage.models import StoredFile
from engine.types import Attachment

EXECUTE_PATH = re.compile(r"^/v1/agents/[^/]+/execute$")
# the files of one message plus the form's own fields and multipart framing
UPLOAD_BODY_BYTES = MAX_MESSAGE_BYTES + 256 * 1024
MULTIPART = "multipart/form-data"

router = APIRouter(prefix="/v1")


class ApiBodyLimit(BodyLimit):
    """The API's body limit; a multipart `execute` (files) has room for a message's files,
    a JSON one keeps the ordinary limit."""

    def __init__(self, app: ASGIApp, limits: Mapping[str, int]) -> None:
        super().__init__(app, limits)
        self.uploads = BodyLimit(app, {"": UPLOAD_BODY_BYTES})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _is_upload(scope):
            await self.uploads(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def _is_upload(scope: Scope) -> bool:
    content_type = dict(scope.get("headers") or []).get(b"content-type", b"")
    return bool(EXECUTE_PATH.match(scope.get("path", ""))) and content_type.startswith(
        MULTIPART.encode())


class ExecuteRequest(Execute):
    """`Execute`, plus the files of a multipart request (not a JSON field)."""

    attachments: list[Attachment] = []


async def execute_request(request: Request) -> ExecuteRequest:
    """The body of `execute`: JSON (`Execute`), or multipart form fields plus files."""
    try:
        if request.headers.get("content-type", "").startswith(MULTIPART):
            return await _from_form(request)
        body = Execute.model_validate(await request.json())  # files come only as parts
        return ExecuteRequest(**body.model_dump())
    except ValidationError as exc:
        raise HTTPException(422, exc.errors(include_url=False, include_input=False)) from exc
    except ValueError as exc:  # not JSON at all
        raise HTTPException(422, f"the body is not valid JSON: {exc}") from exc


async def _from_form(request: Request) -> ExecuteRequest:
    form = await request.form(max_files=MAX_FILES_PER_MESSAGE + 1, max_fields=20)
    fields: dict[str, Any] = {k: v for k, v in form.multi_items()
                              if isinstance(v, str) and k != "files"}
    if "context" in fields:
        try:
            fields["context"] = json.loads(fields["context"])
        except ValueError as exc:
            raise HTTPException(422, f"`context` is not valid JSON: {exc}") from exc
    if "stream" in fields:
        fields["stream"] = fields["stream"].strip().lower() in ("1", "true", "yes")
    uploads = [v for k, v in form.multi_items() if k == "files" and isinstance(v, UploadFile)]
    attachments = [await _attachment(upload) for upload in uploads]
    return ExecuteRequest.model_validate({**fields, "attachments": attachments})


async def _attachment(upload: UploadFile) -> Attachment:
    """One uploaded part, read no further than the per-file limit (the engine says no)."""
    data = await upload.read(MAX_FILE_BYTES + 1)
    return Attachment(name=upload.filename or "file", data=data)


ExecuteBody = Annotated[ExecuteRequest, Depends(execute_request)]
EXECUTE_BODY_DOCS: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/Execute"}},
    MULTIPART: {"schema": {"type": "object", "required": ["objective"], "properties": {
        "objective": {"type": "string"}, "context": {"type": "string",
                                                     "description": "a JSON object"},
        "stream": {"type": "boolean"}, "user_id": {"type": "string"},
        "thread_id": {"type": "string"},
        "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                  "description": "CSV, TSV, XLSX, JSON, TXT, MD, PDF, PNG, JPG; 20 MB a "
                                 "file, 10 files and 50 MB in all"}}}},
}}}


def unusable_files(body: ExecuteRequest) -> str | None:
    """Why nothing can run when every file sent is refused (the engine's words); None when
    there is something to answer (refusals among usable files are said on the feed)."""
    intake = check_attachments(body.attachments)
    return refusal_text(intake) if intake.nothing_usable else None


def file_url(execution_id: int, file_id: int) -> str:
    return f"/v1/executions/{execution_id}/files/{file_id}"


def file_links(files: list[StoredFile]) -> list[FileLink]:
    return [FileLink(name=f.name, media_type=f.media_type, size=f.size,
                     url=file_url(f.execution_id or 0, f.id)) for f in files]


@router.get("/executions/{execution_id}/files/{file_id}",
            responses={200: {"content": {"application/octet-stream": {}}}})
async def download_file(execution_id: int, file_id: int,
                        key: Annotated[KeyInfo, Depends(caller)],
                        request: Request) -> Response:
    """A file an execution's code made (or one shared with it), as an attachment."""
    api = api_of(request)
    stored = None
    if key.tenant_id is not None:
        async with api.service.rt.repo(key.tenant_id) as repo:
            stored = await tenant_file(repo, file_id)
    if stored is None or stored.execution_id != execution_id:
        raise HTTPException(404, "no such file for this key")
    file = await load(api.service.rt.settings.files_dir, stored)
    return Response(file.data, media_type=file.media_type, headers={
        "Content-Disposition": f'attachment; filename="{safe_name(file.name)}"',
        "X-Content-Type-Options": "nosniff",
    })
