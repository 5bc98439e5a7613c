"""Sorting and formatting of the Compare page's scores (``js/src/compare/scores.ts``) against a
Python reference: rows sorted by the score of one column, rows without a value (null) last in
either direction, ties in input order."""

from __future__ import annotations

RUNNER = """
import { formatScore, rowOrder } from "./module.mjs";
let text = "";
for await (const chunk of process.stdin) text += chunk;
const { orders, numbers } = JSON.parse(text);
process.stdout.write(JSON.stringify({
  orders: orders.map(({ scores, sort, n }) => rowOrder(scores, sort, n)),
  formatted: numbers.map(formatScore),
}));
"""


def reference_order(values: list[float | None], descending: bool) -> list[int]:
    present = [i for i, v in enumerate(values) if v is not None]
    missing = [i for i, v in enumerate(values) if v is None]
    # Python's sort is stable: ties keep input order in both directions.
    present.sort(key=lambda i: -values[i] if descending else values[i])
    return present + missing


def test_row_order_and_formatting(run_ts):
    columns = {
        "0": [0.4, 0.9, None, 0.4, -1.0, 2.5],
        "7": [3.0, 1.0, 2.0, None, None, 0.0],
    }
    orders = []
    expected = []
    for column, values in columns.items():
        for descending in (True, False):
            sort = {"score": "mass", "column": int(column), "descending": descending}
            orders.append({"scores": {"mass": columns}, "sort": sort, "n": len(values)})
            expected.append(reference_order(values, descending))
    # No sort, or a score that does not exist yet: input order (unknown rows count as missing).
    orders.append({"scores": {"mass": columns}, "sort": {}, "n": 6})
    expected.append(list(range(6)))
    orders.append({"scores": {}, "sort": {"score": "x", "column": 0, "descending": True}, "n": 3})
    expected.append([0, 1, 2])
    numbers = [0.123456, 12345.678, 0.0001234, 0, -2.5, None]
    answer = run_ts("compare/scores", RUNNER, {"orders": orders, "numbers": numbers})
    assert answer["orders"] == expected
    # Three significant digits; exponent form for very large / small magnitudes; "–" if missing.
    assert answer["formatted"] == ["0.123", "1.23e+4", "1.23e-4", "0", "-2.5", "–"]
