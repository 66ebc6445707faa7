"""Paging for the dashboard and the models page: one page of a filtered list, the links to
the pages around it, and the query string that keeps the filters (the live refresh asks for the
same page)."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest

from deployments import constants as st
from deployments.filters import _ListFilter


def page_context(request: HttpRequest, filterset: _ListFilter) -> dict[str, Any]:
    """The visible page of `filterset` and what the template needs to page and refresh it."""
    paginator = Paginator(filterset.qs, st.PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    # What the user asked for, without the page number: the filter form and the page links
    # keep it; the live refresh sends it with the page number.
    kept = request.GET.copy()
    kept.pop("page", None)
    query = kept.urlencode()
    here = kept.copy()
    here["page"] = str(page.number)
    return {
        "filter": filterset,
        "page": page,
        "rows": page.object_list,
        "query": query,
        "page_query": here.urlencode(),
        "narrowed": filterset.active,
        "first_shown": page.start_index(),
        "last_shown": page.end_index(),
        "total": paginator.count,
    }
