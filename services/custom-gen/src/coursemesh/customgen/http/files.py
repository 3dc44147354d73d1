"""``/me/custom-courses/{id}/files``: the manifest of a course's files, and each file streamed
through the service with byte ranges and its ETag, for clients that resume and verify
downloads (the presigned URLs of the manifest go to S3 directly instead)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, HeaderParameter
from litestar.response import Stream

from coursemesh.chassis.auth import Principal, authenticated
from coursemesh.chassis.errors import problem
from coursemesh.chassis.openapi import problems
from coursemesh.customgen.app import files
from coursemesh.customgen.app.views import FileManifestView
from coursemesh.customgen.bootstrap import runtime
from coursemesh.customgen.domain.files import NotModified, PartOfFile, RangeNotSatisfiable

NO_COURSE = (404, "CUSTOM_COURSE_NOT_FOUND")

RangeHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Range",
        description="One range: `bytes=a-b`, `bytes=a-` or `bytes=-n` (206). A malformed or "
        "multi-range value is ignored (200, whole file).",
    ),
]
IfNoneMatch = Annotated[
    str | None,
    HeaderParameter(name="If-None-Match", description="The ETag held: 304 while it is current."),
]
IfRange = Annotated[
    str | None,
    HeaderParameter(
        name="If-Range",
        description="The ETag the held part came from; when it is not current, the whole "
        "file is sent (200) instead of the range.",
    ),
]

_FILE_ANSWERS = {
    206: ResponseSpec(
        data_container=bytes,
        media_type="audio/mpeg",
        description="One byte range of the file (`Range: bytes=a-b`, `bytes=a-`, `bytes=-n`), "
        "with `Content-Range`",
        generate_examples=False,
    ),
    304: ResponseSpec(
        data_container=None,
        description="`If-None-Match` holds the file's current ETag: no body",
        generate_examples=False,
    ),
}


class MyCourseFiles(Controller):
    path = "/me/custom-courses/{course_id:uuid}/files"
    guards = [authenticated]

    @get("/", opt=problems(NO_COURSE))
    async def manifest(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        course_id: FromPath[uuid.UUID],
    ) -> FileManifestView:
        rt = runtime(request)
        return await files.file_manifest(rt.courses, rt.adapters.store, principal.sub, course_id)

    @get(
        "/{file_id:str}",
        media_type="audio/mpeg",
        response_description="The whole file, with `ETag`, `Accept-Ranges: bytes`, "
        "`Content-Length`",
        responses=_FILE_ANSWERS,
        opt=problems(NO_COURSE, (404, "FILE_NOT_FOUND"), (416, "RANGE_NOT_SATISFIABLE")),
    )
    async def download(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        course_id: FromPath[uuid.UUID],
        file_id: FromPath[str],
        range_header: RangeHeader = None,
        if_none_match: IfNoneMatch = None,
        if_range: IfRange = None,
    ) -> Response[Any]:
        """The file's bytes, streamed from the store: `Accept-Ranges: bytes`, `ETag` (its
        SHA-256, or MD5 for older files). One range answers 206; a malformed or multi-range
        `Range` is ignored (200, whole file); `If-Range` not matching the ETag: 200 whole."""
        rt = runtime(request)
        download = await files.download_file(
            rt.courses,
            rt.adapters.store,
            user_id=principal.sub,
            course_id=course_id,
            file_id=file_id,
            range_header=range_header,
            if_none_match=if_none_match,
            if_range=if_range,
        )
        entry, delivery = download.entry, download.delivery
        common = {"ETag": entry.etag, "Accept-Ranges": "bytes"}
        if isinstance(delivery, NotModified):
            return Response(b"", status_code=304, headers=common)
        if isinstance(delivery, RangeNotSatisfiable):
            refused = problem(
                416,
                "Range Not Satisfiable",
                "RANGE_NOT_SATISFIABLE",
                f"The file has {delivery.size} bytes",
            )
            refused.headers.update({**common, "Content-Range": delivery.content_range})
            return refused
        assert download.body is not None
        answer_headers = {**common, "Content-Length": str(download.body.length)}
        status = 200
        if isinstance(delivery, PartOfFile):
            status = 206
            answer_headers["Content-Range"] = delivery.content_range
        return Stream(
            download.body.chunks(),
            status_code=status,
            media_type=entry.media_type,
            headers=answer_headers,
        )
