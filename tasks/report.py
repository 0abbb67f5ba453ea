"""Publish a run's report to the Prefect UI: a markdown summary artifact."""

from __future__ import annotations

from prefect.artifacts import acreate_markdown_artifact

from dataactions.report import RunReport

__all__ = ["publish_report"]


async def publish_report(report: RunReport) -> None:
    key = "enrich-" + "".join(c if c.isalnum() else "-" for c in report.run_id.lower())
    await acreate_markdown_artifact(markdown=report.markdown(), key=key[:100],
                                    description=f"bulk enrichment run {report.run_id}")
