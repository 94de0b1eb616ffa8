"""Tests for course_lib.text: tokens, cleaning, the corpora, the vocabulary and the samplers."""

import hashlib
import io
import zipfile

import numpy as np
import pytest
from scipy import stats

from course_lib import text
from course_lib.text import (NegativeSampler, Vocab, alias_tables, clean_docstring,
                             keep_probabilities, noise_distribution, split_sentences,
                             subsample, tokenize)

# Statistical tests below run at fixed seeds, so they are deterministic. Their
# threshold p < 1e-3 is the chance that a correct sampler would fail at a
# randomly chosen seed; the sample sizes are large enough that the plausible
# mistakes (another exponent, the paper's subsampling formula instead of the
# C code's) give p-values below 1e-10, which each test also checks, so the
# tests can fail.
P_THRESHOLD = 1e-3


# -- tokenize ----------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("Hello, World!", ["hello", "world"]),
    ("Return the sum (default: None).", ["return", "the", "sum", "default", "none"]),
    ("An array-like input and/or a list", ["an", "array", "like", "input", "and", "or", "a", "list"]),
    ("don't use the file's name", ["don't", "use", "the", "file", "name"]),
    ("call np.sum on x2 with n_samples, e.g. 3.5 times", ["call", "on", "with", "times"]),
    ("*bins* and `axis` and 'quoted'", ["bins", "and", "axis", "and", "quoted"]),
    ("café naïve ok", ["ok"]),
    ("", []),
])
def test_tokenize(raw, expected):
    assert tokenize(raw) == expected


def test_tokenize_rejects_non_strings():
    with pytest.raises(TypeError, match="str"):
        tokenize(["a", "list"])


def test_split_sentences():
    assert split_sentences("One two. Three four!  Five?\nSix") == \
        ["One two.", "Three four!", "Five?", "Six"]


# -- clean_docstring -----------------------------------------------------------

NUMPYDOC = '''Compute the mean of an array along an axis.

This calls :func:`numpy.sum` and divides by the length, see
`the guide <https://example.org/guide>`_ or https://example.org for more.

Parameters
----------
a : array_like
    Input values whose mean is wanted.
axis : int, optional
    Axis along which the mean is computed.

Returns
-------
m : ndarray

See Also
--------
average : Weighted mean.

Notes
-----
The mean is :math:`\\frac{1}{n} \\sum_i x_i` for ``n`` values.

.. math:: \\bar{x} = \\frac{1}{n} \\sum_i x_i

For example::

    total = values.sum()
    mean = total / len(values)

.. versionadded:: 1.2

References
----------
.. [1] Somebody, "A paper title", Journal, 1999.

Examples
--------
>>> import numpy as np
>>> np.mean([1, 2])
1.5

The result is a float.
'''


def test_clean_docstring_keeps_prose_and_drops_code_and_markup():
    sentences = clean_docstring(NUMPYDOC)
    words = [w for s in sentences for w in tokenize(s)]
    for kept in ["compute", "mean", "divides", "guide", "input", "optional", "computed",
                 "float", "example", "sum"]:
        assert kept in words, f"{kept!r} is prose and should be kept"
    for dropped in ["numpy", "np", "import", "https", "org", "frac", "versionadded",
                    "somebody", "journal", "weighted", "total", "len", "parameters",
                    "references", "bar"]:
        assert dropped not in words, f"{dropped!r} is code or markup and should be dropped"
    assert "Compute the mean of an array along an axis." in sentences
    assert "int, optional" in sentences          # a parameter's type line is its own sentence
    assert sentences[-1] == "The result is a float."


def test_clean_docstring_drops_grammar_and_code_lines_of_help_topics():
    topic = ('The "for" statement\n*******************\n\nIt is used to iterate:\n\n'
             '   for_stmt ::= "for" target_list "in" starred_list ":" suite\n\n'
             '   for i in range(10):\n       print(i)\n\nThe loop then ends.\n')
    words = [w for s in clean_docstring(topic) for w in tokenize(s)]
    assert words == ["it", "is", "used", "to", "iterate", "the", "loop", "then", "ends"]


