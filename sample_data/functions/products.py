"""Products: a small local catalogue of a fictional shop, with stock and a shopping cart."""

from __future__ import annotations

PRODUCTS = {
    "P-1001": {"name": "Wireless Mouse", "category": "electronics", "price": 24.99, "rating": 4.4, "stock": 35},
    "P-1002": {"name": "Mechanical Keyboard", "category": "electronics", "price": 89.0, "rating": 4.7, "stock": 12},
    "P-1003": {"name": "USB-C Charger 65W", "category": "electronics", "price": 39.5, "rating": 4.5, "stock": 0},
    "P-1004": {"name": "Noise-Cancelling Headphones", "category": "electronics", "price": 199.0, "rating": 4.6, "stock": 7},
    "P-2001": {"name": "Chef's Knife 20 cm", "category": "kitchen", "price": 49.9, "rating": 4.8, "stock": 18},
    "P-2002": {"name": "Cast Iron Skillet", "category": "kitchen", "price": 34.0, "rating": 4.7, "stock": 22},
    "P-2003": {"name": "French Press 1 L", "category": "kitchen", "price": 27.5, "rating": 4.2, "stock": 9},
    "P-3001": {"name": "Two-Person Tent", "category": "outdoor", "price": 129.0, "rating": 4.3, "stock": 5},
    "P-3002": {"name": "Insulated Water Bottle", "category": "outdoor", "price": 19.95, "rating": 4.6, "stock": 60},
    "P-3003": {"name": "Trekking Poles (pair)", "category": "outdoor", "price": 44.0, "rating": 4.1, "stock": 14},
    "P-4001": {"name": "Yoga Mat", "category": "fitness", "price": 29.0, "rating": 4.5, "stock": 25},
    "P-4002": {"name": "Adjustable Dumbbells", "category": "fitness", "price": 149.0, "rating": 4.4, "stock": 3},
}
COUPONS = {"SAVE10": 0.10, "WELCOME5": 0.05}
FREE_SHIPPING_FROM = 50.0
SHIPPING = 5.99


def search_products(
    category: str | None = None,
    max_price: float | None = None,
    min_rating: float = 0,
    sort_by: str = "price",
    limit: int = 5,
) -> list[dict[str, object]]:
    """Products matching the filters, sorted by price (lowest first) or rating (highest first)."""
    found = [
        {"product_id": product_id, **product}
        for product_id, product in PRODUCTS.items()
        if (category is None or product["category"] == category)
        and (max_price is None or product["price"] <= max_price)
        and product["rating"] >= min_rating
    ]
    if sort_by == "rating":
        found.sort(key=lambda product: -product["rating"])
    else:
        found.sort(key=lambda product: product["price"])
    return found[:limit]


def get_product(product_id: str) -> dict[str, object]:
    """One product by its id, or an error payload when there is no such product."""
    product = PRODUCTS.get(product_id)
    if product is None:
        return {"error": f"no product with id {product_id!r}"}
    return {"product_id": product_id, **product}


def check_stock(product_id: str, quantity: int = 1) -> dict[str, object]:
    """Whether a quantity of a product can be shipped today."""
    product = PRODUCTS.get(product_id)
    if product is None:
        return {"error": f"no product with id {product_id!r}"}
    return {"product_id": product_id, "in_stock": product["stock"], "available": product["stock"] >= quantity}


def cart_total(items: list[dict[str, object]], coupon_code: str | None = None) -> dict[str, object]:
    """Subtotal, discount, shipping and total of a cart of {product_id, quantity} items."""
    subtotal = 0.0
    for item in items:
        product = PRODUCTS.get(str(item.get("product_id")))
        if product is None:
            return {"error": f"no product with id {item.get('product_id')!r}"}
        subtotal += float(product["price"]) * int(item.get("quantity", 1))
    if coupon_code is not None and coupon_code not in COUPONS:
        return {"error": f"coupon {coupon_code!r} is not valid"}
    discount = subtotal * COUPONS.get(coupon_code or "", 0.0)
    shipping = 0.0 if subtotal - discount >= FREE_SHIPPING_FROM or not items else SHIPPING
    return {
        "subtotal": round(subtotal, 2),
        "discount": round(discount, 2),
        "shipping": shipping,
        "total": round(subtotal - discount + shipping, 2),
    }
