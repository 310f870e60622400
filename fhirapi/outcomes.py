"""Provides OperationOutcome builders (FHIR R4 operationoutcome.html), as plain dicts.

Pure module. Issue codes come from http://hl7.org/fhir/issue-type; severity from issue-severity.
"""

from typing import Any

# HTTP status -> the issue type an error of that status carries by default.
ISSUE_CODE_FOR_STATUS: dict[int, str] = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    415: "not-supported",
    422: "processing",
    429: "throttled",
    500: "exception",
}


def issue(
    diagnostics: str,
    *,
    code: str = "processing",
    severity: str = "error",
    expression: list[str] | None = None,
) -> dict[str, Any]:
    """One OperationOutcome.issue."""
    entry: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        entry["expression"] = expression
    return entry


def operation_outcome(*issues: dict[str, Any]) -> dict[str, Any]:
    """An OperationOutcome with the given issues (at least one is required by the spec)."""
    if not issues:
        issues = (issue("All OK", code="informational", severity="information"),)
    return {"resourceType": "OperationOutcome", "issue": list(issues)}


def error_outcome(
    status: int, diagnostics: str, *, code: str | None = None, expression=None
) -> dict[str, Any]:
    """The OperationOutcome for an error answered with `status`."""
    return operation_outcome(
        issue(
            diagnostics, code=code or ISSUE_CODE_FOR_STATUS.get(status, "processing"), expression=expression
        )
    )
