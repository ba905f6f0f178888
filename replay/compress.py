"""Compressing journal payloads before they are sealed: raw DEFLATE with a preset dictionary.

Journal payloads are small JSON documents (an application, a mapped request, an attempt's
transcript) of one to two kilobytes, too small for DEFLATE to find much repetition inside one of
them. A preset dictionary supplies it: the broker's own event vocabulary (the keys and values every
attempt transcript and every mapped event repeats) and the field names of the shipped catalogue's
formats. Most useful last: DEFLATE reaches nearer strings with shorter codes.

The dictionary is part of the stored format: a value compressed with it opens only with it.
Never edit ``DICTIONARY_1`` or ``DICTIONARY_2``; a better dictionary is a new one with its own
flag (``replay/seal.py``), and the old ones stay to open what was written with them. Values sealed
now use ``DICTIONARY_2``: ``DICTIONARY_1`` and then the region's general vocabulary, which takes
about a tenth off a sealed application in Chinese.
"""

from __future__ import annotations

import zlib

from federation.domain.errors import JournalDamaged

FIELDS = (
    '"url": "type": "reissueReason": "reissueReasonCode": "registerOrgan": "registerDate": '
    '"parties": "hkIdCardNo": "nameEn": "dzyx": "zs": "zczb": "qy": "gatsfzh": "tzr": '
    '"personal_account": "contribution_months": "from_agency": "from_region_code": "transfer": '
    '"dw": "xzlx": "start_date": "date_of_birth": "hkid_check_digit": "hkid_number": "round": '
    '"correction": "graduated_on": "school": "degree": "exam_certificate_number": "lingua": '
    '"numeroExemplares": "finalidadeOriginal": "finalidade": "certificado": "moradaOriginal": '
    '"nomeCompleto": "referenciaExterna": "canal": "tipoPedido": "modalidade": "numeroRegisto": '
    '"freguesia": "sfzh": "period_to": "period_from": "bank": "bank_account": "price": '
    '"contract_number": "property": "housing_fund": "after": "before": "item": "change": '
    '"outerSerialNo": "areaCode": "registered_on": "bz": "je": "gajmsfzh": "residing_since": '
    '"division_code": "mainland_address": "mobile_no": "home_return_permit_no": "sex": '
    '"submission_date": "service_mode": "reference_no": "hkid": "registration_number": '
    '"denominacaoPortuguesa": "denominacaoChinesa": "sociedade": "moeda": "montante": '
    '"capitalAfecto": "objecto": "denominacao": "sucursal": "numeroSalvoConduto": "nomeChines": '
    '"numeroReferencia": "members": "divisionCode": "tyshxydm": "jyfw": "reissue_reason": '
    '"registry": "txdz": "residence_since": "residence_address": "insurer": "fee": '
    '"vehicle_licence": "certificate_number": "education": "subject": "qualification": '
    '"registered_in": "name_foreign": "relation": "marriage_certificate_number": '
    '"relation_to_host": "handleMode": "parent": "birthDate": "lx": "employer": "schemes": '
    '"social_insurance": "file_uri": "name_zh": "period_months": "registration_mark": '
    '"investor": "morada": "to": "from": "host": "household": "purpose": "certNo": "certType": '
    '"ywxm": "policy_number": "insurance": "current_expiry_date": "vehicle_class": "endereco": '
    '"telemovel": "numeroBIR": "dataNascimento": "sexo": "nomeRomanizado": "requerente": '
    '"dataPedido": "copies": "mobile": "applyDate": "channel": "itemName": "spouse": '
    '"marriage": "ywxx": "sqr": "lylsh": "blxzqh": "document_type": "language": "certificate": '
    '"itemCode": "collection_office": "registered_capital": "ficheiro": "designacao": "tipo": '
    '"zjhm": "mc": "lxdh": "zjlx": "tbms": "uscc": "application_type": "attachments": '
    '"macau_id_card": "csrq": "xxdz": "sqrq": "xzqhdm": "lyqd": "sxmc": "sxbm": '
    '"police_station": "xb": "business_scope": "residence_permit": "district": "xm": '
    '"expires_on": "enterprise": "hk_id_card": "reason": "currency": "home_return_permit": '
    '"email": "file": "amount": "cn_id_card": "title": "name_en": "sha256": "kind": '
    '"local_reference": "applied_on": "mode": "phone": "application": "applicant": "text": '
    '"documents": "birth_date": "gender": "address": "number": "name": "region_code": '
)
# The broker's event vocabulary (federation/runtime/delivery.py, mapping.py; replay/rows.py).
EVENTS = (
    '"hk_id_card":{"number":"',
    '"cn_id_card":{"number":"',
    '"home_return_permit":{"number":"',
    '"region_code":"440000","region_code":"810000","region_code":"820000",'
    '"currency":"CNY","currency":"HKD","currency":"MOP","gender":"1","gender":"2",'
    '"sha256":"sha256:","file":"tbfile://","mode":"全程网办","mode":"异地代收代办",'
    '"applicant":{"name":"',
    '"error":{"kind":"transient_error","message":"partner answered HTTP 503","status":503},'
    '"outcome":"transient_error","outcome":"rejected","outcome":"unknown_outcome",'
    '"receipt":{"receipt_number":"","status":"received","received_at":"',
    '{"attempts":1}{"from":"","to":"","state":"delivering"}',
    '"response":{"status":200,"content_type":"application/json","body":"{\\"code\\":\\"200\\",'
    '\\"resultCode\\":\\"0\\",\\"message\\":\\"\\",\\"data\\":{\\"',
    "<?xml version='1.0' encoding='utf-8'?>\\n<soap-env:Envelope xmlns:soap-env=\\\""
    'http://schemas.xmlsoap.org/soap/envelope/\\" xmlns:ns0=\\"urn:',
    '\\"><soap-env:Body></soap-env:Body></soap-env:Envelope>",',
    '{"application":{"',
    '"request_hash":"sha256:"}',
    '{"mapped":{"',
    '},"versions":{"mappings/tables/","mappings/',
    '.yaml":"sha256:"}}',
    '{"attempt":1,"owner":"',
    '{"attempt":1,"outcome":"delivered","duration_ms":',
    '"request":{"method":"POST","url":"https://","operation":"","soap_version":"1.1",'
    '"headers":{"Content-Type":"text/xml; charset=utf-8","SOAPAction":"\\"urn:',
    '"Content-Type":"application/json; charset=utf-8","Accept":"application/json",'
    '"Idempotency-Key":"","X-Tongban-Exchange-Id":"01","X-Tongban-Attempt":"1"},'
    '"body_sha256":"","body_bytes":',
    '},"response":{"status":200,"content_type":"text/xml","body":"',
    '","body_bytes":}}',
)
DICTIONARY_1 = "".join((*FIELDS, *EVENTS)).encode()
# General vocabulary of the region's applications, for DICTIONARY_2: enterprise kinds and business
# scope phrases, authorities, the provinces and cities of the Pan-Pearl River Delta, Hong Kong's
# and Macau's districts (traditional script), address words, household and document terms. Not
# the demo catalogue's values: words any application of this kind is likely to repeat.
VOCABULARY = (
    "有限公司有限责任公司股份有限公司（港澳台自然人独资）（自然人独资）个体工商户分公司营业执照"
    "统一社会信用代码法定代表人注册资本经营范围货物进出口技术进出口"
    "信息咨询服务（不含许可类信息咨询服务）（依法须经批准的项目，经相关部门批准后方可开展经营活动）",
    "公安局分局派出所人民政府市场监督管理局人力资源和社会保障局住房公积金管理中心不动产登记中心"
    "出入境管理局社会保险基金管理中心教育局民政局税务局",
    "广东省广州市深圳市珠海市佛山市东莞市中山市江门市惠州市汕头市湛江市肇庆市福建省福州市厦门市"
    "泉州市江西省南昌市湖南省长沙市广西壮族自治区南宁市柳州市桂林市海南省海口市三亚市四川省成都市"
    "贵州省贵阳市云南省昆明市",
    "香港特别行政区香港特別行政區澳门特别行政区澳門特別行政區新界九龍九龙香港島港島中西區灣仔區"
    "東區南區油尖旺區深水埗區九龍城區黃大仙區觀塘區荃灣區屯門區元朗區北區大埔區西貢區沙田區葵青區"
    "離島區澳門半島氹仔路環花地瑪堂區聖安多尼堂區大堂區望德堂區風順堂區",
    "区县镇乡街道社区居委会村委会路街巷道大道号栋单元室楼层座大厦花园广场中心小区公寓村组",
    "號樓室座大廈花園廣場中心街道路巷邨苑閣",
    "夫妻投靠子女投靠父母投靠户口迁入户口迁出居住证身份证港澳居民来往内地通行证往来港澳通行证"
    "台湾居民来往大陆通行证香港身份證澳門居民身份證結婚證结婚证出生医学证明",
    "男女汉族全程网办异地代收代办多地联办跑一次窗口办理受理补正办结不予受理",
)
# The shipped dictionary of values sealed now (flags 2 and 3 in replay/seal.py): DICTIONARY_1,
# then the region's vocabulary. Never edit it either.
DICTIONARY_2 = DICTIONARY_1 + "".join(VOCABULARY).encode()
# The dictionary of a packed receipt (``replay/rows.py``), alone: what a mapping makes of a
# receipt (mappings/*: receipt_number, status, the date or time of acceptance). DICTIONARY_1 in
# front of it saved nothing on values this small and cost eight times the time. Part of the
# stored format: never edit it; a better one is a new marker byte.
COLUMNS_1 = (
    b'{"receipt_number":"","status":"received","received_at":"2026-12-07T00:00:00+08:00"}'
    b'{"receipt_number":"","status":"accepted","accepted_on":"2026-12-'
)
# Bigger than any payload the journal keeps (intake caps a body far below): a corrupt value that
# inflates without end is an error, not an out-of-memory.
MAX_PLAIN = 64 * 2**20


