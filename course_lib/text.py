"""Text for word2vec: tokens, a vocabulary, subsampling and negative sampling.

The pieces, in the order word2vec uses them:

- :func:`tokenize` turns text into lower-case words.
- :func:`load_corpus` builds a corpus of real English (over a million tokens)
  from documentation that ships with Python and the course's dependencies, so
  nothing has to be downloaded; :func:`load_text8` fetches the classic text8
  corpus once into a cache.
- :class:`Vocab` counts words, drops the rare ones (``min_count``) and maps
  words to rows of the embedding matrices.
- :func:`keep_probabilities` and :func:`subsample` thin out frequent words
  (Mikolov et al. 2013, "Distributed representations of words and phrases").
- :func:`noise_distribution` and :class:`NegativeSampler` draw the negative
  samples from the unigram distribution raised to the power 3/4.
"""

import ast
import difflib
import hashlib
import importlib.metadata
import importlib.util
import inspect
import json
import os
import re
import sys
import sysconfig
import time
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np

from .backend import get_array_module, to_numpy
from .download import fetch, get_cache_dir, sha256_of

# ----------------------------------------------------------------------------
# Tokenisation
# ----------------------------------------------------------------------------

# A word is a run of ASCII letters, with an optional contraction (don't, it'll)
# and an optional possessive 's that is dropped. It must stand on its own: a
# run glued to digits, underscores or dots (x2, n_samples, np.sum, e.g.) is an
# identifier or an abbreviation, not an English word, so it is skipped whole.
_WORD_RE = re.compile(
    r"(?:(?<=[\s\-/(\[{\"'`*])|^)"             # preceded by space, bracket, quote or start
    r"([a-z]+(?:'(?:t|re|ve|ll|d|m))?)(?:'s)?"  # the word itself
    r"(?=[\s\-/)\]}\"'`*,;:!?]|[.!?](?:[\s)\]}\"'`*]|$)|$)",  # followed by space or punctuation
    re.MULTILINE)


