"""The proofs chart is well-formed SVG for any history; jobs report progress and keep their failure."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from contracts import errors
from datasov.web.chart import EpochPoint, proofs_chart
from datasov.web.errors import explain
from datasov.web.jobs import Job, Jobs

points = st.lists(
    st.builds(
        EpochPoint,
        epoch=st.integers(0, 2**32 - 1),
        proofs=st.integers(0, 10_000),
        missed=st.integers(0, 10_000),
        earned=st.integers(0, 10**30),
    ),
    max_size=40,
)


@given(points)
def test_the_chart_is_svg_with_one_bar_per_epoch_inside_its_box(history: list[EpochPoint]) -> None:
    out = proofs_chart(history)
    if not history:
        assert "no epochs" in out
        return
    svg = ET.fromstring(out)
    bars = [r for r in svg.iter("rect") if r.get("class") == "proof"]
    assert len(bars) == len(history)
    for bar in svg.iter("rect"):
        x, y, w, h = (float(bar.get(k, "nan")) for k in ("x", "y", "width", "height"))
        assert 0 <= x <= x + w <= 640
        assert 0 <= y <= y + h <= 200 + 1e-6


def test_the_chart_escapes_its_unit() -> None:
    out = proofs_chart([EpochPoint(1, 1, 0, 5)], unit="<b>tok</b>")
    assert "<b>" not in out
    ET.fromstring(out)


async def test_a_job_reports_progress_per_stage_and_its_result() -> None:
    release = asyncio.Event()

    async def work(job: Job) -> str:
        job.progress("encode", 40, 100)
        job.progress("encode", 80, 100)  # never past its total
        await release.wait()
        job.progress("upload", 10, 300)  # a new stage starts from zero
        return "all done"

    jobs = Jobs()
    job = jobs.start("publish", "publish x", work, explain=explain)
    await asyncio.sleep(0)  # let it start
    assert (job.state, job.stage, job.done, job.total) == ("running", "encode", 100, 100)
    release.set()
    assert job.task is not None
    await job.task
    assert job.to_json() | {"id": 0} == {
        "id": 0, "kind": "publish", "title": "publish x", "stage": "upload", "done": 10, "total": 300,
        "state": "done", "message": "all done", "link": "",
    }  # fmt: skip
    assert jobs.get(job.job_id) is job


async def test_a_failed_job_keeps_the_reason_in_words() -> None:
    async def work(_job: Job) -> str:
        raise errors.revert_class("ConsentIsRevoked")("ConsentIsRevoked(datasetId=4)", values={"datasetId": 4})

    job = Jobs().start("fetch", "fetch", work, explain=explain)
    assert job.task is not None
    await job.task
    assert job.state == "failed"
    assert "the owner of dataset 4 has revoked consent" in job.message


async def test_stopping_the_app_cancels_running_jobs() -> None:
    async def work(_job: Job) -> str:
        await asyncio.Event().wait()
        return "never"

    jobs = Jobs()
    job = jobs.start("fetch", "fetch", work, explain=explain)
    await asyncio.sleep(0)
    await jobs.cancel_all()
    assert job.state == "failed"
    assert "cancelled" in job.message
