"""Units: conversions of length, mass, temperature, volume, speed and data size."""

from __future__ import annotations

# Each table maps a unit to its size in the table's base unit.
LENGTH_M = {"mm": 0.001, "cm": 0.01, "m": 1.0, "km": 1000.0, "in": 0.0254, "ft": 0.3048, "yd": 0.9144, "mi": 1609.344}
MASS_KG = {"mg": 1e-6, "g": 0.001, "kg": 1.0, "t": 1000.0, "oz": 0.028349523125, "lb": 0.45359237, "st": 6.35029318}
VOLUME_L = {"ml": 0.001, "l": 1.0, "m3": 1000.0, "tsp": 0.00492892, "tbsp": 0.0147868, "cup": 0.236588, "pt": 0.473176, "gal": 3.785411784}
SPEED_MS = {"m/s": 1.0, "km/h": 1 / 3.6, "mph": 0.44704, "kn": 0.514444}
DATA_BYTES = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def _convert(value: float, from_unit: str, to_unit: str, table: dict[str, float], kind: str) -> float:
    for unit in (from_unit, to_unit):
        if unit not in table:
            raise ValueError(f"unknown {kind} unit {unit!r}; known: {', '.join(table)}")
    return round(value * table[from_unit] / table[to_unit], 6)


def convert_length(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a length between metric and imperial units."""
    return _convert(value, from_unit, to_unit, LENGTH_M, "length")


def convert_mass(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a mass (weight) between metric and imperial units."""
    return _convert(value, from_unit, to_unit, MASS_KG, "mass")


def convert_volume(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a volume between metric and US customary units."""
    return _convert(value, from_unit, to_unit, VOLUME_L, "volume")


def convert_speed(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a speed between m/s, km/h, mph and knots."""
    return _convert(value, from_unit, to_unit, SPEED_MS, "speed")


def convert_data_size(value: float, from_unit: str, to_unit: str) -> float:
    """Convert an amount of data between decimal (KB, MB...) and binary (KiB, MiB...) units."""
    return _convert(value, from_unit, to_unit, DATA_BYTES, "data size")


def convert_temperature(value: float, from_scale: str, to_scale: str) -> float:
    """Convert a temperature between Celsius (C), Fahrenheit (F) and Kelvin (K)."""
    to_celsius = {"C": lambda v: v, "F": lambda v: (v - 32) * 5 / 9, "K": lambda v: v - 273.15}
    from_celsius = {"C": lambda v: v, "F": lambda v: v * 9 / 5 + 32, "K": lambda v: v + 273.15}
    if from_scale not in to_celsius or to_scale not in from_celsius:
        raise ValueError("scales are C, F and K")
    celsius = to_celsius[from_scale](value)
    if celsius < -273.15:
        raise ValueError("below absolute zero")
    return round(from_celsius[to_scale](celsius), 4)
