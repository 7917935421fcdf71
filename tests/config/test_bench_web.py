"""The web benchmark's reference views stay out of production (its smoke run is in test_benchmarks.py)."""

from __future__ import annotations

import pytest
from django.urls import Resolver404, resolve


@pytest.mark.parametrize("path", ["/bench/hello/", "/bench/insert/", "/bench/insert-sealed/"])
def test_the_benchmark_views_are_not_in_the_project_urls(path: str) -> None:
    with pytest.raises(Resolver404):
        resolve(path, urlconf="config.urls")
    assert resolve(path, urlconf="bench.urls")
