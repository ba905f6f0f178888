"""Compressing journal payloads before they are sealed: raw DEFLATE with a preset dictionary.

Journal payloads are small JSON documents (an application, a mapped request, an attempt's
transcript) of one to two kilobytes, too small for DEFLATE to find much repetition inside one of
them. A preset dictionary supplies it: the broker's own event vocabulary (the keys and values every
attempt transcript and every mapped event repeats) and the field names of the shipped catalogue's
formats. Most useful last: DEFLATE reaches nearer strings with shorter codes.

The dictionary is part of the stored format: a value compressed with it opens only with it.
Never edit ``DICTIONARY_1``; a better dictionary is ``DICTIONARY_2`` with a new sealed prefix
(``replay/seal.py``), and the old one stays to open what was written with it.
"""

from __future__ import annotations

import zlib

from federation.domain.errors import JournalError

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
# Bigger than any payload the journal keeps (intake caps a body far below): a corrupt value that
# inflates without end is an error, not an out-of-memory.
MAX_PLAIN = 64 * 2**20


class CompressionError(JournalError):
    """A compressed payload that does not inflate."""


WINDOW = 32768  # DEFLATE looks back this far: a longer dictionary keeps only its end


def _zdict(context: bytes) -> bytes:
    """The preset dictionary: the shipped one, then ``context`` (most useful last)."""
    return (DICTIONARY_1 + context)[-WINDOW:] if context else DICTIONARY_1


# memLevel 8 (zlib's default), not 9: all but the same output on payloads this small (the demo
# catalogue's journal 0.4 % larger) in about a tenth of the time, which went to setting up memLevel
# 9's larger hash tables for every value (measured alone on a 600-byte payload: 160 -> 15 us).
MEM_LEVEL = 8


def compress(plain: bytes, context: bytes = b"") -> bytes:
    """``plain`` as raw DEFLATE with the dictionary (and ``context`` after it)."""
    packer = zlib.compressobj(
        9, zlib.DEFLATED, -15, MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY, _zdict(context)
    )
    return packer.compress(plain) + packer.flush()


def decompress(packed: bytes, what: str, context: bytes = b"") -> bytes:
    """The bytes ``compress`` was given (with the same ``context``)."""
    try:
        unpacker = zlib.decompressobj(-15, zdict=_zdict(context))
        plain = unpacker.decompress(packed, MAX_PLAIN)
        if unpacker.unconsumed_tail or not unpacker.eof:
            raise CompressionError(f"{what} does not inflate to a whole value")
        return plain
    except zlib.error as exc:
        raise CompressionError(f"{what} does not inflate: {exc}") from None
