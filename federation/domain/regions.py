"""Province-level divisions: GB/T 2260 code ↔ ISO 3166-2 code, with names."""

from __future__ import annotations

from typing import NamedTuple


class Province(NamedTuple):
    gb: str
    iso: str
    zh: str
    en: str


PROVINCES: dict[str, Province] = {
    p.gb: p
    for p in [
        Province("11", "CN-BJ", "北京", "Beijing"),
        Province("12", "CN-TJ", "天津", "Tianjin"),
        Province("13", "CN-HE", "河北", "Hebei"),
        Province("14", "CN-SX", "山西", "Shanxi"),
        Province("15", "CN-NM", "内蒙古", "Inner Mongolia"),
        Province("21", "CN-LN", "辽宁", "Liaoning"),
        Province("22", "CN-JL", "吉林", "Jilin"),
        Province("23", "CN-HL", "黑龙江", "Heilongjiang"),
        Province("31", "CN-SH", "上海", "Shanghai"),
        Province("32", "CN-JS", "江苏", "Jiangsu"),
        Province("33", "CN-ZJ", "浙江", "Zhejiang"),
        Province("34", "CN-AH", "安徽", "Anhui"),
        Province("35", "CN-FJ", "福建", "Fujian"),
        Province("36", "CN-JX", "江西", "Jiangxi"),
        Province("37", "CN-SD", "山东", "Shandong"),
        Province("41", "CN-HA", "河南", "Henan"),
        Province("42", "CN-HB", "湖北", "Hubei"),
        Province("43", "CN-HN", "湖南", "Hunan"),
        Province("44", "CN-GD", "广东", "Guangdong"),
        Province("45", "CN-GX", "广西", "Guangxi"),
        Province("46", "CN-HI", "海南", "Hainan"),
        Province("50", "CN-CQ", "重庆", "Chongqing"),
        Province("51", "CN-SC", "四川", "Sichuan"),
        Province("52", "CN-GZ", "贵州", "Guizhou"),
        Province("53", "CN-YN", "云南", "Yunnan"),
        Province("54", "CN-XZ", "西藏", "Tibet"),
        Province("61", "CN-SN", "陕西", "Shaanxi"),
        Province("62", "CN-GS", "甘肃", "Gansu"),
        Province("63", "CN-QH", "青海", "Qinghai"),
        Province("64", "CN-NX", "宁夏", "Ningxia"),
        Province("65", "CN-XJ", "新疆", "Xinjiang"),
        Province("71", "CN-TW", "台湾", "Taiwan"),
        Province("81", "CN-HK", "香港", "Hong Kong SAR"),
        Province("82", "CN-MO", "澳門", "Macau SAR"),
    ]
}
