"""Tenant isolation over the whole REST API: two operators (A and B, each an admin and a
technician) and two drivers (A and B), each with one of everything the API serves. Nothing of
side B reaches side A, drivers and operator staff cannot reach each other's data, and
technicians cannot do what only operator admins may.

The routes come from the URL resolver, not from a list typed here: a new route is checked by
the generic checks below, or the test fails until it is classified (ALLOWLIST, WRITE_CASES or
NO_REFERENCE_WRITES, each with its reason).

"The same as for something that does not exist" is the rule throughout: a foreign id in a
URL, a filter or a body gets the answer a made-up id gets, so nothing tells which ids exist.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal as D
from urllib.parse import urlencode

import pytest
from django.apps import apps
from django.db import models, transaction
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django_filters import ModelChoiceFilter, ModelMultipleChoiceFilter
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.test import APIClient, APIRequestFactory

from alerts.models import (
    Alert,
    Channel,
    Delivery,
    DeliveryStatus,
    MaintenanceWindow,
    Notification,
    PushKind,
    PushSubscription,
    WebhookEndpoint,
)
from alerts.services import preferences
from billing.api import IsOperatorAdmin
from billing.models import (
    CustomerGroup,
    Payment,
    PaymentProvider,
    PaymentStatus,
    ReportJob,
    ReportStatus,
    Tariff,
    TariffAssignment,
)
from diagnostics.models import FirmwareCampaign, FirmwareCampaignTarget, Incident, LogUpload, Ticket
from sessions.models import IdToken, Transaction
from stations.models import ChargePoint, Command, CommandStatus, Site, User
from stations.permissions import IsOperatorStaff
from tests.billing.test_pages import card, make_invoice
from tests.billing.test_pricing import comp, make_tariff
from tests.factories import (
    ChargePointFactory,
    ConnectorFactory,
    DriverFactory,
    IdTokenFactory,
    IncidentFactory,
    OperatorAdminFactory,
    OperatorFactory,
    SiteFactory,
    TechnicianFactory,
    TicketFactory,
)
from tests.sessions.factories import ReservationFactory, TransactionFactory

pytestmark = pytest.mark.django_db

PREFIX = "api/v1/"
NAMESPACE = "api"
MISSING_ID = 987654321
MISSING_IDENTITY = "NO-SUCH-CP"

# Routes the generic checks leave out, each for its reason. Every entry must still exist.
ALLOWLIST = {
    "api-root": "the router's index: links to the routes, no data",
    "schema": "the OpenAPI schema: the same document for everyone",
    "docs": "Swagger UI page: static, loads the schema",
    "redoc": "ReDoc page: static, loads the schema",
    "auth-token": "sign-in: email and password in, the caller's own token out; no tenant data",
    # The public station finder shows every operator's public stations to anyone, by design;
    # test_station_finder_shows_only_public_stations checks it shows nothing else.
    "station-list": "public station finder (test_station_finder_shows_only_public_stations)",
    "station-detail": "public station finder (test_station_finder_shows_only_public_stations)",
}

# Routes with a URL argument that are not viewsets (whose model and lookup are read from the
# viewset): which of a side's objects to put in the URL.
API_VIEW_TARGETS = {
    # Another operator's *public* stations show their tariff to anyone (the price a driver
    # will pay); their other charge points must not.
    "station-tariff": lambda side: [{"identity": side.cp_private.identity}],
    "me-session-cost": lambda side: [{"pk": tx.pk} for tx in side.objects[Transaction]],
}

# Query parameters outside django-filter that name another object: a foreign one must be
# answered as a made-up one.
QUERY_REFERENCES = [
    ("diagnostics-health", "site", lambda side: side.site_private.pk, MISSING_ID),
    ("diagnostics-uptime", "site", lambda side: side.site_private.pk, MISSING_ID),
    ("diagnostics-log-upload-list", "charge_point", lambda side: side.cp_private.identity, MISSING_IDENTITY),
]

# Singletons read with these parameters (without them they only answer 400).
SELF_GET_PARAMS = {
    "operator-report-summary": lambda: {
        "start": (timezone.now() - dt.timedelta(days=7)).date().isoformat(),
        "end": timezone.now().date().isoformat(),
        "group_by": "site",
    },
}


# --- The routes, from the resolver -----------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    path: str
    pattern: URLPattern
    kwargs: tuple[str, ...]

    @property
    def callback(self):
        return self.pattern.callback

    @property
    def actions(self) -> dict[str, str] | None:
        return getattr(self.callback, "actions", None)

    @property
    def view_class(self):
        return getattr(self.callback, "cls", None) or self.callback.view_class

    @property
    def is_viewset(self) -> bool:
        return self.actions is not None

    @property
    def is_list(self) -> bool:
        return self.is_viewset and "list" in self.actions.values()

    @property
    def methods(self) -> list[str]:
        """The HTTP methods the route offers (HEAD and OPTIONS aside)."""
        allowed = self.view_class.http_method_names
        if self.is_viewset:
            return [m for m in self.actions if m in allowed and m not in ("head", "options")]
        return [
            m
            for m in ("get", "post", "put", "patch", "delete")
            if m in allowed and hasattr(self.view_class, m)
        ]

    @property
    def is_operator_route(self) -> bool:
        return self.path.startswith(("operator/", "diagnostics/"))

    def url(self, **kwargs) -> str:
        return reverse(f"{NAMESPACE}:{self.name}", kwargs=kwargs)


def _walk(patterns, prefix="", namespace=None):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern), p.namespace or namespace)
        else:
            yield prefix + str(p.pattern), namespace, p


def api_routes() -> list[Route]:
    routes = {}
    for path, namespace, pattern in _walk(get_resolver().url_patterns):
        if namespace != NAMESPACE or not path.startswith(PREFIX):
            continue
        kwargs = tuple(pattern.pattern.regex.groupindex)
        if "format" in kwargs:  # the router's ".json" twin of a route: the same view
            continue
        clean = path.removeprefix(PREFIX).replace("^", "").replace("$", "")
        routes.setdefault(pattern.name, Route(pattern.name, clean, pattern, kwargs))
    return list(routes.values())


ROUTES = api_routes()
CHECKED = [r for r in ROUTES if r.name not in ALLOWLIST]


def _view(route: Route, user, method="get", kwargs=None):
    """The route's view as a request of ``user`` would set it up (no dispatch)."""
    view = route.view_class(**route.callback.initkwargs)
    if route.is_viewset:
        view.action_map = route.actions
    view.args, view.kwargs = (), kwargs or {}
    view.format_kwarg = None
    request = view.initialize_request(getattr(APIRequestFactory(), method)("/"))
    request.user = user
    view.request = request
    if route.is_viewset:
        view.action = route.actions.get(method)
    return view