def tokenize(text):
    """Split ``text`` into lower-case English words.

    A word is a run of the letters a-z (after lower-casing), optionally with a
    contraction (``don't``); a trailing possessive ``'s`` is dropped. Runs that
    touch digits, underscores or a dot followed by more letters (``x2``,
    ``n_samples``, ``np.sum``, ``e.g.``) are code or abbreviations and are
    skipped whole; numbers and punctuation are dropped.

    Returns:
        list of str.
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize expects a str, got {type(text).__name__}")
    return _WORD_RE.findall(text.lower())


_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text):
    """Split running text into sentences at ``.``, ``!`` or ``?`` followed by space."""
    return [s for s in _SENTENCE_END_RE.split(text.strip()) if s]


# ----------------------------------------------------------------------------
# Cleaning docstrings (reStructuredText, numpydoc) down to prose
# ----------------------------------------------------------------------------

_UNDERLINE_RE = re.compile(r"^([-=~^*#\"+`'.:_])\1{2,}$")          # section underlines
_TABLE_RULE_RE = re.compile(r"^[-=+|: ]{3,}$")                    # table borders
_PARAM_RE = re.compile(                                           # "x, y : int, optional"
    r"^\**[A-Za-z_][\w.]*\**(?:\s*,\s*\**[A-Za-z_][\w.]*\**)*\s+:(?:\s+(.*))?$")
_SKIP_SECTIONS = {"see also", "references", "seealso"}
_CODE_RE = re.compile(
    r"::=|==|!=|<=|>=|\+=|-=|->|=>|\w\(|\)\.|\w\[|[{};$@\\]|^#|^\w[\w.\[\], ]*\s*=\s*\S")
_MATH_ROLE_RE = re.compile(r":(?:math|eq):`[^`]*`")
_ROLE_RE = re.compile(r"(?::[\w.+-]+)+:`([^`]*)`")
_LITERAL_RE = re.compile(r"``([^`]*)``")
_LINK_RE = re.compile(r"`([^`<]*?)\s*<[^>`]*>`_{1,2}")
_DEFAULT_ROLE_RE = re.compile(r"`([^`]*)`_{0,2}")
_URL_RE = re.compile(r"(?:https?|ftp|file)://\S+|www\.\S+|\S+@\S+\.\w+")
_MISC_RE = re.compile(r"%\([^)]*\)[sdr]|\[[^\]\s]*\]_|\|([\w ]+)\|")


def _target_text(content):
    """The readable part of a role's or reference's content: ``~numpy.sum`` -> ``sum``."""
    content = content.strip()
    if "<" in content:                      # `link text <target>`
        return content.split("<", 1)[0]
    content = content.lstrip("~!").rstrip("()")
    return content.rsplit(".", 1)[-1]


def _plain_word(content):
    """Keep inline code only when it is a plain word such as ``True``."""
    return content if content.isalpha() else " "


def _clean_inline(text):
    """Replace inline reST markup by the words it shows; drop math, code and URLs."""
    text = _LINK_RE.sub(lambda m: " " + m.group(1) + " ", text)
    text = _URL_RE.sub(" ", text)
    text = _MATH_ROLE_RE.sub(" ", text)
    text = _ROLE_RE.sub(lambda m: " " + _target_text(m.group(1)) + " ", text)
    text = _LITERAL_RE.sub(lambda m: " " + _plain_word(m.group(1)) + " ", text)
    text = _DEFAULT_ROLE_RE.sub(lambda m: " " + _target_text(m.group(1)) + " ", text)
    return _MISC_RE.sub(lambda m: " " + (m.group(1) or "") + " ", text)


def _looks_like_code(line):
    """True for a line that reads as code: operators, calls, assignments, few letters."""
    if _CODE_RE.search(line):
        return True
    letters = sum(c.isalpha() or c == " " for c in line)
    return len(line) > 8 and letters < 0.8 * len(line)


def clean_docstring(doc):
    """The prose of a docstring as a list of sentences (plain strings).

    What goes (it is code or markup, not English): doctest blocks (``>>>``
    and their output, up to the next blank line), literal blocks after ``::``,
    directives and their bodies (``.. math::``, ``.. note::``, footnotes),
    section headers with their underlines, the "See Also" and "References"
    sections, lines that look like code, URLs, inline math, code literals
    that are not plain words. Roles keep the name they point to
    (``:func:`numpy.sum``` -> ``sum``); a numpydoc parameter line
    ``x : int, optional`` keeps only its type description, as a sentence of
    its own.
    """
    paragraphs, current = [], []
    current_indent = 0     # indentation of the current paragraph's first line
    skip_indent = None     # skip lines indented deeper than this (literal blocks, directives)
    in_doctest = False
    skipping_section = False
    lines = doc.expandtabs().splitlines()

    def close():
        if current:
            paragraphs.append(" ".join(current))
            current.clear()

    for k, raw in enumerate(lines):
        line = raw.strip()
        indent = len(raw) - len(raw.lstrip())
        if skip_indent is not None:
            if not line or indent > skip_indent:
                continue
            skip_indent = None
        if in_doctest:
            in_doctest = bool(line)
            continue
        next_line = lines[k + 1].strip() if k + 1 < len(lines) else ""
        if line and _UNDERLINE_RE.match(next_line) and len(next_line) >= len(line) - 1:
            close()                          # a section title: drop it, note which section
            skipping_section = line.lower().rstrip(":") in _SKIP_SECTIONS
            continue
        if _UNDERLINE_RE.match(line) or _TABLE_RULE_RE.match(line):
            close()
            continue
        if skipping_section:
            continue
        if not line:
            close()
        elif line.startswith((">>>", "...")) and not line.startswith("...."):
            close()
            in_doctest = line.startswith(">>>")
        elif line.startswith(".. ") or line == "..":
            close()
            skip_indent = indent
        elif line.endswith("::"):
            text = line[:-2].rstrip()
            if text and not _looks_like_code(_clean_inline(text)):
                current.append(text + ":")
            close()
            skip_indent = indent
        elif _PARAM_RE.match(line) and (not current or indent < current_indent):
            close()    # a parameter entry starts, often right after the previous description
            description = _PARAM_RE.match(line).group(1)
            if description:
                paragraphs.append(description)
        else:
            cleaned = _clean_inline(line)
            if _looks_like_code(cleaned):
                close()
            else:
                if not current:
                    current_indent = indent
                current.append(line)
    close()
    sentences = []
    for paragraph in paragraphs:
        sentences.extend(split_sentences(_clean_inline(paragraph)))
    return sentences


# ----------------------------------------------------------------------------
# The default corpus: documentation that ships with Python and the dependencies
# ----------------------------------------------------------------------------

#: Packages whose docstrings enter the default corpus, in this order. Only the
#: standard library and the course's own dependencies, so the corpus does not
#: depend on what else happens to be installed.
CORPUS_PACKAGES = ("numpy", "scipy", "sklearn", "matplotlib")
_DISTRIBUTIONS = {"numpy": "numpy", "scipy": "scipy", "sklearn": "scikit-learn",
                  "matplotlib": "matplotlib"}
# Folders that hold tests, vendored third-party code or tools rather than the
# package's own documentation.
_SKIP_DIRS = {"__pycache__", "site-packages", "dist-packages", "test", "tests",
              "idlelib", "lib2to3", "turtledemo", "externals", "_vendor", "vendor",
              "vendored", "array_api_compat", "array_api_extra"}
#: Bump when the cleaning rules change, so cached corpora are rebuilt.
CORPUS_FORMAT = 2
_MIN_SENTENCE_TOKENS = 2   # a one-word sentence has no context to learn from


def _python_files(top):
    """All ``.py`` files under ``top`` in sorted order, skipping test and vendor folders."""
    found = []
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("config-"))
        found.extend(os.path.join(folder, f) for f in sorted(files) if f.endswith(".py"))
    return found


def _docstrings_of_source(source):
    """Docstrings of a module, its classes and functions (and numpy's ``add_newdoc`` texts).

    Parses the source with ``ast`` instead of importing it: faster, and no
    module code runs.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    docs, stack = [], [tree]
    scopes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    while stack:
        node = stack.pop()
        doc = ast.get_docstring(node, clean=True)
        if doc:
            docs.append(doc)
        for child in node.body:
            if isinstance(child, scopes):
                stack.append(child)
            elif isinstance(node, ast.Module) and isinstance(child, ast.Expr) \
                    and isinstance(child.value, ast.Call):
                docs.extend(_add_newdoc_texts(child.value))
    return docs


def _add_newdoc_texts(call):
    """Strings passed to numpy's ``add_newdoc(...)``, which documents C functions."""
    func = call.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    if not name.startswith("add_newdoc"):
        return []
    texts = []
    for arg in call.args:
        items = arg.elts if isinstance(arg, (ast.Tuple, ast.List)) else [arg]
        for item in items:
            if isinstance(item, ast.Constant) and isinstance(item.value, str) \
                    and len(item.value) > 40:
                texts.append(inspect.cleandoc(item.value))
    return texts


def _corpus_sources():
    """(label, folder) for the standard library and each package of CORPUS_PACKAGES."""
    sources = [("stdlib", sysconfig.get_paths()["stdlib"])]
    for name in CORPUS_PACKAGES:
        spec = importlib.util.find_spec(name)   # locates the package without importing it
        if spec is not None and spec.submodule_search_locations:
            sources.append((name, sorted(spec.submodule_search_locations)[0]))
    return sources


def _corpus_key():
    """Versions that determine the corpus; the cache file name carries their hash."""
    versions = {"python": sys.version.split()[0], "format": CORPUS_FORMAT}
    for name in CORPUS_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(_DISTRIBUTIONS[name])
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    blob = json.dumps(versions, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16], versions


def build_corpus():
    """Build the default corpus from scratch (see :func:`load_corpus`).

    Returns:
        list of sentences, each a list of str tokens.
    """
    from pydoc_data.topics import topics

    texts = [topics[key] for key in sorted(topics)]
    for _, top in _corpus_sources():
        for path in _python_files(top):
            with open(path, "rb") as f:
                texts.extend(_docstrings_of_source(f.read()))
    seen, sentences = set(), []
    for text in texts:
        if text in seen:             # inherited and copied docstrings count once
            continue
        seen.add(text)
        for sentence in clean_docstring(text):
            tokens = tokenize(sentence)
            if len(tokens) >= _MIN_SENTENCE_TOKENS:
                sentences.append(tokens)
    return sentences


def load_corpus(cache_dir=None, rebuild=False, verbose=False):
    """The default corpus: English prose from Python's and its libraries' documentation.

    Built at first use, with no download, from the help topics of the
    standard library (``pydoc_data.topics``) and the docstrings of the
    standard library, NumPy, SciPy, scikit-learn and matplotlib (source files
    are parsed with ``ast``, in sorted order; nothing is imported). Code and
    markup are removed (:func:`clean_docstring`), the prose is split into
    sentences and tokenised (:func:`tokenize`); sentences of fewer than two
    words are dropped. The result has well over a million tokens.

    The corpus is cached as a text file (one sentence per line) in
    ``cache_dir`` (default :func:`course_lib.download.get_cache_dir`), under a
    name that depends on the versions of Python and the packages, so later
    calls read it back in a fraction of a second.

    Returns:
        list of sentences, each a list of lower-case str tokens.
    """
    key, versions = _corpus_key()
    path = get_cache_dir(cache_dir) / f"docs-corpus-{key}.txt"
    if path.exists() and not rebuild:
        with open(path, encoding="utf-8") as f:
            return [line.split() for line in f.read().splitlines()]
    start = time.perf_counter()
    sentences = build_corpus()
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(" ".join(s) for s in sentences))
        f.write("\n")
    os.replace(tmp, path)   # atomic: a concurrent reader never sees half a file
    if verbose:
        n_tokens = sum(map(len, sentences))
        print(f"built the corpus ({len(sentences):,} sentences, {n_tokens:,} tokens, "
              f"{versions}) in {time.perf_counter() - start:.1f} s -> {path}")
    return sentences


