"""Finance: interest, loans, investments and money conversion at fixed reference rates."""

from __future__ import annotations

# Fixed reference rates (units of each currency per US dollar). Offline and never
# updated, so that results are reproducible; not for real transactions.
USD_RATES = {
    "USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 148.0, "CHF": 0.88,
    "CAD": 1.35, "AUD": 1.52, "INR": 83.2, "CNY": 7.19, "MXN": 17.1,
}


def compound_interest(principal: float, annual_rate: float, years: float, compounds_per_year: int = 12) -> dict[str, float]:
    """Final balance and interest earned on a deposit with compound interest."""
    if principal < 0 or years < 0:
        raise ValueError("principal and years must be non-negative")
    balance = principal * (1 + annual_rate / 100 / compounds_per_year) ** (compounds_per_year * years)
    return {"final_balance": round(balance, 2), "interest_earned": round(balance - principal, 2)}


def loan_payment(principal: float, annual_rate: float, years: int) -> dict[str, float]:
    """Monthly payment of an amortised loan, with the total paid and total interest."""
    if principal <= 0 or years <= 0:
        raise ValueError("principal and years must be positive")
    months = years * 12
    monthly_rate = annual_rate / 100 / 12
    payment = principal / months if monthly_rate == 0 else principal * monthly_rate / (1 - (1 + monthly_rate) ** -months)
    return {
        "monthly_payment": round(payment, 2),
        "total_paid": round(payment * months, 2),
        "total_interest": round(payment * months - principal, 2),
    }


def convert_currency(amount: float, from_currency: str, to_currency: str) -> dict[str, float | str]:
    """Convert money between currencies at the fixed reference rates."""
    for code in (from_currency, to_currency):
        if code not in USD_RATES:
            return {"error": f"unknown currency {code!r}; known: {', '.join(USD_RATES)}"}
    converted = amount / USD_RATES[from_currency] * USD_RATES[to_currency]
    return {"amount": round(converted, 2), "currency": to_currency, "rate": round(USD_RATES[to_currency] / USD_RATES[from_currency], 6)}


def net_present_value(rate: float, cash_flows: list[float]) -> float:
    """NPV of cash flows, the first at time 0, one period apart, discounted at ``rate`` percent."""
    return round(sum(flow / (1 + rate / 100) ** period for period, flow in enumerate(cash_flows)), 2)


def return_on_investment(initial_value: float, final_value: float, years: float | None = None) -> dict[str, float]:
    """Total return in percent and, given the years held, the annualised return."""
    if initial_value <= 0:
        raise ValueError("initial_value must be positive")
    result = {"total_return_percent": round((final_value / initial_value - 1) * 100, 2)}
    if years:
        result["annualized_return_percent"] = round(((final_value / initial_value) ** (1 / years) - 1) * 100, 2)
    return result


def split_bill(total: float, people: int, tip_percent: float = 15) -> dict[str, float]:
    """Each person's share of a bill with a tip."""
    if people < 1:
        raise ValueError("people must be at least 1")
    with_tip = total * (1 + tip_percent / 100)
    return {"total_with_tip": round(with_tip, 2), "per_person": round(with_tip / people, 2)}
