"""Long steps the pages start and then watch: fetching a dataset, publishing a folder.

A :class:`Job` runs as an asyncio task in the server; its page polls ``GET /jobs/ID`` (JSON:
stage, done, total, state, message, result link) once a second and moves a progress bar. A job
that fails keeps the error's words (:func:`datasov.web.errors.explain`) for its page to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

JobState = Literal["running", "done", "failed"]


@dataclass
class Job:
    job_id: int
    kind: str  # "fetch" | "publish"
    title: str
    stage: str = "starting"
    done: int = 0
    total: int = 0
    state: JobState = "running"
    message: str = ""
    link: str = ""  # where to go when it is done
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def progress(self, stage: str, advance: int, total: int) -> None:
        """``progress(stage, bytes, total)``: the callback shape the publisher uses."""
        if stage != self.stage:
            self.stage, self.done = stage, 0
        self.done = min(total, self.done + advance) if total else self.done + advance
        self.total = total

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.job_id,
            "kind": self.kind,
            "title": self.title,
            "stage": self.stage,
            "done": self.done,
            "total": self.total,
            "state": self.state,
            "message": self.message,
            "link": self.link,
        }


Work = Callable[[Job], Awaitable[str]]
"""A job's body: does the work, reporting through ``job.progress``; returns the result message."""
Explain = Callable[[BaseException], str]


@dataclass
class Jobs:
    jobs: dict[int, Job] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def start(self, kind: str, title: str, work: Work, *, explain: Explain, link: str = "") -> Job:
        job = Job(next(self._ids), kind, title, link=link)

        async def body() -> None:
            try:
                job.message = await work(job)
                job.state = "done"
            except asyncio.CancelledError:
                job.state, job.message = "failed", "cancelled (the web app stopped)"
                raise
            except Exception as err:  # a failed job is shown on its page, never lost
                job.state, job.message = "failed", explain(err)

        job.task = asyncio.create_task(body(), name=f"web-{kind}-{job.job_id}")
        self.jobs[job.job_id] = job
        return job

    def get(self, job_id: int) -> Job | None:
        return self.jobs.get(job_id)

    async def cancel_all(self) -> None:
        for job in self.jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job.task
