#!/usr/bin/env python3
"""Writes the DOCX and PDF documents of the learn must-show's larger set
(load-tests/learn/docs, written before any run with them) into OUT, with the
fixtures' own writers (crates/voxline-analysis/tests/fixtures/learn/make.py).
The Markdown, HTML and text documents are committed as they are."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "crates/voxline-analysis/tests/fixtures/learn"))
from make import docx, pdf  # noqa: E402

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
docx(
    out / "student-account.docx",
    "Student account",
    [
        ("Heading1", "Who can open one"),
        (None, "The Student account is for full-time students aged 18 to 25 with proof of enrolment."),
        ("Heading1", "Student overdraft"),
        (None, "The student overdraft is interest-free up to 1,500 dollars in the first year."),
        ("Heading2", "Overdraft limit by year of study"),
        ("table", [["Year", "Limit"], ["First year", "1,500 dollars"], ["Second year", "2,000 dollars"],
                   ["Third year", "3,000 dollars"]]),
        ("Heading1", "Fees"),
        (None, "The Student account has no monthly fee."),
    ],
)
pdf(
    out / "car-finance.pdf",
    [
        (18, "Car finance"),
        (13, "Hire purchase"),
        (11, "Harbor Car Finance is hire purchase at a representative rate of 6.9 percent APR."),
        (11, "You can spread the cost over 2 to 5 years."),
        (13, "Deposit"),
        (11, "The deposit must be at least 10 percent of the car's price."),
        (13, "Settling early"),
        (11, "Settling the agreement early costs 2 months of interest."),
    ],
)
pdf(
    out / "pensions.pdf",
    [
        (18, "Pensions"),
        (13, "Harbor Pension"),
        (11, "The Harbor Pension takes contributions from 50 dollars a month."),
        (11, "The annual management charge is 0.45 percent of the pension's value."),
        (13, "Transferring a pension in"),
        (11, "Transferring an old pension into the Harbor Pension is free."),
    ],
)
