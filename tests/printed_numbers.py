"""Checks on figures a script prints, each rounded to the digits it shows."""


def _half_unit(printed: str) -> float:
    """Half a unit of the last digit of a number as printed: how far the printed value may be from the true one."""
    return 0.5 * 10.0 ** -len(printed.partition(".")[2])


def assert_printed_quotient(printed: str, numerator: str, denominator: str, minus: float = 0.0) -> None:
    """`printed` is numerator / denominator − minus, each number rounded as printed: the quotient of some
    values that round to the printed operands rounds to it."""
    top, bottom, figure = float(numerator), float(denominator), float(printed)
    assert bottom > _half_unit(denominator) and top > 0, (numerator, denominator)  # both measured, positive
    lowest = (top - _half_unit(numerator)) / (bottom + _half_unit(denominator)) - minus
    highest = (top + _half_unit(numerator)) / (bottom - _half_unit(denominator)) - minus
    assert lowest - _half_unit(printed) <= figure <= highest + _half_unit(printed), (printed, numerator, denominator)
