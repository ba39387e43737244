"""The diagnostics uploads and incidents panel of the charge point page."""

from django import template

register = template.Library()


@register.inclusion_tag("diagnostics/_charge_point_work.html", takes_context=True)
def charge_point_work_panel(context, charge_point):
    return {"charge_point": charge_point, "request": context.get("request"), "user": context.get("user")}
