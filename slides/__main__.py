"""``python -m slides decks`` (make slides) and ``python -m slides pdf`` (make pdf)."""

from __future__ import annotations

import argparse
import sys
import time

from slides import BOOK, DECKS, PDF, BuildError, decks, handout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slides", description=__doc__)
    parser.add_argument(
        "what",
        choices=("decks", "pdf"),
        help="decks: a reveal.js deck per chapter in _build/slides/; pdf: the book, and each "
        "deck that make slides built, as PDF in _build/pdf/",
    )
    what = parser.parse_args(argv).what
    start = time.perf_counter()
    try:
        if what == "decks":
            written = decks.build()
            print(f"{len(written)} decks in {DECKS} (from {BOOK}), ", end="")
        else:
            written = [handout.print_book()]
            if any(DECKS.glob("*.html")):
                written += handout.print_decks()
            else:
                print(f"no decks in {DECKS} (make slides builds them): the book only")
            print(f"{len(written)} PDFs in {PDF}, ", end="")
    except BuildError as error:
        print(f"make {'slides' if what == 'decks' else 'pdf'}: {error}", file=sys.stderr)
        return 2
    print(f"{time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
