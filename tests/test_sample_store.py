"""sample_data/store: the online store environment does what its docstrings and policy say, exactly and repeatably."""

from __future__ import annotations

import copy
import importlib.util
import inspect
import json
import sys
from collections import Counter
from types import ModuleType
from typing import Any

import docstring_parser
import pytest

from .conftest import PROJECT

STORE = PROJECT / "sample_data" / "store"
INITIAL = json.loads((STORE / "initial_state.json").read_text())
READS = {
    "find_user_by_email",
    "find_user_by_name_zip",
    "get_user_details",
    "list_user_orders",
    "get_order_details",
    "get_product",
    "list_products",
    "transfer_to_human_agents",
}
WRITES = {
    "cancel_pending_order",
    "modify_pending_order_address",
    "modify_pending_order_items",
    "return_delivered_order_items",
    "exchange_delivered_order_items",
    "update_user_address",
}
ADDRESS = {"address1": "9 Quarry Road", "address2": "", "city": "Eugene", "state": "OR", "zip_code": "97401"}


@pytest.fixture(scope="module")
def module() -> ModuleType:
    return load_store_module()


def load_store_module() -> ModuleType:
    """The store's module, loaded from its file under a private name (as a worker loads it: not a package)."""
    spec = importlib.util.spec_from_file_location("_apigen_sample_store", STORE / "online_store.py")
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded
    try:
        spec.loader.exec_module(loaded)
    finally:
        del sys.modules[spec.name]
    return loaded


@pytest.fixture
def store(module: ModuleType) -> Any:
    made = module.OnlineStore()
    made.load_state(copy.deepcopy(INITIAL["OnlineStore"]))
    return made


def _refused(module: ModuleType, store: Any, tool: str, fragment: str, **arguments: Any) -> None:
    """The call raises StoreError saying ``fragment``, and leaves the state exactly as it was."""
    before = store.state()
    with pytest.raises(module.StoreError) as caught:
        getattr(store, tool)(**arguments)
    assert fragment in str(caught.value)
    assert store.state() == before


def test_the_initial_state_is_one_store_of_realistic_size_and_spread() -> None:
    assert list(INITIAL) == ["OnlineStore"]
    state = INITIAL["OnlineStore"]
    assert 8 <= len(state["users"]) <= 15 and 20 <= len(state["orders"]) <= 40 and 10 <= len(state["products"]) <= 20
    statuses = Counter(order["status"] for order in state["orders"].values())
    assert set(statuses) == {
        "pending",
        "processing",
        "shipped",
        "delivered",
        "cancelled",
        "return requested",
        "exchange requested",
    }
    assert statuses["pending"] >= 5 and statuses["delivered"] >= 5
    assert all(user["orders"] for user in state["users"].values())
    kinds = Counter(method["type"] for user in state["users"].values() for method in user["payment_methods"].values())
    assert set(kinds) == {"credit_card", "gift_card", "paypal"}
    assert any(variant["stock"] == 0 for product in state["products"].values() for variant in product["variants"].values())


def test_the_initial_state_adds_up_in_integer_cents() -> None:
    state = INITIAL["OnlineStore"]
    for order_id, order in state["orders"].items():
        assert order["order_id"] == order_id and order_id in state["users"][order["user_id"]]["orders"]
        assert order["total_cents"] == sum(line["unit_price_cents"] * line["quantity"] for line in order["items"])
        charged = sum(payment["amount_cents"] for payment in order["payments"] if payment["type"] == "charge")
        refunded = sum(payment["amount_cents"] for payment in order["payments"] if payment["type"] == "refund")
        assert charged == order["total_cents"] and refunded == (charged if order["status"] == "cancelled" else 0)
        for line in order["items"]:
            variant = state["products"][line["product_id"]]["variants"][line["sku"]]
            assert line["options"] == variant["options"] and line["unit_price_cents"] == variant["price_cents"]
    assert all(type(number) is int for number in _numbers(state))  # money is cents, never a float