def served_model(route: Route) -> type[models.Model] | None:
    view = _view(route, User(), method=route.methods[0])
    try:
        return view.get_serializer_class().Meta.model
    except AttributeError:
        return None


def lookup_of(route: Route) -> tuple[str, str]:
    view = route.view_class
    return (view.lookup_url_kwarg or view.lookup_field), view.lookup_field


def targets(route: Route, side: Side) -> list[dict] | None:
    """URL arguments naming each of ``side``'s objects the route serves (None: unknown)."""
    if not route.kwargs:
        return [{}]
    if not route.is_viewset:
        make = API_VIEW_TARGETS.get(route.name)
        return make(side) if make else None
    if len(route.kwargs) != 1:
        return None
    (kwarg,) = route.kwargs
    url_kwarg, lookup_field = lookup_of(route)
    if kwarg == url_kwarg and "list" not in route.actions.values():
        objects = side.objects.get(served_model(route), [])
        return [{kwarg: getattr(obj, lookup_field)} for obj in objects] or None
    if kwarg == "identity":  # a route below a charge point
        return [{kwarg: cp.identity} for cp in side.objects[ChargePoint]]
    return None


def missing_target(route: Route, kwargs: dict) -> dict:
    """The same URL arguments, naming nothing."""
    missing = {}
    for name in kwargs:
        if name == "identity":
            missing[name] = MISSING_IDENTITY
        elif route.is_viewset and isinstance(served_model(route)._meta.pk, models.UUIDField):
            missing[name] = str(uuid.uuid4())
        else:
            missing[name] = MISSING_ID
    return missing


# --- The world ------------------------------------------------------------------------------


@dataclass
class Side:
    key: str
    operator: object = None
    admin: User = None
    technician: User = None
    driver: User = None
    site_public: Site = None
    site_private: Site = None
    cp_public: ChargePoint = None
    cp_private: ChargePoint = None
    reservation: object = None  # on cp_private, for a ReserveNow naming it
    objects: dict = field(default_factory=dict)
    markers: list[str] = field(default_factory=list)

    def add(self, *objs):
        for obj in objs:
            self.objects.setdefault(type(obj), []).append(obj)
        return objs[0]

    @property
    def viewers(self) -> list[User]:
        return [self.driver, self.admin, self.technician]


@dataclass
class World:
    a: Side
    b: Side


