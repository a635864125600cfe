"""Child process for test_crash: saves numbered result pairs forever, printing each one after it returns."""
from __future__ import annotations

import sys

from preau.node.records import vault
from preau.node.records.store import ResultInput, Store


def main() -> None:
    data_dir, username, password, start = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = Store.open(data_dir, cost=vault.TEST_COST)
    session = store.login(username, password)
    cls = store.list_classes(session)[0]
    pupils = [p.id for p in store.list_pupils(session, cls.id)]
    k = start
    while True:
        p = pupils[k % len(pupils)]
        v = k % 200
        answers = tuple(int(c) for c in format(k % 1024, "010b"))
        store.save_results(session, "2026-debut-cp", [ResultInput(p, "fr-lire-texte", wpm=v),
                                                      ResultInput(p, "fr-mots", answers=answers)])
        sys.stdout.write(f"{k}\n")
        sys.stdout.flush()
        k += 1


if __name__ == "__main__":
    main()