# -- the default corpus --------------------------------------------------------

def test_corpus_sources_are_the_standard_library_and_the_listed_packages_only():
    labels = [label for label, _ in text._corpus_sources()]
    assert labels == ["stdlib", "numpy", "scipy", "sklearn", "matplotlib"]
    stdlib = text._corpus_sources()[0][1]
    files = text._python_files(stdlib)
    assert len(files) > 300 and files == text._python_files(stdlib)
    folders = {}
    for f in files:
        folder, name = f.rsplit("/", 1)
        folders.setdefault(folder, []).append(name)
    assert all(names == sorted(names) for names in folders.values()), "files must come in sorted order"
    assert not any("site-packages" in f or "/test/" in f for f in files)


def test_load_corpus_builds_once_then_reads_the_cache(tmp_path, monkeypatch):
    # A small stand-in for the documentation tree: the same code path, a second.
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "b.py").write_text('"""Second module text here.\n\n>>> code()\n"""\n')
    (pkg / "a.py").write_text(
        '"""First module.\n\nIt has prose."""\n\n'
        'def f():\n    """A function that returns a value."""\n')
    monkeypatch.setattr(text, "_corpus_sources", lambda: [("pkg", str(pkg))])
    monkeypatch.setattr("pydoc_data.topics.topics", {"z": "Topic text one.", "a": "Alpha topic."})
    cache = tmp_path / "cache"
    first = text.load_corpus(cache_dir=cache)
    assert first == [["alpha", "topic"], ["topic", "text", "one"], ["first", "module"],
                     ["it", "has", "prose"], ["a", "function", "that", "returns", "a", "value"],
                     ["second", "module", "text", "here"]]
    assert len(list(cache.glob("docs-corpus-*.txt"))) == 1
    monkeypatch.setattr(text, "build_corpus", lambda: pytest.fail("the cache was not used"))
    assert text.load_corpus(cache_dir=cache) == first


def test_cache_key_changes_with_versions(monkeypatch):
    key, versions = text._corpus_key()
    assert set(versions) == {"python", "format", *text.CORPUS_PACKAGES}
    monkeypatch.setattr(text, "CORPUS_FORMAT", text.CORPUS_FORMAT + 1)
    assert text._corpus_key()[0] != key


@pytest.mark.slow
def test_default_corpus_is_large_clean_and_cached():
    # Uses the default cache, as a student would: the first run builds it (~15 s on 2 cores).
    sentences = text.load_corpus()
    n_tokens = sum(map(len, sentences))
    assert n_tokens > 1_000_000
    assert all(len(s) >= 2 for s in sentences)
    vocab = Vocab.build(sentences, min_count=5)
    assert all(w.replace("'", "").isalpha() and w.islower() for w in vocab.words)
    for word in ["array", "integer", "function", "file", "matrix", "the"]:
        assert word in vocab


# -- text8 (offline) ------------------------------------------------------------

def _fake_text8(tmp_path, words):
    """A zip holding a member ``text8`` like the real one, served from a file:// URL."""
    payload = " ".join(words).encode("ascii")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("text8", payload)
    source = tmp_path / "server" / "text8.zip"
    source.parent.mkdir()
    source.write_bytes(buffer.getvalue())
    return (source.as_uri(), hashlib.sha256(buffer.getvalue()).hexdigest(),
            hashlib.sha256(payload).hexdigest())


def test_load_text8_downloads_verifies_and_splits(tmp_path, monkeypatch):
    words = [f"w{i % 7}" for i in range(25)]
    url, zip_sha, text_sha = _fake_text8(tmp_path, words)
    monkeypatch.setattr(text, "TEXT8_URL", url)
    monkeypatch.setattr(text, "TEXT8_ZIP_SHA256", zip_sha)
    monkeypatch.setattr(text, "TEXT8_SHA256", text_sha)
    cache = tmp_path / "cache"
    sentences = text.load_text8(cache_dir=cache, sentence_length=10)
    assert [len(s) for s in sentences] == [10, 10, 5]
    assert sum(sentences, []) == words
    # The unpacked file is cached: no network needed any more.
    (tmp_path / "server" / "text8.zip").unlink()
    (cache / "text8.zip").unlink()
    assert text.load_text8(cache_dir=cache, sentence_length=10) == sentences