def _numbers(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [number for item in value.values() for number in _numbers(item)]
    if isinstance(value, list):
        return [number for item in value for number in _numbers(item)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def test_load_state_then_state_round_trips_exactly_and_is_json(module: ModuleType) -> None:
    store = module.OnlineStore()
    given = copy.deepcopy(INITIAL["OnlineStore"])
    store.load_state(given)
    assert store.state() == INITIAL["OnlineStore"]
    assert json.loads(json.dumps(store.state())) == INITIAL["OnlineStore"]
    given["users"].clear()  # the store keeps its own copy
    taken = store.state()
    taken["orders"].clear()  # and hands out copies
    assert store.state() == INITIAL["OnlineStore"]


def test_a_store_made_with_no_arguments_has_a_small_working_state(module: ModuleType) -> None:
    store = module.OnlineStore()
    state = store.state()
    assert json.loads(json.dumps(state)) == state == module.DEFAULT_STATE
    assert store.find_user_by_email("sam.rivera@example.com") == "C-10001"
    cancelled = store.cancel_pending_order("ORD-100002", "ordered by mistake")
    assert cancelled["status"] == "cancelled"
    assert module.OnlineStore().state() == module.DEFAULT_STATE  # one store's changes are not another's


def test_load_state_refuses_what_is_not_a_store(module: ModuleType) -> None:
    store = module.OnlineStore()
    broken = copy.deepcopy(INITIAL["OnlineStore"])
    broken["orders"]["ORD-318532"]["user_id"] = "C-00000"
    cases: list[tuple[Any, str]] = [
        ([], "not an object with users, products and orders"),
        ({"customers": {}}, "unknown keys ['customers']"),
        ({"users": []}, "`users` is a list, not an object keyed by id"),
        ({"users": {"x": {1, 2}}}, "not plain JSON"),
        (broken, "order ORD-318532 belongs to `C-00000`, who is not among the users"),
    ]
    for config, fragment in cases:
        with pytest.raises(module.StoreError) as caught:
            store.load_state(config)
        assert fragment in str(caught.value)
    assert store.state() == module.DEFAULT_STATE
    store.load_state({})
    assert store.state() == {"users": {}, "products": {}, "orders": {}}


def test_every_tool_is_typed_and_documented_and_reads_change_nothing(module: ModuleType, store: Any) -> None:
    public = {name for name, value in vars(module.OnlineStore).items() if callable(value) and not name.startswith("_")}
    assert public == READS | WRITES | {"state", "load_state"}
    for name in READS | WRITES:
        method = getattr(module.OnlineStore, name)
        signature = inspect.signature(method)
        doc = docstring_parser.parse(inspect.getdoc(method) or "")
        assert doc.short_description and doc.short_description.endswith("."), name
        parameters = [parameter for parameter in signature.parameters if parameter != "self"]
        assert [param.arg_name for param in doc.params] == parameters, name
        assert all(signature.parameters[parameter].annotation is not inspect.Parameter.empty for parameter in parameters), name
    before = store.state()
    store.find_user_by_email("maya.okafor@example.com")
    store.find_user_by_name_zip("Maya", "Okafor", "97205")
    store.get_user_details("C-10482")
    store.list_user_orders("C-10482")
    store.get_order_details("ORD-318532")
    store.get_product("P-101")
    store.list_products()
    store.transfer_to_human_agents("The customer wants a discount.")
    assert store.state() == before


def test_customers_are_found_by_email_or_by_name_and_zip(module: ModuleType, store: Any) -> None:
    assert store.find_user_by_email(" Maya.Okafor@EXAMPLE.com ") == "C-10482"
    assert store.find_user_by_name_zip("maya", "OKAFOR", "97205") == "C-10482"
    _refused(module, store, "find_user_by_email", "no customer has the email `maya@example.com`", email="maya@example.com")
    _refused(
        module,
        store,
        "find_user_by_name_zip",
        "no customer is named Maya Okafor with the zip code 97201",
        first_name="Maya",
        last_name="Okafor",
        zip_code="97201",
    )
    _refused(module, store, "find_user_by_email", "`email` is a int, not a string", email=12)
    details = store.get_user_details("C-10482")
    assert details["name"] == {"first_name": "Maya", "last_name": "Okafor"}
    assert set(details["payment_methods"]) == {"visa-2103", "mastercard-7624", "giftcard-10482"}
    _refused(module, store, "get_user_details", "no customer has the user id `C-1`", user_id="C-1")


def test_orders_and_products_are_read(module: ModuleType, store: Any) -> None:
    assert store.list_user_orders("C-10482") == [
        {"order_id": "ORD-328078", "status": "processing", "total_cents": 2499, "items": 1},
        {"order_id": "ORD-318532", "status": "delivered", "total_cents": 26599, "items": 3},
    ]
    assert [order["order_id"] for order in store.list_user_orders("C-10482", status="delivered")] == ["ORD-318532"]
    _refused(module, store, "list_user_orders", "`lost` is not an order status", user_id="C-10482", status="lost")
    order = store.get_order_details("#ORD-318532")
    assert order["order_id"] == "ORD-318532" and [line["sku"] for line in order["items"]] == [
        "SHEET-K-OAT",
        "BTL-1000-SGE",
        "PACK-RST",
    ]
    _refused(module, store, "get_order_details", "no order has the id `ORD-1`", order_id="ORD-1")
    shoe = store.get_product("P-101")
    assert shoe["name"] == "Trailhead Running Shoe" and shoe["variants"]["SHOE-11-BLU"] == {
        "sku": "SHOE-11-BLU",
        "options": {"size": "11", "color": "blue"},
        "price_cents": 8999,
        "stock": 1,
    }
    _refused(module, store, "get_product", "no product has the id `P-999`", product_id="P-999")
    assert store.list_products("kitchen") == [
        {"product_id": "P-109", "name": "Ceramic Pour-Over Coffee Set", "category": "kitchen"},
        {"product_id": "P-110", "name": "Cast Iron Skillet", "category": "kitchen"},
    ]
    assert len(store.list_products()) == len(INITIAL["OnlineStore"]["products"])
    _refused(
        module, store, "list_products", "no product is in the category `toys`; the categories are apparel, bags", category="toys"
    )
    assert store.transfer_to_human_agents("Wants a refund to a new card.").startswith("Transfer successful")
    _refused(module, store, "transfer_to_human_agents", "the summary is empty", summary="  ")


def test_cancelling_a_pending_order_restocks_and_refunds(module: ModuleType, store: Any) -> None:
    stock_before = store.get_product("P-113")["variants"]["PACK-OLV"]["stock"]
    order = store.cancel_pending_order("ORD-327087", "no longer needed")
    assert order["status"] == "cancelled" and order["cancellation"] == {"reason": "no longer needed"}
    assert order["payments"][-1] == {"type": "refund", "payment_method_id": "amex-3864", "amount_cents": 18499}
    assert store.get_product("P-113")["variants"]["PACK-OLV"]["stock"] == stock_before + 1
    assert store.get_order_details("ORD-327087") == order
    _refused(
        module,
        store,
        "cancel_pending_order",
        "order ORD-327087 is cancelled, not pending",
        order_id="ORD-327087",
        reason="no longer needed",
    )
    _refused(
        module,
        store,
        "cancel_pending_order",
        "order ORD-318532 is delivered, not pending",
        order_id="ORD-318532",
        reason="no longer needed",
    )
    _refused(
        module,
        store,
        "cancel_pending_order",
        "it must be `no longer needed` or `ordered by mistake`",
        order_id="ORD-323438",
        reason="too slow",
    )
    _refused(
        module,
        store,
        "cancel_pending_order",
        "no order has the id `ORD-000000`",
        order_id="ORD-000000",
        reason="no longer needed",
    )


def test_a_gift_card_pays_a_difference_only_when_it_holds_enough(module: ModuleType) -> None:
    state = copy.deepcopy(INITIAL["OnlineStore"])
    card = {"payment_method_id": "giftcard-10619", "type": "gift_card", "balance_cents": 1500}
    state["users"]["C-10619"]["payment_methods"]["giftcard-10619"] = card
    store = module.OnlineStore()
    store.load_state(state)
    swap = {"order_id": "ORD-330709", "skus": ["SHEET-Q-OAT"], "new_skus": ["SHEET-K-OAT"]}  # queen to king: 2000 cents more
    _refused(
        module,
        store,
        "modify_pending_order_items",
        "gift card `giftcard-10619` holds 1500 cents; 2000 are needed",
        **swap,
        payment_method_id="giftcard-10619",
    )
    card["balance_cents"] = 2500
    store.load_state(state)
    order = store.modify_pending_order_items(**swap, payment_method_id="giftcard-10619")
    assert order["payments"][-1] == {"type": "charge", "payment_method_id": "giftcard-10619", "amount_cents": 2000}
    assert order["total_cents"] == 28600 + 2000
    assert store.get_user_details("C-10619")["payment_methods"]["giftcard-10619"]["balance_cents"] == 500
    cancelled = store.cancel_pending_order("ORD-330709", "no longer needed")
    assert cancelled["payments"][-2:] == [
        {"type": "refund", "payment_method_id": "paypal-10619", "amount_cents": 28600},
        {"type": "refund", "payment_method_id": "giftcard-10619", "amount_cents": 2000},
    ]
    assert store.get_user_details("C-10619")["payment_methods"]["giftcard-10619"]["balance_cents"] == 2500


def test_modifying_a_pending_orders_items_moves_stock_money_and_total(module: ModuleType, store: Any) -> None:
    variants = store.get_product("P-107")["variants"]
    order = store.modify_pending_order_items(
        "ORD-323438", ["KBD-CLK-UK", "SHOE-11-BLU"], ["KBD-TAC-US", "SHOE-09-BLU"], "giftcard-11304"
    )
    assert [line["sku"] for line in order["items"]] == ["SHOE-09-BLU", "KBD-TAC-US", "JKT-XL-GRN"]
    assert (
        order["items"][1]["options"] == {"switches": "tactile", "layout": "US"} and order["items"][1]["unit_price_cents"] == 11900
    )
    assert order["total_cents"] == 34699 - 900 and order["items_modified"] is True and order["status"] == "pending"
    assert order["payments"][-1] == {"type": "refund", "payment_method_id": "giftcard-11304", "amount_cents": 900}
    assert store.get_user_details("C-11304")["payment_methods"]["giftcard-11304"]["balance_cents"] == 1250 + 900
    after = store.get_product("P-107")["variants"]
    assert after["KBD-CLK-UK"]["stock"] == variants["KBD-CLK-UK"]["stock"] + 1
    assert after["KBD-TAC-US"]["stock"] == variants["KBD-TAC-US"]["stock"] - 1
    _refused(
        module,
        store,
        "modify_pending_order_items",
        "were already modified once",
        order_id="ORD-323438",
        skus=["JKT-XL-GRN"],
        new_skus=["JKT-L-GRN"],
        payment_method_id="amex-8869",
    )
    cancelled = store.cancel_pending_order("ORD-323438", "ordered by mistake")
    # the 900 already refunded to the gift card is not refunded again: the card gets back what the store still holds
    assert cancelled["payments"][-1] == {"type": "refund", "payment_method_id": "discover-9222", "amount_cents": 34699 - 900}
    assert store.get_user_details("C-11304")["payment_methods"]["giftcard-11304"]["balance_cents"] == 1250 + 900


def test_modifying_items_refuses_bad_requests(module: ModuleType, store: Any) -> None:
    order = {"order_id": "ORD-327087", "payment_method_id": "amex-3864"}
    cases = [
        (["PACK-BLK"], ["PACK-RST"], "order ORD-327087 has no item PACK-BLK; its items are PACK-OLV, SHOE-08-BLK"),
        (["PACK-OLV"], ["SHOE-08-BLU"], "`SHOE-08-BLU` is not a variant of Roll-Top Backpack 28 l (P-113)"),
        (["PACK-OLV"], ["PACK-OLV"], "would be swapped for itself"),
        (["PACK-OLV", "PACK-OLV"], ["PACK-RST", "PACK-BLK"], "a SKU is named twice"),
        (["PACK-OLV"], ["PACK-RST", "PACK-BLK"], "1 SKUs are swapped for 2 new ones"),
        ([], [], "no SKU was given"),
        ("PACK-OLV", ["PACK-RST"], "`skus` must be a list of strings"),
    ]
    for skus, new_skus, fragment in cases:
        _refused(module, store, "modify_pending_order_items", fragment, skus=skus, new_skus=new_skus, **order)
    _refused(
        module,
        store,
        "modify_pending_order_items",
        "has 0 in stock; 1 are needed",
        order_id="ORD-331249",
        skus=["POUR-WHT"],
        new_skus=["POUR-CHR"],
        payment_method_id="mastercard-1609",
    )
    _refused(
        module,
        store,
        "modify_pending_order_items",
        "has no payment method `visa-2103`; theirs are amex-3864, giftcard-10756",
        order_id="ORD-327087",
        skus=["PACK-OLV"],
        new_skus=["PACK-RST"],
        payment_method_id="visa-2103",
    )
    _refused(
        module,
        store,
        "modify_pending_order_items",
        "order ORD-328078 is processing, not pending",
        order_id="ORD-328078",
        skus=["BTL-500-SGE"],
        new_skus=["BTL-500-STL"],
        payment_method_id="visa-2103",
    )


def test_a_pending_orders_address_changes_and_the_customers_does_not(module: ModuleType, store: Any) -> None:
    own = store.get_user_details("C-10756")["address"]
    order = store.modify_pending_order_address("ORD-327087", **ADDRESS)
    assert order["shipping_address"] == {
        "address1": "9 Quarry Road",
        "address2": "",
        "city": "Eugene",
        "state": "OR",
        "zip": "97401",
        "country": "USA",
    }
    assert store.get_user_details("C-10756")["address"] == own
    _refused(module, store, "modify_pending_order_address", "is delivered, not pending", order_id="ORD-323663", **ADDRESS)
    _refused(
        module,
        store,
        "modify_pending_order_address",
        "the address has no city",
        order_id="ORD-327087",
        **{**ADDRESS, "city": " "},
    )


def test_the_customers_address_changes_and_their_orders_do_not(module: ModuleType, store: Any) -> None:
    user = store.update_user_address("C-10756", **{**ADDRESS, "address2": "Apt 2"}, country="USA")
    assert user["address"] == {
        "address1": "9 Quarry Road",
        "address2": "Apt 2",
        "city": "Eugene",
        "state": "OR",
        "zip": "97401",
        "country": "USA",
    }
    assert store.get_order_details("ORD-327087")["shipping_address"]["city"] == "Austin"
    assert store.find_user_by_name_zip("Priya", "Raman", "97401") == "C-10756"
    _refused(module, store, "update_user_address", "no customer has the user id `C-0`", user_id="C-0", **ADDRESS)


def test_returning_items_of_a_delivered_order(module: ModuleType, store: Any) -> None:
    order = store.return_delivered_order_items("ORD-318532", ["PACK-RST", "BTL-1000-SGE"], "giftcard-10482")
    assert order["status"] == "return requested"
    assert order["return"] == {
        "skus": ["PACK-RST", "BTL-1000-SGE"],
        "refund_method_id": "giftcard-10482",
        "refund_cents": 9500 + 3199,
    }
    assert store.get_user_details("C-10482")["payment_methods"]["giftcard-10482"]["balance_cents"] == 10000  # refunded on receipt
    _refused(
        module,
        store,
        "return_delivered_order_items",
        "is return requested, not delivered",
        order_id="ORD-318532",
        skus=["SHEET-K-OAT"],
        refund_method_id="mastercard-7624",
    )
    _refused(
        module,
        store,
        "return_delivered_order_items",
        "is pending, not delivered: only a delivered order can be returned or exchanged",
        order_id="ORD-327087",
        skus=["PACK-OLV"],
        refund_method_id="amex-3864",
    )
    _refused(
        module,
        store,
        "return_delivered_order_items",
        "original payment method `amex-3864` or to one of the customer's gift cards, not `visa-2103`",
        order_id="ORD-323663",
        skus=["PLUG-US"],
        refund_method_id="visa-2103",
    )
    to_card = store.return_delivered_order_items("ORD-323663", ["PLUG-US"], "amex-3864")
    assert to_card["return"]["refund_cents"] == 2999


def test_exchanging_items_of_a_delivered_order_once(module: ModuleType, store: Any) -> None:
    before = store.get_product("P-116")["variants"]["SHEET-K-WHT"]["stock"]
    order = store.exchange_delivered_order_items(
        "ORD-318532", ["SHEET-K-OAT", "BTL-1000-SGE"], ["SHEET-K-WHT", "BTL-750-SGE"], "visa-2103"
    )
    assert order["status"] == "exchange requested"
    assert order["exchange"] == {
        "skus": ["SHEET-K-OAT", "BTL-1000-SGE"],
        "new_skus": ["SHEET-K-WHT", "BTL-750-SGE"],
        "payment_method_id": "visa-2103",
        "difference_cents": -400,
    }
    assert [line["sku"] for line in order["items"]] == ["SHEET-K-OAT", "BTL-1000-SGE", "PACK-RST"]  # until the old items arrive
    assert store.get_product("P-116")["variants"]["SHEET-K-WHT"]["stock"] == before - 1
    _refused(
        module,
        store,
        "exchange_delivered_order_items",
        "is exchange requested, not delivered",
        order_id="ORD-318532",
        skus=["PACK-RST"],
        new_skus=["PACK-BLK"],
        payment_method_id="visa-2103",
    )
    _refused(
        module,
        store,
        "exchange_delivered_order_items",
        "`LAMP-BLK` is not a variant of Cork Yoga Mat",
        order_id="ORD-320826",
        skus=["YOGA-6-TEA"],
        new_skus=["LAMP-BLK"],
        payment_method_id="visa-6648",
    )
    _refused(
        module,
        store,
        "exchange_delivered_order_items",
        "`HDPH-SLV` would be swapped for itself",
        order_id="ORD-323663",
        skus=["HDPH-SLV"],
        new_skus=["HDPH-SLV"],
        payment_method_id="amex-3864",
    )


def _conversation(store: Any) -> list[Any]:
    """A support session's calls, each answered or refused."""
    calls: list[tuple[str, dict[str, Any]]] = [
        ("find_user_by_email", {"email": "priya.raman@example.net"}),
        ("list_user_orders", {"user_id": "C-10756", "status": "pending"}),
        (
            "modify_pending_order_items",
            {
                "order_id": "ORD-327087",
                "skus": ["SHOE-08-BLK"],
                "new_skus": ["SHOE-09-BLK"],
                "payment_method_id": "giftcard-10756",
            },
        ),
        ("cancel_pending_order", {"order_id": "ORD-329390", "reason": "no longer needed"}),
        (
            "exchange_delivered_order_items",
            {
                "order_id": "ORD-329390",
                "skus": ["BTL-750-SGE"],
                "new_skus": ["BTL-1000-SGE"],
                "payment_method_id": "giftcard-10756",
            },
        ),
        ("update_user_address", {"user_id": "C-10756", **ADDRESS}),
        ("cancel_pending_order", {"order_id": "ORD-327087", "reason": "ordered by mistake"}),
    ]
    results: list[Any] = []
    for name, arguments in calls:
        try:
            results.append(getattr(store, name)(**arguments))
        except Exception as error:
            results.append(f"{type(error).__name__}: {error}")
    return results


def test_the_same_calls_on_the_same_state_give_the_same_results_and_state(module: ModuleType) -> None:
    runs = []
    for _ in range(2):
        store = module.OnlineStore()
        store.load_state(copy.deepcopy(INITIAL["OnlineStore"]))
        results = _conversation(store)
        runs.append((json.dumps(results, sort_keys=True), json.dumps(store.state(), sort_keys=True)))
    assert runs[0] == runs[1]
    results = json.loads(runs[0][0])
    assert results[3] == "StoreError: order ORD-329390 is delivered, not pending: only a pending order can be changed"
    assert results[6]["payments"][-1] == {"type": "refund", "payment_method_id": "amex-3864", "amount_cents": 18499}
