"""README.md documents the paper exchange's admin API as the app serves it: every /__admin/ route
of the FastAPI app is in the route table with a curl example, every fault field is explained,
and the README names no admin route the app does not have."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from paper.admin import router
from paper.app import create_app
from paper.faults import Faults
from tests.support.paper import paper_settings

README = (Path(__file__).parents[2] / "README.md").read_text()
HEADING = "## The paper exchange\n"
# The section up to the next level-2 heading ("\n## " does not match "\n### ").
SECTION = README.split(HEADING, 1)[-1].split("\n## ", 1)[0]
ROUTE_IN_TEXT = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/__admin/[\w/]*)`")


def _api_routes(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """(full path, route) of every APIRoute, descending into included routers: FastAPI copies
    them into app.routes in older versions and keeps them behind one entry in newer ones."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from _api_routes(inner.routes, prefix + getattr(context, "prefix", ""))


def served() -> set[tuple[str, str]]:
    """(method, path) of every admin route the app serves."""
    app = create_app(paper_settings())
    found = set()
    for path, route in _api_routes(app.routes):
        if path.startswith(router.prefix + "/"):
            assert app.url_path_for(route.name) == path, f"the app does not route {route.name}"
            found.update((method, path) for method in route.methods)
    return found


def curl_examples() -> set[tuple[str, str]]:
    """(method, path) of the section's curl lines: `-X M` names the method, else `-d` means
    POST, else GET; the path is `$ADMIN/<name>` (ADMIN=…/__admin) or a full /__admin/ URL."""
    found = set()
    for line in SECTION.splitlines():
        if not line.startswith("curl "):
            continue
        explicit = re.search(r"-X (\w+)", line)
        method = explicit.group(1) if explicit else "POST" if " -d " in line else "GET"
        for name in re.findall(r"(?:\$ADMIN|/__admin)/(\w+)", line):
            found.add((method, f"{router.prefix}/{name}"))
    return found


def test_the_section_exists() -> None:
    assert HEADING in README, "README.md lost its '## The paper exchange' section"


def test_the_app_serves_the_admin_router() -> None:
    routes = served()
    assert routes, "no /__admin/ routes found on the paper exchange app"
    from_router = {
        (method, route.path)
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert routes == from_router


def test_every_admin_route_is_in_the_readme() -> None:
    missing = sorted(f"{m} {p}" for m, p in served() if f"`{m} {p}`" not in SECTION)
    assert missing == [], f"document these admin routes in README.md: {missing}"


def test_every_admin_route_has_a_curl_example() -> None:
    missing = sorted(f"{m} {p}" for m, p in served() - curl_examples())
    assert missing == [], f"add a curl example to README.md for: {missing}"


def test_the_readme_names_no_admin_route_the_app_lacks() -> None:
    routes = served()
    named = {(m, p) for m, p in ROUTE_IN_TEXT.findall(README)}
    stale = sorted(f"{m} {p}" for m, p in (named | curl_examples()) - routes)
    assert stale == [], f"README.md documents admin routes the app does not serve: {stale}"


def test_every_fault_field_is_in_the_readme() -> None:
    # drop_target/drop_count/drop_mode are set together through the `drop_response` object.
    missing = [
        name for name in Faults(seed=0).as_dict()
        if f"| `{name}` |" not in SECTION
        and not (name.startswith("drop_") and "| `drop_response` |" in SECTION)
    ]
    assert missing == [], f"document these fault fields in README.md: {missing}"
