"""The Admin API client against an independent fake of the documented endpoints."""

from __future__ import annotations

import json
from datetime import date

import pytest

from conftest import TEST_KEY
from exporter.client import USER_AGENT, AdminClient, ApiError, AuthError
from fake_admin_api import error_body

DAY = date(2026, 1, 15)


def client_for(api, **kwargs) -> tuple[AdminClient, list[float]]:
    sleeps: list[float] = []
    kwargs.setdefault("sleep", sleeps.append)
    return AdminClient(api.url, TEST_KEY, **kwargs), sleeps


def test_usage_pages_follow_the_cursor_to_the_last_page(fake_api):
    client, _ = client_for(fake_api)
    pages = list(client.usage_pages(DAY))
    assert [len(p.records) for p in pages] == [2, 2]
    assert fake_api.calls[("claude_code_usage", "2026-01-15")] == 2


def test_users_follow_after_id_to_the_last_page(fake_api):
    client, _ = client_for(fake_api)
    assert [m.email for m in client.list_users()] == [
        "alice@example.com",
        "bob@example.com",
        "carol@example.com",
    ]


def test_requests_carry_the_documented_headers_and_the_project_user_agent(fake_api):
    seen = {}
    answer = fake_api.answer

    def spy(path, query, headers):
        seen.update(headers)
        return answer(path, query, headers)

    fake_api.answer = spy
    client, _ = client_for(fake_api)
    client.list_users()
    assert seen["anthropic-version"] == "2023-06-01"
    assert seen["x-api-key"] == TEST_KEY
    assert seen["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("claude-code-analytics-exporter/")


def test_429_is_retried_after_the_retry_after_delay(fake_api):
    fake_api.faults = [(429, {"Retry-After": "7"}, error_body("rate_limit_error", "slow down"))]
    client, sleeps = client_for(fake_api)
    assert len(client.list_users()) == 3
    assert sleeps and sleeps[0] >= 7


@pytest.mark.parametrize("status", [500, 502, 503, 529])
def test_server_errors_are_retried_with_backoff(fake_api, status):
    fake_api.faults = [(status, {}, error_body("api_error", "boom"))] * 2
    client, sleeps = client_for(fake_api, backoff=0.5)
    assert len(client.list_users()) == 3
    assert len(sleeps) == 2
    assert all(0 <= s <= 0.5 * 2**i for i, s in enumerate(sleeps))


def test_retries_are_bounded_and_the_failure_names_the_status(fake_api):
    fake_api.faults = [(503, {}, error_body("overloaded_error", "busy"))] * 10
    client, sleeps = client_for(fake_api, max_retries=2)
    with pytest.raises(ApiError) as info:
        client.list_users()
    assert info.value.code == "503"
    assert "gave up after 3 tries" in str(info.value)
    assert len(sleeps) == 2


def test_an_authentication_failure_is_not_retried_and_never_shows_the_key(fake_api):
    client = AdminClient(fake_api.url, "sk-ant-admin01-wrong", sleep=lambda s: None)
    with pytest.raises(AuthError) as info:
        client.list_users()
    assert info.value.code == "401"
    assert "authentication_error" in str(info.value)
    assert "sk-ant" not in str(info.value) and "sk-ant" not in repr(client)
    assert fake_api.calls[("users", None)] == 0


def test_truncated_json_is_retried(fake_api):
    fake_api.faults = [(200, {}, b'{"data": [')]
    client, sleeps = client_for(fake_api)
    assert len(client.list_users()) == 3
    assert len(sleeps) == 1


def test_a_hanging_api_times_out_and_is_reported(fake_api):
    fake_api.hang.set()
    client, _ = client_for(fake_api, timeout=0.2, max_retries=1)
    with pytest.raises(ApiError) as info:
        client.list_users()
    assert info.value.code == "timeout"
    fake_api.hang.clear()


def test_a_repeating_cursor_stops_the_day_instead_of_looping(fake_api):
    page = json.loads(json.dumps(fake_api.usage["2026-01-15"][0]))
    fake_api.usage["2026-01-15"] = [page, page]
    page_again = dict(page, next_page=page["next_page"])
    fake_api.usage["2026-01-15"].append(page_again)
    client, _ = client_for(fake_api)
    with pytest.raises(ApiError, match="repeats a cursor"):
        list(client.usage_pages(DAY))


def test_requests_are_reported_to_the_hook_with_endpoint_and_code(fake_api):
    fake_api.faults = [(500, {}, error_body("api_error", "boom"))]
    seen = []
    client, _ = client_for(fake_api)
    client.on_request = lambda endpoint, code, failed: seen.append((endpoint, code, failed))
    client.list_users()
    assert seen == [("users", "500", True), ("users", "200", False), ("users", "200", False)]


def test_unreachable_api_is_a_connection_error():
    client = AdminClient("http://127.0.0.1:9", TEST_KEY, max_retries=1, sleep=lambda s: None)
    with pytest.raises(ApiError) as info:
        client.list_users()
    assert info.value.code == "connection_error"
    assert "cannot reach" in str(info.value)