# ----------------------------------------------------------------------------
# text8 (optional download)
# ----------------------------------------------------------------------------

TEXT8_URL = "http://mattmahoney.net/dc/text8.zip"
TEXT8_ZIP_SHA256 = "a6640522afe85d1963ad56c05b0ede0a0c000dddc9671758a6cc09b7a38e5232"
TEXT8_SHA256 = "6e890197040d37d85beb962ae1f041ff1d9a9ca8d20c7d99c85027eebf51dca7"
#: word2vec's C code cuts sentences at 1,000 words (MAX_SENTENCE_LENGTH); text8
#: has no sentence boundaries at all, so it is cut into pieces of that length.
TEXT8_SENTENCE_LENGTH = 1000


def load_text8(cache_dir=None, sentence_length=TEXT8_SENTENCE_LENGTH):
    """The text8 corpus (the first 10^8 bytes of an English Wikipedia dump, cleaned).

    Downloaded once (31 MB zip) into the cache, checked against its SHA-256
    digest, unpacked and checked again. text8 is one line of 17 million
    lower-case words without punctuation; it is returned cut into "sentences"
    of ``sentence_length`` words.

    Raises:
        ConnectionError: offline and no verified copy in the cache.

    Returns:
        list of sentences, each a list of str tokens.
    """
    folder = get_cache_dir(cache_dir)
    text_path = folder / "text8"
    if not (text_path.exists() and sha256_of(text_path) == TEXT8_SHA256):
        zip_path = fetch(TEXT8_URL, TEXT8_ZIP_SHA256, cache_dir=folder, filename="text8.zip")
        with zipfile.ZipFile(zip_path) as archive:
            data = archive.read("text8")
        tmp = text_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        if sha256_of(tmp) != TEXT8_SHA256:
            tmp.unlink()
            raise ValueError(f"the text8 file inside {zip_path} has the wrong SHA-256 digest")
        os.replace(tmp, text_path)
    words = text_path.read_text(encoding="ascii").split()
    n = int(sentence_length)
    return [words[i:i + n] for i in range(0, len(words), n)]


