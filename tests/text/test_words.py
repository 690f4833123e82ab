"""The raw-text word splitter: CoNLL-2003 conventions, whole grapheme clusters, scripts without
spaces, pluggable splitters, exact offsets; graphemes against UAX #29's rules and test data."""

import itertools
import random
import unicodedata

import pytest
from locations import FIXTURES

from seqlstm.text import words
from seqlstm.text.words import (
    SCRIPT_FAMILIES,
    WordToken,
    graphemes,
    keep_whole,
    register_splitter,
    tokenize,
)


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def assert_offsets(text: str, tokens: list[WordToken]) -> None:
    """Exact, ordered, non-overlapping offsets that leave out nothing but whitespace (and the
    zero-width space), and no token boundary inside a grapheme cluster."""
    assert all(text[t.start : t.end] == t.text and t.start < t.end for t in tokens)
    assert all(a.end <= b.start for a, b in itertools.pairwise(tokens))
    covered = set().union(*(range(t.start, t.end) for t in tokens))
    assert all(
        text[i].isspace() or text[i] == "\u200b" for i in range(len(text)) if i not in covered
    )
    cluster_bounds = set(itertools.accumulate(map(len, graphemes(text)), initial=0))
    assert all(t.start in cluster_bounds and t.end in cluster_bounds for t in tokens)


# ------------------------------------------------------------------------ hand-computed words

