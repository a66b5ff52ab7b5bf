"""A small online store: a stateful environment for multi-turn function-calling data.

``OnlineStore`` keeps customers (with an address and payment methods), products (each with
variants that have their own price and stock) and orders (lines of variants, a status, a
shipping address and the payments made). Each public method is a tool an agent may call: seven
read the store, ``transfer_to_human_agents`` hands the conversation over, six change it. A
request the store refuses (an unknown id, an order in the wrong status, too little stock) raises
``StoreError`` with a message that says why, and changes nothing.

The state is plain JSON (``load_state`` takes it, ``state`` returns it), so two stores compare
exactly and cheaply. Money is always integer cents (``price_cents``, ``total_cents``...), never a
float, so totals replayed in any order compare equal. Nothing depends on the clock or on chance:
the same calls on the same state give the same results and the same final state.

``initial_state.json`` beside this file is a realistic database for it; ``policy.md`` is the
policy an agent serving the store's customers follows.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Literal

ORDER_STATUSES = ("pending", "processing", "shipped", "delivered", "cancelled", "return requested", "exchange requested")
OrderStatus = Literal["pending", "processing", "shipped", "delivered", "cancelled", "return requested", "exchange requested"]
CancelReason = Literal["no longer needed", "ordered by mistake"]
_STATE_KEYS = ("users", "products", "orders")


class StoreError(Exception):
    """A request the store refuses; the message says what was wrong, and nothing was changed."""


class OnlineStore:
    """An online store's customers, products and orders, and the tools a support agent uses on them."""

    def __init__(self) -> None:
        self._users: dict[str, Any] = {}
        self._products: dict[str, Any] = {}
        self._orders: dict[str, Any] = {}
        self.load_state(DEFAULT_STATE)

    # --- state ------------------------------------------------------------------------

    def load_state(self, config: dict[str, Any]) -> None:
        """Replace the whole state with ``config``: ``{"users": {...}, "products": {...}, "orders": {...}}``.

        A key left out is empty. The state is copied (through JSON, so it must be JSON) and its
        references checked: every order's customer and every line's product and SKU exist.
        """
        if not isinstance(config, dict):
            raise StoreError(f"the state is a {type(config).__name__}, not an object with users, products and orders")
        unknown = sorted(set(config) - set(_STATE_KEYS))
        if unknown:
            raise StoreError(f"the state has unknown keys {unknown}; it holds only {list(_STATE_KEYS)}")
        try:
            data = json.loads(json.dumps({key: config.get(key, {}) for key in _STATE_KEYS}))
        except (TypeError, ValueError) as error:
            raise StoreError(f"the state is not plain JSON: {error}") from None
        for key in _STATE_KEYS:
            if not isinstance(data[key], dict):
                raise StoreError(f"`{key}` is a {type(data[key]).__name__}, not an object keyed by id")
        _check_references(data)
        self._users, self._products, self._orders = data["users"], data["products"], data["orders"]

    def state(self) -> dict[str, Any]:
        """The whole state as JSON: users, products and orders keyed by id (a copy)."""
        return copy.deepcopy({"users": self._users, "products": self._products, "orders": self._orders})

    # --- reads ------------------------------------------------------------------------

    def find_user_by_email(self, email: str) -> str:
        """Find a customer's user id by their email address.

        Args:
            email: The customer's email address, e.g. `maya.okafor@example.com` (case does not matter).

        Returns:
            The user id, e.g. `C-10482`.
        """
        wanted = _text(email, "email").strip().lower()
        for user_id, user in self._users.items():
            if user["email"].lower() == wanted:
                return str(user_id)
        raise StoreError(f"no customer has the email `{email}`")

    def find_user_by_name_zip(self, first_name: str, last_name: str, zip_code: str) -> str:
        """Find a customer's user id by their first and last name and the zip code of their address.

        Args:
            first_name: The customer's first name (case does not matter).
            last_name: The customer's last name (case does not matter).
            zip_code: The zip code of the customer's own address, e.g. `97205`.

        Returns:
            The user id, e.g. `C-10482`.
        """
        first = _text(first_name, "first_name").strip().lower()
        last = _text(last_name, "last_name").strip().lower()
        code = _text(zip_code, "zip_code").strip()
        for user_id, user in self._users.items():
            name = user["name"]
            if name["first_name"].lower() == first and name["last_name"].lower() == last and user["address"]["zip"] == code:
                return str(user_id)
        raise StoreError(f"no customer is named {first_name} {last_name} with the zip code {zip_code}")

    def get_user_details(self, user_id: str) -> dict[str, Any]:
        """Get a customer's details: name, email, address, payment methods and order ids.

        Args:
            user_id: The customer's user id, e.g. `C-10482`.
        """
        return copy.deepcopy(self._user(user_id))

    def list_user_orders(self, user_id: str, status: OrderStatus | None = None) -> list[dict[str, Any]]:
        """List a customer's orders, newest first, with their status, total and number of items.

        Args:
            user_id: The customer's user id, e.g. `C-10482`.
            status: Only the orders in this status; all of them when left out.
        """
        user = self._user(user_id)
        if status is not None and status not in ORDER_STATUSES:
            raise StoreError(f"`{status}` is not an order status; the statuses are {', '.join(ORDER_STATUSES)}")
        listed = []
        for order_id in reversed(user["orders"]):
            order = self._orders[order_id]
            if status is None or order["status"] == status:
                count = sum(line["quantity"] for line in order["items"])
                listed.append(
                    {"order_id": order_id, "status": order["status"], "total_cents": order["total_cents"], "items": count}
                )
        return listed

    def get_order_details(self, order_id: str) -> dict[str, Any]:
        """Get an order's details: its status, items, shipping address, total, payments and tracking number.

        Args:
            order_id: The order id, e.g. `ORD-318204` (the `#` some customers add is ignored).
        """
        return copy.deepcopy(self._order(order_id))

    def get_product(self, product_id: str) -> dict[str, Any]:
        """Get a product's details: its name, category and every variant with its options, price and stock.

        Args:
            product_id: The product id, e.g. `P-101`.
        """
        return copy.deepcopy(self._product(product_id))

    def list_products(self, category: str | None = None) -> list[dict[str, Any]]:
        """List the products the store sells, with their id, name and category.

        Args:
            category: Only the products of this category (e.g. `footwear`); every product when left out.
        """
        if category is not None:
            known = sorted({product["category"] for product in self._products.values()})
            if category not in known:
                raise StoreError(f"no product is in the category `{category}`; the categories are {', '.join(known)}")
        return [
            {"product_id": product_id, "name": product["name"], "category": product["category"]}
            for product_id, product in self._products.items()
            if category is None or product["category"] == category
        ]

    def transfer_to_human_agents(self, summary: str) -> str:
        """Transfer the customer to a human agent, with a summary of their request.

        Only for requests the policy does not let the agent handle, or when the customer asks for a
        human. It changes nothing in the store.

        Args:
            summary: What the customer wants and why it needs a human, in a sentence or two.
        """
        if not _text(summary, "summary").strip():
            raise StoreError("the summary is empty: say what the customer wants")
        return "Transfer successful: a human agent will take over the conversation."

    # --- writes -----------------------------------------------------------------------

    def cancel_pending_order(self, order_id: str, reason: CancelReason) -> dict[str, Any]:
        """Cancel a pending order: its items go back to stock and what was paid is refunded to how it was paid.

        Args:
            order_id: The id of the pending order, e.g. `ORD-318204`.
            reason: Why the customer cancels: `no longer needed` or `ordered by mistake`.

        Returns:
            The order as it is now.
        """
        order = self._pending(order_id)
        if reason not in ("no longer needed", "ordered by mistake"):
            raise StoreError(f"the reason is {reason!r}; it must be `no longer needed` or `ordered by mistake`")
        user = self._users[order["user_id"]]
        for line in order["items"]:
            self._variant(line["product_id"], line["sku"])["stock"] += line["quantity"]
        paid = _net_paid(order)
        held = sum(paid.values())  # what the store still holds: a difference refunded earlier is not refunded twice
        for method_id, amount in paid.items():
            refund = min(amount, held)
            if refund > 0:
                order["payments"].append({"type": "refund", "payment_method_id": method_id, "amount_cents": refund})
                _credit_gift_card(user, method_id, refund)
                held -= refund
        order["status"] = "cancelled"
        order["cancellation"] = {"reason": reason}
        return copy.deepcopy(order)

    def modify_pending_order_address(
        self, order_id: str, address1: str, city: str, state: str, zip_code: str, address2: str = "", country: str = "USA"
    ) -> dict[str, Any]:
        """Change the shipping address of a pending order.

        Args:
            order_id: The id of the pending order, e.g. `ORD-318204`.
            address1: The street address, e.g. `415 Alder Street`.
            city: The city.
            state: The state, as its two-letter code, e.g. `OR`.
            zip_code: The zip code, e.g. `97205`.
            address2: The apartment, suite or unit, if any.
            country: The country.

        Returns:
            The order as it is now.
        """
        order = self._pending(order_id)
        order["shipping_address"] = _address(address1, address2, city, state, zip_code, country)
        return copy.deepcopy(order)

    def modify_pending_order_items(
        self, order_id: str, skus: list[str], new_skus: list[str], payment_method_id: str
    ) -> dict[str, Any]:
        """Swap items of a pending order for other variants of the same products (another size or colour).

        An order's items can be modified once. The price difference is charged to, or refunded to,
        the payment method given.

        Args:
            order_id: The id of the pending order, e.g. `ORD-318204`.
            skus: The SKUs of the order's items to swap, e.g. `["SHOE-BLK-09"]`.
            new_skus: The SKU each one becomes, in the same order, a variant of the same product.
            payment_method_id: The customer's payment method that pays or receives the price difference.

        Returns:
            The order as it is now.
        """
        order = self._pending(order_id)
        if order["items_modified"]:
            raise StoreError(f"the items of order {order['order_id']} were already modified once; they cannot be again")
        user = self._users[order["user_id"]]
        swaps = self._swaps(order, skus, new_skus)
        difference = sum((new["price_cents"] - line["unit_price_cents"]) * line["quantity"] for line, new in swaps)
        _check_payment(user, payment_method_id, difference)
        for line, new in swaps:
            self._variant(line["product_id"], line["sku"])["stock"] += line["quantity"]
            new["stock"] -= line["quantity"]
            line.update(sku=new["sku"], options=copy.deepcopy(new["options"]), unit_price_cents=new["price_cents"])
        if difference:
            kind = "charge" if difference > 0 else "refund"
            order["payments"].append({"type": kind, "payment_method_id": payment_method_id, "amount_cents": abs(difference)})
            _credit_gift_card(user, payment_method_id, -difference)
        order["total_cents"] = _total(order["items"])
        order["items_modified"] = True
        return copy.deepcopy(order)

    def return_delivered_order_items(self, order_id: str, skus: list[str], refund_method_id: str) -> dict[str, Any]:
        """Request the return of items of a delivered order; they are refunded once the store receives them.

        Args:
            order_id: The id of the delivered order, e.g. `ORD-318204`.
            skus: The SKUs of the order's items to return, e.g. `["SHOE-BLK-09"]`; each line is returned whole.
            refund_method_id: Where the refund goes: the payment method the order was paid with, or one of the customer's gift cards.

        Returns:
            The order as it is now.
        """
        order = self._delivered(order_id)
        lines = self._lines(order, skus)
        user = self._users[order["user_id"]]
        original = order["payments"][0]["payment_method_id"]
        method = user["payment_methods"].get(refund_method_id) if isinstance(refund_method_id, str) else None
        if refund_method_id != original and (method is None or method["type"] != "gift_card"):
            raise StoreError(
                f"a refund goes to the order's original payment method `{original}` or to one of the customer's gift cards,"
                f" not `{refund_method_id}`"
            )
        refund = sum(line["unit_price_cents"] * line["quantity"] for line in lines)
        order["status"] = "return requested"
        order["return"] = {"skus": [line["sku"] for line in lines], "refund_method_id": refund_method_id, "refund_cents": refund}
        return copy.deepcopy(order)

    def exchange_delivered_order_items(
        self, order_id: str, skus: list[str], new_skus: list[str], payment_method_id: str
    ) -> dict[str, Any]:
        """Request the exchange of items of a delivered order for other variants of the same products.

        The new items are set aside from stock now; the customer sends the old ones back, and the
        price difference is settled with the payment method given when they arrive. An order can
        be exchanged (or returned) once.

        Args:
            order_id: The id of the delivered order, e.g. `ORD-318204`.
            skus: The SKUs of the order's items to exchange, e.g. `["SHOE-BLK-09"]`.
            new_skus: The SKU each one is exchanged for, in the same order, a variant of the same product.
            payment_method_id: The customer's payment method that pays or receives the price difference.

        Returns:
            The order as it is now.
        """
        order = self._delivered(order_id)
        user = self._users[order["user_id"]]
        swaps = self._swaps(order, skus, new_skus)
        difference = sum((new["price_cents"] - line["unit_price_cents"]) * line["quantity"] for line, new in swaps)
        _check_payment(user, payment_method_id, difference)
        for line, new in swaps:
            new["stock"] -= line["quantity"]
        order["status"] = "exchange requested"
        order["exchange"] = {
            "skus": [line["sku"] for line, _ in swaps],
            "new_skus": [new["sku"] for _, new in swaps],
            "payment_method_id": payment_method_id,
            "difference_cents": difference,
        }
        return copy.deepcopy(order)

    def update_user_address(
        self, user_id: str, address1: str, city: str, state: str, zip_code: str, address2: str = "", country: str = "USA"
    ) -> dict[str, Any]:
        """Change a customer's own address (the address of orders already placed stays as it is).

        Args:
            user_id: The customer's user id, e.g. `C-10482`.
            address1: The street address, e.g. `415 Alder Street`.
            city: The city.
            state: The state, as its two-letter code, e.g. `OR`.
            zip_code: The zip code, e.g. `97205`.
            address2: The apartment, suite or unit, if any.
            country: The country.

        Returns:
            The customer's details as they are now.
        """
        user = self._user(user_id)
        user["address"] = _address(address1, address2, city, state, zip_code, country)
        return copy.deepcopy(user)

    # --- lookups (not tools) ----------------------------------------------------------

    def _user(self, user_id: str) -> dict[str, Any]:
        found: dict[str, Any] | None = self._users.get(_text(user_id, "user_id").strip())
        if found is None:
            raise StoreError(f"no customer has the user id `{user_id}`")
        return found

    def _order(self, order_id: str) -> dict[str, Any]:
        found: dict[str, Any] | None = self._orders.get(_text(order_id, "order_id").strip().lstrip("#"))
        if found is None:
            raise StoreError(f"no order has the id `{order_id}`")
        return found

    def _product(self, product_id: str) -> dict[str, Any]:
        found: dict[str, Any] | None = self._products.get(_text(product_id, "product_id").strip())
        if found is None:
            raise StoreError(f"no product has the id `{product_id}`")
        return found

    def _variant(self, product_id: str, sku: str) -> dict[str, Any]:
        variant: dict[str, Any] = self._products[product_id]["variants"][sku]
        return variant

    def _pending(self, order_id: str) -> dict[str, Any]:
        order = self._order(order_id)
        if order["status"] != "pending":
            raise StoreError(f"order {order['order_id']} is {order['status']}, not pending: only a pending order can be changed")
        return order

    def _delivered(self, order_id: str) -> dict[str, Any]:
        order = self._order(order_id)
        if order["status"] != "delivered":
            raise StoreError(
                f"order {order['order_id']} is {order['status']}, not delivered: only a delivered order can be returned or exchanged"
            )
        return order

    def _lines(self, order: dict[str, Any], skus: list[str]) -> list[dict[str, Any]]:
        """The order's lines for ``skus``: each named once and each in the order."""
        wanted = _text_list(skus, "skus")
        if not wanted:
            raise StoreError("no SKU was given: name the items of the order")
        if len(set(wanted)) != len(wanted):
            raise StoreError(f"a SKU is named twice in {wanted}")
        by_sku = {line["sku"]: line for line in order["items"]}
        missing = [sku for sku in wanted if sku not in by_sku]
        if missing:
            raise StoreError(f"order {order['order_id']} has no item {', '.join(missing)}; its items are {', '.join(by_sku)}")
        return [by_sku[sku] for sku in wanted]

    def _swaps(self, order: dict[str, Any], skus: list[str], new_skus: list[str]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Each line to swap with the variant it becomes: same product, another variant, in stock."""
        lines = self._lines(order, skus)
        targets = _text_list(new_skus, "new_skus")
        if len(targets) != len(lines):
            raise StoreError(f"{len(lines)} SKUs are swapped for {len(targets)} new ones: give one new SKU for each")
        swaps = []
        for line, target in zip(lines, targets, strict=True):
            variants = self._products[line["product_id"]]["variants"]
            if target not in variants:
                raise StoreError(
                    f"`{target}` is not a variant of {line['name']} ({line['product_id']}), which `{line['sku']}` is"
                )
            if target == line["sku"]:
                raise StoreError(f"`{target}` would be swapped for itself: choose another variant")
            new = variants[target]
            if new["stock"] < line["quantity"]:
                raise StoreError(f"`{target}` has {new['stock']} in stock; {line['quantity']} are needed")
            swaps.append((line, new))
        swapped = {line["sku"] for line in lines}
        kept = [line["sku"] for line in order["items"] if line["sku"] not in swapped]
        after = kept + targets
        if len(set(after)) != len(after):
            raise StoreError(
                f"the order would list a SKU twice ({', '.join(sorted(sku for sku in after if after.count(sku) > 1))})"
            )
        return swaps


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise StoreError(f"`{name}` is a {type(value).__name__}, not a string")
    return value


def _text_list(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise StoreError(f"`{name}` must be a list of strings")
    return list(value)


def _address(address1: str, address2: str, city: str, state: str, zip_code: str, country: str) -> dict[str, str]:
    fields = {"address1": address1, "address2": address2, "city": city, "state": state, "zip": zip_code, "country": country}
    address = {key: _text(value, key).strip() for key, value in fields.items()}
    empty = [key for key, value in address.items() if not value and key != "address2"]
    if empty:
        raise StoreError(f"the address has no {', '.join(empty)}")
    return address


def _total(lines: list[dict[str, Any]]) -> int:
    return sum(int(line["unit_price_cents"]) * int(line["quantity"]) for line in lines)


def _net_paid(order: dict[str, Any]) -> dict[str, int]:
    """What each payment method has paid for the order, charges less refunds, in the order first used."""
    paid: dict[str, int] = {}
    for payment in order["payments"]:
        sign = 1 if payment["type"] == "charge" else -1
        paid[payment["payment_method_id"]] = paid.get(payment["payment_method_id"], 0) + sign * payment["amount_cents"]
    return paid


def _check_payment(user: dict[str, Any], method_id: str, difference: int) -> None:
    """The method is the customer's, and a gift card that pays covers the difference."""
    method = user["payment_methods"].get(_text(method_id, "payment_method_id"))
    if method is None:
        known = ", ".join(user["payment_methods"])
        raise StoreError(f"customer {user['user_id']} has no payment method `{method_id}`; theirs are {known}")
    if method["type"] == "gift_card" and difference > method["balance_cents"]:
        raise StoreError(f"gift card `{method_id}` holds {method['balance_cents']} cents; {difference} are needed")


def _credit_gift_card(user: dict[str, Any], method_id: str, cents: int) -> None:
    """A gift card's balance moves at once; cards and PayPal are settled by the bank, outside the store."""
    method = user["payment_methods"].get(method_id)
    if method is not None and method["type"] == "gift_card":
        method["balance_cents"] += cents


def _check_references(data: dict[str, Any]) -> None:
    for order_id, order in data["orders"].items():
        user = data["users"].get(order.get("user_id"))
        if user is None:
            raise StoreError(f"order {order_id} belongs to `{order.get('user_id')}`, who is not among the users")
        if order_id not in user.get("orders", []):
            raise StoreError(f"order {order_id} is not among the orders of its customer {order['user_id']}")
        for line in order.get("items", []):
            product = data["products"].get(line.get("product_id"), {})
            if line.get("sku") not in product.get("variants", {}):
                raise StoreError(
                    f"order {order_id} has an item `{line.get('sku')}` that is not a variant of `{line.get('product_id')}`"
                )
    for user_id, user in data["users"].items():
        for order_id in user.get("orders", []):
            if order_id not in data["orders"]:
                raise StoreError(f"customer {user_id} lists the order {order_id}, which is not among the orders")


_SAM_ADDRESS = {"address1": "12 Harbor Lane", "address2": "", "city": "Portland", "state": "ME", "zip": "04101", "country": "USA"}

#: What a store made with no arguments holds: one customer, two products and two orders, so that
#: every kind of tool has something to work on before a real state is loaded.
DEFAULT_STATE: dict[str, Any] = {
    "users": {
        "C-10001": {
            "user_id": "C-10001",
            "name": {"first_name": "Sam", "last_name": "Rivera"},
            "email": "sam.rivera@example.com",
            "address": _SAM_ADDRESS,
            "payment_methods": {
                "visa-1881": {"payment_method_id": "visa-1881", "type": "credit_card", "brand": "visa", "last_four": "1881"},
                "giftcard-10001": {"payment_method_id": "giftcard-10001", "type": "gift_card", "balance_cents": 1500},
            },
            "orders": ["ORD-100001", "ORD-100002"],
        }
    },
    "products": {
        "P-001": {
            "product_id": "P-001",
            "name": "Canvas Tote Bag",
            "category": "bags",
            "variants": {
                "TOTE-NAT": {"sku": "TOTE-NAT", "options": {"color": "natural"}, "price_cents": 2400, "stock": 8},
                "TOTE-BLK": {"sku": "TOTE-BLK", "options": {"color": "black"}, "price_cents": 2400, "stock": 3},
            },
        },
        "P-002": {
            "product_id": "P-002",
            "name": "Enamel Camp Mug",
            "category": "kitchen",
            "variants": {
                "MUG-WHT": {"sku": "MUG-WHT", "options": {"color": "white"}, "price_cents": 1600, "stock": 20},
                "MUG-BLU": {"sku": "MUG-BLU", "options": {"color": "blue"}, "price_cents": 1600, "stock": 0},
            },
        },
    },
    "orders": {
        "ORD-100001": {
            "order_id": "ORD-100001",
            "user_id": "C-10001",
            "status": "delivered",
            "shipping_address": _SAM_ADDRESS,
            "items": [
                {
                    "sku": "TOTE-NAT",
                    "product_id": "P-001",
                    "name": "Canvas Tote Bag",
                    "options": {"color": "natural"},
                    "unit_price_cents": 2400,
                    "quantity": 1,
                }
            ],
            "total_cents": 2400,
            "payments": [{"type": "charge", "payment_method_id": "visa-1881", "amount_cents": 2400}],
            "tracking_number": "TRK4410027719",
            "items_modified": False,
            "cancellation": None,
            "return": None,
            "exchange": None,
        },
        "ORD-100002": {
            "order_id": "ORD-100002",
            "user_id": "C-10001",
            "status": "pending",
            "shipping_address": _SAM_ADDRESS,
            "items": [
                {
                    "sku": "MUG-WHT",
                    "product_id": "P-002",
                    "name": "Enamel Camp Mug",
                    "options": {"color": "white"},
                    "unit_price_cents": 1600,
                    "quantity": 2,
                }
            ],
            "total_cents": 3200,
            "payments": [{"type": "charge", "payment_method_id": "visa-1881", "amount_cents": 3200}],
            "tracking_number": None,
            "items_modified": False,
            "cancellation": None,
            "return": None,
            "exchange": None,
        },
    },
}