# ----------------------------------------------------------------------------
# Vocabulary
# ----------------------------------------------------------------------------

def _check_sentences(sentences):
    """A list of sentences (lists of str), or a clear error about what is wrong."""
    if isinstance(sentences, (str, bytes)):
        raise TypeError("sentences must be a list of token lists, got a single string: "
                        "split it with course_lib.text.tokenize first")
    sentences = list(sentences)
    if not sentences or not any(len(s) for s in sentences):
        raise ValueError("the corpus is empty: there are no sentences with any tokens")
    for s in sentences[:5]:
        if isinstance(s, str) or not all(isinstance(t, str) for t in s):
            raise TypeError("each sentence must be a list of str tokens, "
                            f"got {type(s).__name__} {str(s)[:60]!r}")
    return sentences


class Vocab:
    """The words kept for training, their counts, and the row of each word.

    Words are ordered by decreasing count, ties alphabetically, so the same
    corpus always gives the same rows. Words seen fewer than ``min_count``
    times are dropped (as in word2vec and gensim).

    Attributes:
        words: list of str, ``words[i]`` is the word of row ``i``.
        counts: int64 array of shape (V,), corpus counts.
        index: dict str -> int, the row of each word.
    """

    def __init__(self, words, counts):
        self.words = list(words)
        self.counts = np.asarray(counts, dtype=np.int64)
        if len(self.words) != len(self.counts):
            raise ValueError(f"{len(self.words)} words but {len(self.counts)} counts")
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, sentences, min_count=5):
        """Count the tokens of ``sentences`` and keep words with count >= ``min_count``."""
        sentences = _check_sentences(sentences)
        if int(min_count) < 1:
            raise ValueError(f"min_count must be a positive integer, got {min_count}")
        counter = Counter()
        for sentence in sentences:
            counter.update(sentence)
        kept = sorted(((c, w) for w, c in counter.items() if c >= min_count),
                      key=lambda cw: (-cw[0], cw[1]))
        if not kept:
            top = ", ".join(f"{w!r} ({c})" for w, c in counter.most_common(3))
            raise ValueError(
                f"no word occurs at least min_count={min_count} times "
                f"(the most frequent are {top}): lower min_count or use a larger corpus")
        return cls([w for _, w in kept], [c for c, _ in kept])

    def __len__(self):
        return len(self.words)

    def __contains__(self, word):
        return word in self.index

    def __repr__(self):
        return f"Vocab({len(self)} words, {int(self.counts.sum()):,} tokens)"

    def suggest(self, word, n=3):
        """Up to ``n`` vocabulary words spelled like ``word`` (for error messages)."""
        return difflib.get_close_matches(str(word).lower(), self.words, n=n)

    def lookup(self, word):
        """The row of ``word``; a KeyError naming it (and close matches) when it is unknown."""
        try:
            return self.index[word]
        except KeyError:
            close = self.suggest(word)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise KeyError(f"{word!r} is not in the vocabulary ({len(self)} words; "
                           f"words seen fewer than min_count times are dropped).{hint}") from None

    def encode(self, sentences):
        """Token ids of ``sentences`` with out-of-vocabulary tokens removed.

        Returns:
            ids: int32 array of shape (T,), the kept tokens one after another.
            sentence_ids: int32 array of shape (T,), the sentence each token came from.
        """
        index = self.index
        ids, lengths = [], []
        for sentence in sentences:
            row = [index[t] for t in sentence if t in index]
            ids.extend(row)
            lengths.append(len(row))
        ids = np.asarray(ids, dtype=np.int32)
        sentence_ids = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
        return ids, sentence_ids


