"""The OpenAPI schema is valid and the interactive docs are served locally."""

import pytest
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


def test_openapi_schema_is_valid(api_client):
    response = api_client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    validate(schema)
    paths = schema["paths"]
    for path in (
        "/api/v1/stations/",
        "/api/v1/stations/{id}/",
        "/api/v1/operator/sites/",
        "/api/v1/operator/charge-points/{identity}/",
        "/api/v1/me/",
        "/api/v1/me/id-tokens/",
        "/api/v1/auth/token/",
    ):
        assert path in paths
    params = {p["name"] for p in paths["/api/v1/stations/"]["get"]["parameters"]}
    assert {"latitude", "longitude", "radius_km", "standard", "min_power_kw"} <= params


def test_schema_generation_has_no_warnings():
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_docs_use_local_assets_only(client):
    html = client.get("/api/v1/docs/").content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html
    assert "/static/drf_spectacular_sidecar/" in html
