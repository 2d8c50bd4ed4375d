"""A fuzz pass over the OpenAPI document of a running kaquan, signed in as
an owner: no request may get a 5xx, every error answer must be the one
JSON envelope ({"error": {"code", "message"}}), and every answer must match
the document (its status, content type and body schema).

Run by scripts/fuzz, which starts the server; KAQUAN_URL, KAQUAN_USERNAME
and KAQUAN_PASSWORD say where and as whom.
"""

import os

import requests
import schemathesis
from hypothesis import HealthCheck, settings

BASE = os.environ["KAQUAN_URL"].rstrip("/")
EXAMPLES = int(os.environ.get("KAQUAN_FUZZ_EXAMPLES", "25"))


def _sign_in():
    response = requests.post(
        f"{BASE}/api/v1/sessions",
        json={
            "username": os.environ["KAQUAN_USERNAME"],
            "password": os.environ["KAQUAN_PASSWORD"],
        },
        timeout=30,
    )
    response.raise_for_status()
    return response.cookies, response.json()["csrf_token"]


COOKIES, CSRF = _sign_in()

schema = schemathesis.openapi.from_url(f"{BASE}/api/v1/openapi.json").include(
    # Signing out would end the session the rest of the pass needs.
    path_regex=r"^(?!/api/v1/sessions$)",
)


def check_envelope(response):
    """Every error answer is the one envelope, with a code and a message."""
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", "")
        if isinstance(content_type, list):  # schemathesis 4 keeps every value
            content_type = content_type[0] if content_type else ""
        assert content_type.startswith("application/json"), (
            f"{response.status_code} answered {content_type!r}: {response.text[:200]}"
        )
        body = response.json()
        error = body.get("error")
        assert isinstance(error, dict), body
        assert isinstance(error.get("code"), str) and error["code"], body
        assert isinstance(error.get("message"), str) and error["message"], body


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_answer_is_a_success_or_the_envelope(case):
    headers = {"X-CSRF-Token": CSRF}
    response = case.call(base_url=BASE, headers=headers, cookies=COOKIES, timeout=60)
    check_envelope(response)
    case.validate_response(
        response,
        checks=[
            schemathesis.checks.response_schema_conformance,
            schemathesis.checks.content_type_conformance,
        ],
    )