# ----------------------------------------------------------------------------
# Subsampling of frequent words
# ----------------------------------------------------------------------------

def keep_probabilities(counts, sample=1e-3):
    """Probability of keeping each occurrence of a word, word2vec's C code variant.

    With relative frequency ``f = count / total`` and threshold ``t = sample``::

        p_keep(w) = min(1, (sqrt(f / t) + 1) * t / f)

    This is the formula of Mikolov's released word2vec.c (also used by
    gensim), not the paper's ``p_discard = 1 - sqrt(t / f)``: both discard
    words much more frequent than ``t`` and keep rare ones, but the C code
    keeps a little more (e.g. f = 100 t: 0.11 instead of 0.10). ``sample=0``
    keeps everything.

    Args:
        counts: array of shape (V,) of word counts.
        sample: the threshold t (word2vec's ``-sample``).

    Returns:
        float64 array of shape (V,) with values in (0, 1].
    """
    xp = get_array_module(counts)
    counts = xp.asarray(counts, dtype=xp.float64)
    if sample < 0:
        raise ValueError(f"sample must be >= 0, got {sample}")
    if sample == 0:
        return xp.ones_like(counts)
    ratio = counts / (sample * counts.sum())         # f / t
    return xp.minimum(1.0, (xp.sqrt(ratio) + 1.0) / ratio)


def subsample(ids, keep_prob, rng):
    """Boolean mask of the tokens kept: token i survives with probability ``keep_prob[ids[i]]``.

    Args:
        ids: int array of shape (T,); keep_prob: array of shape (V,);
        rng: a ``numpy.random.Generator`` (or CuPy's) drawing the uniforms.

    Returns:
        bool array of shape (T,).
    """
    return rng.random(ids.shape[0], dtype=np.float32) < keep_prob[ids]


