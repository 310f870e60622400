"""Provides the error codes the authorization server's services raise, for views and tests to branch on."""

from enum import StrEnum


class LaunchErrorCode(StrEnum):
    """Why an EHR launch id cannot be used (smart.launch.launch_consume)."""

    UNKNOWN = "unknown"
    EXPIRED = "expired"
    CONSUMED = "consumed"
    WRONG_CLIENT = "wrong_client"
    WRONG_USER = "wrong_user"


class ClientAssertionErrorCode(StrEnum):
    """Why a private_key_jwt client assertion is refused (smart.client_auth, RFC 7523 §3)."""

    MALFORMED = "malformed"
    BAD_ALGORITHM = "bad_algorithm"
    BAD_TYPE = "bad_type"
    ISS_SUB_MISMATCH = "iss_sub_mismatch"
    CLIENT_ID_MISMATCH = "client_id_mismatch"
    UNKNOWN_CLIENT = "unknown_client"
    WRONG_AUTH_METHOD = "wrong_auth_method"
    JKU_NOT_REGISTERED = "jku_not_registered"
    UNKNOWN_KEY = "unknown_key"
    JWKS_UNAVAILABLE = "jwks_unavailable"
    BAD_SIGNATURE = "bad_signature"
    WRONG_AUDIENCE = "wrong_audience"
    EXPIRED = "expired"
    EXPIRES_TOO_LATE = "expires_too_late"
    MISSING_CLAIM = "missing_claim"
    REPLAYED = "replayed"
