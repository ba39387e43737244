import pytest
from django.urls import reverse
from django.utils import timezone

from sessions.models import IdToken
from stations.models import (
    ChargePoint,
    Connector,
    Evse,
    Operator,
    RegistrationStatus,
    Role,
    Site,
    StatusChange,
    User,
)
from stations.services import status_record
from tests.factories import CHARGER_PASSWORD, PASSWORD, ChargePointFactory, IdTokenFactory, UserFactory

pytestmark = pytest.mark.django_db

NEW_CHARGER_PASSWORD = "brand-new-charger-secret-77"


@pytest.fixture
def superuser(db):
    return UserFactory(
        email="root@chargedesk.example", is_staff=True, is_superuser=True, role=Role.OPERATOR_ADMIN
    )


@pytest.fixture
def su_client(client, superuser):
    assert client.login(email=superuser.email, password=PASSWORD)
    return client


@pytest.fixture
def network(charge_point, other_charge_point, driver, operator_admin):
    """A bit of everything, so that every changelist and change page has rows to show."""
    status_record(
        charge_point=charge_point,
        connector_id=1,
        status="Faulted",
        error_code="GroundFailure",
        timestamp=timezone.now(),
    )
    IdTokenFactory(driver=driver, token="04AABBCCDDEE80", label="Blue card")
    return {"charge_point": charge_point, "other_charge_point": other_charge_point}


def admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def form_data(response):
    """The POST data a browser would send back for an admin change form, as rendered."""
    data = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        forms += [formset.management_form, *formset.forms]
    for form in forms:
        for bound in form:
            value = bound.value()
            if value is None or value is False:
                continue
            if value is True:
                value = "on"
            data[bound.html_name] = value
    return data


ALL_MODELS = [User, Operator, Site, ChargePoint, Evse, Connector, StatusChange, IdToken]


def _any_object(model):
    return model.objects.order_by("pk").first()


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
def test_changelist_and_change_page_load(su_client, network, model):
    response = su_client.get(admin_url(model, "changelist"))
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1

    obj = _any_object(model)
    response = su_client.get(admin_url(model, "change", obj.pk))
    assert response.status_code == 200


@pytest.mark.parametrize("model", [m for m in ALL_MODELS if m is not StatusChange], ids=lambda m: m.__name__)
def test_add_page_loads(su_client, network, model):
    assert su_client.get(admin_url(model, "add")).status_code == 200


def test_status_history_is_read_only(su_client, network):
    row = StatusChange.objects.get()

    assert su_client.get(admin_url(StatusChange, "add")).status_code == 403
    response = su_client.get(admin_url(StatusChange, "change", row.pk))
    assert response.status_code == 200
    assert response.context["has_change_permission"] is False
    assert (
        su_client.post(admin_url(StatusChange, "change", row.pk), {"status": "Available"}).status_code == 403
    )
    assert su_client.post(admin_url(StatusChange, "delete", row.pk), {"post": "yes"}).status_code == 403
    assert StatusChange.objects.get().status == "Faulted"


def test_admin_is_for_staff_only(client, network, operator_admin):
    client.force_login(operator_admin)  # operator staff use the ChargeDesk pages, not the admin

    response = client.get(admin_url(ChargePoint, "changelist"))

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_charge_point_search(su_client, network):
    response = su_client.get(admin_url(ChargePoint, "changelist"), {"q": "VW-0001"})

    assert [cp.identity for cp in response.context["cl"].result_list] == ["VW-0001"]


def test_charge_point_filters(su_client, network, operator):
    pending = ChargePointFactory(
        site=network["charge_point"].site,
        identity="VW-PENDING",
        registration_status=RegistrationStatus.PENDING,
    )
    url = admin_url(ChargePoint, "changelist")

    by_status = su_client.get(url, {"registration_status__exact": "Pending"})
    by_operator = su_client.get(url, {"operator__id__exact": operator.pk})
    offline = su_client.get(url, {"is_connected__exact": "0"})

    assert list(by_status.context["cl"].result_list) == [pending]
    assert {cp.identity for cp in by_operator.context["cl"].result_list} == {"VW-0001", "VW-PENDING"}
    assert list(offline.context["cl"].result_list) == []