def test_load_text8_offline_without_cache_explains(tmp_path, monkeypatch):
    monkeypatch.setattr(text, "TEXT8_URL", (tmp_path / "missing.zip").as_uri())
    with pytest.raises(ConnectionError, match="could not download"):
        text.load_text8(cache_dir=tmp_path / "cache")


def test_load_text8_rejects_a_wrong_member(tmp_path, monkeypatch):
    url, zip_sha, _ = _fake_text8(tmp_path, ["a", "b"])
    monkeypatch.setattr(text, "TEXT8_URL", url)
    monkeypatch.setattr(text, "TEXT8_ZIP_SHA256", zip_sha)
    with pytest.raises(ValueError, match="SHA-256"):
        text.load_text8(cache_dir=tmp_path / "cache")


# -- Vocab -----------------------------------------------------------------------

SENTENCES = [["b", "a", "c", "a"], ["a", "b", "d"], ["c", "b", "e", "e"]]


def test_vocab_counts_orders_and_drops_rare_words():
    vocab = Vocab.build(SENTENCES, min_count=2)
    assert vocab.words == ["a", "b", "c", "e"]     # a:3, b:3 (tie: alphabetical), c:2, e:2
    assert vocab.counts.tolist() == [3, 3, 2, 2]
    assert vocab.index == {"a": 0, "b": 1, "c": 2, "e": 3}
    assert "d" not in vocab and len(vocab) == 4


def test_vocab_encode_drops_unknown_tokens():
    vocab = Vocab.build(SENTENCES, min_count=2)
    ids, sentence_ids = vocab.encode(SENTENCES)
    assert ids.tolist() == [1, 0, 2, 0, 0, 1, 2, 1, 3, 3]
    assert sentence_ids.tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    assert ids.dtype == np.int32


def test_vocab_bad_input():
    with pytest.raises(ValueError, match="empty"):
        Vocab.build([])
    with pytest.raises(ValueError, match="empty"):
        Vocab.build([[], []])
    with pytest.raises(ValueError, match="min_count=5"):
        Vocab.build(SENTENCES, min_count=5)
    with pytest.raises(TypeError, match="tokenize"):
        Vocab.build("a plain string")
    with pytest.raises(TypeError, match="list of str"):
        Vocab.build([[1, 2, 3]])


def test_vocab_lookup_names_the_word_and_suggests():
    vocab = Vocab.build([["integer", "integers", "float"]] * 3, min_count=1)
    with pytest.raises(KeyError, match="'integr'.*Did you mean 'integer'"):
        vocab.lookup("integr")


# -- subsampling ------------------------------------------------------------------

def test_keep_probabilities_formula():
    # 10^6 tokens and t = 1e-3: frequencies f = 100 t, 4 t and t.
    counts = np.array([100_000, 4_000, 1_000, 895_000], dtype=np.int64)
    got = keep_probabilities(counts, 1e-3)
    # keep = (sqrt(f/t) + 1) t / f: 11/100, 3/4, and 2 capped at 1.
    np.testing.assert_allclose(got[:3], [0.11, 0.75, 1.0], rtol=1e-12)
    assert keep_probabilities(counts, 0).tolist() == [1.0] * 4
    with pytest.raises(ValueError, match="sample"):
        keep_probabilities(counts, -1e-3)


