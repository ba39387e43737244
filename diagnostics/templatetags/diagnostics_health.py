"""The health panel of the charge point page (power over time, status timeline)."""

from django import template

register = template.Library()


@register.inclusion_tag("diagnostics/_charge_point_health.html", takes_context=True)
def charge_point_health_panel(context, charge_point):
    return {"charge_point": charge_point, "request": context.get("request")}