MULTILINGUAL = {
    # the CoNLL conventions, unchanged
    "english": (
        "Germany's U.S. envoy don't ... 3.5% of 1,000",
        ["Germany", "'s", "U.S.", "envoy", "do", "n't", "...", "3.5", "%", "of", "1,000"],
    ),
    "urls, emails, numbers": (
        "Mail me@example.com, see https://example.org/a-b?x=1. Pay 1,000.50 for 3/4 at 10:30:15",
        ["Mail", "me", "@", "example", ".", "com", ",", "see", "https", ":", "/", "/"]
        + ["example", ".", "org", "/", "a-b", "?", "x", "=", "1", ".", "Pay", "1,000.50"]
        + ["for", "3/4", "at", "10:30:15"],
    ),
    # a combining accent stays in its word (it cut "Garci ́ a" before)
    "spanish nfd": (
        "Garci\u0301a vive en Ma\u0301laga.",
        ["Garci\u0301a", "vive", "en"] + ["Ma\u0301laga", "."],
    ),
    "spanish nfc": ("García vive en Málaga.", ["García", "vive", "en", "Málaga", "."]),
    "german": (
        "Die Straße in München ist 3,5 km lang, z.B. für Müller-Lüdenscheidt.",
        ["Die", "Straße", "in", "München", "ist", "3,5", "km", "lang", ",", "z.B.", "für"]
        + ["Müller-Lüdenscheidt", "."],
    ),
    # a soft hyphen is a format character: it stays in the word before it
    "german soft hyphen": ("der Bundes\u00adtag tagt", ["der", "Bundes\u00adtag", "tagt"]),
    # dotted capital I precomposed and as I + combining dot; dotless ı; Turkish suffixes
    "turkish": (
        "İstanbul'da ılık, I\u0307zmir'e gittik.",
        ["İstanbul'da", "ılık", ",", "I\u0307zmir'e", "gittik", "."],
    ),
    "russian": (
        "Санкт-Петербург — город в России, ёлка и е\u0308лка.",
        ["Санкт-Петербург", "—", "город", "в", "России", ",", "ёлка", "и", "е\u0308лка", "."],
    ),
    # U+037E is the Greek question mark
    "greek": (
        "Η Αθη\u0301να είναι πρωτεύουσα\u037e Ναι.",
        ["Η", "Αθη\u0301να", "είναι", "πρωτεύουσα", "\u037e", "Ναι", "."],
    ),
    "arabic harakat": (
        "ذَهَبَ الوَلَدُ إِلَى المَدْرَسَةِ، ثُمَّ عَادَ.",
        ["ذَهَبَ", "الوَلَدُ", "إِلَى", "المَدْرَسَةِ", "،", "ثُمَّ", "عَادَ", "."],
    ),
    # the number sign U+0600 is prepended to the number; ZWNJ inside a Persian word
    "arabic number sign, persian zwnj": (
        "\u0600١٢٣ می\u200cخواهم",
        ["\u0600١٢٣", "می\u200cخواهم"],
    ),
    # niqqud stays in its word; the maqaf U+05BE is punctuation of its own, as before
    "hebrew niqqud": (
        "שָׁלוֹם עוֹלָם! בֵּית־סֵפֶר",
        ["שָׁלוֹם", "עוֹלָם", "!", "בֵּית", "־", "סֵפֶר"],
    ),
    # vowel signs (Mc, Mn) and viramas cut these words into six tokens before
    "hindi": (
        "नमस्ते दुनिया! हिन्दी में लिखा गया।",
        ["नमस्ते", "दुनिया", "!", "हिन्दी", "में", "लिखा", "गया", "।"],
    ),
    "bengali": ("আমি বাংলায় গান গাই।", ["আমি", "বাংলায়", "গান", "গাই", "।"]),
    "tamil": ("தமிழ்நாடு ஒரு மாநிலம்.", ["தமிழ்நாடு", "ஒரு", "மாநிலம்", "."]),
    # a Thai run is one token; a zero-width space separates, digits are no Thai
    "thai": (
        "ฉันรักประเทศไทย สวัสดีครับ ภาษา\u200bไทย ราคา100บาท",
        ["ฉันรักประเทศไทย", "สวัสดีครับ", "ภาษา", "ไทย", "ราคา", "100", "บาท"],
    ),
    "chinese": (
        "我爱北京天安门。2024年3月，GDP增长5.2%",
        ["我", "爱", "北", "京", "天", "安", "门", "。", "2024", "年", "3", "月", "，", "GDP"]
        + ["增", "长", "5.2", "%"],
    ),
    # kana and kanji one by one, Latin and digits a word; a halfwidth voiced mark and a
    # combining one (U+3099) stay on their kana
    "japanese": (
        "東京タワーに行った。iPhone15を買う ｶﾞｷﾞ か\u3099",
        ["東", "京", "タ", "ワ", "ー", "に", "行", "っ", "た", "。", "iPhone15", "を", "買"]
        + ["う", "ｶﾞ", "ｷﾞ", "か\u3099"],
    ),
    "korean": ("안녕하세요, 세계! 한국어", ["안녕하세요", ",", "세계", "!", "한국어"]),
    # the same word in conjoining jamo (NFD) is still one word
    "korean jamo": (nfd("한국어 사랑"), [nfd("한국어"), nfd("사랑")]),
    "emoji": (
        "I ❤️ NY 👍🏽👍 👨\u200d👩\u200d👧 🇩🇪🇫🇷 1️⃣ #️⃣ great👍🏽!",
        ["I", "❤️", "NY", "👍🏽", "👍", "👨\u200d👩\u200d👧", "🇩🇪", "🇫🇷", "1️⃣", "#️⃣", "great"]
        + ["👍🏽", "!"],
    ),
    # black flag + tag characters + cancel tag: the flag of Scotland
    "emoji tag sequence": (
        "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f rocks",
        ["🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", "rocks"],
    ),
    "whitespace": (
        "a\tb\r\nc\u00a0d\u3000e\u200bf \u2028g\u2003",
        ["a", "b", "c", "d", "e", "f", "g"],
    ),
    # a mark after a space forms a cluster with it (a standalone diacritic); one at the start
    # of the text is a cluster of its own; a bidi mark before a word stands alone, one after
    # it belongs to it
    "stray marks": (
        "\u0301a b \u0301 c \u200fשלום\u200f",
        ["\u0301", "a", "b", " \u0301", "c", "\u200f", "שלום\u200f"],
    ),
}


@pytest.mark.parametrize(("text", "expected"), MULTILINGUAL.values(), ids=MULTILINGUAL.keys())
def test_multilingual_words(text, expected):
    tokens = tokenize(text)
    assert [t.text for t in tokens] == expected
    assert_offsets(text, tokens)


def test_nfc_and_nfd_give_the_same_words():
    text = "José García, Ελλάδα, ёлка, İzmir, 한국어, तमिळ, Ñandú, ǅemal"
    expected = ["José", "García", ",", "Ελλάδα", ",", "ёлка", ",", "İzmir", ",", "한국어", ","]
    expected += ["तमिळ", ",", "Ñandú", ",", "ǅemal"]
    assert [t.text for t in tokenize(text)] == expected
    assert [unicodedata.normalize("NFC", t.text) for t in tokenize(nfd(text))] == expected


