"""Math: integer arithmetic, primes, sequences and polynomials."""

from __future__ import annotations

import math


def factorial(n: int) -> int:
    """n! for 0 <= n <= 170."""
    if n < 0 or n > 170:
        raise ValueError("n must be between 0 and 170")
    return math.factorial(n)


def gcd_lcm(a: int, b: int) -> dict[str, int]:
    """Greatest common divisor and least common multiple of two integers."""
    if a == 0 and b == 0:
        raise ValueError("a and b cannot both be 0")
    divisor = math.gcd(a, b)
    return {"gcd": divisor, "lcm": abs(a * b) // divisor}


def is_prime(n: int) -> bool:
    """Whether n is a prime number."""
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    return all(n % d for d in range(3, math.isqrt(n) + 1, 2))


def prime_factors(n: int) -> list[int]:
    """The prime factorisation of n >= 2, smallest first, with repetition."""
    if n < 2:
        raise ValueError("n must be at least 2")
    factors = []
    d = 2
    while d * d <= n:
        while n % d == 0:
            factors.append(d)
            n //= d
        d += 1
    if n > 1:
        factors.append(n)
    return factors


def fibonacci(n: int) -> int:
    """The n-th Fibonacci number (F0 = 0, F1 = 1), for 0 <= n <= 1000."""
    if n < 0 or n > 1000:
        raise ValueError("n must be between 0 and 1000")
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def solve_quadratic(a: float, b: float, c: float) -> list[float]:
    """The real roots of a*x^2 + b*x + c = 0, smallest first."""
    if a == 0:
        raise ValueError("a must not be 0 (the equation would not be quadratic)")
    discriminant = b * b - 4 * a * c
    if discriminant < 0:
        return []
    root = math.sqrt(discriminant)
    return sorted({(-b - root) / (2 * a), (-b + root) / (2 * a)})


def sum_of_multiples(limit: int, divisors: list[int]) -> int:
    """The sum of the positive integers below ``limit`` divisible by at least one divisor."""
    if any(d <= 0 for d in divisors):
        raise ValueError("divisors must be positive")
    return sum(n for n in range(1, limit) if any(n % d == 0 for d in divisors))


def binomial_coefficient(n: int, k: int) -> int:
    """C(n, k): the number of ways to choose k items out of n."""
    if n < 0 or k < 0:
        raise ValueError("n and k must be non-negative")
    return math.comb(n, k)
