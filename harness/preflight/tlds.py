"""Top-level domains the address rules know, for IdFix's "a routable top-level domain" check.

Not the whole IANA root zone (over 1,400 names, most of them brand TLDs no mailbox uses): the
generic TLDs in common mail use and every ISO 3166 country-code TLD. A domain under any other
TLD is reported as unknown, so a user with an exotic but real TLD sees it and can ignore it.
Internationalised TLDs (``xn--...``) are accepted as they are.

`NON_ROUTABLE` are the names reserved for documentation, testing and private networks (RFC
2606, RFC 6761, RFC 6762 and the de-facto ``.corp``, ``.lan``, ``.internal``): mail to them
never leaves the building. A pseudonymised tenant maps every domain to ``*.example``.
"""

from __future__ import annotations

from typing import Final


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


GENERIC: Final = _names(
    """
    com net org edu gov mil int info biz name pro mobi asia tel travel jobs museum aero coop cat
    post xxx app dev io ai cloud online site tech store shop blog xyz top club email global
    group company solutions services agency digital network systems world center consulting
    media news live life health care law legal bank insurance finance capital partners ltd llc
    inc gmbh expert academy school university college energy eco green works tools support
    design studio art page space website web host one plus link click today city london berlin
    paris tokyo nyc amsterdam vienna swiss bayern wien koeln hamburg scot wales cymru eus gal
    quebec africa arab
    """
)

COUNTRY: Final = _names(
    """
    ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo bq br
    bs bt bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec
    ee eg er es et eu fi fj fk fm fo fr ga gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk
    hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la
    lb lc li lk lr ls lt lu lv ly ma mc md me mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my
    mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt pw py qa re ro
    rs ru rw sa sb sc sd se sg sh si sk sl sm sn so sr ss st su sv sx sy sz tc td tf tg th tj tk
    tl tm tn to tr tt tv tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw
    """
)

KNOWN: Final = GENERIC | COUNTRY

NON_ROUTABLE: Final = frozenset(
    {"example", "test", "invalid", "localhost", "local", "lan", "internal", "corp", "home"}
)
PSEUDONYM_TLD: Final = "example"
