"""Rules of the store's policy (policy.md) that a blueprint's gold actions can be checked against.

Each function is a policy check for `apigen blueprint --policy-checks`: it takes some of
`initial_state`, `actions`, `results` and `final_state` (by name) and returns the violations it
finds, as a list of strings (empty when the blueprint keeps the rule).
"""

from __future__ import annotations

from typing import Any

AUTHENTICATION = ("find_user_by_email", "find_user_by_name_zip")
OPEN_TO_ALL = ("list_products", "get_product")


def authenticate_first(actions: list[dict[str, Any]]) -> list[str]:
    """The customer is found by email or by name and zip before any tool but the product catalogue."""
    for position, action in enumerate(actions, start=1):
        if action["name"] in AUTHENTICATION:
            return []
        if action["name"] not in OPEN_TO_ALL:
            return [f"action {position} `{action['name']}` comes before the customer is authenticated"]
    return []


def only_the_customers_own_orders(
    initial_state: dict[str, Any], actions: list[dict[str, Any]], results: list[dict[str, Any]]
) -> list[str]:
    """Every order an action names belongs to the customer the authentication found."""
    customer = next((result.get("result") for result in results if result["name"] in AUTHENTICATION and result["ok"]), None)
    orders = initial_state["OnlineStore"]["orders"]
    violations = []
    for position, action in enumerate(actions, start=1):
        order_id = action["arguments"].get("order_id")
        if isinstance(order_id, str) and order_id.strip().lstrip("#") in orders:
            owner = orders[order_id.strip().lstrip("#")]["user_id"]
            if owner != customer:
                violations.append(f"action {position} `{action['name']}` acts on order {order_id} of {owner}, not of {customer}")
    return violations


def _not_a_check(text: str) -> str:  # a helper: its parameter is not one a check takes
    return text