def build_side(key: str) -> Side:
    """One operator with its staff, network, tariffs, alerts and work; one driver who charges
    there, with cards, invoices, notifications, push subscriptions and a favourite. Every name
    carries the side's letter, and ``markers`` are strings only this side's data contains."""
    K = key.upper()
    s = Side(key)
    now = timezone.now()
    s.operator = s.add(OperatorFactory(name=f"{K}-Operator-{key}x", slug=f"operator-{key}x"))
    s.admin = s.add(OperatorAdminFactory(operator=s.operator, email=f"admin-{key}x@op{key}.example"))
    s.technician = s.add(TechnicianFactory(operator=s.operator, email=f"tech-{key}x@op{key}.example"))
    s.driver = s.add(DriverFactory(email=f"driver-{key}x@example.com"))
    s.site_public = s.add(SiteFactory(operator=s.operator, name=f"{K}-plaza-{key}x"))
    s.site_private = s.add(SiteFactory(operator=s.operator, name=f"{K}-depot-{key}x", is_public=False))
    # Offline chargers: a command that got through by mistake fails at once instead of waiting.
    s.cp_public = s.add(
        ChargePointFactory(site=s.site_public, identity=f"{K}CP-PUB-{key}x", is_connected=False)
    )
    s.cp_private = s.add(
        ChargePointFactory(site=s.site_private, identity=f"{K}CP-PRIV-{key}x", is_connected=False)
    )
    for cp in (s.cp_public, s.cp_private):
        ConnectorFactory(charge_point=cp, connector_id=1)

    token = s.add(IdTokenFactory(driver=s.driver, token=f"{K}TAG-{key}x", label=f"{K}-card-{key}x"))
    s.add(TransactionFactory(charge_point=s.cp_public, id_token=token, stopped=True))
    s.reservation = ReservationFactory(charge_point=s.cp_private, id_token=token)

    tariff = s.add(
        make_tariff(s.operator, [{"components": [comp("ENERGY", "0.40")]}], name=f"{K}-tariff-{key}x")
    )
    group = s.add(CustomerGroup.objects.create(operator=s.operator, name=f"{K}-group-{key}x"))
    group.members.add(s.driver)
    s.add(
        TariffAssignment.objects.create(tariff=tariff, operator=s.operator),  # the whole network
        TariffAssignment.objects.create(tariff=tariff, operator=s.operator, site=s.site_public),
        TariffAssignment.objects.create(
            tariff=tariff, operator=s.operator, site=s.site_private, customer_group=group
        ),
    )
    invoice = make_invoice(user=s.driver, operator=s.operator, number=f"{K}-INV-{key}x")
    s.add(invoice)
    s.add(
        Payment.objects.create(
            operator=s.operator,
            user=s.driver,
            transaction=s.objects[Transaction][0],
            provider=PaymentProvider.ACCOUNT,
            status=PaymentStatus.ON_ACCOUNT,
            currency="EUR",
            amount_captured=D("10.00"),
        )
    )
    s.add(card(s.driver, last4="4242", default=True))

    alert = Alert.objects.create(
        event_type="fault",
        dedup_key=f"{key}x-fault",
        operator=s.operator,
        charge_point=s.cp_private,
        title=f"{K}-alert-{key}x",
    )
    s.add(
        Notification.objects.create(
            alert=alert, user=s.driver, event_type="fault", title=f"{K}-note-{key}x", body="x"
        )
    )
    endpoint = s.add(
        WebhookEndpoint.objects.create(operator=s.operator, url=f"https://hooks.example.com/{key}x")
    )
    s.add(
        Delivery.objects.create(
            alert=alert,
            endpoint=endpoint,
            operator=s.operator,
            channel=Channel.WEBHOOK,
            status=DeliveryStatus.FAILED,
            target=f"https://hooks.example.com/{key}x",
        )
    )
    s.add(
        PushSubscription.objects.create(
            user=s.driver, kind=PushKind.MOBILE, endpoint=f"{K}-device-{key}x", platform="ios"
        )
    )
    preferences.add_favourite(user=s.driver, charge_point=s.cp_public)
    s.add(
        MaintenanceWindow.objects.create(
            operator=s.operator,
            charge_point=s.cp_private,
            starts_at=now + dt.timedelta(days=1),
            ends_at=now + dt.timedelta(days=1, hours=2),
            reason=f"{K}-works-{key}x",
        )
    )

    incident = s.add(IncidentFactory(charge_point=s.cp_private, title=f"{K}-incident-{key}x"))
    s.add(TicketFactory(charge_point=s.cp_private, incident=incident, title=f"{K}-ticket-{key}x"))
    command = s.add(
        Command.objects.create(
            charge_point=s.cp_private,
            action="Reset",
            payload={"type": "Soft"},
            status=CommandStatus.ACCEPTED,
            requested_by=s.admin,
        )
    )
    s.add(
        LogUpload.objects.create(
            charge_point=s.cp_private,
            command=command,
            requested_by=s.admin,
            expires_at=now + dt.timedelta(hours=1),
        )
    )
    campaign = s.add(
        FirmwareCampaign.objects.create(
            operator=s.operator,
            name=f"{K}-campaign-{key}x",
            location=f"https://fw.example.com/{key}x.bin",
            retrieve_at=now,
            created_by=s.admin,
        )
    )
    FirmwareCampaignTarget.objects.create(campaign=campaign, charge_point=s.cp_private)
    s.add(
        ReportJob.objects.create(
            operator=s.operator,
            requested_by=s.admin,
            params={"group_by": "site"},
            status=ReportStatus.DONE,
            result={"rows": []},
        )
    )
    # The suffix "-{key}x" makes each marker unique to the side (no marker of one side is a
    # substring of anything of the other's).
    s.markers = [
        s.operator.name,
        s.admin.email,
        s.technician.email,
        s.driver.email,
        s.site_public.name,
        s.site_private.name,
        s.cp_public.identity,
        s.cp_private.identity,
        token.token,
        token.label,
        tariff.name,
        group.name,
        invoice.number,
        f"{K}-note-{key}x",
        f"{K}-alert-{key}x",
        f"hooks.example.com/{key}x",
        f"{K}-device-{key}x",
        f"{K}-works-{key}x",
        f"{K}-incident-{key}x",
        f"{K}-ticket-{key}x",
        f"{K}-campaign-{key}x",
    ]
    return s


