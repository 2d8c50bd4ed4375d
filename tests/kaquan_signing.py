"""The open API's request signature, as an integrator writes it (README,
「开放接口」): HMAC-SHA256 with the API secret over

    METHOD \\n PATH \\n QUERY \\n TIMESTAMP \\n NONCE \\n hex(SHA-256(body))

Shared by the fuzz pass and the generated-client test.
"""

import hashlib
import hmac
import secrets
import time


def signature_headers(key_id, secret, method, path, query, body):
    """The four X-Kaquan-* headers for one request."""
    timestamp = str(int(time.time()))
    nonce = secrets.token_hex(16)
    canonical = "\n".join(
        [method.upper(), path, query, timestamp, nonce, hashlib.sha256(body).hexdigest()]
    )
    return {
        "X-Kaquan-Key": key_id,
        "X-Kaquan-Timestamp": timestamp,
        "X-Kaquan-Nonce": nonce,
        "X-Kaquan-Signature": hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest(),
    }