# ----------------------------------------------------------------------------
# Negative sampling
# ----------------------------------------------------------------------------

def noise_distribution(counts, power=0.75):
    """Negative-sampling noise distribution ``P_n(w) = count(w)^power / sum_v count(v)^power``.

    ``power = 3/4`` (Mikolov et al. 2013) flattens the unigram distribution so
    rare words are drawn more often than their frequency.

    Returns:
        float64 array of shape (V,) summing to 1.
    """
    xp = get_array_module(counts)
    weights = xp.asarray(counts, dtype=xp.float64) ** power
    return weights / weights.sum()


class NegativeSampler:
    """Draws negative words from :func:`noise_distribution`, never the positive word.

    Uses Walker's alias method (Vose's construction), which draws each sample
    in constant time: a uniform ``r`` in [0, V) picks the column
    ``i = floor(r)``; the sample is ``i`` when ``r - i < prob[i]`` and
    ``alias[i]`` otherwise. The tables are built so that every word comes out
    with probability exactly ``P_n(w)`` (up to float64 rounding).

    A draw that equals the positive word of its own row is drawn again (only
    those, vectorised, until none is left), so each negative follows ``P_n``
    conditioned on ``w != positive``. word2vec's C code instead skips such a
    draw, which leaves that pair with one negative fewer.

    Args:
        counts: array of shape (V,) of word counts (NumPy or CuPy: the
            samples live on the same device).
        power: exponent of the unigram distribution.
        seed: seed of the sampler's own random generator.
    """

    def __init__(self, counts, power=0.75, seed=0):
        xp = get_array_module(counts)
        self.xp = xp
        self.probs = noise_distribution(counts, power)
        probs = to_numpy(self.probs).astype(np.float64)
        if int((probs > 0).sum()) < 2:
            raise ValueError("negative sampling needs at least two words with a positive count")
        prob, alias = alias_tables(probs)
        self.prob, self.alias = xp.asarray(prob), xp.asarray(alias)
        self.rng = xp.random.default_rng(seed)

    def _draw(self, shape):
        xp = self.xp
        r = self.rng.random(shape) * self.prob.shape[0]     # float64: 36+ bits left for the fraction
        i = r.astype(xp.int32)
        return xp.where(r - i < self.prob[i], i, self.alias[i])

    def sample(self, positive, k):
        """``k`` negatives for each positive word.

        Args:
            positive: int array of shape (N,), the positive (context) words.
            k: negatives per positive.

        Returns:
            int32 array of shape (N, k), with ``out[i, j] != positive[i]``.
        """
        xp = self.xp
        positive = xp.asarray(positive)
        out = self._draw((positive.shape[0], int(k)))
        clash = out == positive[:, None]
        while bool(clash.any()):
            rows, cols = xp.nonzero(clash)
            redraw = self._draw(rows.shape[0])
            out[rows, cols] = redraw
            clash[rows, cols] = redraw == positive[rows]
        return out


def alias_tables(probs):
    """Walker's alias tables for sampling word ``w`` with probability ``probs[w]``.

    Each of the V columns holds mass 1/V split between its own word (fraction
    ``prob[i]``) and one other word ``alias[i]``. Vose's construction: scale
    the probabilities by V, then repeatedly fill an under-full column with
    mass from an over-full word.

    Args:
        probs: float array of shape (V,) summing to 1 (NumPy).

    Returns:
        prob: float64 (V,) in [0, 1]; alias: int32 (V,).
    """
    probs = np.asarray(probs, dtype=np.float64)
    V = probs.shape[0]
    scaled = probs * (V / probs.sum())
    prob = np.ones(V)
    alias = np.arange(V, dtype=np.int32)
    small = [int(i) for i in np.flatnonzero(scaled < 1.0)]
    large = [int(i) for i in np.flatnonzero(scaled >= 1.0)]
    while small and large:   # runs once per word, at set-up only
        s, big = small.pop(), large.pop()
        prob[s], alias[s] = scaled[s], big
        scaled[big] -= 1.0 - scaled[s]
        (small if scaled[big] < 1.0 else large).append(big)
    return prob, alias
