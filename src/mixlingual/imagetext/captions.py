"""Caption templates for the synthetic scenes in six languages (three non-Latin scripts).

A scene holds two object groups; a group is (count, shape, colour, quadrant), e.g. two red
circles in the top left. `describe(scene_groups, lang, variant)` writes one caption. Each
language gets its own small grammar function because agreement differs: German and Spanish
inflect the colour adjective by gender and number, Russian uses the genitive after 2-4,
Hindi inflects -aa adjectives in the plural, Chinese uses a measure word.

The vocabulary is ours (written for this generator), kept deliberately small and regular so
that the only thing a model has to learn is the mapping from words to visual attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGES = ("en", "de", "es", "ru", "zh", "hi")
SHAPES = ("circle", "square", "triangle", "star", "diamond")
COLOURS = ("red", "green", "blue", "yellow", "purple", "white")
QUADRANTS = ("top-left", "top-right", "bottom-left", "bottom-right")
MAX_COUNT = 3


@dataclass(frozen=True)
class Group:
    """`count` objects of one shape and colour, placed in one quadrant of the image."""

    count: int
    shape: str
    colour: str
    quadrant: str


# --- English -----------------------------------------------------------------------------
_EN_COUNT = {1: "one", 2: "two", 3: "three"}
_EN_PLACE = {"top-left": "in the top left", "top-right": "in the top right",
             "bottom-left": "in the bottom left", "bottom-right": "in the bottom right"}


def _en(g: Group) -> tuple[str, str]:
    noun = g.shape + ("s" if g.count > 1 else "")
    return f"{_EN_COUNT[g.count]} {g.colour} {noun}", _EN_PLACE[g.quadrant]


# --- German: (gender, singular, plural); adjective endings after "ein" / plural without article
_DE_SHAPE = {"circle": ("m", "Kreis", "Kreise"), "square": ("n", "Quadrat", "Quadrate"),
             "triangle": ("n", "Dreieck", "Dreiecke"), "star": ("m", "Stern", "Sterne"),
             "diamond": ("f", "Raute", "Rauten")}
_DE_COLOUR = {"red": "rot", "green": "grün", "blue": "blau", "yellow": "gelb", "purple": "violett",
              "white": "weiß"}
_DE_ONE = {"m": ("ein", "er"), "n": ("ein", "es"), "f": ("eine", "e")}
_DE_COUNT = {2: "zwei", 3: "drei"}
_DE_PLACE = {"top-left": "oben links", "top-right": "oben rechts", "bottom-left": "unten links",
             "bottom-right": "unten rechts"}


def _de(g: Group) -> tuple[str, str]:
    gender, singular, plural = _DE_SHAPE[g.shape]
    stem = _DE_COLOUR[g.colour]
    if g.count == 1:
        article, ending = _DE_ONE[gender]
        return f"{article} {stem}{ending} {singular}", _DE_PLACE[g.quadrant]
    return f"{_DE_COUNT[g.count]} {stem}e {plural}", _DE_PLACE[g.quadrant]


# --- Spanish: noun (gender, singular, plural); adjective (m sg, f sg, m pl, f pl) -------------
_ES_SHAPE = {"circle": ("m", "círculo", "círculos"), "square": ("m", "cuadrado", "cuadrados"),
             "triangle": ("m", "triángulo", "triángulos"), "star": ("f", "estrella", "estrellas"),
             "diamond": ("m", "rombo", "rombos")}
_ES_COLOUR = {"red": ("rojo", "roja", "rojos", "rojas"), "green": ("verde", "verde", "verdes", "verdes"),
              "blue": ("azul", "azul", "azules", "azules"),
              "yellow": ("amarillo", "amarilla", "amarillos", "amarillas"),
              "purple": ("morado", "morada", "morados", "moradas"),
              "white": ("blanco", "blanca", "blancos", "blancas")}
_ES_COUNT = {2: "dos", 3: "tres"}
_ES_PLACE = {"top-left": "arriba a la izquierda", "top-right": "arriba a la derecha",
             "bottom-left": "abajo a la izquierda", "bottom-right": "abajo a la derecha"}


def _es(g: Group) -> tuple[str, str]:
    gender, singular, plural = _ES_SHAPE[g.shape]
    forms = _ES_COLOUR[g.colour]
    if g.count == 1:
        article = "un" if gender == "m" else "una"
        return f"{article} {singular} {forms[0 if gender == 'm' else 1]}", _ES_PLACE[g.quadrant]
    return f"{_ES_COUNT[g.count]} {plural} {forms[2 if gender == 'm' else 3]}", _ES_PLACE[g.quadrant]


# --- Russian: noun (gender, nom sg, gen sg); adjective (m nom sg, f nom sg, gen pl, nom pl) ----
_RU_SHAPE = {"circle": ("m", "круг", "круга"), "square": ("m", "квадрат", "квадрата"),
             "triangle": ("m", "треугольник", "треугольника"), "star": ("f", "звезда", "звезды"),
             "diamond": ("m", "ромб", "ромба")}
_RU_COLOUR = {"red": ("красный", "красная", "красных", "красные"),
              "green": ("зелёный", "зелёная", "зелёных", "зелёные"),
              "blue": ("синий", "синяя", "синих", "синие"),
              "yellow": ("жёлтый", "жёлтая", "жёлтых", "жёлтые"),
              "purple": ("фиолетовый", "фиолетовая", "фиолетовых", "фиолетовые"),
              "white": ("белый", "белая", "белых", "белые")}
_RU_PLACE = {"top-left": "вверху слева", "top-right": "вверху справа", "bottom-left": "внизу слева",
             "bottom-right": "внизу справа"}


def _ru(g: Group) -> tuple[str, str]:
    gender, nominative, genitive = _RU_SHAPE[g.shape]
    adj = _RU_COLOUR[g.colour]
    if g.count == 1:
        one = "один" if gender == "m" else "одна"
        return f"{one} {adj[0 if gender == 'm' else 1]} {nominative}", _RU_PLACE[g.quadrant]
    # after 2-4: masculine nouns take the genitive plural adjective, feminine the nominative plural
    number = {2: "два" if gender == "m" else "две", 3: "три"}[g.count]
    return f"{number} {adj[2 if gender == 'm' else 3]} {genitive}", _RU_PLACE[g.quadrant]


# --- Chinese ---------------------------------------------------------------------------------
_ZH_SHAPE = {"circle": "圆形", "square": "正方形", "triangle": "三角形", "star": "星形", "diamond": "菱形"}
_ZH_COLOUR = {"red": "红色", "green": "绿色", "blue": "蓝色", "yellow": "黄色", "purple": "紫色",
              "white": "白色"}
_ZH_COUNT = {1: "一个", 2: "两个", 3: "三个"}
_ZH_PLACE = {"top-left": "左上方", "top-right": "右上方", "bottom-left": "左下方", "bottom-right": "右下方"}


def _zh(g: Group) -> tuple[str, str]:
    return f"{_ZH_COUNT[g.count]}{_ZH_COLOUR[g.colour]}的{_ZH_SHAPE[g.shape]}", _ZH_PLACE[g.quadrant]


# --- Hindi: all shape nouns are masculine; -aa adjectives become -e in the plural ---------------
_HI_SHAPE = {"circle": ("वृत्त", "वृत्त"), "square": ("वर्ग", "वर्ग"), "triangle": ("त्रिभुज", "त्रिभुज"),
             "star": ("तारा", "तारे"), "diamond": ("समचतुर्भुज", "समचतुर्भुज")}
_HI_COLOUR = {"red": ("लाल", "लाल"), "green": ("हरा", "हरे"), "blue": ("नीला", "नीले"),
              "yellow": ("पीला", "पीले"), "purple": ("बैंगनी", "बैंगनी"), "white": ("सफ़ेद", "सफ़ेद")}
_HI_COUNT = {1: "एक", 2: "दो", 3: "तीन"}
_HI_PLACE = {"top-left": "ऊपर बाईं ओर", "top-right": "ऊपर दाईं ओर", "bottom-left": "नीचे बाईं ओर",
             "bottom-right": "नीचे दाईं ओर"}


def _hi(g: Group) -> tuple[str, str]:
    plural = g.count > 1
    noun = _HI_SHAPE[g.shape][plural]
    return f"{_HI_COUNT[g.count]} {_HI_COLOUR[g.colour][plural]} {noun}", _HI_PLACE[g.quadrant]


# Per language: phrase builder and two sentence templates ({a}/{pa} first group, {b}/{pb} second).
_GRAMMAR = {
    "en": (_en, ("{a} {pa} and {b} {pb}", "{pa} there are {a}; {pb}, {b}")),
    "de": (_de, ("{a} {pa} und {b} {pb}", "{pa} sieht man {a}, {pb} {b}")),
    "es": (_es, ("{a} {pa} y {b} {pb}", "{pa} hay {a}; {pb}, {b}")),
    "ru": (_ru, ("{a} {pa} и {b} {pb}", "на картинке {pa} {a}, а {pb} {b}")),
    "zh": (_zh, ("{pa}有{a}，{pb}有{b}", "图中{pa}是{a}，{pb}是{b}")),
    "hi": (_hi, ("{pa} {a} और {pb} {b}", "चित्र में {pa} {a}, और {pb} {b}")),
}


def describe(groups: tuple[Group, Group], lang: str, variant: int = 0) -> str:
    """One caption of a two-group scene in `lang`; `variant` picks the template and group order."""
    if lang not in _GRAMMAR:
        raise ValueError(f"no caption grammar for language '{lang}'; known: {', '.join(LANGUAGES)}")
    phrase, templates = _GRAMMAR[lang]
    first, second = groups if variant % 2 == 0 else groups[::-1]
    a, pa = phrase(first)
    b, pb = phrase(second)
    text = templates[(variant // 2) % len(templates)].format(a=a, pa=pa, b=b, pb=pb)
    return text[0].upper() + text[1:]
