"""`GET /metrics` read as Prometheus reads it: parsed with prometheus-client's own parser."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

Series = tuple[str, frozenset[tuple[str, str]]]
"""A sample's name and its labels."""


@dataclass(frozen=True)
class Scrape:
    """Every sample of one scrape."""

    samples: dict[Series, float]

    def value(self, name: str, **labels: str) -> float:
        """The sample with exactly these labels (0 when the series does not exist yet)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """The sum of the samples whose labels include these."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)

    def label_values(self) -> set[str]:
        """Every label value of every sample."""
        return {value for _, labels in self.samples for _, value in labels}

    def delta(self, before: Scrape, name: str, **labels: str) -> float:
        """How much a series grew since an earlier scrape."""
        return self.value(name, **labels) - before.value(name, **labels)


def parse(text: str) -> Scrape:
    """Parse Prometheus' text format (fails on anything the parser refuses)."""
    samples: dict[Series, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Scrape(samples)


async def scrape(http: httpx.AsyncClient, token: str | None = None) -> Scrape:
    """Scrape the API's /metrics (with a bearer token when given)."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version="), response.headers
    return parse(response.text)
