"""Diagnostics log uploads: the request (GetDiagnostics with a single-use link), the upload
endpoint chargers post to (wrong token, oversized, used or expired refused; the right one taken
once), the operator-only download, the charge point page's panel, and the status events."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from diagnostics.models import LogUpload, LogUploadStatus
from diagnostics.services import uploads
from stations import services as station_services
from stations.models import Command, CommandStatus
from tests.factories import IncidentFactory

pytestmark = pytest.mark.django_db

BASE = "https://csms.example.com"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.DIAGNOSTICS_UPLOAD_MAX_BYTES = 1000
    settings.SITE_URL = ""


@pytest.fixture
def charger_answers(monkeypatch):
    """The charger takes GetDiagnostics (no socket: the command is recorded as answered)."""
    sent = []

    def fake_send(charge_point, action, payload, **kwargs):
        sent.append((charge_point.identity, action, payload))
        return Command.objects.create(
            charge_point=charge_point,
            action=action,
            payload=payload,
            status=CommandStatus.ACCEPTED,
            response={"fileName": "cp-diag.log"},
            requested_by=kwargs.get("requested_by"),
        )

    monkeypatch.setattr(uploads, "send_command", fake_send)
    return sent


@pytest.fixture
def upload(charge_point, charger_answers, operator_admin):
    return uploads.upload_request(charge_point=charge_point, base_url=BASE, requested_by=operator_admin)


def multipart(client, url, content: bytes, name="file", filename="log.txt"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(url, {name: SimpleUploadedFile(filename, content, content_type="text/plain")})


# --- The request ------------------------------------------------------------------------------


def test_request_sends_get_diagnostics_with_an_absolute_url_carrying_the_token(upload, charger_answers):
    assert upload.status == LogUploadStatus.REQUESTED
    assert upload.max_bytes == 1000
    assert upload.expires_at > timezone.now() + dt.timedelta(hours=1)
    assert upload.filename == "cp-diag.log"
    [(identity, action, payload)] = charger_answers
    assert (identity, action) == ("VW-0001", "GetDiagnostics")
    assert payload["location"] == f"{BASE}/diagnostics/upload/{upload.token}/"
    assert upload.command.action == "GetDiagnostics"


def test_request_to_an_offline_charger_fails_at_once(charge_point):
    charge_point.is_connected = False
    charge_point.save()
    upload = uploads.upload_request(charge_point=charge_point, base_url=BASE)
    assert upload.status == LogUploadStatus.FAILED
    assert upload.command.status == CommandStatus.OFFLINE


def test_request_needs_an_http_base_url(charge_point):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        uploads.upload_request(charge_point=charge_point, base_url="ftp://x")
    assert not LogUpload.objects.exists()


def test_request_button_on_the_charge_point_page(login, technician, charge_point, charger_answers, settings):
    settings.SITE_URL = "https://public.example.org"
    client = login(technician)
    page = client.get("/charge-points/VW-0001/").content.decode()
    assert "Request diagnostics" in page
    response = client.post("/diagnostics/charge-points/VW-0001/request-diagnostics/")
    assert response.status_code == 302
    upload = LogUpload.objects.get()
    assert upload.requested_by == technician
    assert (
        charger_answers[0][2]["location"] == f"https://public.example.org/diagnostics/upload/{upload.token}/"
    )


def test_request_without_site_url_uses_the_browsers_host(
    login, operator_admin, charge_point, charger_answers
):
    login(operator_admin).post(
        "/diagnostics/charge-points/VW-0001/request-diagnostics/", HTTP_HOST="ops.local:8000"
    )
    upload = LogUpload.objects.get()
    assert charger_answers[0][2]["location"] == f"http://ops.local:8000/diagnostics/upload/{upload.token}/"


# --- The upload endpoint ----------------------------------------------------------------------


def test_the_right_token_is_accepted_once(client, upload):
    url = f"/diagnostics/upload/{upload.token}/"
    response = multipart(client, url, b"line 1\nline 2\n", name="anything", filename="../../etc/passwd")
    assert response.status_code == 201
    upload.refresh_from_db()
    assert upload.status == LogUploadStatus.RECEIVED
    assert upload.size == 14 and upload.received_at is not None
    assert upload.filename == "passwd"
    with upload.file.open("rb") as f:
        assert f.read() == b"line 1\nline 2\n"
    again = multipart(client, url, b"second")
    assert again.status_code == 410
    upload.refresh_from_db()
    with upload.file.open("rb") as f:
        assert f.read() == b"line 1\nline 2\n"


def test_a_wrong_token_is_refused(client, upload):
    assert multipart(client, "/diagnostics/upload/not-the-token/", b"data").status_code == 404
    assert (
        client.put("/diagnostics/upload/not-the-token/", b"data", content_type="text/plain").status_code
        == 404
    )
    upload.refresh_from_db()
    assert upload.status == LogUploadStatus.REQUESTED and not upload.file


def test_an_oversized_multipart_file_is_refused_while_streaming(client, upload):
    response = multipart(client, f"/diagnostics/upload/{upload.token}/", b"x" * 1001)
    assert response.status_code == 413
    upload.refresh_from_db()
    assert upload.status == LogUploadStatus.REQUESTED and not upload.file
    # The limit is the file's size: exactly max_bytes still fits.
    assert multipart(client, f"/diagnostics/upload/{upload.token}/", b"x" * 1000).status_code == 201


def test_an_oversized_body_is_refused_by_its_content_length_before_reading(client, upload):
    class Unreadable:
        def read(self, *args):
            raise AssertionError("the body was read")

        readline = read

    response = client.generic(
        "PUT",
        f"/diagnostics/upload/{upload.token}/",
        b"",
        content_type="text/plain",
        CONTENT_LENGTH="5000000",
        **{"wsgi.input": Unreadable()},
    )
    assert response.status_code == 413
    upload.refresh_from_db()
    assert not upload.file


def test_an_oversized_put_is_refused(client, upload):
    response = client.put(f"/diagnostics/upload/{upload.token}/", b"y" * 1500, content_type="text/plain")
    assert response.status_code == 413
    assert not LogUpload.objects.get(pk=upload.pk).file


def test_a_put_with_the_file_name_in_the_url(client, upload):
    response = client.put(
        f"/diagnostics/upload/{upload.token}/VW-0001-diagnostics.log", b"hello", content_type="text/plain"
    )
    assert response.status_code == 201
    upload.refresh_from_db()
    assert upload.filename == "VW-0001-diagnostics.log" and upload.size == 5


def test_a_file_larger_than_the_request_body_limit_streams_to_storage(client, upload, settings):
    LogUpload.objects.filter(pk=upload.pk).update(max_bytes=5_000_000)
    body = b"0123456789abcdef" * (3_000_000 // 16)  # over DATA_UPLOAD_MAX_MEMORY_SIZE
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = client.put(
        f"/diagnostics/upload/{upload.token}/", body, content_type="application/octet-stream"
    )
    assert response.status_code == 201
    upload.refresh_from_db()
    assert upload.size == len(body)


def test_an_expired_token_is_gone(client, upload):
    LogUpload.objects.filter(pk=upload.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert multipart(client, f"/diagnostics/upload/{upload.token}/", b"late").status_code == 410
    upload.refresh_from_db()
    assert upload.status == LogUploadStatus.EXPIRED and not upload.file


def test_only_post_and_put(client, upload):
    assert client.get(f"/diagnostics/upload/{upload.token}/").status_code == 405


def test_the_endpoint_needs_no_csrf_token_but_the_pages_still_do(upload, operator_admin):
    client = Client(enforce_csrf_checks=True)
    assert multipart(client, f"/diagnostics/upload/{upload.token}/", b"ok").status_code == 201
    client.force_login(operator_admin)
    assert client.post("/diagnostics/charge-points/VW-0001/request-diagnostics/").status_code == 403


def test_a_body_without_a_file_is_a_bad_request(client, upload):
    assert client.post(f"/diagnostics/upload/{upload.token}/", {"field": "value"}).status_code == 400


# --- Download, panel and scoping ------------------------------------------------------------


def test_download_is_for_the_operators_staff_only(
    client, login, upload, technician, other_operator_admin, driver
):
    multipart(client, f"/diagnostics/upload/{upload.token}/", b"secret log")
    url = f"/diagnostics/uploads/{upload.pk}/download/"
    assert Client().get(url).status_code == 302  # to the login page
    staff = login(technician)
    response = staff.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"secret log"
    assert "attachment" in response["Content-Disposition"]
    staff.logout()
    assert login(other_operator_admin).get(url).status_code == 404
    assert login(driver).get(url).status_code == 403


def test_media_files_are_not_served_publicly(client, upload):
    multipart(client, f"/diagnostics/upload/{upload.token}/", b"secret log")
    upload.refresh_from_db()
    assert client.get(f"/media/{upload.file.name}").status_code == 404


def test_charge_point_panel_lists_uploads_and_open_incidents(
    login, operator_admin, client, upload, charge_point
):
    multipart(client, f"/diagnostics/upload/{upload.token}/", b"x" * 300)
    incident = IncidentFactory(charge_point=charge_point, title="Connector 2 stuck unavailable")
    IncidentFactory(charge_point=charge_point, title="Old and resolved", status="resolved")
    html = login(operator_admin).get("/charge-points/VW-0001/").content.decode()
    assert f'href="/diagnostics/uploads/{upload.pk}/download/"' in html
    assert "300" in html and "Received" in html
    assert f'href="/diagnostics/incidents/{incident.pk}/"' in html
    assert "Connector 2 stuck unavailable" in html and "Old and resolved" not in html


def test_another_operators_uploads_are_invisible(login, other_operator_admin, upload, other_charge_point):
    client = login(other_operator_admin)
    assert client.post("/diagnostics/charge-points/VW-0001/request-diagnostics/").status_code == 404
    html = client.get(f"/charge-points/{other_charge_point.identity}/").content.decode()
    assert upload.token not in html and f"/diagnostics/uploads/{upload.pk}/" not in html
    assert LogUpload.objects.count() == 1


# --- Status events -------------------------------------------------------------------------------


def test_upload_failed_from_the_charger_fails_the_waiting_request(upload, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        station_services.charger_diagnostics_status(
            charge_point_id=upload.charge_point_id, status="Uploading", at=timezone.now()
        )
    upload.refresh_from_db()
    assert upload.status == LogUploadStatus.REQUESTED
    with django_capture_on_commit_callbacks(execute=True):
        station_services.charger_diagnostics_status(
            charge_point_id=upload.charge_point_id, status="UploadFailed", at=timezone.now()
        )
    upload.refresh_from_db()
    assert upload.status == LogUploadStatus.FAILED


def test_a_received_upload_stays_received_after_the_status_report(
    client, upload, django_capture_on_commit_callbacks
):
    multipart(client, f"/diagnostics/upload/{upload.token}/", b"ok")
    with django_capture_on_commit_callbacks(execute=True):
        station_services.charger_diagnostics_status(
            charge_point_id=upload.charge_point_id, status="UploadFailed", at=timezone.now()
        )
    upload.refresh_from_db()
    assert upload.status == LogUploadStatus.RECEIVED