@pytest.fixture(scope="module")
def _module_world(django_db_setup, django_db_blocker):
    """The world, built once for the module inside a transaction rolled back at its end; each
    test runs in a savepoint within it (pytest-django's ``db``), so what one test changes the
    next does not see."""
    fast = override_settings(
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        OCPP_COMMAND_TIMEOUT=1,  # should a command slip through, it ends quickly
    )
    with django_db_blocker.unblock(), fast, transaction.atomic():
        yield World(a=build_side("a"), b=build_side("b"))
        transaction.set_rollback(True)


@pytest.fixture
def world(_module_world, db) -> World:
    return _module_world


def client_of(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def call(user: User, method: str, url: str, body=None):
    client = client_of(user)
    if method == "get":
        return client.get(url)
    return getattr(client, method)(url, body if body is not None else {}, format="json")


def text_of(response) -> str:
    return response.content.decode("utf-8", "replace")


def assert_no_markers(response, side: Side, where: str):
    text = text_of(response)
    leaked = [m for m in side.markers if m in text]
    assert not leaked, f"{where}: side {side.key.upper()}'s data in the answer: {leaked}"


# What changes nothing must leave every row of the project's apps (and API tokens) as it was.
TENANT_APPS = {"stations", "sessions", "billing", "alerts", "diagnostics"}


def snapshot() -> dict[str, list]:
    state = {}
    for model in apps.get_models(include_auto_created=True):
        if model.__module__.split(".")[0] in TENANT_APPS or model._meta.app_label == "authtoken":
            state[model._meta.label] = list(model.objects.order_by("pk").values_list())
    return state


def changed(before: dict, after: dict) -> list[str]:
    return sorted(label for label in before if before[label] != after[label])


# A body for writes on someone else's object: it would change something if it got through.
HIJACK = {
    "name": "hijacked",
    "label": "hijacked",
    "description": "hijacked",
    "reason": "hijacked",
    "status": "cancelled",
    "amount": "1.00",
    "resolution_notes": "hijacked",
}


# --- Every route is classified -----------------------------------------------------------------


def test_every_api_route_is_covered_or_allowlisted(world):
    names = {r.name for r in ROUTES}
    assert not set(ALLOWLIST) - names, f"allowlisted routes that no longer exist: {set(ALLOWLIST) - names}"
    assert len(CHECKED) > 30  # the resolver walk found the router
    problems = []
    for route in CHECKED:
        if route.is_viewset:
            model = served_model(route)
            if model is None:
                problems.append(f"{route.name}: no model found for the viewset")
                continue
            for side in (world.a, world.b):
                if not side.objects.get(model):
                    problems.append(f"{route.name}: the world has no {model.__name__} of side {side.key}")
        if route.kwargs and (targets(route, world.a) is None or targets(route, world.b) is None):
            problems.append(
                f"{route.name}: cannot name an object for {route.kwargs}; add to API_VIEW_TARGETS"
            )
        writes = [m for m in route.methods if m in ("post", "put", "patch")]
        if writes and route.name not in WRITE_ROUTES and route.name not in NO_REFERENCE_WRITES:
            problems.append(f"{route.name}: {writes} take a body: add WRITE_CASES or NO_REFERENCE_WRITES")
    stale = (set(NO_REFERENCE_WRITES) | WRITE_ROUTES) - names
    assert not stale, f"write classifications for routes that no longer exist: {stale}"
    assert not problems, "\n".join(problems)


# --- Lists: nothing of the other side ------------------------------------------------------------


def _rows(response) -> list[dict]:
    data = response.json()
    rows = data.get("results", data) if isinstance(data, dict) else data
    return rows if isinstance(rows, list) else []


def _keys_of(route: Route, objects) -> set[str]:
    lookup = lookup_of(route)[1]
    return {str(o.pk) for o in objects} | {str(getattr(o, lookup)) for o in objects}


def _row_keys(route: Route, rows) -> set[str]:
    lookup = lookup_of(route)[1]
    return {str(r[k]) for r in rows for k in ("id", lookup) if isinstance(r, dict) and k in r}


@pytest.mark.parametrize("route", [r for r in CHECKED if r.is_list], ids=lambda r: r.name)
def test_lists_show_nothing_of_the_other_side(world, route):
    model = served_model(route)
    seen_own = False
    for mine, theirs in ((world.a, world.b), (world.b, world.a)):
        foreign = _keys_of(route, theirs.objects[model])
        own = _keys_of(route, mine.objects[model])
        for viewer in mine.viewers:
            for kwargs in targets(route, mine):
                response = call(viewer, "get", route.url(**kwargs) + "?page_size=500")
                assert_no_markers(response, theirs, f"{route.name} as {viewer.email}")
                if response.status_code != 200:
                    assert response.status_code in (403, 404), (
                        route.name,
                        viewer.email,
                        response.status_code,
                    )
                    continue
                keys = _row_keys(route, _rows(response))
                assert not keys & foreign, (
                    f"{route.name} as {viewer.email} lists {keys & foreign} of the other side"
                )
                seen_own = seen_own or bool(keys & own)
    assert seen_own, f"{route.name}: no viewer saw any of their own side's objects; the world lacks some"


# --- Filters on related objects: no existence oracle ------------------------------------------


def _related_model(filterset_class, name):
    model = filterset_class._meta.model
    for part in filterset_class.base_filters[name].field_name.split("__"):
        model = model._meta.get_field(part).related_model
    return model


def _filters_on_objects(route: Route, user: User, kwargs: dict):
    view = _view(route, user, kwargs=kwargs)
    if DjangoFilterBackend not in view.filter_backends:
        return []
    filterset_class = DjangoFilterBackend().get_filterset_class(view, view.get_queryset())
    if filterset_class is None:
        return []
    return [
        (name, _related_model(filterset_class, name))
        for name, f in filterset_class.base_filters.items()
        if isinstance(f, ModelChoiceFilter | ModelMultipleChoiceFilter)
    ]


def _lister(route: Route, side: Side) -> tuple[User, dict] | None:
    for viewer in side.viewers:
        for kwargs in targets(route, side):
            if call(viewer, "get", route.url(**kwargs)).status_code == 200:
                return viewer, kwargs
    return None


@pytest.mark.parametrize("route", [r for r in CHECKED if r.is_list], ids=lambda r: r.name)
def test_filters_treat_foreign_ids_as_unknown(world, route):
    mine, theirs = world.a, world.b
    found = _lister(route, mine)
    assert found, f"{route.name}: nobody of side A may list it"
    viewer, kwargs = found
    base = route.url(**kwargs)
    for name, model in _filters_on_objects(route, viewer, kwargs):
        assert theirs.objects.get(model), f"{route.name}?{name}: the world has no {model.__name__} of side B"
        missing = call(viewer, "get", f"{base}?{urlencode({name: MISSING_ID})}")
        for obj in theirs.objects[model]:
            foreign = call(viewer, "get", f"{base}?{urlencode({name: obj.pk})}")
            assert (foreign.status_code, foreign.json()) == (missing.status_code, missing.json()), (
                f"{route.name}?{name}={obj.pk} (side B's) answers {foreign.status_code}, "
                f"a made-up id {missing.status_code}: it tells that B's id exists"
            )
        own = mine.objects.get(model, [])
        if own:  # the caller's own objects still filter
            assert call(viewer, "get", f"{base}?{urlencode({name: own[0].pk})}").status_code == 200


@pytest.mark.parametrize("name, param, value, missing", QUERY_REFERENCES, ids=lambda v: str(v))
def test_query_parameters_treat_foreign_ids_as_unknown(world, name, param, value, missing):
    route = next(r for r in ROUTES if r.name == name)
    viewer = world.a.admin
    foreign = call(viewer, "get", f"{route.url()}?{urlencode({param: value(world.b)})}")
    unknown = call(viewer, "get", f"{route.url()}?{urlencode({param: missing})}")
    assert foreign.status_code == unknown.status_code
    assert_no_markers(foreign, world.b, name)
    if foreign.status_code == 200:
        assert _rows(foreign) == _rows(unknown)


# --- Singletons: only the caller's own -----------------------------------------------------------


@pytest.mark.parametrize(
    "route",
    [r for r in CHECKED if not r.kwargs and not r.is_list and "get" in r.methods],
    ids=lambda r: r.name,
)
def test_singletons_show_nothing_of_the_other_side(world, route):
    params = SELF_GET_PARAMS.get(route.name, lambda: {})()
    url = route.url() + (f"?{urlencode(params)}" if params else "")
    for mine, theirs in ((world.a, world.b), (world.b, world.a)):
        for viewer in mine.viewers:
            response = call(viewer, "get", url)
            assert response.status_code in (200, 403), (route.name, viewer.email, text_of(response))
            assert_no_markers(response, theirs, f"{route.name} as {viewer.email}")


# --- Objects of the other side: as if they did not exist -----------------------------------------


OBJECT_ACTIONS = {"retrieve", "update", "partial_update", "destroy"}


def _attack_methods(route: Route) -> list[str]:
    """What the route offers; on a viewset's object route also what it does not (405s)."""
    methods = set(route.methods)
    if route.is_viewset and set(route.actions.values()) & OBJECT_ACTIONS:
        methods |= {"get", "put", "patch", "delete"}
    return sorted(methods)


def _victims(route: Route, viewer: User, world: World) -> list[dict]:
    """Whose objects ``viewer`` (side A) must not reach: side B's all; on the drivers' own
    routes, as staff, side A's driver's too."""
    found = list(targets(route, world.b))
    if viewer != world.a.driver and route.path.startswith("me/"):
        found += targets(route, world.a)
    return found


@pytest.mark.parametrize("route", [r for r in CHECKED if r.kwargs], ids=lambda r: r.name)
def test_objects_of_others_are_unreachable_and_unchanged(world, route):
    before = snapshot()
    for viewer in world.a.viewers:
        victims = _victims(route, viewer, world)
        missing_url = route.url(**missing_target(route, victims[0]))
        unknown_status = {m: call(viewer, m, missing_url, HIJACK).status_code for m in _attack_methods(route)}
        for kwargs in victims:
            for method in _attack_methods(route):
                response = call(viewer, method, route.url(**kwargs), HIJACK)
                where = f"{method.upper()} {route.url(**kwargs)} as {viewer.email}"
                allowed = (403, 404) if method in route.methods else (403, 404, 405)
                assert response.status_code in allowed, f"{where}: {response.status_code} {text_of(response)}"
                assert response.status_code == unknown_status[method], (
                    f"{where}: {response.status_code}, but {unknown_status[method]} for an object that does not exist"
                )
                assert_no_markers(response, world.b, where)
    assert not changed(before, snapshot()), f"{route.name}: rows changed: {changed(before, snapshot())}"


# --- Roles: drivers off the operator routes, technicians off the admins' writes -----------------


@pytest.mark.parametrize("route", [r for r in CHECKED if r.is_operator_route], ids=lambda r: r.name)
def test_drivers_are_refused_on_operator_routes(world, route):
    before = snapshot()
    for kwargs in targets(route, world.a):
        for method in route.methods:
            response = call(world.a.driver, method, route.url(**kwargs), HIJACK)
            assert response.status_code == 403, (
                f"{method.upper()} {route.url(**kwargs)}: {response.status_code}"
            )
    assert not changed(before, snapshot())


def _admin_only(route: Route, method: str) -> bool:
    permissions = _view(route, User(), method=method).get_permissions()
    if any(isinstance(p, IsOperatorAdmin) for p in permissions):
        return True
    return method != "get" and any(isinstance(p, IsOperatorStaff) for p in permissions)


ADMIN_WRITES = [
    (route, method)
    for route in CHECKED
    if route.is_operator_route
    for method in route.methods
    if method != "get" and _admin_only(route, method)
]


@pytest.mark.parametrize("route, method", ADMIN_WRITES, ids=lambda v: v.name if isinstance(v, Route) else v)
def test_technicians_may_not_do_what_only_admins_may(world, route, method):
    before = snapshot()
    for kwargs in targets(route, world.a):  # their own operator's objects
        response = call(world.a.technician, method, route.url(**kwargs), HIJACK)
        assert response.status_code == 403, f"{method.upper()} {route.url(**kwargs)}: {response.status_code}"
    assert not changed(before, snapshot())


# --- Bodies naming another side's objects ------------------------------------------------------


@dataclass(frozen=True)
class WriteCase:
    """``body(value)`` written by ``viewer`` of side A: with a value naming side B's object it
    is refused exactly as with a value naming nothing, and nothing is stored."""

    route: str
    method: str
    body: object  # (world, value) -> body
    foreign: object  # world -> value naming side B's object
    missing: object
    viewer: str = "admin"
    kwargs: object = None  # world -> URL arguments (side A's own object)
    status: int = 400


def _soon(hours: int) -> str:
    return (timezone.now() + dt.timedelta(hours=hours)).isoformat()


def _first(side: Side, model: type[models.Model]):
    return side.objects[model][0]


WRITE_CASES = [
    WriteCase(
        "operator-site-list",
        "post",
        lambda w, v: {
            "operator": v,
            "name": "New",
            "address": "1 St",
            "city": "X",
            "postal_code": "1",
            "country": "NL",
            "latitude": "52.1",
            "longitude": "4.1",
            "time_zone": "Europe/Amsterdam",
        },
        lambda w: w.b.operator.slug,
        "no-such-operator",
    ),
    WriteCase(
        "operator-site-detail",
        "patch",
        lambda w, v: {"operator": v},
        lambda w: w.b.operator.slug,
        "no-such-operator",
        kwargs=lambda w: {"pk": w.a.site_public.pk},
    ),
    WriteCase(
        "operator-charge-point-list",
        "post",
        lambda w, v: {"identity": "ANEW-1", "site": v},
        lambda w: w.b.site_private.pk,
        MISSING_ID,
    ),
    WriteCase(
        "operator-charge-point-list",
        "post",
        lambda w, v: {"identity": "ANEW-2", "operator": v},
        lambda w: w.b.operator.slug,
        "no-such-operator",
    ),
    WriteCase(
        "operator-charge-point-detail",
        "patch",
        lambda w, v: {"site": v},
        lambda w: w.b.site_private.pk,
        MISSING_ID,
        kwargs=lambda w: {"identity": w.a.cp_private.identity},
    ),
    WriteCase(
        "operator-charge-point-command-list",
        "post",
        lambda w, v: {
            "action": "ReserveNow",
            "payload": {"connectorId": 1, "idTag": "X", "expiryDate": _soon(1), "reservationId": v},
        },
        lambda w: w.b.reservation.pk,
        MISSING_ID,
        kwargs=lambda w: {"identity": w.a.cp_private.identity},
    ),
    WriteCase(
        "operator-command-list",
        "post",
        lambda w, v: {"action": "Reset", "payload": {"type": "Soft"}, "charge_points": [v]},
        lambda w: w.b.cp_private.identity,
        MISSING_IDENTITY,
    ),
    WriteCase(
        "me-session-list",
        "post",
        lambda w, v: {"charge_point": w.a.cp_public.identity, "connector_id": 1, "id_token": v},
        lambda w: _first(w.b, IdToken).pk,
        MISSING_ID,
        viewer="driver",
    ),
    WriteCase(
        "diagnostics-ticket-list",
        "post",
        lambda w, v: {"incident": v},
        lambda w: _first(w.b, Incident).pk,
        MISSING_ID,
    ),
    WriteCase(
        "diagnostics-ticket-list",
        "post",
        lambda w, v: {"title": "Broken", "charge_point": v},
        lambda w: w.b.cp_private.identity,
        MISSING_IDENTITY,
    ),
    WriteCase(
        "diagnostics-ticket-assign",
        "post",
        lambda w, v: {"assignee": v},
        lambda w: w.b.technician.pk,
        MISSING_ID,
        kwargs=lambda w: {"pk": _first(w.a, Ticket).pk},
    ),
    WriteCase(
        "diagnostics-log-upload-list",
        "post",
        lambda w, v: {"charge_point": v},
        lambda w: w.b.cp_private.identity,
        MISSING_IDENTITY,
    ),
    WriteCase(
        "diagnostics-firmware-campaign-list",
        "post",
        lambda w, v: {"name": "FW", "location": "https://fw.example.com/x.bin", "charge_points": [v]},
        lambda w: w.b.cp_private.identity,
        MISSING_IDENTITY,
    ),
    WriteCase(
        "me-favourite-station-list",
        "post",
        lambda w, v: {"charge_point": v},
        lambda w: w.b.cp_private.identity,
        MISSING_IDENTITY,
        viewer="driver",
    ),
    WriteCase(
        "me-push-subscription-unregister",
        "post",
        lambda w, v: {"endpoint": v},
        lambda w: _first(w.b, PushSubscription).endpoint,
        "no-such-device",
        viewer="driver",
        status=404,
    ),
    WriteCase(
        "operator-webhook-list",
        "post",
        lambda w, v: {"url": "https://hooks.example.com/new", "operator": v},
        lambda w: w.b.operator.slug,
        "no-such-operator",
    ),
    WriteCase(
        "operator-webhook-detail",
        "patch",
        lambda w, v: {"operator": v},
        lambda w: w.b.operator.slug,
        "no-such-operator",
        kwargs=lambda w: {"pk": _first(w.a, WebhookEndpoint).pk},
    ),
    WriteCase(
        "operator-maintenance-window-list",
        "post",
        lambda w, v: {"site": v, "starts_at": _soon(1), "ends_at": _soon(2)},
        lambda w: w.b.site_private.pk,
        MISSING_ID,
    ),
    WriteCase(
        "operator-maintenance-window-list",
        "post",
        lambda w, v: {"charge_point": v, "starts_at": _soon(1), "ends_at": _soon(2)},
        lambda w: w.b.cp_private.identity,
        MISSING_IDENTITY,
    ),
    *[
        WriteCase(
            "operator-tariff-assignment-list",
            "post",
            body,
            foreign,
            missing,
        )
        for body, foreign, missing in [
            (lambda w, v: {"tariff": v}, lambda w: _first(w.b, Tariff).pk, MISSING_ID),
            (
                lambda w, v: {"tariff": _first(w.a, Tariff).pk, "site": v},
                lambda w: w.b.site_private.pk,
                MISSING_ID,
            ),
            (
                lambda w, v: {"tariff": _first(w.a, Tariff).pk, "charge_point": v},
                lambda w: w.b.cp_private.identity,
                MISSING_IDENTITY,
            ),
            (
                lambda w, v: {"tariff": _first(w.a, Tariff).pk, "customer_group": v},
                lambda w: _first(w.b, CustomerGroup).pk,
                MISSING_ID,
            ),
        ]
    ],
    WriteCase(
        "operator-tariff-assignment-detail",
        "patch",
        lambda w, v: {"site": v},
        lambda w: w.b.site_private.pk,
        MISSING_ID,
        kwargs=lambda w: {"pk": w.a.objects[TariffAssignment][1].pk},
    ),
    WriteCase(
        "operator-report-job-list",
        "post",
        lambda w, v: {"start": "2025-01-01", "end": "2025-01-31", "site": v},
        lambda w: w.b.site_private.pk,
        MISSING_ID,
    ),
]
WRITE_ROUTES = {case.route for case in WRITE_CASES}

# Writes whose body names no other object: nothing there can point at another tenant.
NO_REFERENCE_WRITES = {
    "me": "the caller's own name and phone",
    "me-alert-settings": "the caller's own settings; event types and channels are global names",
    "me-billing-pay-debt": "no body: pays the caller's own debt",
    "me-id-token-detail": "only the label of the caller's own token (lookup: generic checks)",
    "me-session-stop": "no body (the session in the URL: generic checks)",
    "me-notification-read": "no body",
    "me-notification-read-all": "no body: the caller's own notifications",
    "me-push-subscription-list": "a device's endpoint: registering takes the device over on purpose "
    "(register_push); endpoints are unguessable push-service URLs",
    "me-payment-method-list": "a Stripe payment-method id, which only Stripe.js gives the card's holder; "
    "checked against Stripe (attach_payment_method)",
    "me-payment-method-setup-intent": "no body",
    "me-payment-method-default": "no body",
    "operator-tariff-list": "the tariff's own prices; the operator comes from the caller",
    "operator-tariff-detail": "the tariff's own prices",
    "operator-webhook-test": "no body",
    "operator-webhook-enable": "no body",
    "operator-webhook-disable": "a free-text reason",
    "operator-webhook-rotate-secret": "no body",
    "operator-delivery-retry": "no body",
    "operator-maintenance-window-publish": "no body",
    "diagnostics-ticket-set-status": "a status and notes",
    "diagnostics-firmware-campaign-start": "no body",
    "diagnostics-firmware-campaign-cancel": "no body",
    "operator-payment-refund": "an amount and a reason",
}


def _without(text: str, value) -> str:
    """The answer with the value it names blanked (a number only where quoted, as DRF quotes
    it: a bare digit elsewhere is another number)."""
    if isinstance(value, int):
        return text.replace(f'\\"{value}\\"', "<v>")
    return text.replace(str(value), "<v>")


@pytest.mark.parametrize(
    "case", WRITE_CASES, ids=[f"{c.route}-{c.method}-{i}" for i, c in enumerate(WRITE_CASES)]
)
def test_bodies_naming_the_other_sides_objects_are_refused(world, case):
    route = next(r for r in ROUTES if r.name == case.route)
    viewer = getattr(world.a, case.viewer)
    url = route.url(**(case.kwargs(world) if case.kwargs else {}))
    value = case.foreign(world)
    before = snapshot()
    foreign = call(viewer, case.method, url, case.body(world, value))
    assert not changed(before, snapshot()), f"{case.route}: stored something: {changed(before, snapshot())}"
    unknown = call(viewer, case.method, url, case.body(world, case.missing))
    assert foreign.status_code == case.status, f"{case.route}: {foreign.status_code} {text_of(foreign)}"
    assert unknown.status_code == case.status, f"{case.route}: {unknown.status_code} {text_of(unknown)}"
    # The same answer, up to the value itself.
    assert _without(text_of(foreign), value) == _without(text_of(unknown), case.missing)
    assert not changed(before, snapshot())


# --- The public station finder and its tariffs ---------------------------------------------------


def test_station_finder_shows_only_public_stations(world):
    near = {"latitude": "52.370216", "longitude": "4.895168", "radius_km": "5"}
    for viewer in (world.a.driver, world.a.admin):
        names = {s["name"] for s in _rows(call(viewer, "get", f"/api/v1/stations/?{urlencode(near)}"))}
        assert world.b.site_public.name in names
        assert world.b.site_private.name not in names
        assert call(viewer, "get", f"/api/v1/stations/{world.b.site_private.pk}/").status_code == 404
        assert call(viewer, "get", f"/api/v1/stations/{world.b.site_public.pk}/").status_code == 200


def test_station_tariff_only_of_public_stations_or_ones_own(world):
    url = "/api/v1/stations/{}/tariff/"
    for viewer in world.a.viewers:
        assert call(viewer, "get", url.format(world.b.cp_public.identity)).status_code == 200
        hidden = call(viewer, "get", url.format(world.b.cp_private.identity))
        assert hidden.status_code == 404
        assert hidden.json() == call(viewer, "get", url.format(MISSING_IDENTITY)).json()
    # The operator's own staff still see the tariff of their non-public station.
    for viewer in (world.a.admin, world.a.technician):
        assert call(viewer, "get", url.format(world.a.cp_private.identity)).status_code == 200