def test_offsets_of_clusters():
    text = "Garci\u0301a 👍🏽 東京"
    assert tokenize(text) == [
        WordToken("Garci\u0301a", 0, 7),
        WordToken("👍🏽", 8, 10),
        WordToken("東", 11, 12),
        WordToken("京", 12, 13),
    ]


# ---------------------------------------------------------------------------- splitters


def thai_dictionary(run: str) -> list[str]:
    """Greedy longest match over a tiny dictionary, a stand-in for pythainlp.word_tokenize."""
    dictionary = {"ฉัน", "รัก", "ประเทศ", "ไทย", "สวัสดี", "ครับ"}
    pieces, start = [], 0
    while start < len(run):
        end = max(
            (e for e in range(start + 1, len(run) + 1) if run[start:e] in dictionary),
            default=start + 1,
        )
        pieces.append(run[start:end])
        start = end
    return pieces


def test_a_splitter_for_one_call():
    text = "ฉันรักประเทศไทย, 東京"
    tokens = tokenize(text, splitters={"thai": thai_dictionary})
    assert [(t.text, t.start, t.end) for t in tokens] == [
        ("ฉัน", 0, 3),
        ("รัก", 3, 6),
        ("ประเทศ", 6, 12),
        ("ไทย", 12, 15),
        (",", 15, 16),
        ("東", 17, 18),
        ("京", 18, 19),
    ]
    # the next call has the defaults again
    assert [t.text for t in tokenize(text)] == ["ฉันรักประเทศไทย", ",", "東", "京"]
    # keep_whole keeps a CJK run one token, as the splitter did before clusters
    assert [t.text for t in tokenize("東京に", splitters={"cjk": keep_whole})] == ["東京に"]


def test_registered_splitter_reaches_every_call():
    previous = register_splitter("thai", thai_dictionary)
    try:
        assert previous is keep_whole
        assert [t.text for t in tokenize("สวัสดีครับ")] == ["สวัสดี", "ครับ"]
        # a splitter passed to the call wins over the registered one
        assert [t.text for t in tokenize("สวัสดีครับ", {"thai": keep_whole})] == ["สวัสดีครับ"]
    finally:
        assert register_splitter("thai", None) is thai_dictionary
    assert [t.text for t in tokenize("สวัสดีครับ")] == ["สวัสดีครับ"]


def test_a_cut_inside_a_cluster_is_ignored():
    def code_points(run: str) -> list[str]:
        return list(run)

    # ส วั ส ดี: the vowel marks stay on their consonants
    tokens = tokenize("สวัสดี", splitters={"thai": code_points})
    assert [t.text for t in tokens] == ["ส", "วั", "ส", "ดี"]
    assert [t.text for t in tokenize("か\u3099き", {"cjk": code_points})] == ["か\u3099", "き"]


def test_splitter_errors():
    with pytest.raises(ValueError, match="unknown script families"):
        tokenize("abc", splitters={"klingon": keep_whole})
    with pytest.raises(ValueError, match="unknown script families"):
        register_splitter("latin", keep_whole)
    with pytest.raises(ValueError, match="thai splitter must return pieces"):
        tokenize("สวัสดี", splitters={"thai": lambda run: [run[:2]]})
    with pytest.raises(ValueError, match="cjk splitter must return pieces"):
        tokenize("東京", splitters={"cjk": lambda run: ["京", "東"]})
    assert set(SCRIPT_FAMILIES) == {"cjk", "thai", "lao", "khmer", "myanmar"}


# -------------------------------------------------------------------- grapheme clusters

