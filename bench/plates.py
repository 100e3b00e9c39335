"""What reading a report for number plates costs: the recogniser alone, and an inbound SMS report with and
without it (the same in-process webhook, Flask's test client, SQLite, alternating request by request).

    python -m bench.plates            # 2,000 texts x 5 rounds; 400 webhook reports, alternately with and without
    python -m bench.plates --smoke    # CI-sized: seconds

The texts: everyday reports without plates (bench.seed's phrases), reports with a typed plate, speech
transcripts of a spoken plate, and a long 1,600-character text (a ten-part SMS), in equal shares.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

from bench.seed import DETAIL, DOING, WHO
from hotline.reports import plates

PLATED = ["white van AB12 CDE outside number 4", "red Golf LB07SXR by the garages", "old Jag ABC 123D again",
          "silver car a12 bcd, two lads in it", "Merc ABZ 1234 parked on the corner"]
SPOKEN = ["alpha bravo one two charlie delta echo going slowly past the houses",
          "a b 12 c d e parked with the engine running", "lima golf oh seven sierra x-ray romeo by the school"]


def texts(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        everyday = f"{rng.choice(WHO)} {rng.choice(DOING)}, {rng.choice(DETAIL)}, at {rng.randint(1, 12)}pm near no {rng.randint(1, 99)}"
        kind = i % 4
        if kind == 0:
            out.append(everyday)
        elif kind == 1:
            out.append(f"{everyday}. {rng.choice(PLATED)}")
        elif kind == 2:
            out.append(rng.choice(SPOKEN))
        else:
            out.append((everyday + ". ") * (1600 // (len(everyday) + 2)))
    return out


def recogniser(sample: list[str], rounds: int) -> dict:
    """Microseconds per text: median and 99th percentile over every text of every round, by kind."""
    per_kind: dict[str, list[float]] = {"everyday": [], "typed plate": [], "spoken plate": [], "1,600 characters": []}
    names = list(per_kind)
    gc.disable()  # as timeit does: a collection of the whole process's garbage is not the recogniser's cost
    try:
        for _ in range(rounds):
            for i, text in enumerate(sample):
                start = time.perf_counter()
                plates.find(text)
                per_kind[names[i % 4]].append((time.perf_counter() - start) * 1e6)
    finally:
        gc.enable()
    return {kind: (statistics.median(v), statistics.quantiles(v, n=100)[98]) for kind, v in per_kind.items()}


def webhook(reports: int) -> dict:
    """Median ms for one inbound SMS report (signed, a street of 10), with the recogniser and with it switched
    off, alternating request by request in one app so that both see the same database and the same machine."""
    from sqlmodel import Session

    from tests.conftest import NUMBERS, SignedClient, add_members, add_street, build_app

    workdir = Path(tempfile.mkdtemp(prefix="bench-plates-"))
    environ = {"HOTLINE_REPORTS_PER_HOUR": "1000000", "HOTLINE_REPORTS_PER_DAY": "1000000", "HOTLINE_REPLIES_PER_HOUR": "1000000"}
    app = build_app(workdir, twilio=True, environ=environ)
    engine = app.extensions["hotline"].engine
    with Session(engine) as session:
        street = add_street(session, "Clayhall Avenue", 101)
        add_members(session, street, NUMBERS[:10])
    client = SignedClient(app)
    timings: dict[str, list[float]] = {"with plates": [], "without plates": []}
    for i, text in enumerate(texts(reports + 10, seed=11)):
        label = "without plates" if i % 2 else "with plates"
        with mock.patch.object(plates, "find", (lambda _text: []) if i % 2 else plates.find):
            start = time.perf_counter()
            response = client.sms(NUMBERS[i % 10], text[:1600])
            elapsed = (time.perf_counter() - start) * 1e3
        assert response.status_code == 200, response.data
        if i >= 10:  # the first few warm the caches
            timings[label].append(elapsed)
    engine.dispose()
    return {label: statistics.median(values) for label, values in timings.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    count, rounds, reports = (200, 1, 20) if args.smoke else (2000, 5, 400)
    timed = recogniser(texts(count), rounds)
    print("| text | median µs | p99 µs |")
    print("|---|---:|---:|")
    for kind, (median, p99) in timed.items():
        print(f"| {kind} | {median:.0f} | {p99:.0f} |")
    hooks = webhook(reports)
    print("\n| one SMS report, in-process | median ms |")
    print("|---|---:|")
    for label, median in hooks.items():
        print(f"| {label} | {median:.1f} |")
    over = [kind for kind, (_, p99) in timed.items() if p99 >= 1000]
    print(f"\nrecogniser p99 under 1 ms for every kind of text: {'yes' if not over else 'no: ' + ', '.join(over)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