def test_subsample_keeps_each_word_with_the_stated_probability():
    # Word 0 has f = 100 t: word2vec.c keeps 0.11 of it, the paper's formula 0.10.
    n0, n1, n2 = 60_000, 2_400, 537_600
    ids = np.repeat(np.arange(3, dtype=np.int32), [n0, n1, n2])
    counts = np.bincount(ids)
    t = counts[0] / counts.sum() / 100
    keep = keep_probabilities(counts, t)
    mask = subsample(ids, keep, np.random.default_rng(0))
    kept = np.bincount(ids[mask], minlength=3)
    for w in range(3):
        p = stats.binomtest(int(kept[w]), int(counts[w]), float(keep[w])).pvalue
        assert p > P_THRESHOLD / 3, f"word {w}: kept {kept[w]} of {counts[w]}, expected p={keep[w]:.4f}"
    # The test has the power to tell the two variants apart:
    paper = np.sqrt(t / (counts[0] / counts.sum()))
    assert stats.binomtest(int(kept[0]), int(counts[0]), paper).pvalue < 1e-10


# -- negative sampling --------------------------------------------------------------

ZIPF_COUNTS = np.round(20000 / np.arange(1, 31) ** 1.1).astype(np.int64)


def test_noise_distribution_is_unigram_to_the_three_quarters():
    probs = noise_distribution(ZIPF_COUNTS)
    expected = ZIPF_COUNTS ** 0.75 / (ZIPF_COUNTS ** 0.75).sum()
    np.testing.assert_allclose(probs, expected, rtol=1e-12)


def test_alias_tables_represent_the_distribution_exactly():
    probs = noise_distribution(ZIPF_COUNTS)
    prob, alias = alias_tables(probs)
    V = len(probs)
    # Mass of word w: its own share of column w plus the rest of every column aliased to it.
    mass = prob.copy()
    np.add.at(mass, alias, 1.0 - prob)
    np.testing.assert_allclose(mass / V, probs, rtol=1e-10, atol=1e-15)


def test_empirical_noise_distribution_matches_unigram_075():
    sampler = NegativeSampler(ZIPF_COUNTS, seed=0)
    V, n_rows, k = len(ZIPF_COUNTS), 40_000, 5
    positive = np.random.default_rng(1).integers(0, V, n_rows)
    negatives = sampler.sample(positive, k)
    observed = np.bincount(negatives.ravel(), minlength=V)
    # Each draw follows P_n conditioned on "not the positive of its row".
    probs = noise_distribution(ZIPF_COUNTS)
    rows_with = np.bincount(positive, minlength=V)       # rows whose positive is w
    conditional = probs[None, :] / (1 - probs[:, None])  # [p, w]: P(w | positive p)
    np.fill_diagonal(conditional, 0.0)
    expected = k * rows_with @ conditional
    assert expected.min() > 5, "chi-square needs expected counts above 5"
    p = stats.chisquare(observed, expected).pvalue
    assert p > P_THRESHOLD, f"chi-square p-value {p:.2e}"
    # Power: plain unigram frequencies (exponent 1) are rejected by the same data.
    unigram = ZIPF_COUNTS / ZIPF_COUNTS.sum()
    wrong = unigram[None, :] / (1 - unigram[:, None])
    np.fill_diagonal(wrong, 0.0)
    assert stats.chisquare(observed, k * rows_with @ wrong).pvalue < 1e-10


def test_no_positive_word_among_its_own_negatives():
    # Word 0 carries most of the noise mass, so collisions are frequent and must be redrawn.
    counts = np.array([1000, 10, 5])
    sampler = NegativeSampler(counts, seed=3)
    positive = np.random.default_rng(0).integers(0, 3, 5000)
    negatives = sampler.sample(positive, 7)
    assert negatives.shape == (5000, 7)
    assert not (negatives == positive[:, None]).any()
    assert set(np.unique(negatives)) == {0, 1, 2}


def test_sampler_needs_two_words():
    with pytest.raises(ValueError, match="two words"):
        NegativeSampler(np.array([5, 0]))


def test_sampler_is_seeded():
    a = NegativeSampler(ZIPF_COUNTS, seed=4).sample(np.arange(30), 3)
    b = NegativeSampler(ZIPF_COUNTS, seed=4).sample(np.arange(30), 3)
    np.testing.assert_array_equal(a, b)
