from detectors.normalize import normalize_text


def test_zero_width_and_odd_spaces():
    assert normalize_text("hid\u200bden\u2060 text\u00a0here\ufeff") == ("hidden text here", True)
    assert normalize_text("plain text") == ("plain text", False)


def test_homoglyphs_in_latin_words_are_mapped():
    assert normalize_text("Th\u0435 p\u0430per") == ("The paper", True)  # Cyrillic e, a
    assert normalize_text("\u03bfpen") == ("open", True)  # Greek omicron


def test_legitimate_non_latin_text_is_left_alone():
    russian = "Это обычный русский текст, а не подделка."
    greek = "Αυτό είναι ελληνικό κείμενο."
    persian = "می\u200cخواهم"  # ZWNJ is part of Persian spelling
    for text in (russian, greek, persian):
        assert normalize_text(text) == (text, False)
    emoji = "family \U0001F468\u200d\U0001F469\u200d\U0001F467"
    assert normalize_text(emoji)[0] == emoji


def test_fullwidth_latin_but_not_cjk_punctuation():
    assert normalize_text("\uff21\uff22\uff23 123") == ("ABC 123", True)
    assert normalize_text("你好，世界！") == ("你好，世界！", False)