def test_other_changelist_searches_and_filters(su_client, network, operator):
    sites = su_client.get(admin_url(Site, "changelist"), {"q": "Harbour"})
    assert [s.name for s in sites.context["cl"].result_list] == ["Harbour"]
    sites = su_client.get(admin_url(Site, "changelist"), {"operator__id__exact": operator.pk})
    assert [s.name for s in sites.context["cl"].result_list] == ["Central Station"]

    users = su_client.get(admin_url(User, "changelist"), {"role__exact": Role.OPERATOR_ADMIN})
    assert "admin@voltway.example" in {u.email for u in users.context["cl"].result_list}
    assert "alice@example.com" not in {u.email for u in users.context["cl"].result_list}

    tokens = su_client.get(admin_url(IdToken, "changelist"), {"q": "alice@example.com"})
    assert [t.token for t in tokens.context["cl"].result_list] == ["04AABBCCDDEE80"]

    history = su_client.get(admin_url(StatusChange, "changelist"), {"error_code": "GroundFailure"})
    assert len(history.context["cl"].result_list) == 1
    connectors = su_client.get(admin_url(Connector, "changelist"), {"status__exact": "Faulted"})
    assert [str(c) for c in connectors.context["cl"].result_list] == ["VW-0001 #1"]


def test_set_charger_password_stores_a_hash_and_never_shows_it(su_client, network):
    cp = network["charge_point"]
    url = admin_url(ChargePoint, "change", cp.pk)
    page = su_client.get(url)
    assert cp.password_hash not in page.content.decode()
    data = form_data(page)
    data["new_password"] = NEW_CHARGER_PASSWORD

    response = su_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    cp.refresh_from_db()
    assert cp.check_password(NEW_CHARGER_PASSWORD)
    assert not cp.check_password(CHARGER_PASSWORD)
    assert NEW_CHARGER_PASSWORD not in cp.password_hash
    page = su_client.get(url).content.decode()
    assert cp.password_hash not in page
    assert cp.password_hash.split("$")[-1] not in page
    assert NEW_CHARGER_PASSWORD not in page


def test_saving_without_a_new_password_keeps_the_old_one(su_client, network):
    cp = network["charge_point"]
    url = admin_url(ChargePoint, "change", cp.pk)
    data = form_data(su_client.get(url))
    data["name"] = "Front row"

    assert su_client.post(url, data).status_code == 302

    cp.refresh_from_db()
    assert cp.name == "Front row"
    assert cp.check_password(CHARGER_PASSWORD)


@pytest.mark.parametrize("password", ["short-password", "y" * 41])
def test_charger_password_of_wrong_length_is_refused(su_client, network, password):
    cp = network["charge_point"]
    url = admin_url(ChargePoint, "change", cp.pk)
    data = form_data(su_client.get(url))
    data["new_password"] = password

    response = su_client.post(url, data)

    assert response.status_code == 200
    assert "new_password" in response.context["adminform"].form.errors
    cp.refresh_from_db()
    assert cp.check_password(CHARGER_PASSWORD)


def test_password_hash_cannot_be_filtered_on(su_client, network):
    response = su_client.get(admin_url(ChargePoint, "changelist"), {"password_hash__startswith": "charger"})

    assert response.status_code == 400


def test_connector_added_inline_gets_its_evse(su_client, network):
    cp = network["charge_point"]
    url = admin_url(ChargePoint, "change", cp.pk)
    data = form_data(su_client.get(url))
    data.update(
        {
            "connectors-TOTAL_FORMS": "3",
            "connectors-2-connector_id": "3",
            "connectors-2-standard": "IEC_62196_T2_COMBO",
            "connectors-2-power_type": "DC",
            "connectors-2-max_power_kw": "150",
        }
    )

    response = su_client.post(url, data)

    assert response.status_code == 302
    connector = Connector.objects.get(charge_point=cp, connector_id=3)
    assert connector.evse.charge_point == cp and connector.evse.evse_id == 3


def test_site_of_another_operator_is_refused(su_client, network, other_operator):
    cp = network["charge_point"]
    url = admin_url(ChargePoint, "change", cp.pk)
    data = form_data(su_client.get(url))
    data["site"] = network["other_charge_point"].site_id

    response = su_client.post(url, data)

    assert response.status_code == 200
    assert "site" in response.context["adminform"].form.errors


def test_approve_and_reject_actions_touch_only_pending(su_client, network):
    site = network["charge_point"].site
    first = ChargePointFactory(site=site, identity="VW-P1", registration_status=RegistrationStatus.PENDING)
    second = ChargePointFactory(site=site, identity="VW-P2", registration_status=RegistrationStatus.PENDING)
    accepted = network["charge_point"]
    url = admin_url(ChargePoint, "changelist")

    response = su_client.post(
        url, {"action": "approve_charge_points", "_selected_action": [first.pk, accepted.pk]}, follow=True
    )
    su_client.post(url, {"action": "reject_charge_points", "_selected_action": [second.pk, first.pk]})

    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert "1 charge point approved." in messages
    assert "1 was not pending and was left as it was." in messages
    status = dict(ChargePoint.objects.values_list("identity", "registration_status"))
    assert status["VW-P1"] == RegistrationStatus.ACCEPTED  # approved before, not pending any more
    assert status["VW-P2"] == RegistrationStatus.REJECTED
    assert status["VW-0001"] == RegistrationStatus.ACCEPTED


