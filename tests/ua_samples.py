"""Real-world User-Agent strings with their expected classification.

Shared by tests/test_device.py and the benchmarks (reuse SAMPLE_USER_AGENTS as
a realistic pool).  UA_TABLE rows are (ua, device_class, browser, os); a
browser/os of None means "not asserted".  Classes assume no client hint and
no screen info (UA only).
"""

from __future__ import annotations

UA_TABLE: list[tuple[str, str, str | None, str | None]] = [
    # ---- desktop ------------------------------------------------------------
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36",
     "pc", "Chrome", "Windows"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
     "pc", "Edge", "Windows"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
     "pc", "Firefox", "Windows"),
    ("Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
     "pc", "IE", "Windows"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0",
     "pc", "Opera", "Windows"),
    ("Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/70.0.3538.25 Safari/537.36 Core/1.70.3877.400 QQBrowser/10.8.4506.400",
     "pc", "QQ Browser", "Windows"),
    ("Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/81.0.4044.138 Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) "
     "WindowsWechat(0x63090719) XWEB/8391 Flue",
     "pc", "WeChat", "Windows"),
    # IE on Windows 7 with the "Tablet PC 2.0" component: still a desktop.
    ("Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0; SLCC2; .NET CLR 2.0.50727; "
     "Media Center PC 6.0; Tablet PC 2.0)",
     "pc", "IE", "Windows"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36",
     "pc", "Chrome", "Mac OS X"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4.1 Safari/605.1.15",
     "pc", "Safari", "Mac OS X"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 Firefox/125.0",
     "pc", "Firefox", "Mac OS X"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36",
     "pc", "Chrome", "Linux"),
    ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
     "pc", "Firefox", "Ubuntu"),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36",
     "pc", "Chrome", "Chrome OS"),
    # HarmonyOS NEXT 2-in-1 (ArkWeb default UA, DeviceType "PC").
    ("Mozilla/5.0 (PC; OpenHarmony 5.0; HarmonyOS 5.0) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/114.0.0.0 Safari/537.36 ArkWeb/4.1.6.1",
     "pc", "ArkWeb", "HarmonyOS"),
    # ---- iOS ----------------------------------------------------------------
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
     "mobile", "Mobile Safari", "iOS"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
     "mobile", "Chrome Mobile iOS", "iOS"),
    ("Mozilla/5.0 (iPod touch; CPU iPhone OS 15_7 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/15.6 Mobile/15E148 Safari/604.1",
     "mobile", "Mobile Safari", "iOS"),
    ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/16.6 Mobile/15E148 Safari/604.1",
     "tablet", "Mobile Safari", "iOS"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_3 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.33(0x18002129) NetType/WIFI Language/zh_CN",
     "mobile", "WeChat", "iOS"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_1 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Mobile/15E148 SP-engine/2.62.0 main%2F1.0 baiduboxapp/13.24.5.10 "
     "(Baidu; P2 16.1) NABar/1.0",
     "mobile", "Baidu App", "iOS"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Mobile/15E148 AliApp(DingTalk/7.0.20) com.laiwang.DingTalk/29380645 "
     "Channel/201200 language/zh-Hans-CN UT4Aplus/0.0.6 WK",
     "mobile", "DingTalk", "iOS"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Mobile/15E148 MQQBrowser/14.7.5 Mobile Safari/604.1 QBWebViewType/1 WKType/1",
     "mobile", "QQ Browser Mobile", "iOS"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Mobile/15E148 QQ/9.0.35.609 V1_IPH_SQ_9.0.35_1_APP_A Pixel/1179 "
     "MiniAppEnable SimpleUISwitch/0 StudyMode/0 CurrentMode/0 CurrentFontScale/1.000000 "
     "QQTheme/1000 AppId/537213335 Core/WKWebView Device/Apple(iPhone 13) UA/0 NetType/WIFI "
     "QBWebViewType/1 WKType/1",
     "mobile", "QQ", "iOS"),
    # ---- Android ------------------------------------------------------------
    # Chrome's reduced UA ("Android 10; K"): phone keeps "Mobile", tablet drops it.
    ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Mobile Safari/537.36",
     "mobile", "Chrome Mobile", "Android"),
    ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36",
     "tablet", "Chrome", "Android"),
    ("Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/112.0.0.0 Mobile Safari/537.36",
     "mobile", "Chrome Mobile", "Android"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Mobile Safari/537.36 EdgA/124.0.2478.64",
     "mobile", "Edge Mobile", "Android"),
    ("Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
     "mobile", "Samsung Internet", "Android"),
    ("Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/23.0 Chrome/115.0.0.0 Safari/537.36",
     "tablet", "Samsung Internet", "Android"),
    ("Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
     "mobile", "Firefox Mobile", "Android"),
    ("Mozilla/5.0 (Android 14; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0",
     "tablet", "Firefox Mobile", "Android"),
    ("Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Silk/124.3.1 like Chrome/124.0.6367.219 Safari/537.36",
     "tablet", "Amazon Silk", "Android"),
    # CUBOT is a phone brand, not a bot.
    ("Mozilla/5.0 (Linux; Android 9; CUBOT P30) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Mobile Safari/537.36",
     "mobile", "Chrome Mobile", "Android"),
    ("Mozilla/5.0 (Linux; U; Android 12; zh-cn; M2102J2SC Build/SKQ1.211006.001) "
     "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.127 "
     "Mobile Safari/537.36 XiaoMi/MiuiBrowser/17.1.80321",
     "mobile", "MiuiBrowser", "Android"),
    ("Mozilla/5.0 (Linux; Android 12; V2134A Build/SP1A.210812.003; wv) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Version/4.0 Chrome/107.0.5304.141 Mobile Safari/537.36 XWEB/5023 "
     "MMWEBSDK/20230202 MMWEBID/2175 MicroMessenger/8.0.33.2320(0x28002151) WeChat/arm64 Weixin "
     "NetType/WIFI Language/zh_CN ABI/arm64",
     "mobile", "WeChat", "Android"),
    ("Mozilla/5.0 (Linux; U; Android 11; zh-cn; PDEM10 Build/RKQ1.200903.002) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Version/4.0 Chrome/109.0.5414.86 MQQBrowser/14.2 Mobile Safari/537.36 "
     "COVC/046335",
     "mobile", "QQ Browser Mobile", "Android"),
    ("Mozilla/5.0 (Linux; Android 13; V2254A Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Version/4.0 Chrome/115.0.5790.166 Mobile Safari/537.36 "
     "V1_AND_SQ_8.9.80_4614_YYB_D A_8098000 QQ/8.9.80.12440 NetType/WIFI WebP/0.3.0 "
     "AppId/537178646 Pixel/1080 StatusBarHeight/96 SimpleUISwitch/0 QQTheme/2971 StudyMode/0 "
     "CurrentMode/0 CurrentFontScale/1.0 GlobalDensityScale/0.9 AllowLandscape/false InMagicWin/0",
     "mobile", "QQ", "Android"),
    ("Mozilla/5.0 (Linux; U; Android 12; zh-CN; 22041211AC Build/SP1A.210812.016) "
     "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.58 "
     "UCBrowser/15.5.0.1264 Mobile Safari/537.36",
     "mobile", "UC Browser", "Android"),
    ("Mozilla/5.0 (Linux; Android 12; ANA-AN00 Build/HUAWEIANA-AN00; wv) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Version/4.0 Chrome/97.0.4692.98 Mobile Safari/537.36 T7/13.32 "
     "SP-engine/2.70.0 baiduboxapp/13.32.0.10 (Baidu; P1 12) NABar/1.0",
     "mobile", "Baidu App", "Android"),
    ("Mozilla/5.0 (Linux; U; Android 12; zh-CN; M2012K11AC Build/SKQ1.220303.001) "
     "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/69.0.3497.100 UWS/3.22.2.59 "
     "Mobile Safari/537.36 AliApp(DingTalk/7.0.10) com.alibaba.android.rimet/30047 "
     "Channel/700159 language/zh-CN abi/64 UT4Aplus/0.2.25 colorScheme/light",
     "mobile", "DingTalk", "Android"),
    ("Mozilla/5.0 (Linux; Android 12; 22081212C Build/SKQ1.220303.001) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Version/4.0 Chrome/98.0.4758.101 Mobile Safari/537.36 Quark/6.2.5.246",
     "mobile", "Quark", "Android"),
    # ---- Huawei / HarmonyOS -------------------------------------------------
    # HarmonyOS 2-4 (AOSP compatible) phone and MatePad tablet.
    ("Mozilla/5.0 (Linux; Android 10; HarmonyOS; NOH-AN00; HMSCore 6.11.0.302) "
     "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.88 HuaweiBrowser/14.0.2.311 "
     "Mobile Safari/537.36",
     "mobile", "Huawei Browser", "HarmonyOS"),
    ("Mozilla/5.0 (Linux; Android 10; HarmonyOS; MRX-W09; HMSCore 6.11.0.302) "
     "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.88 HuaweiBrowser/13.0.5.303 "
     "Safari/537.36",
     "tablet", "Huawei Browser", "HarmonyOS"),
    # HarmonyOS NEXT (ArkWeb): "Mobile" is present on tablets too.
    ("Mozilla/5.0 (Phone; OpenHarmony 5.0) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/114.0.0.0 Safari/537.36 ArkWeb/4.1.6.1 Mobile HuaweiBrowser/5.0.4.300",
     "mobile", "Huawei Browser", "HarmonyOS"),
    ("Mozilla/5.0 (Tablet; OpenHarmony 5.0) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/114.0.0.0 Safari/537.36 ArkWeb/4.1.6.1 Mobile",
     "tablet", "ArkWeb", "HarmonyOS"),
    # ---- other mobile ---------------------------------------------------------
    ("Mozilla/5.0 (Mobile; Windows Phone 8.1; Android 4.0; ARM; Trident/7.0; Touch; rv:11.0; "
     "IEMobile/11.0; NOKIA; Lumia 635) like iPhone OS 7_0_3 Mac OS X AppleWebKit/537 "
     "(KHTML, like Gecko) Mobile Safari/537",
     "mobile", "IE Mobile", "Windows Phone"),
    ("Mozilla/5.0 (Mobile; LYF/F300B/LYF-F300B-001-01-15-130718-i;Android; rv:48.0) "
     "Gecko/48.0 Firefox/48.0 KAIOS/2.5",
     "mobile", "Firefox Mobile", "KaiOS"),
    # ---- bots and tools -----------------------------------------------------
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
     "bot", "Googlebot", None),
    ("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/124.0.6367.201 Mobile Safari/537.36 "
     "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
     "bot", "Googlebot", None),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
     "bot", "bingbot", None),
    ("Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
     "bot", "Baiduspider", None),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 9_1 like Mac OS X) AppleWebKit/601.1.46 "
     "(KHTML, like Gecko) Version/9.0 Mobile/13B143 Safari/601.1 "
     "(compatible; Baiduspider-render/2.0; +http://www.baidu.com/search/spider.html)",
     "bot", "Baiduspider-render", None),
    ("Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",
     "bot", "Bytespider", None),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/69.0.3497.81 YisouSpider/5.0 Safari/537.36",
     "bot", "YisouSpider", None),
    ("Sogou web spider/4.0(+http://www.sogou.com/docs/help/webmasters.htm#07)",
     "bot", "Sogou web spider", None),
    ("Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/50.0.2661.102 Safari/537.36; 360Spider",
     "bot", "360Spider", None),
    ("Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
     "bot", "Yahoo! Slurp", None),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
     "+https://openai.com/gptbot)",
     "bot", "GPTBot", None),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
     "bot", "FacebookBot", None),
    ("curl/8.5.0", "bot", "curl", None),
    ("python-requests/2.31.0", "bot", "Python Requests", None),
    ("Wget/1.21.4", "bot", "Wget", None),
    ("Go-http-client/1.1", "bot", "Go-http-client", None),
    ("okhttp/4.12.0", "bot", "okhttp", None),
    ("Java/17.0.2", "bot", "Java", None),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "HeadlessChrome/124.0.6367.60 Safari/537.36",
     "bot", "HeadlessChrome", "Linux"),
    ("Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) "
     "PhantomJS/2.1.1 Safari/538.1",
     "bot", "PhantomJS", None),
    # ---- TVs, consoles, headsets -------------------------------------------
    ("Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
     "76.0.3809.146/6.0 TV Safari/537.36",
     "other", None, "Tizen"),
    ("Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/79.0.3945.79 Safari/537.36 WebAppManager",
     "other", None, None),
    ("Mozilla/5.0 (Linux; Android 9; SHIELD Android TV Build/PPR1.180610.011) "
     "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
     "other", "Chrome", "Android"),
    ("Mozilla/5.0 (Linux; Android 9; AFTKA Build/PS7633.3445N) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Silk/120.3.1 like Chrome/120.0.6099.230 Safari/537.36",
     "other", "Amazon Silk", "Android"),
    ("Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko)",
     "other", None, None),
    ("Mozilla/5.0 (PlayStation 4 5.55) AppleWebKit/601.2 (KHTML, like Gecko)",
     "other", None, None),
    # Xbox says "Windows NT 10.0" but is a console.
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edge/44.18363.8131",
     "other", None, "Windows"),
    ("Mozilla/5.0 (Nintendo Switch; WifiWebAuthApplet) AppleWebKit/606.4 (KHTML, like Gecko) "
     "NF/6.0.1.15.4 NintendoBrowser/5.1.0.20393",
     "other", None, None),
    ("Mozilla/5.0 (X11; Linux x86_64; Quest 3) AppleWebKit/537.36 (KHTML, like Gecko) "
     "OculusBrowser/33.0.0.0 SamsungBrowser/4.0 Chrome/124.0.0.0 VR Safari/537.36",
     "other", None, None),
]

# (ua, expected device_class) pool, e.g. for benchmarks.
SAMPLE_USER_AGENTS: list[tuple[str, str]] = [(ua, cls) for ua, cls, _b, _o in UA_TABLE]

# The iPadOS desktop-mode UA is byte-identical to desktop Safari on a Mac; only
# navigator.maxTouchPoints (> 1 on iPad, 0 on a Mac) tells them apart.
IPADOS_DESKTOP_MODE_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15"
)
