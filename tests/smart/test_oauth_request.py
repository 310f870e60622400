"""oauthlib requests built from parameters Django parsed (smart.oauth_request)."""

from smart.oauth_request import ParsedRequest


def test_parameters_are_attributes_that_never_shadow_the_request():
    pairs = [("client_id", "app-1"), ("launch", "l-1"), ("uri", "https://evil.example/"), ("headers", "x"),
             ("_params", "y"), ("uri_query_params", "z")]  # fmt: skip
    request = ParsedRequest("/o/authorize/", "GET", pairs, {"Host": "ehr.example"})

    # what oauthlib and the validator read
    assert request.client_id == "app-1"
    assert request.launch == "l-1"
    assert request.code is None  # oauthlib's default for a parameter not given
    # the request's own attributes and properties win over parameters of the same name
    assert request.uri == "/o/authorize/"
    assert request.headers["Host"] == "ehr.example"
    assert request._params["client_id"] == "app-1"
    assert request.uri_query_params == pairs
    # and a value set later (as oauthlib sets `scopes`, `client`, `user`) is what is read back
    request.client_id = "app-2"
    assert request.client_id == "app-2"