# Lines of GraphemeBreakTest-17.0.0.txt (Unicode, Inc.; the cases after the table of pairs):
# ÷ a boundary, × none, code points in hex
UAX29_CASES = """
÷ 000D × 000A ÷ 0061 ÷ 000A ÷ 0308 ÷
÷ 0061 × 0308 ÷
÷ 0020 × 200D ÷ 0646 ÷
÷ 0646 × 200D ÷ 0020 ÷
÷ 1100 × 1100 ÷
÷ AC00 × 11A8 ÷ 1100 ÷
÷ AC01 × 11A8 ÷ 1100 ÷
÷ 1F1E6 × 1F1E7 ÷ 1F1E8 ÷ 0062 ÷
÷ 0061 ÷ 1F1E6 × 1F1E7 ÷ 1F1E8 ÷ 0062 ÷
÷ 0061 ÷ 1F1E6 × 1F1E7 × 200D ÷ 1F1E8 ÷ 0062 ÷
÷ 0061 ÷ 1F1E6 × 200D ÷ 1F1E7 × 1F1E8 ÷ 0062 ÷
÷ 0061 ÷ 1F1E6 × 1F1E7 ÷ 1F1E8 × 1F1E9 ÷ 0062 ÷
÷ 0061 × 200D ÷
÷ 0061 × 0308 ÷ 0062 ÷
÷ 0061 × 0903 ÷ 0062 ÷
÷ 0061 ÷ 0600 × 0062 ÷
÷ 1F476 × 1F3FF ÷ 1F476 ÷
÷ 0061 × 1F3FF ÷ 1F476 ÷
÷ 0061 × 1F3FF ÷ 1F476 × 200D × 1F6D1 ÷
÷ 1F476 × 1F3FF × 0308 × 200D × 1F476 × 1F3FF ÷
÷ 1F6D1 × 200D × 1F6D1 ÷
÷ 0061 × 200D ÷ 1F6D1 ÷
÷ 2701 × 200D ÷ 2701 ÷
÷ 0061 × 200D ÷ 2701 ÷
÷ 0915 ÷ 0924 ÷
÷ 0915 × 094D × 0924 ÷
÷ 0915 × 094D × 094D × 0924 ÷
÷ 0915 × 094D × 200D × 0924 ÷
÷ 0915 × 093C × 200D × 094D × 0924 ÷
÷ 0915 × 093C × 094D × 200D × 0924 ÷
÷ 0915 × 094D × 0924 × 094D × 092F ÷
÷ 0915 × 094D ÷ 0061 ÷
÷ 0061 × 094D ÷ 0924 ÷
÷ 003F × 094D ÷ 0924 ÷
÷ 0AB8 × 0AFB × 0ACD × 0AB8 × 0AFB ÷
÷ 1019 × 1039 × 1018 ÷ 102C × 1037 ÷
÷ 1004 × 103A × 1039 × 1011 × 1039 × 1011 ÷
÷ 1B12 × 1B01 ÷ 1B32 × 1B44 × 1B2F ÷ 1B32 × 1B44 × 1B22 × 1B44 × 1B2C ÷ 1B32 × 1B44 × 1B22 × 1B38 ÷
÷ 179F × 17D2 × 178F × 17D2 × 179A × 17B8 ÷
÷ 1B26 ÷ 1B17 × 1B44 × 1B13 ÷
÷ 1B27 ÷ 1B13 × 1B44 × 1B0B ÷ 1B0B × 1B04 ÷
÷ 1795 × 17D2 × 17AF ÷ 1798 ÷
÷ 17A0 × 17D2 × 17AB ÷ 1791 × 17D0 ÷ 1799 ÷
""".strip().splitlines()


@pytest.mark.parametrize("case", UAX29_CASES)
def test_unicode_grapheme_break_cases(case):
    expected = [
        "".join(chr(int(code, 16)) for code in cluster.split(" × "))
        for cluster in case.strip("÷ ").split(" ÷ ")
    ]
    assert graphemes("".join(expected)) == expected


