"""/metrics read by Prometheus's own text parser (prometheus_client) after
traffic, and /readyz: the counters move by exactly the requests sent, the
request histogram counts them by route pattern, a desk pickup is counted by
outcome, and the gauges (outbound queues, exports, the database engine)
are there. Run by scripts/client-test on SQLite and on PostgreSQL."""

import uuid

import requests
from prometheus_client.parser import text_string_to_metric_families

from test_webhooks import BASE, console


def scrape():
    response = requests.get(f"{BASE}/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def value(families, family, sample_name, **labels):
    """The sample's value, 0 when the series does not exist yet."""
    if family not in families:
        return 0
    for sample in families[family].samples:
        if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    return 0


def test_metrics_count_the_traffic_sent_and_readyz_answers():
    before = scrape()
    for _ in range(3):
        assert requests.get(f"{BASE}/api/v1/cards", timeout=30).status_code == 401
    for _ in range(2):
        assert requests.get(f"{BASE}/no-such-page-{uuid.uuid4().hex}", timeout=30).status_code == 404
    for _ in range(4):
        assert requests.get(f"{BASE}/healthz", timeout=30).status_code == 200
    staff = console()
    refused = staff.post(
        f"{BASE}/api/v1/pickups",
        json={"channel": "store", "number": "999999999999", "password": "12345678", "goods_id": 1},
        timeout=30,
    )
    assert refused.status_code == 422, refused.text
    ready = requests.get(f"{BASE}/readyz", timeout=30)
    assert (ready.status_code, ready.text) == (200, "ready")
    after = scrape()

    def delta(family, sample_name, **labels):
        return value(after, family, sample_name, **labels) - value(before, family, sample_name, **labels)

    requests_total = ("kaquan_http_requests", "kaquan_http_requests_total")
    assert after["kaquan_http_requests"].type == "counter"
    assert delta(*requests_total, method="GET", route="/api/v1/cards", status="401") == 3
    assert delta(*requests_total, method="GET", route="unmatched", status="404") == 2
    assert delta(*requests_total, method="GET", route="/healthz", status="200") == 4
    assert delta(*requests_total, method="GET", route="/readyz", status="200") == 1
    # No series is made of the address asked for.
    assert not any("no-such-page" in str(s.labels) for s in after["kaquan_http_requests"].samples)
    histogram = after["kaquan_http_request_duration_seconds"]
    assert histogram.type == "histogram"
    assert delta("kaquan_http_request_duration_seconds", "kaquan_http_request_duration_seconds_count",
                 method="GET", route="/healthz") == 4
    buckets = [s for s in histogram.samples
               if s.name.endswith("_bucket") and s.labels.get("route") == "/healthz"]
    assert buckets and max(s.value for s in buckets) >= 4
    assert delta("kaquan_operations", "kaquan_operations_total",
                 operation="pickup", outcome="unknown_number") == 1
    for queue in ("webhooks", "sms", "erp"):
        assert value(after, "kaquan_outbox_pending", "kaquan_outbox_pending", queue=queue) >= 0
        assert "kaquan_outbox_oldest_age_seconds" in after
    assert "kaquan_export_jobs_running" in after
    assert "kaquan_sqlite_writer_queue" in after or "kaquan_postgres_pool_in_use" in after