class CompressionError(JournalDamaged):
    """A compressed payload that does not inflate."""


WINDOW = 32768  # DEFLATE looks back this far: a longer dictionary keeps only its end


def _zdict(dictionary: bytes, context: bytes) -> bytes:
    """The preset dictionary: a shipped one, then ``context`` (most useful last)."""
    return (dictionary + context)[-WINDOW:] if context else dictionary


# memLevel 8 (zlib's default), not 9: all but the same output on payloads this small (the demo
# catalogue's journal 0.4 % larger) in about a tenth of the time, which went to setting up memLevel
# 9's larger hash tables for every value (measured alone on a 600-byte payload: 160 -> 15 us).
MEM_LEVEL = 8
# A value that fits, with its dictionary, within the farthest a match may reach back in a 16 KB
# window (zlib's MAX_DIST: the window less MIN_LOOKAHEAD, 262 bytes) is compressed with that
# window and memLevel 6: every match a 32 KB window could find is still in reach, and a
# compressor with smaller tables is set up in less time. On the demo catalogue's events (7 KB of
# dictionary and context, 0.9 KB of value) the output was the same bytes, 97.5 -> 56.7 us a value
# (best of seven, interleaved); elsewhere memLevel 6 may choose other matches (about 0.1 % either
# way on random values). Larger values keep the 32 KB window. Any window up to 32 KB inflates
# with ``decompress``'s.
SMALL_WBITS, SMALL_MEM_LEVEL = -14, 6
SMALL_INPUT = 2**14 - 262


