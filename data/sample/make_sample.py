"""Regenerate `customers.csv`: 5,000 deterministic customer rows, a few of them deliberately bad.

    python data/sample/make_sample.py
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

ROWS = 5_000
BAD_ROWS = {
    101: {"phoneNumber": "call me maybe"},      # breaks the contract's pattern
    202: {"phoneNumber": ""},                   # required field missing
    303: {"phoneNumber": "+1 555 0100"},        # spaces are not allowed by the pattern
    404: {"customer_ref": "CUST-000400"},       # duplicate key of row 400
    13: {"phoneNumber": "+15550100013"},        # the demo scenario's remote endpoint fails for these three
    666: {"phoneNumber": "+15550100666"},
    999: {"phoneNumber": "+15550100999"},
}


def rows(seed: int = 20261204) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for n in range(1, ROWS + 1):
        row = {"customer_ref": f"CUST-{n:06d}", "phoneNumber": f"+1{rng.randrange(2_000_000_000, 9_999_999_999)}",
               "segment": rng.choice(["retail", "business", "public"]), "region": rng.choice(["NA", "EU", "APAC"])}
        out.append(row | BAD_ROWS.get(n, {}))
    return out


def main() -> None:
    path = Path(__file__).with_name("customers.csv")
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["customer_ref", "phoneNumber", "segment", "region"])
        writer.writeheader()
        writer.writerows(rows())
        handle.write("CUST-999999,+15550001111,retail,NA,unexpected-extra-field\n")  # a ragged line


if __name__ == "__main__":
    main()