def test_add_charge_point_with_password(su_client, network, operator, site):
    url = admin_url(ChargePoint, "add")
    data = form_data(su_client.get(url))
    data.update(
        {
            "identity": "VW-NEW-1",
            "operator": operator.pk,
            "site": site.pk,
            "new_password": NEW_CHARGER_PASSWORD,
            "connectors-TOTAL_FORMS": "1",
            "connectors-0-connector_id": "1",
            "connectors-0-standard": "IEC_62196_T2",
            "connectors-0-power_type": "AC_3_PHASE",
            "connectors-0-max_power_kw": "22",
        }
    )

    response = su_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    cp = ChargePoint.objects.get(identity="VW-NEW-1")
    assert cp.check_password(NEW_CHARGER_PASSWORD)
    assert cp.connectors.get().evse.evse_id == 1


def test_add_user_by_email(su_client, network, operator, client):
    response = su_client.post(
        admin_url(User, "add"),
        {
            "email": "new.tech@voltway.example",
            "role": Role.TECHNICIAN,
            "operator": operator.pk,
            "password1": "a-long-and-unusual-pass-31",
            "password2": "a-long-and-unusual-pass-31",
        },
    )

    assert response.status_code == 302
    user = User.objects.get(email="new.tech@voltway.example")
    assert (user.role, user.operator) == (Role.TECHNICIAN, operator)
    assert user.check_password("a-long-and-unusual-pass-31")


def test_add_staff_user_without_operator_is_refused(su_client, network):
    response = su_client.post(
        admin_url(User, "add"),
        {
            "email": "nobody@voltway.example",
            "role": Role.TECHNICIAN,
            "password1": "a-long-and-unusual-pass-31",
            "password2": "a-long-and-unusual-pass-31",
        },
    )

    assert response.status_code == 200
    assert "operator" in response.context["adminform"].form.errors
    assert not User.objects.filter(email="nobody@voltway.example").exists()


def test_add_user_with_an_existing_email_in_other_case_is_refused(su_client, network):
    response = su_client.post(
        admin_url(User, "add"),
        {
            "email": "Alice@example.com",
            "role": Role.DRIVER,
            "password1": "a-long-and-unusual-pass-31",
            "password2": "a-long-and-unusual-pass-31",
        },
    )

    assert response.status_code == 200
    assert "email" in response.context["adminform"].form.errors


def test_changelists_do_not_query_per_row(su_client, network, django_assert_max_num_queries):
    site = network["charge_point"].site
    for n in range(30):
        ChargePointFactory(site=site, identity=f"VW-BULK-{n:02d}")

    with django_assert_max_num_queries(20):
        assert su_client.get(admin_url(ChargePoint, "changelist")).status_code == 200


def test_site_page_links_to_its_charge_points(su_client, network):
    site = network["charge_point"].site

    page = su_client.get(admin_url(Site, "change", site.pk)).content.decode()

    assert f"?site__id__exact={site.pk}" in page
    assert "1 charge points" in page


def test_what_the_charger_reported_at_boot_is_read_only(su_client, network):
    cp = network["charge_point"]
    url = admin_url(ChargePoint, "change", cp.pk)
    assert "vendor" in su_client.get(url).context["adminform"].form.fields

    ChargePoint.objects.filter(pk=cp.pk).update(last_boot_at=timezone.now())
    response = su_client.get(url)

    form = response.context["adminform"].form
    assert "vendor" not in form.fields and "firmware_version" not in form.fields
    assert "is_connected" not in form.fields and "status" not in form.fields
    assert "Alfen" in response.content.decode()


def test_user_password_change_page_works_for_the_email_user(su_client, network, driver, client):
    url = reverse("admin:auth_user_password_change", args=[driver.pk])
    assert su_client.get(url).status_code == 200

    response = su_client.post(
        url, {"password1": "a-long-and-unusual-pass-31", "password2": "a-long-and-unusual-pass-31"}
    )

    assert response.status_code == 302
    driver.refresh_from_db()
    assert driver.check_password("a-long-and-unusual-pass-31")
