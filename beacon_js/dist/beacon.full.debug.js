/* edu-beacon 0.1.0, full build, debug */
(function() {
  // src/util.js
  var cfg = {};
  var early = [];
  function log(message, data2) {
    if (early) early.push([message, data2]);
    else if (cfg.debug) {
      try {
        console.log("[edu-beacon] " + message, data2 == null ? "" : data2);
      } catch (e) {
      }
    }
  }
  function logReady() {
    var held = early;
    early = 0;
    held.forEach(function(line) {
      log(line[0], line[1]);
    });
  }
  function safe(fn) {
    return function() {
      try {
        return fn.apply(this, arguments);
      } catch (e) {
        log("error", e);
      }
    };
  }
  function on(target, type, fn) {
    target.addEventListener(type, safe(fn));
  }
  var memory = {};
  function load(key) {
    var value2;
    try {
      value2 = JSON.parse(localStorage.getItem("eb_" + key));
    } catch (e) {
    }
    return value2 == null ? memory[key] : value2;
  }
  function save(key, value2) {
    memory[key] = value2;
    try {
      if (value2 == null) localStorage.removeItem("eb_" + key);
      else localStorage.setItem("eb_" + key, JSON.stringify(value2));
    } catch (e) {
    }
  }
  function now() {
    return Date.now();
  }
  function rid() {
    return Math.random().toString(36).slice(2, 10) + now().toString(36);
  }
  function clip(v, max) {
    return v == null ? v : String(v).slice(0, max).replace(/[\ud800-\udbff]$/, "");
  }

  // src/session.js
  var TIMEOUT = 30 * 60 * 1e3;
  function touch(s, t, pageview2, alive) {
    if (!s || !alive && t - s.t > TIMEOUT) s = { i: rid(), n: 0 };
    if (pageview2) s.n++;
    s.t = t;
    return s;
  }
  function session(pageview2, alive) {
    var s = touch(load("s"), now(), pageview2, alive);
    save("s", s);
    return s;
  }

  // src/url.js
  var STRIP = ["ticket", "token", "access_token", "sessionid", "jsessionid", "password", "eb_debug"];
  function cleanUrl(href, strip, keepHash, base) {
    if (!href) return "";
    var url2 = new URL(href, base);
    var params = url2.searchParams;
    if (strip == "*") url2.search = "";
    else STRIP.concat(strip || []).forEach(function(name2) {
      if (params.has(name2)) params["delete"](name2);
    });
    url2.pathname = url2.pathname.replace(/;jsessionid=[^/]*/i, "");
    if (!keepHash) url2.hash = "";
    return url2.href;
  }
  function endpoint(host, scriptSrc) {
    return new URL(host ? (/\/\//.test(host) ? host : "//" + host).replace(/\/*$/, "/c") : "c", scriptSrc).href;
  }

  // src/queue.js
  var CAP = 50;
  var MAX_AGE = 24 * 3600 * 1e3;
  var MAX_BODY = 15e3;
  function enqueue(queue, events, t) {
    return (queue || []).concat(events).filter(function(e) {
      e.re = 1;
      return t - e.ts < MAX_AGE;
    }).slice(-CAP);
  }

  // src/transport.js
  var script = document.currentScript || {};
  var left;
  function send(events, leaving) {
    left = leaving;
    if (!events.length) return;
    var url2 = endpoint(cfg.host, script.src || location.href);
    var body = JSON.stringify(events);
    var fetch = window.fetch;
    var half = events.length >> 1;
    if (body.length * 3 > MAX_BODY && half) return send(events.slice(0, half), leaving), send(events.slice(half), leaving);
    if (navigator.onLine === false) return keep(events, "offline");
    log("send to " + url2, events);
    if (leaving && beacon(url2, body)) return;
    try {
      if (/\[native code\]/.test(fetch)) {
        return fetch(url2, { method: "POST", body: body, keepalive: true }).then(safe(function(answer) {
          if (/^5|429/.test(answer.status)) keep(events, answer.status);
          else if (answer.status > 299) answer.text().then(function(why) {
            log("rejected: " + why, events);
          });
        }), safe(function() {
          log("fetch failed", events);
          left || images(url2, events);
        }));
      }
    } catch (e) {
    }
    if (leaving || !beacon(url2, body)) images(url2, events);
  }
  function beacon(url2, body) {
    try {
      return navigator.sendBeacon(url2, body);
    } catch (e) {
    }
  }
  function images(url2, events) {
    events.forEach(function(e) {
      e.re = 1;
      var query = new URLSearchParams(e);
      var img = new Image();
      if (e.p) query.set("p", JSON.stringify(e.p));
      img.onerror = safe(function() {
        keep([e], "unreachable");
      });
      img.src = url2 + "?img=1&" + query;
    });
  }
  function keep(events, reason) {
    log("kept for later: " + reason, events);
    save("q", enqueue(load("q"), events, now()));
  }
  function replay() {
    var queue = load("q");
    if (queue) {
      save("q");
      log("replay", queue);
      send(queue);
    }
  }

  // src/aplus.js
  var ACTIONS = { setMetaInfo: "set", sendPV: "pageview" };
  var KEYS = { "aplus-rhost-v": "host", DEBUG: "debug", "aplus-waiting": "manual", _user_id: "userId", _hold: "hold" };
  var TYPES = { CLK: "click", EXP: "exposure", OTHER: "custom" };
  function value(key, v) {
    return key == "manual" || key == "hold" ? v == "MAN" || v == "BLOCK" || v != "START" && v : v;
  }

  // src/core.js
  var FLUSH_EVENTS = 10;
  var FLUSH_MS = 3e3;
  var buffer = [];
  var timer;
  var hook = {};
  var commands = {
    // set(key, value); also aplus.setMetaInfo.
    set: function(key, v) {
      key = KEYS[key] || key;
      cfg[key] = value(key, v);
      if (key == "hold" && !cfg.hold) flush();
      if (key == "vid" && v === false) save("v");
    },
    // record(name, type, props): type is a protocol type (click, exposure, media,
    // interaction, custom) or aplus's CLK / EXP / OTHER; custom when absent. `props` go
    // as given: ones that break the protocol's limits get the event rejected (the debug
    // build shows the collector's answer; the full build will cut them to size).
    record: function(name2, type, props2) {
      emit(TYPES[type] || type || "custom", { n: clip(name2, 128), p: props2 });
    },
    // optOut() keeps this browser from being counted (on this origin) until optOut(false).
    optOut: function(on2) {
      save("optout", on2 === false ? null : 1);
    }
  };
  function run(command) {
    try {
      var name2 = command.action.replace("aplus.", "");
      var args = command.arguments;
      log("> " + command.action, args);
      commands[ACTIONS[name2] || name2].apply(0, [].concat(args));
    } catch (e) {
      log("bad command: " + e, command);
    }
  }
  function emit(t, fields) {
    var n = navigator;
    if (load("optout")) return log("not counted: opted out", fields);
    if (cfg.dnt && (n.doNotTrack == "1" || n.globalPrivacyControl)) return log("not counted: Do-Not-Track/GPC", fields);
    var s = session(t == "pageview");
    var e = { t: t, ts: now(), id: rid(), sid: s.i };
    var v = cfg.vid !== false && (load("v") || rid());
    if (v) save("v", e.vid = v);
    if (t == "pageview") e.sn = s.n;
    for (var k in fields) if (fields[k] != null && fields[k] !== "") e[k] = fields[k];
    if (true) hook.emit(e);
    buffer.push(e);
    if (t == "pageview" || buffer.length >= FLUSH_EVENTS) flush();
    else timer = timer || setTimeout(flush, FLUSH_MS);
  }
  function flush(leaving) {
    var events = buffer;
    clearTimeout(timer);
    timer = 0;
    if (cfg.hold && !leaving) return events.length && log("held", events);
    buffer = [];
    if (!cfg.appKey) return events.length && log("not sent: no appKey", events);
    events.forEach(function(e) {
      e.k = cfg.appKey;
      if (cfg.userId) e.uid = cfg.userId;
    });
    send(events, leaving);
  }

  // src/fields.js
  function int(v) {
    return v != null && (v = Math.round(v)) >= 0 && v < 1e7 ? v : null;
  }
  function props(o) {
    var out, n = 0, k, v, t;
    for (k in o) {
      v = o[k];
      t = typeof v;
      if (n < 32 && (t == "string" || t == "boolean" || t == "number" && isFinite(v))) {
        ;
        (out = out || {})[k.slice(0, 64)] = t == "string" ? clip(v, 256) : v;
        n++;
      }
    }
    return out;
  }
  function resource(get) {
    var out = {};
    ["rid", "rt", "subj", "stage", "src"].forEach(function(k) {
      out[k] = clip(get(k), k == "rid" ? 128 : k == "rt" ? 16 : 64);
    });
    return out;
  }
  function json(text) {
    try {
      return JSON.parse(text);
    } catch (e) {
    }
  }

  // src/media.js
  var PING_MS = 3e4;
  var BOUNDS = [10, 25, 50, 75, 90, 100];
  function player(send3, dur) {
    var seen2 = {};
    var done = {};
    var ms = rid();
    var ws = 0;
    var wt = 0;
    var since2 = 0;
    var at = 0;
    var atT = 0;
    var jump;
    var timer2;
    function fire(n, x) {
      var t = now();
      if (since2) wt += t - since2, since2 = t;
      x = x || {};
      x.ms = ms;
      x.pos = Math.floor(at);
      x.ws = ws;
      x.wt = wt;
      wt = 0;
      send3(n, x);
    }
    var s = {
      // The position `pos` (s) at the playback rate `rate`: counts the seconds played
      // through since the last position, then the boundaries reached.
      timeupdate: function(pos, rate) {
        var t = now();
        var d2 = Math.round(dur());
        var k;
        pos = +pos || 0;
        if (since2 && !jump && pos > at && pos - at <= (t - atT) / 1e3 * (rate || 1) + 1) {
          for (k = Math.ceil(at - 0.5); k + 0.5 < pos; k++) if (!seen2[k]) seen2[k] = ++ws;
        }
        at = pos;
        atT = t;
        jump = 0;
        BOUNDS.forEach(function(b) {
          if (!done[b] && d2 > 0 && ws * 100 >= b * d2) {
            done[b] = 1;
            fire("progress", { pb: b });
          }
        });
      },
      play: function(pos) {
        if (since2) return;
        at = +pos || 0;
        atT = now();
        fire("play");
        since2 = atT;
        timer2 = setInterval(safe(function() {
          fire("ping");
        }), PING_MS);
      },
      pause: function(pos) {
        if (!since2) return;
        s.timeupdate(pos);
        fire("pause");
        since2 = 0;
        clearInterval(timer2);
      },
      seeking: function() {
        jump = 1;
      },
      seeked: function(pos) {
        at = +pos || 0;
        atT = now();
        jump = 0;
        fire("seek");
      },
      ended: function(pos) {
        s.pause(pos);
        fire("ended");
      },
      // The page is being left: what was played since the last event goes now.
      leave: function() {
        if (since2) fire("ping");
      }
    };
    return s;
  }
  function reader(send3) {
    var ms = rid();
    var on2 = 0;
    var wt = 0;
    var all = 0;
    var timer2;
    function add() {
      var t = now();
      if (on2) wt += t - on2, all += t - on2, on2 = t;
    }
    function out() {
      if (wt >= 1e3) send3("read", { ms: ms, ws: Math.floor(all / 1e3), wt: wt }), wt = 0;
    }
    return function(reading2) {
      add();
      if (reading2 && !on2) {
        on2 = now();
        timer2 = setInterval(safe(function() {
          add();
          out();
        }), PING_MS);
      } else if (!reading2 && on2) {
        on2 = 0;
        clearInterval(timer2);
        out();
      }
    };
  }

  // src/players.js
  var custom = {};
  var sessions = [];
  function data(el, name2) {
    return el && el.getAttribute("data-eb-" + name2);
  }
  function send2(el, meta, n, x) {
    var m = meta || {};
    var d2 = el.closest && el.closest("[data-eb-rid]");
    var f = resource(function(k2) {
      return m[k2] || data(d2, k2) || data(el.getAttribute && el, k2) || (k2 == "rid" ? (el.currentSrc || "").split(/[?#]/)[0].slice(-128) : k2 == "rt" && el.tagName && el.tagName.toLowerCase());
    });
    f.n = n;
    f.dur = int(m.dur || el.duration || data(d2, "dur"));
    for (var k in x) f[k] = x[k];
    if (f.rid) emit("media", f);
  }
  function feed(el, type, pos, rate, meta) {
    var s = el.__ebs;
    if (!s) {
      if (type == "emptied") return;
      s = el.__ebs = player(function(n, x) {
        send2(el, el.__ebm || meta, n, x);
      }, function() {
        return (el.__ebm || meta || {}).dur || el.duration;
      });
      sessions.push(s);
    }
    if (type == "emptied") {
      s.pause(pos);
      el.__ebs = 0;
    } else s[type](pos, rate);
  }
  commands.media = function(target, pos, meta) {
    if (target.nodeType) {
      target.__ebm = pos;
      if (!target.__ebl) {
        target.__ebl = 1;
        TYPES2.forEach(function(type) {
          target.addEventListener(type, listener);
        });
      }
    } else feed(custom[meta.rid] = custom[meta.rid] || {}, target, pos, 1, meta);
  };
  var TYPES2 = ["play", "pause", "seeking", "seeked", "timeupdate", "ended", "emptied"];
  var listener = safe(function(e) {
    var el = e.target;
    if (el.currentTime >= 0 && e.__eb != 1) {
      e.__eb = 1;
      feed(el, e.type, el.currentTime, el.playbackRate);
    }
  });
  function startMedia() {
    TYPES2.forEach(function(type) {
      document.addEventListener(type, listener, true);
    });
  }
  function reading(el) {
    return el.__ebr = el.__ebr || reader(function(n, x) {
      send2(el, 0, n, x);
    });
  }

  // src/tracks.js
  var WATCHED = "[data-eb-pos],[data-eb-rt=textbook],[data-eb-rt=document]";
  var io;
  var watched = [];
  var seen = {};
  function item(el) {
    var it = el.closest("[data-eb-pos]");
    var tr = it && it.closest("[data-eb-track]");
    if (tr) {
      return {
        tr: clip(tr.getAttribute("data-eb-track"), 64),
        pos: int(it.getAttribute("data-eb-pos")) || [].indexOf.call(tr.querySelectorAll("[data-eb-pos]"), it) + 1,
        n: name(it)
      };
    }
  }
  function name(el) {
    return clip(el.getAttribute("data-eb-item") || el.textContent.trim().replace(/\s+/g, " ") || el.tagName, 128);
  }
  function visible(el) {
    var s = getComputedStyle(el);
    return !document.hidden && s.visibility != "hidden" && s.opacity > 0.1;
  }
  function observed(entries) {
    entries.forEach(function(x) {
      var el = x.target;
      var on2 = x.isIntersecting && x.intersectionRatio >= ratio();
      clearTimeout(el.__ebt);
      if (el.__ebr) reading(el)((el.__ebv = on2) && !document.hidden);
      else if (on2) {
        el.__ebt = setTimeout(safe(function check() {
          var it = item(el);
          var key = it && [it.tr, it.pos, it.n].join("|");
          if (!visible(el)) el.__ebt = setTimeout(safe(check), cfg.expMs || 300);
          else if (it && !seen[key]) {
            seen[key] = 1;
            emit("exposure", it);
          }
        }), cfg.expMs || 300);
      }
    });
  }
  function ratio() {
    return cfg.expRatio >= 0 ? cfg.expRatio : 0.5;
  }
  function scan() {
    if (io) [].forEach.call(document.querySelectorAll(WATCHED), function(el) {
      if (!el.__ebo) {
        el.__ebo = 1;
        if (/^(textbook|document)$/.test(el.getAttribute("data-eb-rt"))) reading(el);
        watched.push(el);
        io.observe(el);
      }
    });
  }
  function newView() {
    seen = {};
    watched = watched.filter(function(el) {
      if (el.isConnected) return io.unobserve(el), io.observe(el), 1;
    });
  }
  function shown(off) {
    watched.forEach(function(el) {
      if (el.__ebr) el.__ebr(!off && el.__ebv && !document.hidden);
    });
  }
  function startTracks() {
    var timer2;
    if (!window.IntersectionObserver) return;
    io = new IntersectionObserver(safe(observed), { threshold: ratio() });
    scan();
    new MutationObserver(function() {
      timer2 = timer2 || setTimeout(safe(function() {
        timer2 = 0;
        scan();
      }), 100);
    }).observe(document.documentElement, { childList: true, subtree: true });
  }

  // src/clicks.js
  var ENTRY_MS = 6e4;
  function entry(v) {
    try {
      var s = sessionStorage;
      var old = json(s.getItem("eb_entry"));
      if (v) s.setItem("eb_entry", JSON.stringify(v));
      else s.removeItem("eb_entry");
      return old;
    } catch (e) {
    }
  }
  function entered() {
    var e = entry();
    if (e && now() - e[2] < ENTRY_MS) return { etr: e[0], epos: e[1] };
  }
  function click(e) {
    var t = e.target;
    var el, n, p, it, a, c;
    if (!t.closest || e.type == "auxclick" && e.button != 1) return;
    c = cfg.clicks || [];
    if (typeof c == "string") c = json(c) || [];
    c.some(function(rule) {
      el = t.closest(rule.selector || rule.cssSelector);
      return el && (n = rule.name || rule.logkey, p = rule.props);
    });
    a = t.closest("[data-eb-click]");
    if (a) {
      el = a;
      n = a.getAttribute("data-eb-click");
      p = json(a.getAttribute("data-eb-p"));
    }
    it = item(t);
    if (!el && !it) return;
    a = t.closest("a");
    if (it && e.type == "click" && !(e.ctrlKey || e.metaKey || e.shiftKey || a && a.target == "_blank")) {
      entry([it.tr, it.pos, now()]);
    }
    emit("click", { n: clip(n, 128) || (it ? it.n : name(el)), tr: it && it.tr, pos: it && it.pos, p: props(p) });
  }

  // src/interactions.js
  "rate like unlike share favorite unfavorite comment".split(" ").forEach(function(n) {
    commands[n] = function(id, a, meta) {
      var two = n == "rate" || n == "share";
      var m = (two ? meta : a) || {};
      var f = resource(function(k) {
        return k == "rid" ? id : m[k];
      });
      f.n = n;
      f.p = props(m.p);
      if (two) n == "rate" ? f.score = int(a) : f.ch = clip(a, 32);
      if (!f.rid || n == "rate" && !(f.score >= 1 && f.score <= 5)) return log("not sent: " + n + " needs a resource id (and a score 1-5)", f);
      emit("interaction", f);
    };
  });

  // src/deep.js
  KEYS["aplus-auto-clk"] = "clicks";
  var set = commands.set;
  commands.set = function(key, v) {
    if ((KEYS[key] || key) == "userId") {
      flush();
      v = clip(v, 128);
    }
    set(key, v);
  };
  commands.setUser = function(id) {
    commands.set("userId", id);
  };
  var record = commands.record;
  commands.record = function(n, t, p) {
    record(n, t, props(p));
  };
  hook.emit = function(e) {
    if (e.t == "pageview") {
      var x = entered();
      for (var k in x) e[k] = x[k];
      newView();
    }
  };
  hook.start = function() {
    var d2 = document;
    var leave = safe(function() {
      sessions.forEach(function(s) {
        s.leave();
      });
      shown(1);
      flush(1);
    });
    ["click", "auxclick"].forEach(function(type) {
      d2.addEventListener(type, safe(click), true);
    });
    startMedia();
    startTracks();
    d2.addEventListener("visibilitychange", function() {
      d2.hidden ? leave() : shown();
    });
    addEventListener("pagehide", leave);
  };

  // src/debounce.js
  function debounce(fn, ms) {
    var timer2;
    return function() {
      clearTimeout(timer2);
      timer2 = setTimeout(fn, ms);
    };
  }

  // src/engagement.js
  var total = 0;
  var since = 0;
  var active = false;
  var depth = 0;
  function update(off) {
    var t = now();
    var was = active;
    if (was && t > since) total += t - since;
    since = t;
    active = !off && !document.hidden && document.hasFocus();
    if (active != was) session(0, was);
  }
  function scrolled() {
    depth = Math.max(depth, Math.min(100, Math.round((pageYOffset + innerHeight) / document.documentElement.scrollHeight * 100)) || 0);
  }
  function take(off) {
    update(off);
    scrolled();
    var out = { et: total, sd: depth };
    total = 0;
    return out;
  }
  function restart() {
    take();
    depth = 0;
    scrolled();
  }

  // src/page.js
  var ROUTE_SETTLE_MS = 200;
  var d = document;
  var current;
  function url(href) {
    return clip(cleanUrl(href, cfg.strip, cfg.hash, location.href), 2048);
  }
  function hidden() {
    return d.hidden || d.prerendering;
  }
  function pageview(o, props2) {
    var done;
    var go = safe(function() {
      if (done || hidden()) return;
      done = 1;
      o = o || {};
      var u = url(o.url || location.href);
      var meta = d.querySelector('meta[name="eb-page-code"]');
      var pc = clip(o.pageCode || cfg.pageCode || meta && meta.content, 128);
      restart();
      emit("pageview", {
        u: u,
        // After the first page view of a single-page app, the referrer is the last route.
        r: url(o.referrer || (current ? current.u : d.referrer)),
        pc: pc,
        ti: clip(o.title || d.title, 512),
        cs: d.characterSet,
        lang: navigator.language,
        sw: screen.width,
        sh: screen.height,
        tp: navigator.maxTouchPoints,
        p: props2
      });
      current = { u: u, pc: pc };
    });
    if (hidden()) {
      log("page view waits until shown", o);
      on(d, "visibilitychange", go);
      on(d, "prerenderingchange", go);
    }
    go();
  }
  commands.pageview = pageview;
  function end(leaving) {
    if (!current) return;
    var g = take(leaving);
    if (g.et > 0) emit("engagement", { u: current.u, pc: current.pc, et: g.et, sd: g.sd });
    if (leaving) flush(1);
  }
  function start() {
    var w = window;
    var route = debounce(safe(function() {
      if (!cfg.manual && current && url(location.href) != current.u) {
        end();
        pageview();
      }
    }), ROUTE_SETTLE_MS);
    ["pushState", "replaceState"].forEach(function(name2) {
      var original = history[name2];
      history[name2] = function() {
        var result = original.apply(this, arguments);
        route();
        return result;
      };
    });
    on(w, "popstate", route);
    on(w, "hashchange", route);
    on(d, "visibilitychange", function() {
      update();
      if (hidden()) end(1);
    });
    on(w, "pagehide", function() {
      end(1);
    });
    on(w, "pageshow", function(e) {
      if (e.persisted && !cfg.manual) pageview();
    });
    on(w, "focus", update);
    on(w, "blur", function() {
      setTimeout(safe(update));
    });
    on(w, "scroll", scrolled);
    update();
    if (!cfg.manual) pageview();
    else log("manual page views");
  }

  // src/basic.js
  var QUEUES = ["eb_queue", "aplus_queue"];
  (function(w) {
    try {
      var m = /[?&]eb_debug=([01])/.exec(location.search);
      if (m) save("debug", m[1] == "1" || null);
      if (false) {
        var debug = document.createElement("script");
        debug.src = script.src.replace(/[^/]*$/, true ? "beacon.full.debug.js" : "beacon.debug.js");
        return script.parentNode.insertBefore(debug, script);
      }
      if (w.__edu_beacon || !w.URL) return;
      w.__edu_beacon = 1;
      QUEUES.forEach(function(name2) {
        var queue = w[name2] = w[name2] || [];
        var pending = queue.splice(0);
        queue.push = function() {
          ;
          [].forEach.call(arguments, run);
          return 0;
        };
        pending.forEach(run);
      });
      if (true) {
        if (load("debug")) cfg.debug = 1;
        logReady();
        log("edu-beacon 0.1.0, settings", cfg);
      }
      replay();
      start();
      if (true) hook.start();
    } catch (e) {
      log("failed to start: " + e);
    }
  })(window);
})();