def compress(
    plain: bytes,
    context: bytes = b"",
    dictionary: bytes = DICTIONARY_1,
    *,
    mem_level: int = MEM_LEVEL,
) -> bytes:
    """``plain`` as raw DEFLATE with ``dictionary`` (and ``context`` after it). A value of a few
    dozen bytes with a small dictionary takes ``mem_level`` 1: the same bytes, and most of the
    time went to setting up the larger hash table (7 -> 2 us for a receipt, interleaved runs)."""
    zdict = _zdict(dictionary, context)
    if len(zdict) + len(plain) <= SMALL_INPUT:
        wbits, mem_level = SMALL_WBITS, min(mem_level, SMALL_MEM_LEVEL)
    else:
        wbits = -15
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits, mem_level, zlib.Z_DEFAULT_STRATEGY, zdict)
    return packer.compress(plain) + packer.flush()


def decompress(
    packed: bytes, what: str, context: bytes = b"", dictionary: bytes = DICTIONARY_1
) -> bytes:
    """The bytes ``compress`` was given (with the same ``context`` and ``dictionary``)."""
    try:
        unpacker = zlib.decompressobj(-15, zdict=_zdict(dictionary, context))
        plain = unpacker.decompress(packed, MAX_PLAIN)
        if unpacker.unconsumed_tail or not unpacker.eof:
            raise CompressionError(f"{what} does not inflate to a whole value")
        return plain
    except zlib.error as exc:
        raise CompressionError(f"{what} does not inflate: {exc}") from None