# Each draws a piece of messy text: scripts, their marks, joiners, whitespace, format
# characters, the CoNLL cases, and any code point at all
PIECES = [
    lambda r: r.choice("abcXYZ019 .,-'’:/!?@#\t\n\r"),
    lambda r: r.choice(["U.S.", "don't", "3.5", "...", "1,000", "\r\n", "O'Neill", "e.g."]),
    lambda r: r.choice("\u00a0\u3000\u2003\u2028\u200b\u00ad\u200e\u200f\u2060\ufeff\u180e"),
    lambda r: chr(r.randint(0x300, 0x36F)),  # combining diacritics
    lambda r: chr(r.randint(0xC0, 0x24F)),  # Latin letters
    lambda r: chr(r.randint(0x370, 0x52F)),  # Greek, Cyrillic
    lambda r: chr(r.randint(0x590, 0x6FF)),  # Hebrew, Arabic, with their marks
    lambda r: chr(r.randint(0x900, 0xDFF)),  # Indic scripts
    lambda r: chr(r.randint(0xE00, 0xEFF)),  # Thai, Lao
    lambda r: chr(r.randint(0x1000, 0x109F)),  # Myanmar
    lambda r: chr(r.randint(0x1780, 0x17FF)),  # Khmer
    lambda r: chr(r.randint(0x1B00, 0x1B7F)),  # Balinese
    lambda r: chr(r.randint(0x1100, 0x11FF)),  # Hangul jamo
    lambda r: chr(r.randint(0xAC00, 0xD7A3)),  # Hangul syllables
    lambda r: chr(r.randint(0x3000, 0x30FF)),  # CJK punctuation, kana
    lambda r: chr(r.randint(0x4E00, 0x4E80)),  # Han
    lambda r: chr(r.randint(0xFF61, 0xFF9F)),  # halfwidth kana and voiced marks
    lambda r: chr(r.randint(0x1F300, 0x1FAFF)),  # emoji
    lambda r: chr(r.randint(0x1F3FB, 0x1F3FF)),  # skin tones
    lambda r: chr(r.randint(0x1F1E6, 0x1F1FF)),  # regional indicators
    lambda r: r.choice("\u200d\u200c\ufe0f\ufe0e\u20e3\U000e0067\U000e007f\U000e0100"),
    lambda r: r.choice("\u0600\u06dd\u0d4e\U000110bd"),  # prepended
    lambda r: r.choice("\u1cf5\u1cf6\U00011a3a\U00011a0b\U00011a47"),  # linkers that stand alone
    lambda r: chr(r.randint(0, 0x10FFFF)),  # anything: unassigned, private use, surrogates
]


def random_texts(seed: int, count: int = 400) -> list[str]:
    rng = random.Random(seed)
    return [
        "".join(rng.choice(PIECES)(rng) for _ in range(rng.randint(0, 30))) for _ in range(count)
    ]


def test_random_text_keeps_offsets_and_clusters():
    # splitters that cut every code point apart: their cuts inside clusters are ignored
    code_points = dict.fromkeys(SCRIPT_FAMILIES, list)
    for text in random_texts(seed=0):
        assert_offsets(text, tokenize(text))
        assert_offsets(text, tokenize(text, splitters=code_points))
        assert "".join(graphemes(text)) == text


def reference_graphemes(text: str, regex) -> list[str]:
    """The rules of UAX #29 (GB3-GB999) applied one boundary at a time, with the regex package's
    properties: an implementation independent of the pattern words.py compiles."""
    gcb = regex.compile(
        r"(?P<CR>\r)|(?P<LF>\n)|(?P<Control>\p{GCB=Control})|(?P<Extend>\p{GCB=Extend})"
        r"|(?P<ZWJ>\p{GCB=ZWJ})|(?P<RI>\p{GCB=RI})|(?P<Prepend>\p{GCB=Prepend})"
        r"|(?P<SpacingMark>\p{GCB=SpacingMark})|(?P<L>\p{GCB=L})|(?P<V>\p{GCB=V})"
        r"|(?P<T>\p{GCB=T})|(?P<LV>\p{GCB=LV})|(?P<LVT>\p{GCB=LVT})"
    )
    incb = regex.compile(
        r"(?P<Consonant>\p{InCB=Consonant})|(?P<Linker>\p{InCB=Linker})"
        r"|(?P<Extend>\p{InCB=Extend})"
    )
    pictographic = regex.compile(r"\p{Extended_Pictographic}")
    kind = [(m.lastgroup if (m := gcb.match(c)) else "Other") for c in text]
    conjunct = [(m.lastgroup if (m := incb.match(c)) else None) for c in text]

    def joined(i: int) -> bool:  # no boundary between text[i - 1] and text[i]
        left, right = kind[i - 1], kind[i]
        if (left, right) == ("CR", "LF"):
            return True  # GB3
        if {left, right} & {"CR", "LF", "Control"}:
            return False  # GB4, GB5
        if (left == "L" and right in ("L", "V", "LV", "LVT")) or (
            left in ("LV", "V") and right in ("V", "T")
        ):
            return True  # GB6, GB7
        if left in ("LVT", "T") and right == "T":
            return True  # GB8
        if right in ("Extend", "ZWJ", "SpacingMark") or left == "Prepend":
            return True  # GB9, GB9a, GB9b
        if conjunct[i] == "Consonant":  # GB9c
            j, linked = i - 1, False
            while j >= 0 and conjunct[j] in ("Extend", "Linker"):
                linked = linked or conjunct[j] == "Linker"
                j -= 1
            if linked and j >= 0 and conjunct[j] == "Consonant":
                return True
        if left == "ZWJ" and pictographic.match(text[i]):  # GB11
            j = i - 2
            while j >= 0 and kind[j] == "Extend":
                j -= 1
            if j >= 0 and pictographic.match(text[j]):
                return True
        if left == right == "RI":  # GB12, GB13: pairs from the start of a run
            j = i - 1
            while j >= 0 and kind[j] == "RI":
                j -= 1
            return (i - 1 - j) % 2 == 1
        return False

    bounds = [0] + [i for i in range(1, len(text)) if not joined(i)] + [len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if a < b]


