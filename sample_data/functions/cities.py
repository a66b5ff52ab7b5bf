"""Cities: a small local gazetteer (approximate populations, standard-time UTC offsets)."""

from __future__ import annotations

import datetime
import math
from typing import NamedTuple


class City(NamedTuple):
    name: str
    country: str
    latitude: float
    longitude: float
    population: int  # approximate, city proper or metropolis as commonly quoted
    utc_offset: float  # standard time, no daylight saving


CITIES = [
    City("Paris", "France", 48.8566, 2.3522, 2_100_000, 1),
    City("London", "United Kingdom", 51.5074, -0.1278, 8_900_000, 0),
    City("New York", "United States", 40.7128, -74.0060, 8_300_000, -5),
    City("Tokyo", "Japan", 35.6762, 139.6503, 14_000_000, 9),
    City("Sydney", "Australia", -33.8688, 151.2093, 5_300_000, 10),
    City("Berlin", "Germany", 52.5200, 13.4050, 3_700_000, 1),
    City("Madrid", "Spain", 40.4168, -3.7038, 3_300_000, 1),
    City("Rome", "Italy", 41.9028, 12.4964, 2_800_000, 1),
    City("Toronto", "Canada", 43.6532, -79.3832, 2_800_000, -5),
    City("Mumbai", "India", 19.0760, 72.8777, 12_400_000, 5.5),
    City("São Paulo", "Brazil", -23.5505, -46.6333, 12_300_000, -3),
    City("Cairo", "Egypt", 30.0444, 31.2357, 10_000_000, 2),
    City("Nairobi", "Kenya", -1.2921, 36.8219, 4_400_000, 3),
    City("Mexico City", "Mexico", 19.4326, -99.1332, 9_200_000, -6),
    City("Beijing", "China", 39.9042, 116.4074, 21_500_000, 8),
    City("Singapore", "Singapore", 1.3521, 103.8198, 5_900_000, 8),
    City("Buenos Aires", "Argentina", -34.6037, -58.3816, 3_100_000, -3),
    City("Seoul", "South Korea", 37.5665, 126.9780, 9_400_000, 9),
    City("Los Angeles", "United States", 34.0522, -118.2437, 3_900_000, -8),
    City("Chicago", "United States", 41.8781, -87.6298, 2_700_000, -6),
]


def _find(name: str) -> City | None:
    wanted = name.strip().casefold()
    return next((city for city in CITIES if city.name.casefold() == wanted), None)


def get_city_info(city: str) -> dict[str, object]:
    """Country, coordinates, approximate population and UTC offset of a city, or an error payload."""
    found = _find(city)
    if found is None:
        return {"error": f"no city named {city!r} in the gazetteer"}
    return found._asdict()


def cities_by_country(country: str, min_population: int = 0) -> list[str]:
    """The gazetteer's cities in a country, largest first."""
    found = [c for c in CITIES if c.country.casefold() == country.strip().casefold() and c.population >= min_population]
    return [c.name for c in sorted(found, key=lambda c: -c.population)]


def city_distance(city_a: str, city_b: str, unit: str = "km") -> dict[str, object]:
    """Great-circle distance between two cities of the gazetteer."""
    first, second = _find(city_a), _find(city_b)
    if first is None or second is None:
        missing = city_a if first is None else city_b
        return {"error": f"no city named {missing!r} in the gazetteer"}
    phi1, phi2 = math.radians(first.latitude), math.radians(second.latitude)
    d_lambda = math.radians(second.longitude - first.longitude)
    h = math.sin((phi2 - phi1) / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    km = 2 * 6371.0088 * math.asin(math.sqrt(h))
    return {"distance": round(km / 1.609344 if unit == "mi" else km, 1), "unit": unit}


def local_time(city: str, utc_time: str) -> str:
    """The local standard time in a city at a UTC moment given as YYYY-MM-DDTHH:MM."""
    found = _find(city)
    if found is None:
        raise KeyError(f"no city named {city!r} in the gazetteer")
    moment = datetime.datetime.fromisoformat(utc_time)
    return (moment + datetime.timedelta(hours=found.utc_offset)).strftime("%Y-%m-%dT%H:%M")
