"""Geometry: areas, volumes and distances, on the plane and on the Earth."""

from __future__ import annotations

import math

EARTH_RADIUS_KM = 6371.0088


def circle_area(radius: float) -> float:
    """The area of a circle."""
    if radius < 0:
        raise ValueError("radius must be non-negative")
    return math.pi * radius**2


def triangle_area(a: float, b: float, c: float) -> float:
    """The area of a triangle from its three side lengths (Heron's formula)."""
    if min(a, b, c) <= 0 or a + b <= c or a + c <= b or b + c <= a:
        raise ValueError(f"sides {a}, {b}, {c} do not form a triangle")
    s = (a + b + c) / 2
    return math.sqrt(s * (s - a) * (s - b) * (s - c))


def polygon_area(vertices: list[list[float]]) -> float:
    """The area of a simple polygon from its vertices in order (shoelace formula)."""
    if len(vertices) < 3:
        raise ValueError("a polygon needs at least 3 vertices")
    total = 0.0
    for (x1, y1), (x2, y2) in zip(vertices, vertices[1:] + vertices[:1]):
        total += x1 * y2 - x2 * y1
    return abs(total) / 2


def distance_2d(point_a: list[float], point_b: list[float]) -> float:
    """The straight-line distance between two points of the plane."""
    return math.dist(point_a, point_b)


def haversine_distance(lat1: float, lon1: float, lat2: float, lon2: float, unit: str = "km") -> float:
    """Great-circle distance between two points given in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi = phi2 - phi1
    d_lambda = math.radians(lon2 - lon1)
    h = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    km = 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))
    return round(km / 1.609344 if unit == "mi" else km, 3)


def cylinder_volume(radius: float, height: float) -> float:
    """The volume of a right circular cylinder."""
    if radius < 0 or height < 0:
        raise ValueError("radius and height must be non-negative")
    return math.pi * radius**2 * height
