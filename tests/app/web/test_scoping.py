"""Who sees what: advisors their rooftops, directors their group, nobody another group."""

from __future__ import annotations

import pytest

from tests.app.web.conftest import World, logged_in
from tests.support import ServedApp

SLUGS = ("bayview-toyota", "bayview-ford", "harbor-honda")
# login -> the rooftops whose data it may see
MATRIX = {
    "toyota.advisor@bayview.example": {"bayview-toyota"},
    "ford.advisor@bayview.example": {"bayview-ford"},
    "director@bayview.example": {"bayview-toyota", "bayview-ford"},
    "admin@bayview.example": {"bayview-toyota", "bayview-ford"},
    "director@harbor.example": {"harbor-honda"},
}


@pytest.mark.parametrize("email", sorted(MATRIX))
def test_pages_answer_404_for_what_one_may_not_see(
    world: World, served: ServedApp, email: str
) -> None:
    allowed = MATRIX[email]
    with logged_in(served, email) as client:
        for slug in SLUGS:
            expected = 200 if slug in allowed else 404
            where = f"{email} -> {slug}"
            assert client.get(f"/repair-orders/{world.ro[slug]}").status_code == expected, where
            assert client.get(f"/customers/{world.customer[slug]}").status_code == expected, where
            assert client.get(f"/board?rooftop={slug}").status_code == expected, where
            assert client.get(f"/board/rows?rooftop={slug}").status_code == expected, where
            inbox = client.get("/inbox").text
            assert (f"({slug})" in inbox) == (slug in allowed), where
            if slug not in allowed:
                # Acting on another rooftop's task by URL: 404, and nothing changes.
                board = client.get("/board").text
                token = board.split('name="csrf_token" value="')[1].split('"')[0]
                response = client.post(
                    f"/inbox/tasks/{world.task[slug]}/done", data={"csrf_token": token}
                )
                assert response.status_code == 404, where


def test_board_lists_only_the_rooftops_one_works_at(world: World, served: ServedApp) -> None:
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        board = client.get("/board").text
        assert "R1001" in board and "R1002" not in board
        assert "Bayview Ford" not in board
    with logged_in(served, "director@bayview.example") as client:
        board = client.get("/board").text
        assert "Bayview Ford" in board and "Harbor Honda" not in board


def test_reports_and_admin_are_not_for_advisors(world: World, served: ServedApp) -> None:
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        assert client.get("/reports").status_code == 404
        assert client.get("/reports/deflections.csv").status_code == 404
        assert client.get("/admin").status_code == 404
        assert "/reports" not in client.get("/board").text
    with logged_in(served, "director@bayview.example") as client:
        assert client.get("/reports").status_code == 200
        assert client.get("/admin").status_code == 404
    with logged_in(served, "admin@bayview.example") as client:
        assert client.get("/admin").status_code == 200
        assert client.get("/reports").status_code == 200


def test_the_json_api_accepts_the_browser_session(world: World, served: ServedApp) -> None:
    with logged_in(served, "toyota.advisor@bayview.example") as client:
        response = client.get("/api/v1/repair-orders")
        if response.status_code == 404:
            pytest.skip("the repair-orders API is not installed")
        assert response.status_code == 200
        assert "R1002" not in response.text
