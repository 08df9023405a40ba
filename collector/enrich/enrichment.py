"""What the collector works out about one hit, as a plain dict (for `collector inspect`)."""

from __future__ import annotations

from collector.enrich.device import DeviceClassifier
from collector.enrich.geo import UNKNOWN_REGION, GeoResolver
from collector.store.rollup import region_values


def enrich(
    geo: GeoResolver | None,
    devices: DeviceClassifier,
    ip: str,
    ua: str,
    ch_mobile: str | None = None,
    screen_w: int = 0,
    screen_h: int = 0,
    touch_points: int = 0,
) -> dict:
    region = geo.lookup(ip) if geo else UNKNOWN_REGION
    device = devices.classify(ua, ch_mobile, screen_w, screen_h, touch_points)
    return {
        "ip": ip,
        "region": region._asdict() | {"key": region_values(region)[2]},
        "device_class": device.device_class,
        "browser": device.browser,
        "os": device.os,
        "bot": device.is_bot,
    }
