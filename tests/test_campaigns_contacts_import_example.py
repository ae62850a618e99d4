"""The demo data: config/examples/customers.csv imports with exactly its planted problems."""

from __future__ import annotations

import importlib.util
import random
from collections import Counter
from pathlib import Path
from types import ModuleType

from sqlalchemy import select

from campaigns.contacts_csv import import_csv
from campaigns.db import session_scope
from campaigns.definition import load_definition
from campaigns.models import Contact
from campaigns.templates import MissingField, compile_template

EXAMPLES = Path(__file__).resolve().parent.parent / "config" / "examples"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_customers", EXAMPLES / "make_customers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generator_reproduces_the_file() -> None:
    make = generator()
    lines = make.build_lines(random.Random(make.SEED))
    assert "\n".join(lines) + "\n" == (EXAMPLES / "customers.csv").read_text(encoding="utf-8")


def test_customers_csv_imports_with_its_planted_problems(db_url: str) -> None:
    report = import_csv(db_url, EXAMPLES / "customers.csv", "customers", default_region="US")
    assert report.rows == 10_000
    assert (report.imported, report.duplicates, report.empty) == (9_947, 30, 2)
    assert Counter(e.field for e in report.errors) == {"phone_number": 20, "*": 1}

    spring_sale = load_definition(EXAMPLES / "spring-sale.yaml")
    assert spring_sale.message.body is not None
    render = compile_template(spring_sale.message.body)
    missing: Counter[str] = Counter()
    with session_scope(db_url) as session:
        for fields in session.scalars(select(Contact.fields)):
            try:
                render(fields, spring_sale.message.defaults)
            except MissingField as exc:
                missing[exc.field] += 1
    assert missing == {"first_name": 8}