def test_graphemes_follow_the_rules_of_uax29():
    regex = pytest.importorskip("regex")
    for text in random_texts(seed=1, count=600):
        assert graphemes(text) == reference_graphemes(text, regex), ascii(text)
    for case in UAX29_CASES:  # the reference itself passes Unicode's cases
        clusters = [
            "".join(chr(int(code, 16)) for code in cluster.split(" × "))
            for cluster in case.strip("÷ ").split(" ÷ ")
        ]
        assert reference_graphemes("".join(clusters), regex) == clusters


def test_property_tables_are_unicode_17():
    """The tables in words.py hold exactly the code points of the regex package's properties."""
    regex = pytest.importorskip("regex")
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    tables = {
        "GCB=Control": words._CONTROL,
        "GCB=Extend": words._EXTEND,
        "GCB=SpacingMark": words._SPACING_MARK,
        "GCB=Prepend": words._PREPEND,
        "Extended_Pictographic": words._PICTOGRAPHIC,
        "InCB=Consonant": words._CONSONANT,
        "InCB=Linker": words._LINKER,
    }
    for name, table in tables.items():
        ours = set()
        for item in table.split():
            first, _, last = item.partition("-")
            ours.update(range(int(first, 16), int(last or first, 16) + 1))
        assert ours == {ord(c) for c in regex.findall(rf"\p{{{name}}}", every)}, name


def test_text_without_marks_is_split_as_before():
    """Text of letters that need no clusters (Latin, Cyrillic, Greek, Arabic, Hebrew), digits,
    punctuation and whitespace gets the CoNLL rules' words, as before clusters existed."""
    letters = [
        c
        for block in ((0x41, 0x24F), (0x391, 0x45F), (0x5D0, 0x5EA), (0x621, 0x64A))
        for c in map(chr, range(block[0], block[1] + 1))
        if unicodedata.category(c)[0] in "LN"
    ]
    rng = random.Random(2)
    for _ in range(300):
        pieces = rng.choices(letters, k=rng.randint(0, 25)) + rng.choices(
            list(" .,-'’:/!?()\t\r\n") + ["\r\n", "...", "U.S.", "n't", "'s"], k=rng.randint(0, 8)
        )
        rng.shuffle(pieces)
        text = "".join(pieces)
        before = [m.group() for m in words._TOKEN.finditer(text)]
        assert [t.text for t in tokenize(text)] == before


# ----------------------------------------------------------------------- the tagger on raw text


def test_tagger_tags_raw_multilingual_text():
    """The tagger's predict and tag split raw text with tokenize: one tag per word, the same
    tags as for the words, and entity offsets into the text."""
    from seqlstm import BiLSTMCRFTagger

    tagger = BiLSTMCRFTagger.from_pretrained(FIXTURES / "models_0_1" / "tagger")
    texts = [text for text, _ in MULTILINGUAL.values()]
    split = [[t.text for t in tokenize(text)] for text in texts]
    predicted = tagger.predict(texts)
    assert [len(tags) for tags in predicted] == [len(w) for w in split]
    assert predicted == tagger.predict(split)
    for text, tagged in zip(texts, tagger.tag(texts), strict=True):
        assert tagged.tokens == [t.text for t in tokenize(text)]
        assert all(text[e.start : e.end] == e.text for e in tagged.entities)
    # a registered splitter reaches the tagger's own calls
    register_splitter("thai", thai_dictionary)
    try:
        assert tagger.tag(["สวัสดีครับ"])[0].tokens == ["สวัสดี", "ครับ"]
    finally:
        register_splitter("thai", None)
