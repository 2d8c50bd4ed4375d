"""A fuzz pass over the OpenAPI document of a running kaquan, signed in as
an owner: no request may get a 5xx, every error answer must be the one
JSON envelope ({"error": {"code", "message"}}), and every answer must match
the document (its status, content type and body schema). The signed open
API is fuzzed with real signatures, as the mall's client sends them.

Run by scripts/fuzz, which starts the server; KAQUAN_URL, KAQUAN_USERNAME
and KAQUAN_PASSWORD say where and as whom.
"""

import os
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import requests
import schemathesis
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from kaquan_signing import signature_headers  # noqa: E402

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


def _api_key():
    """An open-API key, so /open/v1 is fuzzed past its signature check."""
    response = requests.post(
        f"{BASE}/api/v1/api-keys",
        json={"label": "fuzz"},
        headers={"X-CSRF-Token": CSRF},
        cookies=COOKIES,
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["key_id"], response.json()["secret"]


KEY_ID, SECRET = _api_key()
HTTP = requests.Session()


def call_signed(case):
    """Sends an /open/v1 case signed as the README says, with an
    Idempotency-Key on writes, as an integrator's client would."""
    kwargs = case.as_transport_kwargs(base_url=BASE)
    headers = dict(kwargs.pop("headers", None) or {})
    for name in list(headers):
        if name.lower().startswith("x-kaquan-"):
            del headers[name]
    if case.method.upper() == "POST":
        headers.setdefault("Idempotency-Key", str(uuid.uuid4()))
    prepared = requests.Request(headers=headers, **kwargs).prepare()
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    url = urlsplit(prepared.url)
    prepared.headers.update(
        signature_headers(KEY_ID, SECRET, prepared.method, url.path, url.query, body)
    )
    response = HTTP.send(prepared, timeout=60)
    SIGNED_STATUSES.append(response.status_code)
    return response


SIGNED_STATUSES = []

schema = schemathesis.openapi.from_url(f"{BASE}/api/v1/openapi.json").include(
    # Signing out would end the session the rest of the pass needs, and
    # revoking keys the key that signs the open API's cases.
    path_regex=r"^(?!/api/v1/sessions$)(?!/api/v1/api-keys/\{id\}/revoke$)",
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
    if case.path.startswith("/open/"):
        response = call_signed(case)
    else:
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


def test_signed_calls_got_past_the_signature():
    """The pass above really exercised the open API: most signed calls were
    judged on their content, not refused at the signature."""
    assert SIGNED_STATUSES, "no /open/v1 case ran"
    past = [s for s in SIGNED_STATUSES if s != 401]
    assert len(past) * 2 > len(SIGNED_STATUSES), sorted(set(SIGNED_STATUSES))


def test_every_example_fits_its_schema():
    """The document's examples are what the server sends and takes: each
    schema's example validates against that schema (request examples are
    also parsed as the server's own types when the document is built)."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    document = requests.get(f"{BASE}/api/v1/openapi.json", timeout=30).json()
    registry = Registry().with_resource(
        "urn:kaquan", Resource.from_contents(document, default_specification=DRAFT202012)
    )
    checked, problems = 0, []
    for name, schema in document["components"]["schemas"].items():
        if "example" not in schema:
            continue
        validator = Draft202012Validator(
            {"$ref": f"urn:kaquan#/components/schemas/{name}"},
            registry=registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        checked += 1
        problems += [f"{name}: {e.message}" for e in validator.iter_errors(schema["example"])]
    assert checked >= 50, checked
    assert not problems, problems
